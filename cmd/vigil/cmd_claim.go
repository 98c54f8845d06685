package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

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
after 30 days without activity (a renewal is activity): 'vigil target show'
says "lapsing" in its last 7 days; then any agency may claim the target.
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
		subs: []*command{claimReleaseCommand()},
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
				cl, err := sq.ClaimOf(ctx, id)
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

// claimsOf is the claims service over the store, with the default lapse.
func claimsOf(sq backend) *casework.Claims {
	return &casework.Claims{Store: sq, Config: casework.DefaultConfig()}
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
