package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
)

// operationScope is whom a command reads an operation for: the national
// office, or the local service as.
func operationScope(as string) agency.Scope {
	if as == "" {
		return analysis.AllAgencies
	}
	return agency.Scope{Agencies: []string{as}}
}

// caseStepsOf reads a target's case steps under the id it is in now (a
// target merged since the operation was made is followed).
func caseStepsOf(sq backend) func(ctx context.Context, target string) ([]casework.Step, error) {
	return func(ctx context.Context, target string) ([]casework.Step, error) {
		if t, err := sq.Target(ctx, target, analysis.AllAgencies); err == nil {
			target = t.ID
		}
		return sq.CaseSteps(ctx, target)
	}
}

// readBoard reads operation id's board for scope and writes its audit
// record first: the targets it names, or the refusal of a service the
// operation gave nothing (then the board is not found, as an operation
// that does not exist).
func (a *app) readBoard(ctx context.Context, sq backend, id int64, as string) (*casework.Board, error) {
	obj := "operation:" + strconv.FormatInt(id, 10)
	b, err := operationsOf(sq).Board(ctx, id, operationScope(as), caseStepsOf(sq))
	if errors.Is(err, casework.ErrNoOperation) {
		if aerr := a.auditCLI(ctx, sq, audit.ActionDenied, obj, map[string]any{"board": true, "as": as}); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(b.Operation.Targets))
	for _, t := range b.Operation.Targets {
		ids = append(ids, t.Target)
	}
	if err := a.auditCLI(ctx, sq, audit.ActionListTargets, obj, map[string]any{"board": true, "as": as, "targets": ids}); err != nil {
		return nil, err
	}
	return b, nil
}

