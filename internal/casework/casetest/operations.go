package casetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/casework"
)

func operations(s Store, c *clock) *casework.Operations {
	return &casework.Operations{Store: s, Claims: service(s, c)}
}

func newOperation(t *testing.T, ops *casework.Operations, name string, targets ...string) casework.Operation {
	t.Helper()
	op := casework.Operation{Name: name, Criteria: casework.Criteria{MinScore: 12.5, Category: "1", KnownOffender: true, Limit: 10}}
	for i, tg := range targets {
		op.Targets = append(op.Targets, casework.OperationTarget{Target: tg, Score: float64(100 - i), Level: "complete"})
	}
	op, err := ops.Create(context.Background(), op, "analyst-ofmin")
	if err != nil || op.ID == 0 {
		t.Fatalf("create %q: %+v %v", name, op, err)
	}
	return op
}

// An operation is read back as it was made, through the other handle:
// its criteria as given, its targets in their order with the score and
// level they had; the list is newest first; an unknown id is not found.
func testOperation(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	ops := operations(a, clk)
	if _, err := ops.Create(ctx, casework.Operation{Name: "  "}, "x"); !errors.Is(err, casework.ErrInput) {
		t.Fatalf("an operation without a name: %v, want ErrInput", err)
	}
	first := newOperation(t, ops, "Aurore", "T-30", "T-10", "T-20")
	clk.Add(time.Hour)
	second := newOperation(t, ops, "Borée", "T-10")
	got, err := b.Operation(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Aurore" || got.By != "analyst-ofmin" || !got.At.Equal(t0) || !reflect.DeepEqual(got.Criteria, first.Criteria) {
		t.Fatalf("operation %+v, want %+v", got, first)
	}
	if !reflect.DeepEqual(got.Targets, first.Targets) {
		t.Fatalf("targets %+v, want %+v (order, score and level kept)", got.Targets, first.Targets)
	}
	list, err := b.Operations(ctx)
	if err != nil || len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID || list[0].Name != "Borée" {
		t.Fatalf("list %+v (%v), want Borée then Aurore", list, err)
	}
	if _, err := b.Operation(ctx, second.ID+100); !errors.Is(err, casework.ErrNoOperation) || !errors.Is(err, agency.ErrNotFound) {
		t.Fatalf("an unknown operation: %v, want ErrNoOperation (not found)", err)
	}
}

// Two national analysts share one target out at the same instant, to two
// services, each through its own handle: one assignment wins, the other
// is told which service has it, and the store keeps the winner's.
func testAssignRace(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	var targets []string
	for i := range 20 {
		targets = append(targets, fmt.Sprintf("T-R%02d", i))
	}
	op := newOperation(t, operations(a, clk), "Race", targets...)
	for _, tg := range targets {
		res := make([]casework.Assignment, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, sv := range []struct {
			s      Store
			agency string
		}{{a, "fr-lyon"}, {b, "fr-lille"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i], errs[i] = operations(sv.s, clk).Assign(ctx, op.ID, tg, sv.agency, "analyst")
			}()
		}
		close(start)
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("%s: %v / %v", tg, errs[0], errs[1])
		}
		won, lost := 0, 1
		if res[0].Result != casework.Assigned {
			won, lost = 1, 0
		}
		if res[won].Result != casework.Assigned || res[lost].Result != casework.AssignedElse || res[lost].Other != res[won].Agency {
			t.Fatalf("%s: %+v and %+v; want one assigned, the other told who has it", tg, res[0], res[1])
		}
	}
	got, err := b.Operation(ctx, op.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ot := range got.Targets {
		if ot.Agency != "fr-lyon" && ot.Agency != "fr-lille" || ot.AssignedBy != "analyst" || !ot.AssignedAt.Equal(t0) {
			t.Fatalf("stored %+v", ot)
		}
	}
}

// A target another service holds is not assigned: it is reported as held
// by that service and the claim stays; the holder itself may be assigned
// it; a target the operation did not select is refused.
func testAssignHeld(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	op := newOperation(t, operations(a, clk), "Held", "T-H1", "T-H2")
	if _, err := service(b, clk).Claim(ctx, "T-H1", "fr-lyon", "lyon-officer", "04"); err != nil {
		t.Fatal(err)
	}
	ops := operations(a, clk)
	res, err := ops.Assign(ctx, op.ID, "T-H1", "fr-lille", "analyst")
	if err != nil || res.Result != casework.HeldByOther || res.Other != "fr-lyon" {
		t.Fatalf("assigning fr-lyon's target to fr-lille: %+v %v, want held by fr-lyon", res, err)
	}
	if c, _ := b.ClaimOf(ctx, "T-H1"); c == nil || c.Agency != "fr-lyon" {
		t.Fatalf("claim %+v, want still fr-lyon's", c)
	}
	if got, _ := b.Operation(ctx, op.ID); got.Targets[0].Agency != "" {
		t.Fatalf("a held target was assigned: %+v", got.Targets[0])
	}
	if res, err := ops.Assign(ctx, op.ID, "T-H1", "fr-lyon", "analyst"); err != nil || res.Result != casework.Assigned {
		t.Fatalf("assigning fr-lyon its own target: %+v %v", res, err)
	}
	if _, err := ops.Assign(ctx, op.ID, "T-OTHER", "fr-lyon", "analyst"); !errors.Is(err, casework.ErrNotInOperation) {
		t.Fatalf("assigning a target the operation did not select: %v", err)
	}
	clk.Add(casework.DefaultConfig().LapseAfter)
	if _, err := service(b, clk).Claim(ctx, "T-H2", "fr-marseille", "m", ""); err != nil {
		t.Fatal(err)
	}
	clk.Add(casework.DefaultConfig().LapseAfter + time.Second)
	if res, err := ops.Assign(ctx, op.ID, "T-H2", "fr-lille", "analyst"); err != nil || res.Result != casework.Assigned {
		t.Fatalf("assigning a target whose claim lapsed: %+v %v, want assigned", res, err)
	}
}

