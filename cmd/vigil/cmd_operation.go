package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Operations from the command line. The command line is the operator of
// the store and acts as the national office; --as makes it act as one
// local service: that service may read its own row of a board, and may
// neither create nor share out an operation (refused, and audited).

func operationCommand() *command {
	return &command{
		name:    "operation",
		summary: "National operations: select targets by criteria, share them out to services, follow the board.",
		usage:   "vigil operation create|assign|show|list",
		help: `
A national analyst selects targets by criteria ('operation create': the
same filters as the target list, plus volume and the analysts' flags),
shares them out to services ('operation assign': by the routing of each
target, or one target to one service) and follows the board ('operation
show': per service, how many targets, at which case step, with what
outcomes). An operation keeps its criteria as given and what they selected
when it was made (each target's score and level then).

Assigning never takes a target away from a service that holds its claim
('vigil claim'): such a target is reported as "held by" that service and
left. A target is assigned to one service per operation: of two assigning
it at once, one wins and the other is told which service has it.

Only the national office creates and assigns operations: with --as ID
(acting as the local service ID) both are refused and audited. A local service
sees only its own row of a board, and nothing of an operation that gave it
no target. Every command is audited before it prints.

Examples:
  vigil operation create --name "Aurore" --min-score 40 --category 1 --known-offender --limit 200
  vigil operation assign --operation 1 --by-jurisdiction
  vigil operation assign --operation 1 --target T-000042-69 --agency fr-srpj-lyon
  vigil operation show --operation 1
  vigil operation show --operation 1 --as fr-srpj-lyon --json
  vigil operation list
`,
		subs: []*command{operationCreateCommand(), operationAssignCommand(), operationShowCommand(), operationListCommand()},
	}
}

func operationsOf(sq backend) *casework.Operations {
	return &casework.Operations{Store: sq, Claims: claimsOf(sq), Access: sq.TargetAgencies}
}

// criteriaQuery is the target list's query for an operation's criteria:
// the operation selects with the list's own filters (rowcodec.TargetFilters),
// the highest scores first.
func criteriaQuery(c casework.Criteria) (analysis.TargetQuery, error) {
	q := analysis.TargetQuery{Scope: analysis.AllAgencies, Jurisdiction: c.Jurisdiction, Network: c.Network, MinScore: c.MinScore,
		Category: c.Category, MinFiles: c.MinFiles, Sort: "score", Limit: c.Limit}
	if c.MinLevel != "" {
		l, err := observe.ParseLevel(c.MinLevel)
		if err != nil {
			return q, usagef("--level %q: %v", c.MinLevel, err)
		}
		q.MinLevel = l
	}
	if c.KnownOffender {
		q.Flags = append(q.Flags, analysis.FlagKnownOffender)
	}
	if c.AccessToChildren {
		q.Flags = append(q.Flags, analysis.FlagChildAccess)
	}
	return q, nil
}

// refuseLocal refuses, on record, what only the national office does to
// a command acting as the local service agency.
func (a *app) refuseLocal(ctx context.Context, sq backend, object, agency, what string) error {
	if err := a.auditCLI(ctx, sq, audit.ActionDenied, object, map[string]any{"operation": what, "agency": agency}); err != nil {
		return err
	}
	return fmt.Errorf("--agency %s: %w", agency, casework.ErrNotNational)
}

