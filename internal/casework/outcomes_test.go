package casework_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/casework"
)

// steps makes n synthetic latest case steps over a few services, a third
// closed with one or two outcomes.
func steps(r *rand.Rand, n int) []casework.Step {
	var out []casework.Step
	for i := range n {
		s := casework.Step{Target: fmt.Sprintf("T-%04d", i), Agency: []string{"fr-lyon", "fr-lille", "fr-marseille", "fr-rennes"}[r.IntN(4)],
			Step: casework.Steps[r.IntN(len(casework.Steps)-1)]}
		if r.IntN(3) == 0 {
			s.Step = casework.StepClosed
			s.Outcomes = []string{casework.Outcomes[r.IntN(len(casework.Outcomes))]}
			if o := casework.Outcomes[r.IntN(len(casework.Outcomes))]; o != s.Outcomes[0] {
				s.Outcomes = append(s.Outcomes, o)
			}
		}
		out = append(out, s)
	}
	return out
}

func val(v *int64) int64 {
	if v == nil {
		return -1
	}
	return *v
}

// Per service, every figure is what a count made here gives, and the rows
// add up to the total.
func TestOutcomesPerServiceAreCounted(t *testing.T) {
	latest := steps(rand.New(rand.NewPCG(15, 5)), 300)
	rep, err := casework.CountOutcomes(casework.ByService, 0, latest, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rep.Rows {
		var cases, closed int64
		outs := map[string]int64{}
		for _, s := range latest {
			if s.Agency != row.Group {
				continue
			}
			cases++
			if s.Step == casework.StepClosed {
				closed++
			}
			for _, o := range s.Outcomes {
				outs[o]++
			}
		}
		if val(row.Cases) != cases || val(row.Closed) != closed {
			t.Fatalf("%s: %d cases %d closed, counted %d and %d", row.Group, val(row.Cases), val(row.Closed), cases, closed)
		}
		for _, o := range casework.Outcomes {
			if val(row.Outcomes[o]) != outs[o] {
				t.Fatalf("%s %s: %d, counted %d", row.Group, o, val(row.Outcomes[o]), outs[o])
			}
		}
	}
	if len(rep.Rows) != 4 || val(rep.Total.Cases) != 300 || rep.SuppressedCells != 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := casework.CountOutcomes("week", 0, latest, nil); !errors.Is(err, casework.ErrOutcomeQuery) {
		t.Fatalf("group week: %v", err)
	}
}

// With a minimum cell, no figure below it is published, and no figure left
// out can be got back as the total minus the other groups: in every
// column, none or at least two groups' figures are left out.
func TestOutcomesBelowTheMinimumCellAreSuppressed(t *testing.T) {
	latest := steps(rand.New(rand.NewPCG(15, 6)), 60)
	// fr-brest has a single case: every figure of its row is below 3.
	latest = append(latest, casework.Step{Target: "T-R", Agency: "fr-brest", Step: casework.StepLead})
	rep, err := casework.CountOutcomes(casework.ByService, 3, latest, nil)
	if err != nil {
		t.Fatal(err)
	}
	hidden := 0
	for _, col := range casework.OutcomeColumns() {
		n := 0
		for _, r := range append(slices.Clone(rep.Rows), rep.Total) {
			v := r.Cases
			switch col {
			case "cases":
			case "closed":
				v = r.Closed
			default:
				v = r.Outcomes[col]
			}
			if v != nil && *v < 3 {
				t.Fatalf("%s %s: %d published below the minimum cell", r.Group, col, *v)
			}
			if v == nil {
				hidden++
				if !slices.Contains(r.Suppressed, col) {
					t.Fatalf("%s: %s left out but not named in %v", r.Group, col, r.Suppressed)
				}
				if r.Group != "" {
					n++
				}
			}
		}
		if n == 1 {
			t.Fatalf("column %s: one group's figure left out alone (the total minus the others gives it back)", col)
		}
	}
	if brest := rep.Rows[slices.IndexFunc(rep.Rows, func(r casework.OutcomeRow) bool { return r.Group == "fr-brest" })]; brest.Cases != nil {
		t.Fatalf("fr-brest's single case published: %+v", brest)
	}
	if hidden == 0 || hidden != rep.SuppressedCells {
		t.Fatalf("%d figures left out, report says %d", hidden, rep.SuppressedCells)
	}
}

// Per operation, a target counts under each operation that selected it,
// and once in the total; a target in no operation is not counted.
func TestOutcomesPerOperation(t *testing.T) {
	latest := []casework.Step{
		{Target: "T-1", Agency: "fr-lyon", Step: casework.StepClosed, Outcomes: []string{"arrest"}},
		{Target: "T-2", Agency: "fr-lyon", Step: casework.StepLead},
		{Target: "T-3", Agency: "fr-lille", Step: casework.StepSearch},
	}
	ops := []casework.Operation{
		{ID: 1, Name: "Aurore", Targets: []casework.OperationTarget{{Target: "T-1"}, {Target: "T-2"}, {Target: "T-9"}}},
		{ID: 2, Name: "Borée", Targets: []casework.OperationTarget{{Target: "T-1"}}},
	}
	rep, err := casework.CountOutcomes(casework.ByOperation, 0, latest, ops)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 || rep.Rows[0].Group != "1 Aurore" || val(rep.Rows[0].Cases) != 2 || val(rep.Rows[0].Outcomes["arrest"]) != 1 ||
		rep.Rows[1].Group != "2 Borée" || val(rep.Rows[1].Cases) != 1 || val(rep.Total.Cases) != 2 || val(rep.Total.Outcomes["arrest"]) != 1 {
		t.Fatalf("report %+v", rep)
	}
}
