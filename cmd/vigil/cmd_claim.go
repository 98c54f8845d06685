package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
)

func claimCommand() *command {
	return &command{
		name:    "claim",
		summary: "Claim a target for an agency (deconfliction); 'claim release' lets it go.",
		usage:   "vigil claim --target ID --agency ID [--contact TEXT]\n  vigil claim release --target ID",
		help: `
One agency at a time holds a target. A claim on a target another agency
holds is refused, and says who holds it, since when, and whom to call
(exit 1). A claim by the agency that holds it renews it. A claim lapses
after 30 days without activity (a renewal is activity, and so are its
agency's 'vigil case step' and 'vigil case subscriber --set'); in its last
7 days 'vigil claim list' marks it LAPSING and the target page gives its
date; then any agency may claim the target. The target page shows who holds it.
When the analysis merges two targets (one person), a claim taken on the
older id holds the merged target: another agency's claim is refused naming
the holder, and a release or a hand-off moves the claims on both ids.
Handing a target off ('vigil target share ID --agency ID --assign') moves
its claim to that agency. Every claim, refusal, release, lapse and hand-off
is kept as a record, and each command is audited.

Examples:
  vigil claim --target T-000042-69 --agency fr-srpj-lyon --contact "Lt. Martin, 04 00 00 00 00"
  vigil claim release --target T-000042-69
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID` (T-000042-69)")
			agency := fs.String("agency", "", "the claiming agency's `ID`")
			contact := fs.String("contact", "", "whom the other agencies should call: a name and a number")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" || *agency == "" {
					return usagef("want --target ID and --agency ID")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				if _, err := sq.Agency(ctx, *agency); err != nil {
					return fmt.Errorf("agency %s: %w ('vigil agency list' lists them)", *agency, err)
				}
				by := a.cliActor().Name
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "target:"+id, map[string]any{"claim": *agency, "contact": *contact}); err != nil {
					return err
				}
				c, err := claimsOf(sq).Claim(ctx, id, *agency, by, *contact)
				var ce *casework.ClaimedError
				if errors.As(err, &ce) {
					fmt.Fprintf(a.stderr, "vigil: %v\n", ce)
					return errSilent
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: claimed by %s since %s\n", id, c.Agency, c.Since.Format("2006-01-02 15:04 UTC"))
				return nil
			}
		},
		subs: []*command{claimReleaseCommand(), claimListCommand(), claimHandOffsCommand(), claimHandOffCommand()},
	}
}

func claimReleaseCommand() *command {
	return &command{
		name:    "release",
		summary: "Let a claimed target go: any agency may then claim it.",
		usage:   "vigil claim release --target ID [--agency ID]",
		help: `
Ends the claim on the target (with --agency, only if that agency holds it).
Kept as a record and audited.

Example:
  vigil claim release --target T-000042-69
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID`")
			agency := fs.String("agency", "", "release only if this agency `ID` holds it")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" {
					return usagef("want --target ID")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				cl, _, err := claimsOf(sq).Holder(ctx, id)
				if err != nil {
					return err
				}
				if cl == nil || (*agency != "" && cl.Agency != *agency) {
					return fmt.Errorf("%s: %w", id, casework.ErrNotHeld)
				}
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "target:"+id, map[string]any{"release": cl.Agency}); err != nil {
					return err
				}
				if err := claimsOf(sq).Release(ctx, id, cl.Agency, a.cliActor().Name); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: released by %s\n", id, cl.Agency)
				return nil
			}
		},
	}
}