func operationCreateCommand() *command {
	return &command{
		name:    "create",
		summary: "Select targets by criteria into a new operation (national office only).",
		usage: "vigil operation create --name NAME [--min-score N] [--category C] [--min-files N] [--known-offender]\n" +
			"    [--access-to-children] [--jurisdiction ID] [--network NET] [--level LEVEL] [--limit N] [--dry-run] [--json]",
		help: `
Selects the live targets matching every criterion given, highest scores
first, with the target list's filters ('vigil targets'; the API's and the
pages'), and keeps them as a new operation: its name, the criteria as
given, who made it and when, and each target with its score and highest
possession level at that moment. --dry-run prints the selection and keeps
nothing. Prints the operation's id, how many targets matched and how many
were kept (at most --limit), then the targets. Audited (the targets
selected are named in the record) before anything is printed.

Criteria: --min-score (score at least), --category (a file of this list
category), --min-files (volume: at least this many distinct watched files,
quarantined ones left out), --known-offender and --access-to-children
(flagged so by an analyst: 'vigil target flag'), --jurisdiction (routed to
this agency), --network (seen on this network), --level (a file at this
possession level or above: announced, acknowledged, partial, complete,
verified).

Examples:
  vigil operation create --name "Aurore" --min-score 40 --category 1 --limit 200
  vigil operation create --name "Enfance" --access-to-children --level complete --dry-run
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var c casework.Criteria
			name := fs.String("name", "", "the operation's `name` (required)")
			fs.Float64Var(&c.MinScore, "min-score", 0, "only targets scoring at least `N`")
			fs.StringVar(&c.Category, "category", "", "only targets with a file of this list `category`")
			fs.IntVar(&c.MinFiles, "min-files", 0, "only targets with at least `N` distinct watched files (volume)")
			fs.BoolVar(&c.KnownOffender, "known-offender", false, "only targets flagged known_offender")
			fs.BoolVar(&c.AccessToChildren, "access-to-children", false, "only targets flagged access_to_children")
			fs.StringVar(&c.Jurisdiction, "jurisdiction", "", "only targets routed to this agency `ID`")
			fs.StringVar(&c.Network, "network", "", "only targets seen on this `network` (bittorrent, ed2k, ...)")
			fs.StringVar(&c.MinLevel, "level", "", "only targets with a file at this possession `level` or above")
			fs.IntVar(&c.Limit, "limit", 100, "keep at most `N` targets (1 to 1000), the highest scores")
			dry := fs.Bool("dry-run", false, "print the selection, keep nothing")
			asJSON := fs.Bool("json", false, "print JSON")
			as := fs.String("as", "", "act as this local service's agency `ID` (refused: only the national office creates)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 {
					return usagef("unexpected arguments %q", args)
				}
				if strings.TrimSpace(*name) == "" {
					return usagef("--name is required")
				}
				if c.Limit < 1 || c.Limit > 1000 {
					return usagef("--limit %d: want 1 to 1000", c.Limit)
				}
				if c.MinScore < 0 || c.MinFiles < 0 {
					return usagef("--min-score %g, --min-files %d: want 0 or more", c.MinScore, c.MinFiles)
				}
				q, err := criteriaQuery(c)
				if err != nil {
					return err
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				if *as != "" {
					return a.refuseLocal(ctx, sq, "operations", *as, "create")
				}
				list, total, err := sq.Targets(ctx, q)
				if err != nil {
					return err
				}
				op := casework.Operation{Name: *name, Criteria: c}
				ids := make([]string, 0, len(list))
				for _, t := range list {
					ids = append(ids, t.ID)
					op.Targets = append(op.Targets, casework.OperationTarget{Target: t.ID, Score: t.Score, Level: t.MaxLevel.String()})
				}
				if err := a.auditCLI(ctx, sq, audit.ActionListTargets, "operations", map[string]any{"operation": "create", "name": *name,
					"criteria": c, "dry_run": *dry, "matching": total, "targets": ids}); err != nil {
					return err
				}
				if !*dry {
					if op, err = operationsOf(sq).Create(ctx, op, a.cliActor().Name); err != nil {
						return err
					}
				} else {
					op.By = a.cliActor().Name
				}
				if *asJSON {
					if op.Targets == nil {
						op.Targets = []casework.OperationTarget{}
					}
					return writeIndentedJSON(a.stdout, struct {
						casework.Operation
						Matching int  `json:"matching"`
						DryRun   bool `json:"dry_run,omitempty"`
					}{op, total, *dry})
				}
				printSelection(a.stdout, op, list, total, *dry)
				return nil
			}
		},
	}
}

func printSelection(w io.Writer, op casework.Operation, list []analysis.TargetSummary, total int, dry bool) {
	if dry {
		fmt.Fprintf(w, "dry run, nothing kept: %q would select %d of %d matching targets\n", op.Name, len(list), total)
	} else {
		fmt.Fprintf(w, "operation %d %q: %d of %d matching targets selected\n", op.ID, op.Name, len(list), total)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tSCORE\tLEVEL\tFILES\tJURISDICTION\tFLAGS\t")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%d\t%s\t%s\t\n", t.ID, t.Score, t.MaxLevel, t.Files, orDash(t.Jurisdiction), orDash(strings.Join(t.Flags, ",")))
	}
	_ = tw.Flush()
}

func operationID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(s), "OP-"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("--operation %q: want an operation id such as 3 ('vigil operation list')", s)
	}
	return id, nil
}

func operationAssignCommand() *command {
	return &command{
		name:    "assign",
		summary: "Share an operation's targets out to services (national office only).",
		usage:   "vigil operation assign --operation ID (--by-jurisdiction | --target ID --agency ID) [--json]",
		help: `
--by-jurisdiction gives each target of the operation not yet assigned to
the service in charge of it now (the agency it was handed off to, else the
agency its observations are routed to); an unrouted target is left.
--target ID --agency ID gives one target to one service. Each assignment
shares the target with that service ('vigil target share': it sees the
target beside the agency it is routed to) and is kept in the operation.

Nothing takes a target away from a service that holds its claim: a target
another service holds is reported "held by" it and left (assign it to that
service, or agree with it: 'vigil claim handoff'). A target already
assigned in the operation stays with its service; of two assigning one
target at once, one wins and the other is told which service has it.
Audited before anything is changed.

Examples:
  vigil operation assign --operation 1 --by-jurisdiction
  vigil operation assign --operation 1 --target T-000042-69 --agency fr-srpj-lyon
`,
		setup: func(fs *flag.FlagSet) runFunc {
			opFlag := fs.String("operation", "", "the operation's `ID`")
			byJur := fs.Bool("by-jurisdiction", false, "assign each target to the service in charge of it")
			target := fs.String("target", "", "assign only this target `ID`")
			agency := fs.String("agency", "", "to this service's agency `ID` (with --target)")
			asJSON := fs.Bool("json", false, "print JSON")
			as := fs.String("as", "", "act as this local service's agency `ID` (refused: only the national office assigns)")
			return func(ctx context.Context, a *app, args []string) error {
				if len(args) > 0 || *opFlag == "" || *byJur == (*target != "") || (*target == "") != (*agency == "") {
					return usagef("want --operation ID and one of --by-jurisdiction and --target ID --agency ID")
				}
				id, err := operationID(*opFlag)
				if err != nil {
					return err
				}
				sq, err := a.targetsStore(ctx, true)
				if err != nil {
					return err
				}
				obj := "operation:" + strconv.FormatInt(id, 10)
				if *as != "" {
					return a.refuseLocal(ctx, sq, obj, *as, "assign")
				}
				op, err := sq.Operation(ctx, id)
				if err != nil {
					return err
				}
				if *agency != "" {
					if _, err := sq.Agency(ctx, *agency); err != nil {
						return fmt.Errorf("--agency %s: %w ('vigil agency list' lists them)", *agency, err)
					}
				}
				ids := make([]string, 0, len(op.Targets))
				for _, t := range op.Targets {
					ids = append(ids, t.Target)
				}
				if err := a.auditCLI(ctx, sq, audit.ActionChange, obj, map[string]any{"assign": map[bool]string{true: "by_jurisdiction", false: "target"}[*byJur],
					"target": *target, "agency": *agency, "targets": ids}); err != nil {
					return err
				}
				res, err := assignOperation(ctx, a, sq, op, *target, *agency)
				if *asJSON && len(res) > 0 {
					if jerr := writeIndentedJSON(a.stdout, res); jerr != nil && err == nil {
						err = jerr
					}
				} else {
					for _, r := range res {
						fmt.Fprintln(a.stdout, r)
					}
				}
				return err
			}
		},
	}
}

// assignOperation assigns op's targets (only target, to agency, when
// given; else each unassigned one to the service in charge of it) and
// shares each one assigned with its service, through the analysis.
func assignOperation(ctx context.Context, a *app, sq backend, op *casework.Operation, target, agency string) ([]casework.Assignment, error) {
	e, err := startAnalysis(ctx, a.log, sq, nil)
	if err != nil {
		return nil, err
	}
	ops, by := operationsOf(sq), a.cliActor().Name
	why := fmt.Sprintf("operation %d %q", op.ID, op.Name)
	var out []casework.Assignment
	found := false
	for _, ot := range op.Targets {
		if target != "" && ot.Target != target {
			continue
		}
		found = true
		if target == "" && ot.Agency != "" {
			continue
		}
		d, err := sq.Target(ctx, ot.Target, analysis.AllAgencies)
		if errors.Is(err, analysis.ErrNotFound) {
			out = append(out, casework.Assignment{Target: ot.Target, Agency: agency, Result: casework.Gone})
			continue
		}
		if err != nil {
			return out, fmt.Errorf("target %s: %w", ot.Target, err)
		}
		to := agency
		if to == "" {
			if to = d.Assigned; to == "" {
				to = d.Jurisdiction
			}
			if to == "" {
				out = append(out, casework.Assignment{Target: ot.Target, Result: casework.Unrouted})
				continue
			}
		}
		res, err := ops.Assign(ctx, op.ID, ot.Target, to, by)
		if err != nil {
			return out, err
		}
		if res.Result == casework.Assigned || res.Result == casework.AlreadyAssigned {
			if err := shareWith(ctx, e, d, to, by, why); err != nil {
				return out, err
			}
		}
		out = append(out, res)
	}
	if target != "" && !found {
		return out, fmt.Errorf("--target %s, operation %d: %w", target, op.ID, casework.ErrNotInOperation)
	}
	return out, e.Flush(ctx)
}

// shareWith shares d with agency unless the agency sees it already (it is
// routed or handed to it, or shared with it).
func shareWith(ctx context.Context, e *analysis.Engine, d *analysis.TargetDetail, agency, by, why string) error {
	if d.Jurisdiction == agency || d.Assigned == agency || slices.ContainsFunc(d.Shares, func(s analysis.Share) bool { return s.Agency == agency }) {
		return nil
	}
	return e.Share(ctx, d.ID, agency, true, by, why)
}
