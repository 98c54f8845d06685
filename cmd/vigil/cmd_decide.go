package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Analysts' decisions from the command line. Each needs a reason, is kept
// by the analysis (it survives restarts and rebuilds) and is audited as a
// change by "cli:<os user>".

// decision is one decision command's run: it gets the store, the engine,
// the actor's name and the reason.
type decision func(ctx context.Context, sq backend, e *analysis.Engine, by, why string, args []string) (object string, err error)

func decisionCommand(name, summary, usage, help string, nargs int, flags func(fs *flag.FlagSet) decision) *command {
	return &command{
		name: name, summary: summary, usage: usage, help: help,
		setup: func(fs *flag.FlagSet) runFunc {
			why := fs.String("why", "", "the reason, kept with the decision (required)")
			run := flags(fs)
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) != nargs {
					return usagef("want %d argument(s): %s", nargs, usage)
				}
				if *why == "" {
					return usagef("--why is required: every decision keeps its reason")
				}
				sq, err := a.backendStore(ctx)
				if err != nil {
					return err
				}
				e, err := startAnalysis(ctx, a.log, sq, nil)
				if err != nil {
					return err
				}
				by := a.cliActor().Name
				obj, err := run(ctx, sq, e, by, *why, args)
				if err != nil {
					return err
				}
				if err := e.Flush(ctx); err != nil {
					return err
				}
				if err := a.auditCLIPurpose(ctx, sq, audit.ActionChange, obj, "", map[string]any{"decision": name, "why": *why, "args": args}); err != nil {
					return fmt.Errorf("%s: %s recorded, but the audit trail was not written: %w", obj, name, err)
				}
				fmt.Fprintf(a.stdout, "%s: %s recorded\n", obj, name)
				return nil
			}
		},
	}
}

func targetFlagCommand() *command {
	return decisionCommand("flag", "Set or clear an analyst flag on a target (known offender, access to children).",
		"vigil target flag ID --flag known_offender|access_to_children [--off] --why TEXT", `
Flags add their documented points to the score (docs/scoring.md). The
decision and its reason are kept and audited.

Examples:
  vigil target flag T-000004-86 --flag access_to_children --why "teacher, per case 2026/0042"
  vigil target flag T-000004-86 --flag known_offender --off --why "wrong person"
`, 1, func(fs *flag.FlagSet) decision {
			fl := fs.String("flag", "", "known_offender or access_to_children")
			off := fs.Bool("off", false, "clear the flag")
			return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
				if *fl != analysis.FlagKnownOffender && *fl != analysis.FlagChildAccess {
					return "", usagef("--flag %q: want %s or %s", *fl, analysis.FlagKnownOffender, analysis.FlagChildAccess)
				}
				return "target:" + args[0], e.SetFlag(ctx, args[0], *fl, !*off, by, why)
			}
		})
}

func targetShareCommand() *command {
	return decisionCommand("share", "Share a target with another agency, or hand it off (--assign).",
		"vigil target share ID --agency ID [--assign] [--off] --why TEXT", `
--agency lets that agency's investigators see the target beside the agency
it is routed to; --assign hands it off (the agency then has it in charge,
and the target's claim, if any, moves to it: 'vigil claim'); --off
withdraws a share. Kept and audited.

Examples:
  vigil target share T-000004-86 --agency fr-szpj-nord --why "address in Lille since March"
  vigil target share T-000004-86 --agency fr-szpj-nord --assign --why "hand-off agreed with OFMIN"
`, 1, func(fs *flag.FlagSet) decision {
			agency := fs.String("agency", "", "agency `ID`")
			assign := fs.Bool("assign", false, "hand the target off to the agency")
			off := fs.Bool("off", false, "withdraw the share")
			return func(ctx context.Context, sq backend, e *analysis.Engine, by, why string, args []string) (string, error) {
				if *agency == "" && !*assign {
					return "", usagef("--agency is required")
				}
				if *assign {
					if err := e.Assign(ctx, args[0], *agency, by, why); err != nil {
						return "", err
					}
					// The hand-off moves the target's claim, if any (vigil claim).
					return "target:" + args[0], handOffClaim(ctx, sq, args[0], *agency, by)
				}
				return "target:" + args[0], e.Share(ctx, args[0], *agency, !*off, by, why)
			}
		})
}