func operationShowCommand() *command {
	return &command{
		name:    "show",
		summary: "An operation's board: per service, its targets, their case steps and outcomes, and the totals.",
		usage:   "vigil operation show --operation ID [--as ID] [--targets] [--json]",
		help: `
One row per service: how many of the operation's targets it was assigned,
how many of them are at each case step ('vigil case': none yet, lead,
isp_request_sent, subscriber_identified, search, closed) and the outcomes
of those closed (arrest, devices_seized, hands_on_abuse,
victims_identified, no_further_action: a case may record several); a row
for the targets not assigned yet; and the operation's totals. --targets
lists the targets too, with their score and level when the operation was
made and their service.

With --as ID (acting as that local service) only its own row is shown, and
its targets as the totals, of those only the ones it may see now (one
handed off or unshared since it was assigned is left out); an operation
that gave it no target it may see now is not found, as one that does not
exist. Audited (the targets shown are named,
a refusal recorded) before anything is printed.

Examples:
  vigil operation show --operation 1
  vigil operation show --operation 1 --as fr-srpj-lyon --json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			opFlag := fs.String("operation", "", "the operation's `ID`")
			as := fs.String("as", "", "read as this local service's agency `ID` (its own row only)")
			withTargets := fs.Bool("targets", false, "list the targets too")
			asJSON := fs.Bool("json", false, "print JSON (the board, its targets included)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *opFlag == "" {
					return usagef("want --operation ID")
				}
				id, err := operationID(*opFlag)
				if err != nil {
					return err
				}
				sq, err := a.targetsStore(ctx, false)
				if err != nil {
					return err
				}
				b, err := a.readBoard(ctx, sq, id, *as)
				if err != nil {
					return err
				}
				if *asJSON {
					if b.Operation.Targets == nil {
						b.Operation.Targets = []casework.OperationTarget{}
					}
					if b.Rows == nil {
						b.Rows = []casework.BoardRow{}
					}
					return writeIndentedJSON(a.stdout, b)
				}
				printBoard(a.stdout, b, *withTargets)
				return nil
			}
		},
	}
}

// criteriaText says an operation's criteria as given.
func criteriaText(c casework.Criteria) string {
	var parts []string
	add := func(ok bool, s string) {
		if ok {
			parts = append(parts, s)
		}
	}
	add(c.MinScore > 0, fmt.Sprintf("score ≥ %g", c.MinScore))
	add(c.Category != "", "category "+c.Category)
	add(c.MinFiles > 0, fmt.Sprintf("files ≥ %d", c.MinFiles))
	add(c.KnownOffender, "known offender")
	add(c.AccessToChildren, "access to children")
	add(c.Jurisdiction != "", "jurisdiction "+c.Jurisdiction)
	add(c.Network != "", "network "+c.Network)
	add(c.MinLevel != "", "level ≥ "+c.MinLevel)
	add(c.Limit > 0, fmt.Sprintf("at most %d", c.Limit))
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func printBoard(w io.Writer, b *casework.Board, withTargets bool) {
	op := b.Operation
	fmt.Fprintf(w, "Operation %d %q, made by %s on %s UTC\ncriteria: %s\n\n", op.ID, op.Name, op.By, op.At.Format("2006-01-02 15:04"), criteriaText(op.Criteria))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := []string{"SERVICE", "TARGETS", casework.StepNone}
	head = append(head, casework.Steps...)
	head = append(head, casework.Outcomes...)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(head, "\t"))+"\t")
	line := func(name string, r casework.BoardRow) {
		cells := []string{name, strconv.Itoa(r.Targets), strconv.Itoa(r.Steps[casework.StepNone])}
		for _, s := range casework.Steps {
			cells = append(cells, strconv.Itoa(r.Steps[s]))
		}
		for _, o := range casework.Outcomes {
			cells = append(cells, strconv.Itoa(r.Outcomes[o]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	for _, r := range b.Rows {
		line(cmpOr(r.Agency, "(not assigned)"), r)
	}
	line("TOTAL", b.Total)
	_ = tw.Flush()
	if withTargets {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TARGET\tSCORE THEN\tLEVEL THEN\tSERVICE\tASSIGNED\t")
		for _, t := range op.Targets {
			at := "-"
			if !t.AssignedAt.IsZero() {
				at = t.AssignedAt.Format("2006-01-02 15:04") + " by " + t.AssignedBy
			}
			fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t\n", t.Target, t.Score, t.Level, orDash(t.Agency), at)
		}
		_ = tw.Flush()
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func operationListCommand() *command {
	return &command{
		name:    "list",
		summary: "List the operations, newest first.",
		usage:   "vigil operation list [--as ID] [--json]",
		help: `
Every operation with its id, name, who made it and when, and its criteria.
With --as ID (acting as that local service) only the operations that gave
it a target it may still see (as 'operation show --as' shows them). Audited.

Example:
  vigil operation list
`,
		setup: func(fs *flag.FlagSet) runFunc {
			as := fs.String("as", "", "list as this local service's agency `ID`")
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				sq, err := a.targetsStore(ctx, false)
				if err != nil {
					return err
				}
				all, err := sq.Operations(ctx)
				if err != nil {
					return err
				}
				ops := []casework.Operation{}
				for _, op := range all {
					if *as != "" {
						full, err := sq.Operation(ctx, op.ID)
						if err != nil {
							return err
						}
						gave, err := operationsOf(sq).Gave(ctx, full, operationScope(*as))
						if err != nil {
							return err
						}
						if !gave {
							continue
						}
					}
					ops = append(ops, op)
				}
				if err := a.auditCLI(ctx, sq, audit.ActionSearch, "operations", map[string]any{"as": *as, "operations": len(ops)}); err != nil {
					return err
				}
				if *asJSON {
					return writeIndentedJSON(a.stdout, ops)
				}
				for _, op := range ops {
					fmt.Fprintf(a.stdout, "%d\t%s\t%s\t%s\t%s\n", op.ID, op.Name, op.By, op.At.Format("2006-01-02 15:04"), criteriaText(op.Criteria))
				}
				return nil
			}
		},
	}
}
