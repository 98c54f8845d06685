package figures

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// An observation marked time_implausible (its time is not when its peer
// was seen: docs/evidence.md, "Times that cannot be true") that falls in
// an endpoint's span, as its time reads, is counted in no figure: the
// exact counts from the observations leave it out, as the analysis's
// roll-ups do.
func TestImplausibleTimeIsCountedInNoFigure(t *testing.T) {
	ctx := context.Background()
	st := labFacts() // March: 40 + 30 + 3 observations
	o := observe.Observation{Time: time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC), Network: "lab-a",
		Possession: observe.Possession{Level: observe.Complete}}
	o.Mark(observe.MarkTimeImplausible)
	st = append(st, *FactOf(&o, netip.MustParseAddr("198.51.100.250"), "T-lab-a-x"))
	q := Query{By: Month, Group: All, From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), ExactDays: 120}
	rep, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range rep.Rows {
		found = found || r.Period == "2026-03"
		if r.Period == "2026-03" && (r.Observations == nil || *r.Observations != 73 || *r.UniqueAddresses != 73) {
			t.Fatalf("March: %v observations, %v addresses; want 73 and 73", deref(r.Observations), deref(r.UniqueAddresses))
		}
	}
	if !found {
		t.Fatalf("no row for March: %+v", rep.Rows)
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}