// handOffClaim moves the claim on target (as the analysis resolves its
// id) to agency.
func handOffClaim(ctx context.Context, sq backend, target, agency, by string) error {
	t, err := sq.Target(ctx, target, analysis.AllAgencies)
	if err != nil {
		return fmt.Errorf("target %s handed off, but its claim was not moved: %w", target, err)
	}
	if err := claimsOf(sq).HandOff(ctx, t.ID, agency, by); err != nil {
		return fmt.Errorf("target %s handed off, but its claim was not moved: %w", target, err)
	}
	return nil
}

func targetUnlinkCommand() *command {
	return decisionCommand("unlink", "Undo a wrong device link: the evidence never joins those endpoints again.",
		"vigil target unlink LINK-ID --why TEXT", `
'vigil target show ID' lists a target's device links with their numbers and
reasons. Unlinking rejects that link and every link made by the same
evidence; the decision is kept, so the same evidence never merges them again.

Example:
  vigil target unlink 17 --why "node id shared by a VPN exit"
`, 1, func(fs *flag.FlagSet) decision {
			return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
				id, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil {
					return "", usagef("link id %q: want a number", args[0])
				}
				return "link:" + args[0], e.Unlink(ctx, id, by, why)
			}
		})
}

func leadsCommand() *command {
	return &command{
		name:    "leads",
		summary: "Review leads: other files seen in matched torrents, and the files of keyword searches (suspect).",
		usage:   "vigil leads list|confirm|dismiss",
		help: `
A lead is a file on no list that was seen inside a matched torrent, with how
often and with what. It is never a match by itself: an analyst confirms it
(it is added to the local list "` + localConfirmedList + `", with who and why)
or dismisses it.
`,
		subs: []*command{leadsListCommand(),
			decisionCommand("confirm", "Confirm a lead: add it to the local list.", "vigil leads confirm KEY --why TEXT", `
Example:
  vigil leads confirm btv2:0a1b... --why "reviewed: same series as the listed files"
`, 1, func(fs *flag.FlagSet) decision {
				return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
					return "lead:" + args[0], e.ConfirmLead(ctx, args[0], by, why)
				}
			}),
			decisionCommand("dismiss", "Dismiss a lead.", "vigil leads dismiss KEY --why TEXT", `
Example:
  vigil leads dismiss btih:0a1b.../readme.txt --why "text file"
`, 1, func(fs *flag.FlagSet) decision {
				return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
					return "lead:" + args[0], e.DismissLead(ctx, args[0], by, why)
				}
			}),
		},
	}
}

func leadsListCommand() *command {
	return &command{
		name:    "list",
		summary: "List leads, most seen first.",
		usage:   "vigil leads list [--state open|confirmed|dismissed] [--json]",
		help: `
A lead is an unwatched file for a human to review, never a match: another
file of a watched torrent (FOUND BY torrent, with the endpoints that served
it), or a file an analyst's keyword search returned ('vigil sensor ed2k
--keywords': FOUND BY suspect: keyword search, at no endpoint; --json gives the
keywords and the source count the network claimed). SEEN counts the
sightings with watched items (in torrents, at ENDPOINTS); SEARCH RESULTS
the keyword search results that named the file, which name no one. Confirming one puts
its hash on the local-confirmed list, so that the sensors watch it from
their next start.

Example:
  vigil leads list --state open
`,
		setup: func(fs *flag.FlagSet) runFunc {
			state := fs.String("state", "", "only leads in this state")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				leads, total, err := sq.Leads(ctx, analysis.LeadQuery{State: *state, Limit: 1000})
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionSearch, "leads", map[string]any{"state": *state, "shown": len(leads)}); err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, leads)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tPATH\tSIZE\tSEEN\tENDPOINTS\tSEARCH RESULTS\tFOUND BY\tSTATE\t")
				for _, l := range leads {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", inert(l.Key), inert(l.Path), l.Size, l.Count, l.Endpoints, l.Searched, leadOrigin(l), l.State)
				}
				_ = tw.Flush()
				fmt.Fprintf(a.stdout, "%d leads\n", total)
				return nil
			}
		},
	}
}