func claimHandOffsCommand() *command {
	return &command{
		name:    "handoffs",
		summary: "Propose hand-offs of claimed targets last seen first-hand elsewhere; list those pending.",
		usage:   "vigil claim handoffs [--json]",
		help: `
For every live claim, looks at the target's newest first-hand observation
(the peer itself talked to a sensor: what a third party said never moves a
target): when it was routed to another agency than the one holding the
claim, proposes a hand-off to that agency (one pending proposal a target).
Then lists every pending proposal. 'vigil claim handoff' accepts or
declines one. Audited. 'vigil serve' makes the same proposals on its own
every --handoff-every.

Example:
  vigil claim handoffs
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionSearch, "claims", map[string]any{"handoffs": true}); err != nil {
					return err
				}
				if _, err := claimsOf(sq).ProposeHandOffs(ctx, sq, movement{sq}); err != nil {
					return err
				}
				ps, err := sq.Proposals(ctx, casework.Pending)
				if err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, ps)
				}
				for _, p := range ps {
					fmt.Fprintf(a.stdout, "%s\t%s -> %s\t%s\n", p.Target, p.From, p.To, p.Reason)
				}
				return nil
			}
		},
	}
}

func claimHandOffCommand() *command {
	return &command{
		name:    "handoff",
		summary: "Accept or decline a proposed hand-off; accepted, the target and its claim go to the other agency.",
		usage:   "vigil claim handoff --target ID --accept|--decline --note TEXT",
		help: `
Answers the pending hand-off proposal of the target ('vigil claim
handoffs'). --accept hands the target off (as 'vigil target share
--assign') and moves its claim; --decline keeps it. Both are kept with
who, when and the note, and audited. A proposal whose agency no longer
holds the target (another agency claimed it since) is not accepted: it is
kept as declined, with why, and the other agency's claim stays.

Examples:
  vigil claim handoff --target T-000042-69 --accept --note "agreed with Lille by phone"
  vigil claim handoff --target T-000042-69 --decline --note "search planned on Monday"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID`")
			accept := fs.Bool("accept", false, "accept the hand-off")
			decline := fs.Bool("decline", false, "decline it")
			note := fs.String("note", "", "why (required)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" || *accept == *decline || *note == "" {
					return usagef("want --target ID, one of --accept and --decline, and --note")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				by := a.cliActor().Name
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "target:"+id, map[string]any{"handoff": *accept, "note": *note}); err != nil {
					return err
				}
				p, err := claimsOf(sq).DecideHandOff(ctx, sq, id, *accept, by, *note)
				if err != nil {
					return err
				}
				if *accept {
					e, err := startAnalysis(ctx, a.log, sq, nil)
					if err != nil {
						return err
					}
					if err := e.Assign(ctx, id, p.To, by, "hand-off proposal accepted: "+*note); err != nil {
						return err
					}
					if err := e.Flush(ctx); err != nil {
						return err
					}
				}
				fmt.Fprintf(a.stdout, "%s: hand-off to %s %s\n", id, p.To, p.State)
				return nil
			}
		},
	}
}

func claimListCommand() *command {
	return &command{
		name:    "list",
		summary: "List the live claims, those about to lapse first marked LAPSING.",
		usage:   "vigil claim list [--agency ID] [--json]",
		help: `
Every claim not yet lapsed, with its agency, since when, whom to call and
when it lapses without activity; a claim in its last 7 days is LAPSING:
its agency renews it by claiming the target again. Audited.

Example:
  vigil claim list --agency fr-srpj-lyon
`,
		setup: func(fs *flag.FlagSet) runFunc {
			agency := fs.String("agency", "", "only this agency's claims")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.targetsStore(ctx, false)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionSearch, "claims", map[string]any{"agency": *agency}); err != nil {
					return err
				}
				svc := claimsOf(sq)
				now := time.Now().UTC()
				cs, err := sq.LiveClaims(ctx, now.Add(-svc.Config.LapseAfter))
				if err != nil {
					return err
				}
				type row struct {
					casework.Claim
					State    string    `json:"state"`
					LapsesAt time.Time `json:"lapses_at"`
				}
				var rows []row
				for _, c := range cs {
					if *agency == "" || c.Agency == *agency {
						rows = append(rows, row{c, svc.Config.State(c, now), svc.Config.LapsesAt(c)})
					}
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, rows)
				}
				for _, r := range rows {
					mark := ""
					if r.State == casework.Lapsing {
						mark = "LAPSING "
					}
					fmt.Fprintf(a.stdout, "%s%s\t%s since %s\tcall %s\tlapses %s\n", mark, r.Target, r.Agency,
						r.Since.Format("2006-01-02"), orDash(r.Contact), r.LapsesAt.Format("2006-01-02"))
				}
				return nil
			}
		},
	}
}

// movement reads where a target was last seen first-hand from its
// timeline (casework.Movement).
type movement struct{ sq backend }

func (m movement) NewestFirstHand(ctx context.Context, target string) (string, time.Time, error) {
	d, err := m.sq.TargetWithTimeline(ctx, target, analysis.AllAgencies, 1000)
	if errors.Is(err, analysis.ErrNotFound) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	for _, e := range d.Timeline { // newest first
		if e.FirstHand && e.Agency != "" {
			return e.Agency, e.Time, nil
		}
	}
	return "", time.Time{}, nil
}

// claimsOf is the claims service over the store, with the default lapse.
// An id the analysis merged into another target (an operation keeps the
// ids it selected) is the same person as that target: the claims on the
// target it is in now count for it too.
func claimsOf(sq backend) *casework.Claims {
	return &casework.Claims{Store: sq, Config: casework.DefaultConfig(), Merged: func(ctx context.Context, id string) ([]string, error) {
		t, err := sq.Target(ctx, id, analysis.AllAgencies)
		if err != nil {
			return nil, err
		}
		if t.ID != id {
			return append([]string{t.ID}, t.MergedFrom...), nil
		}
		return t.MergedFrom, nil
	}}
}

// claimTarget opens the store and checks that id names a live target
// (a merged id resolves to the target it is in).
func (a *app) claimTarget(ctx context.Context, id string) (backend, string, error) {
	if _, ok := analysis.ParseTargetID(id); !ok {
		return nil, "", usagef("--target %q: want a target id such as T-000042-69", id)
	}
	sq, err := a.targetsStore(ctx, true)
	if err != nil {
		return nil, "", err
	}
	t, err := sq.Target(ctx, id, analysis.AllAgencies)
	if err != nil {
		return nil, "", fmt.Errorf("target %s: %w", id, err)
	}
	return sq, t.ID, nil
}
