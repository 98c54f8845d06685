package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
)

func caseCommand() *command {
	return &command{
		name:    "case",
		summary: "A target's case progress: lead, ISP request sent, subscriber identified, search, closed.",
		usage:   "vigil case step|show|subscriber",
		help: `
Only the agency holding the target ('vigil claim') moves its case, forward
(the same step again adds a note), and closes it with its outcomes. The
subscriber an ISP named is shown only to the national office and to the
agency holding the target when that agency entered it or was handed the
target by the one that did; an agency that claims a target after a lapse
or a release is told who identified the subscriber and asks them. The
command line acts as the operator of the store says (--agency,
--national): who may run it may read the store anyway; the pages and the
API authorise each user. Every step, entry and read is audited, a refused
read too.

Examples:
  vigil case step --target T-000042-69 --agency fr-srpj-lyon --step isp_request_sent --note "PV 2026/0042"
  vigil case show --target T-000042-69
`,
		subs: []*command{caseStepCommand(), caseShowCommand(), caseSubscriberCommand()},
	}
}

func casesOf(sq backend) *casework.Cases {
	return &casework.Cases{Claims: claimsOf(sq), Store: sq}
}

func caseStepCommand() *command {
	return &command{
		name:    "step",
		summary: "Record a step of a target's case.",
		usage:   "vigil case step --target ID --agency ID --step STEP [--outcome O]... [--note TEXT]",
		help: `
Steps: ` + strings.Join(casework.Steps, ", ") + `. Closing needs at least
one outcome: ` + strings.Join(casework.Outcomes, ", ") + `.

Example:
  vigil case step --target T-000042-69 --agency fr-srpj-lyon --step closed --outcome arrest --outcome devices_seized --note "PV 2026/0042"
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID`")
			agency := fs.String("agency", "", "the agency `ID` holding the target")
			step := fs.String("step", "", "the `step` reached")
			note := fs.String("note", "", "a note")
			var outcomes listFlag
			fs.Var(&outcomes, "outcome", "an `outcome` of a closed case (repeatable)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" || *agency == "" || *step == "" {
					return usagef("want --target ID, --agency ID and --step STEP")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionChange, "target:"+id, map[string]any{"case_step": *step, "agency": *agency, "outcomes": outcomes}); err != nil {
					return err
				}
				s, err := casesOf(sq).Advance(ctx, id, *agency, a.cliActor().Name, *step, *note, outcomes)
				if errors.Is(err, casework.ErrStep) {
					return usagef("%v", err)
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: %s by %s\n", id, s.Step, s.Agency)
				return nil
			}
		},
	}
}

func caseShowCommand() *command {
	return &command{
		name:    "show",
		summary: "Show a target's case steps.",
		usage:   "vigil case show --target ID",
		help: `
Lists the steps with who, when, notes and outcomes (not the subscriber:
'vigil case subscriber'). Audited.

Example:
  vigil case show --target T-000042-69
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID`")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" {
					return usagef("want --target ID")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				if err := a.auditCLI(ctx, sq, audit.ActionViewTarget, "target:"+id, map[string]any{"case": true}); err != nil {
					return err
				}
				steps, err := sq.CaseSteps(ctx, id)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STEP\tAT\tAGENCY\tBY\tOUTCOMES\tNOTE\t")
				for _, s := range steps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Step, s.At.Format("2006-01-02 15:04"), s.Agency, s.By, strings.Join(s.Outcomes, ","), s.Note)
				}
				return tw.Flush()
			}
		},
	}
}

func caseSubscriberCommand() *command {
	return &command{
		name:    "subscriber",
		summary: "Enter or read the subscriber an ISP named (the holding agency and the national office only).",
		usage:   "vigil case subscriber --target ID (--agency ID | --national) [--set TEXT]",
		help: `
With --set, the agency holding the target records the subscriber. Without,
prints it to the national office (--national) or to the agency holding
the target (--agency) if it entered the subscriber or was handed the
target by the agency that did (an agency that claimed the target after a
lapse or a release is refused and told whom to ask); any other agency is
refused. The read, or its refusal,
is audited before anything is printed.

Examples:
  vigil case subscriber --target T-000042-69 --agency fr-srpj-lyon --set "name, address, contract"
  vigil case subscriber --target T-000042-69 --national
`,
		setup: func(fs *flag.FlagSet) runFunc {
			target := fs.String("target", "", "the target's `ID`")
			agency := fs.String("agency", "", "the reading or entering agency's `ID`")
			national := fs.Bool("national", false, "read as the national office")
			set := fs.String("set", "", "record these subscriber `details`")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *target == "" || (*agency == "") == !*national || (*set != "" && *national) {
					return usagef("want --target ID and one of --agency ID and --national (--set with --agency only)")
				}
				sq, id, err := a.claimTarget(ctx, *target)
				if err != nil {
					return err
				}
				cases := casesOf(sq)
				if *set != "" {
					if err := a.auditCLI(ctx, sq, audit.ActionChange, "target:"+id, map[string]any{"subscriber": "set", "agency": *agency}); err != nil {
						return err
					}
					if err := cases.SetSubscriber(ctx, id, *agency, a.cliActor().Name, *set); err != nil {
						return err
					}
					fmt.Fprintf(a.stdout, "%s: subscriber recorded\n", id)
					return nil
				}
				// Decided, then recorded, then read: nothing of the subscriber
				// is read before its audit record is written.
				action, detail := audit.ActionViewTarget, map[string]any{"subscriber": "read", "agency": *agency, "national": *national}
				refused := cases.MayReadSubscriber(ctx, id, *agency, *national)
				if refused != nil && !errors.Is(refused, casework.ErrDenied) {
					return refused
				}
				if refused != nil {
					action = audit.ActionDenied
				}
				if err := a.auditCLI(ctx, sq, action, "target:"+id, detail); err != nil {
					return err
				}
				if refused != nil {
					return refused
				}
				sub, err := cases.Subscriber(ctx, id, *agency, *national)
				if err != nil {
					return err
				}
				if sub == nil {
					fmt.Fprintf(a.stdout, "%s: no subscriber recorded\n", id)
					return nil
				}
				fmt.Fprintf(a.stdout, "%s: %s (entered by %s of %s, %s)\n", id, sub.Details, sub.By, sub.Agency, sub.At.Format("2006-01-02"))
				return nil
			}
		},
	}
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
