package casework

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
)

// Case outcomes in figures ('vigil stats --outcomes'): per service or per
// operation, how many targets have a case, how many of those are closed,
// and how many closed cases recorded each outcome; every figure below a
// minimum cell left out (k-anonymity, for publication), as the
// observation figures leave theirs (internal/figures).

// Outcome groupings.
const (
	ByService   = "service"
	ByOperation = "operation"
)

// ErrOutcomeQuery: an outcome query that cannot be answered.
var ErrOutcomeQuery = errors.New("casework: bad outcome query")

// OutcomeRow is one group's figures; a nil figure is suppressed.
type OutcomeRow struct {
	Group      string            `json:"group"`
	Cases      *int64            `json:"cases"`  // targets with at least one case step
	Closed     *int64            `json:"closed"` // of them, closed
	Outcomes   map[string]*int64 `json:"outcomes"`
	Suppressed []string          `json:"suppressed,omitempty"` // the figures left out
}

// OutcomeReport is the figures of every case.
type OutcomeReport struct {
	Group           string       `json:"group"`
	Rows            []OutcomeRow `json:"rows"`
	Total           OutcomeRow   `json:"total"`
	MinCell         int          `json:"min_cell,omitempty"`
	SuppressedCells int          `json:"suppressed_cells"`
	Note            string       `json:"note"`
}

// OutcomeColumns are a row's figures in order: cases, closed, then each
// outcome.
func OutcomeColumns() []string { return append([]string{"cases", "closed"}, Outcomes...) }

type outcomeCounts map[string]int64

func (c outcomeCounts) add(s Step) {
	c["cases"]++
	if s.Step == StepClosed {
		c["closed"]++
	}
	for _, o := range s.Outcomes {
		c[o]++
	}
}

// CountOutcomes makes the report from every target's latest case step
// (latest) and, grouped by operation, the operations with their targets.
// A target counts under the service that recorded its latest step; under
// every operation that selected it (the operations' rows may then add up
// to more than the total, which counts each target once).
func CountOutcomes(group string, minCell int, latest []Step, ops []Operation) (*OutcomeReport, error) {
	if minCell < 0 {
		return nil, fmt.Errorf("%w: min-cell %d is negative", ErrOutcomeQuery, minCell)
	}
	rep := &OutcomeReport{Group: group, MinCell: minCell, Note: "every target with a case is counted by its latest step"}
	groups := map[string]outcomeCounts{}
	total := outcomeCounts{}
	count := func(g string, s Step) {
		if groups[g] == nil {
			groups[g] = outcomeCounts{}
		}
		groups[g].add(s)
	}
	switch group {
	case ByService:
		for _, s := range latest {
			count(s.Agency, s)
			total.add(s)
		}
		rep.Note += ", once, under the service that recorded that step"
	case ByOperation:
		byTarget := map[string]Step{}
		for _, s := range latest {
			byTarget[s.Target] = s
		}
		inOp := map[string]bool{}
		for _, op := range ops {
			for _, t := range op.Targets {
				if s, ok := byTarget[t.Target]; ok {
					count(strconv.FormatInt(op.ID, 10)+" "+op.Name, s)
					if !inOp[t.Target] {
						inOp[t.Target] = true
						total.add(s)
					}
				}
			}
		}
		rep.Note += ", under every operation that selected it (a target in several operations counts in each; the total counts it once)"
	default:
		return nil, fmt.Errorf("%w: group %q: want service or operation", ErrOutcomeQuery, group)
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	hidden := hiddenOutcomes(minCell, names, groups)
	for _, g := range names {
		rep.Rows = append(rep.Rows, outcomeRow(g, groups[g], hidden[g], rep))
	}
	rep.Total = outcomeRow("", total, nil, rep)
	if minCell > 1 {
		rep.Note += fmt.Sprintf("; every figure below %d is suppressed (k-anonymity); where that would leave a single group's figure out, "+
			"the other group's with the fewest cases is left out too, so that no figure left out is the total minus the others", minCell)
	}
	return rep, nil
}

// hiddenOutcomes says which figures of each group are left out: those
// below min and, in each column where that leaves a single group's figure
// out, the other group's with the fewest cases too (the groups add up to
// the total).
func hiddenOutcomes(min int, names []string, groups map[string]outcomeCounts) map[string]map[string]bool {
	hidden := map[string]map[string]bool{}
	if min <= 1 {
		return hidden
	}
	for _, g := range names {
		hidden[g] = map[string]bool{}
		for _, col := range OutcomeColumns() {
			hidden[g][col] = groups[g][col] < int64(min)
		}
	}
	for _, col := range OutcomeColumns() {
		n, smallest := 0, ""
		for _, g := range names {
			if hidden[g][col] {
				n++
			} else if smallest == "" || cmp.Less(groups[g]["cases"], groups[smallest]["cases"]) {
				smallest = g
			}
		}
		if n == 1 && smallest != "" {
			hidden[smallest][col] = true
		}
	}
	return hidden
}

func outcomeRow(g string, c outcomeCounts, hidden map[string]bool, rep *OutcomeReport) OutcomeRow {
	r := OutcomeRow{Group: g, Outcomes: map[string]*int64{}}
	for _, col := range OutcomeColumns() {
		var v *int64
		if n := c[col]; !hidden[col] && (rep.MinCell <= 1 || n >= int64(rep.MinCell)) {
			v = &n
		} else {
			r.Suppressed = append(r.Suppressed, col)
			rep.SuppressedCells++
		}
		switch col {
		case "cases":
			r.Cases = v
		case "closed":
			r.Closed = v
		default:
			r.Outcomes[col] = v
		}
	}
	return r
}

// OutcomeStore reads what the outcome figures count.
type OutcomeStore interface {
	// LatestCaseSteps returns every target's latest case step, by target.
	LatestCaseSteps(ctx context.Context) ([]Step, error)
}