// The board counts, per service, the targets, their case's latest step
// and the outcomes of those closed, with the totals; a local service sees
// its own row only, and a service the operation gave nothing does not
// see the operation at all (as if it did not exist).
func testBoard(t *testing.T, open func(t *testing.T) (Store, Store)) {
	ctx := context.Background()
	a, b := open(t)
	clk := &clock{now: t0}
	ops := operations(a, clk)
	op := newOperation(t, ops, "Board", "T-B1", "T-B2", "T-B3", "T-B4", "T-B5")
	cases := &casework.Cases{Claims: service(b, clk), Store: b}
	for _, x := range []struct{ target, agency string }{{"T-B1", "fr-lyon"}, {"T-B2", "fr-lyon"}, {"T-B3", "fr-lyon"}, {"T-B4", "fr-lille"}} {
		if res, err := ops.Assign(ctx, op.ID, x.target, x.agency, "analyst"); err != nil || res.Result != casework.Assigned {
			t.Fatalf("%s: %+v %v", x.target, res, err)
		}
	}
	step := func(target, agency string, steps ...string) {
		if _, err := cases.Claims.Claim(ctx, target, agency, "inv", ""); err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			var outs []string
			if s == casework.StepClosed {
				outs = []string{"arrest", "devices_seized"}
			}
			clk.Add(time.Minute)
			if _, err := cases.Advance(ctx, target, agency, "inv", s, "", outs); err != nil {
				t.Fatal(err)
			}
		}
	}
	step("T-B1", "fr-lyon", casework.StepLead, casework.StepISPRequest)
	step("T-B2", "fr-lyon", casework.StepLead, casework.StepSearch, casework.StepClosed)
	step("T-B4", "fr-lille", casework.StepISPRequest)
	latest, err := a.LatestCaseSteps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range latest {
		got = append(got, fmt.Sprintf("%s %s %s %v", s.Target, s.Agency, s.Step, s.Outcomes))
	}
	if want := []string{"T-B1 fr-lyon isp_request_sent []", "T-B2 fr-lyon closed [arrest devices_seized]", "T-B4 fr-lille isp_request_sent []"}; !slices.Equal(got, want) {
		t.Fatalf("latest case steps %q, want %q", got, want)
	}
	national, err := ops.Board(ctx, op.ID, agency.Scope{All: true}, b.CaseSteps)
	if err != nil {
		t.Fatal(err)
	}
	row := func(ag string, n int, steps map[string]int, outs map[string]int) casework.BoardRow {
		r := casework.BoardRow{Agency: ag, Targets: n, Steps: map[string]int{}, Outcomes: map[string]int{}}
		for _, s := range append([]string{casework.StepNone}, casework.Steps...) {
			r.Steps[s] = steps[s]
		}
		for _, o := range casework.Outcomes {
			r.Outcomes[o] = outs[o]
		}
		return r
	}
	closed := map[string]int{"arrest": 1, "devices_seized": 1}
	lyon := row("fr-lyon", 3, map[string]int{casework.StepISPRequest: 1, casework.StepClosed: 1, casework.StepNone: 1}, closed)
	want := []casework.BoardRow{
		row("fr-lille", 1, map[string]int{casework.StepISPRequest: 1}, nil),
		lyon,
		row("", 1, map[string]int{casework.StepNone: 1}, nil),
	}
	if !reflect.DeepEqual(national.Rows, want) {
		t.Fatalf("national board rows\n%+v\nwant\n%+v", national.Rows, want)
	}
	if total := row("", 5, map[string]int{casework.StepISPRequest: 2, casework.StepClosed: 1, casework.StepNone: 2}, closed); !reflect.DeepEqual(national.Total, total) {
		t.Fatalf("totals %+v, want %+v", national.Total, total)
	}
	local, err := ops.Board(ctx, op.ID, agency.Scope{Agencies: []string{"fr-lyon"}}, b.CaseSteps)
	if err != nil {
		t.Fatal(err)
	}
	if len(local.Rows) != 1 || !reflect.DeepEqual(local.Rows[0], lyon) || local.Total.Targets != 3 || len(local.Operation.Targets) != 3 {
		t.Fatalf("fr-lyon's board: %+v, want its own row only", local)
	}
	for _, ot := range local.Operation.Targets {
		if ot.Agency != "fr-lyon" {
			t.Fatalf("fr-lyon's board lists %+v", ot)
		}
	}
	if bd, err := ops.Board(ctx, op.ID, agency.Scope{Agencies: []string{"fr-marseille"}}, b.CaseSteps); !errors.Is(err, casework.ErrNoOperation) || bd != nil {
		t.Fatalf("fr-marseille, given nothing by the operation, reads its board: %+v %v", bd, err)
	}
	if bd, err := ops.Board(ctx, op.ID, agency.Scope{}, b.CaseSteps); !errors.Is(err, casework.ErrNoOperation) || bd != nil {
		t.Fatalf("an empty scope reads the board: %+v %v", bd, err)
	}
}