// inert is s as a terminal shows it harmlessly: a file name comes from
// a torrent's metadata or a server's search result, i.e. from anyone,
// and one with a line break, a tab, an escape or a bidirectional control
// would forge rows or drive the analyst's terminal. Such a name is shown
// quoted, its controls escaped (Go syntax); any other as it is.
func inert(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// leadOrigin says how a lead was found: in watched torrents, by keyword
// searches (a suspect lead, with the networks that returned it), or both.
func leadOrigin(l analysis.Lead) string {
	var parts []string
	if len(l.Torrents) > 0 {
		parts = append(parts, "torrent")
	}
	if len(l.Keywords) > 0 {
		parts = append(parts, "suspect: keyword search ("+strings.Join(l.Networks, ",")+")")
	}
	return strings.Join(parts, ", ")
}

func quarantineCommand() *command {
	// hashArg reads a hash as 'quarantine list' prints it (kind:hex) or in
	// any customary form.
	hashArg := func(s string) (hashkind.Hash, error) {
		hint := hashkind.Unknown
		if k, rest, ok := strings.Cut(s, ":"); ok {
			if kind, err := hashkind.ParseKind(k); err == nil {
				hint, s = kind, rest
			}
		}
		h, err := hashkind.Parse(s, hint)
		if err != nil {
			return h, usagef("hash: %v", err)
		}
		return h, nil
	}
	return &command{
		name:    "quarantine",
		summary: "Review hashes held because they suddenly matched far more peers than before.",
		usage:   "vigil quarantine list|release|disable",
		help: `
A listed hash that suddenly matches far more peers than its history (a
common benign file put on a list by mistake) is held: it stops scoring and
an alert is raised. An analyst releases it (back to scoring) or disables it
(its entries are disabled on every list, with the reason).
`,
		subs: []*command{
			{name: "list", summary: "List held hashes.", usage: "vigil quarantine list", help: "\nExample:\n  vigil quarantine list\n",
				setup: func(fs *flag.FlagSet) runFunc {
					return func(ctx context.Context, a *app, args []string) error {
						sq, err := a.targetsStore(ctx, true)
						if err != nil {
							return err
						}
						qs, err := sq.Quarantined(ctx)
						if err != nil {
							return err
						}
						return writeIndentedJSON(a.stdout, qs)
					}
				}},
			decisionCommand("release", "Return a held hash to scoring.", "vigil quarantine release HASH --why TEXT", `
Example:
  vigil quarantine release sha1:0123... --why "checked: rare file, burst was a real swarm"
`, 1, func(fs *flag.FlagSet) decision {
				return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
					h, err := hashArg(args[0])
					if err != nil {
						return "", err
					}
					return analysis.HashKey(h), e.Release(ctx, h, by, why)
				}
			}),
			decisionCommand("disable", "Confirm a held hash is benign: disable its list entries.", "vigil quarantine disable HASH --why TEXT", `
Example:
  vigil quarantine disable sha1:0123... --why "a popular installer, listed by mistake"
`, 1, func(fs *flag.FlagSet) decision {
				return func(ctx context.Context, _ backend, e *analysis.Engine, by, why string, args []string) (string, error) {
					h, err := hashArg(args[0])
					if err != nil {
						return "", err
					}
					return analysis.HashKey(h), e.Disable(ctx, h, by, why)
				}
			}),
		},
	}
}
