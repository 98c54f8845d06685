package figures

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// facts is a Store of observations held in memory.
type facts []Fact

func (fs facts) FigureCounts(context.Context, string, string, int64, int64, func(*Count) error) error {
	return fmt.Errorf("no roll-ups in this test")
}

func (fs facts) FigureFacts(_ context.Context, since, until time.Time, fn func(*Fact) error) error {
	for i := range fs {
		if !fs[i].Time.Before(since) && fs[i].Time.Before(until) {
			if err := fn(&fs[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// labFacts: in March 2026, 40 observations on network "lab-a" (40
// addresses), 30 on "lab-b" and 3 on "lab-c"; in April, 40, 30 and 20.
func labFacts() facts {
	var out facts
	add := func(month time.Month, network string, n int, firstAddr byte) {
		for i := range n {
			out = append(out, Fact{Time: time.Date(2026, month, 2, 10, i, 0, 0, time.UTC),
				Addr: netip.AddrFrom4([4]byte{198, 51, firstAddr, byte(i)}), Device: fmt.Sprintf("T-%s-%d", network, i),
				Network: network, Level: "advertised"})
		}
	}
	add(time.March, "lab-a", 40, 1)
	add(time.March, "lab-b", 30, 2)
	add(time.March, "lab-c", 3, 3)
	add(time.April, "lab-a", 40, 1)
	add(time.April, "lab-b", 30, 2)
	add(time.April, "lab-c", 20, 3)
	return out
}

// A published grouped report must not let the one suppressed cell of a
// period be recovered as the period's total (vigil stats without --group,
// or the same report with --min-cell 0 on a cell nobody suppressed) minus
// the groups shown; nor through the change of the next period, computed
// from it.
func TestMinCellLeavesNoSuppressedCellRecoverable(t *testing.T) {
	ctx := context.Background()
	st := labFacts()
	q := Query{By: Month, Group: Network, From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 4, 30, 0, 0, 0, 0, time.UTC), MinCell: 10, ExactDays: 120}
	grouped, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Group = All
	total, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string]*int64{}
	for _, r := range total.Rows {
		totals[r.Period] = r.Observations
	}
	type measure struct {
		name string
		v    func(Row) *int64
		ch   func(Row) *float64
	}
	measures := []measure{
		{"observations", func(r Row) *int64 { return r.Observations }, func(r Row) *float64 { return r.ObservationsChange }},
		{"unique_addresses", func(r Row) *int64 { return r.UniqueAddresses }, func(r Row) *float64 { return r.UniqueAddressesChange }},
		{"unique_devices", func(r Row) *int64 { return r.UniqueDevices }, func(r Row) *float64 { return r.UniqueDevicesChange }},
	}
	hidden := map[string]bool{} // period/group/measure suppressed
	for _, m := range measures {
		for _, p := range []string{"2026-03", "2026-04"} {
			var shown int64
			var nHidden int
			for _, r := range grouped.Rows {
				if r.Period != p {
					continue
				}
				if v := m.v(r); v != nil {
					shown += *v
				} else {
					nHidden++
					hidden[p+"/"+r.Group+"/"+m.name] = true
				}
			}
			if nHidden == 1 && m.name == "observations" && totals[p] != nil {
				t.Errorf("%s %s: one cell suppressed, recoverable as the total %d minus the %d shown", p, m.name, *totals[p], shown)
			}
			if nHidden == 1 {
				t.Errorf("%s %s: one group's cell suppressed alone: the groups partition the total, which gives it back", p, m.name)
			}
		}
		for _, r := range grouped.Rows {
			if r.Period == "2026-04" && hidden["2026-03/"+r.Group+"/"+m.name] && m.ch(r) != nil {
				t.Errorf("2026-04 %s %s: change %.1f%% shown, computed from March's suppressed cell", r.Group, m.name, *m.ch(r))
			}
		}
	}
	if grouped.SuppressedCells < 6 {
		t.Errorf("suppressed cells %d, want at least 6 (two a measure in March)", grouped.SuppressedCells)
	}
}

// estimates is a Store whose roll-ups say what the facts say, but for
// each cell's unique addresses, which are off by the given amount (the
// HyperLogLog error).
type estimates struct {
	facts
	off map[string]int64 // network: error of its unique addresses
}

func (e estimates) FigureCounts(ctx context.Context, by, dim string, fromDay, toDay int64, fn func(*Count) error) error {
	rep, err := Compute(ctx, e.facts, Query{By: by, Group: dim, From: time.Unix(fromDay*86400, 0).UTC(),
		To: time.Unix(toDay*86400, 0).UTC(), ExactDays: 10000})
	if err != nil {
		return err
	}
	for _, r := range rep.Rows {
		start, _ := time.Parse("2006-01", r.Period)
		c := Count{Key: Key{By: by, Dim: dim, Value: r.Group, Start: Day(start)}, Observations: *r.Observations,
			Addresses: *r.UniqueAddresses + e.off[r.Group], Devices: *r.UniqueDevices}
		if err := fn(&c); err != nil {
			return err
		}
	}
	return nil
}

// The exact report (a short span) and the estimated one (a long span)
// must leave out the same cells beside a suppressed one: were the second
// cell chosen by the estimate, two cells close in size could swap, each
// report showing the one the other hides, and together they would give
// the suppressed cell back.
func TestMinCellHidesTheSameCellsExactOrEstimated(t *testing.T) {
	ctx := context.Background()
	var st facts
	for _, n := range []struct {
		network string
		count   int
		first   byte
	}{{"lab-a", 40, 1}, {"lab-b", 30, 2}, {"lab-d", 31, 4}, {"lab-c", 3, 3}} {
		for i := range n.count {
			st = append(st, Fact{Time: time.Date(2026, 3, 2, 10, i, 0, 0, time.UTC), Addr: netip.AddrFrom4([4]byte{198, 51, n.first, byte(i)}),
				Device: fmt.Sprintf("T-%s-%d", n.network, i), Network: n.network, Level: "advertised"})
		}
	}
	q := Query{By: Month, Group: Network, From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), MinCell: 10}
	exact, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	q.ExactDays = -1
	est, err := Compute(ctx, estimates{st, map[string]int64{"lab-b": +2}}, q)
	if err != nil {
		t.Fatal(err)
	}
	if exact.Method != MethodExact || est.Method != MethodHyperLogLog {
		t.Fatalf("methods %s and %s", exact.Method, est.Method)
	}
	hidden := func(rep *Report) map[string]bool {
		out := map[string]bool{}
		for _, r := range rep.Rows {
			if r.UniqueAddresses == nil {
				out[r.Group] = true
			}
		}
		return out
	}
	he, hh := hidden(exact), hidden(est)
	for g := range he {
		if !hh[g] {
			t.Errorf("unique addresses of %s: left out of the exact report, shown in the estimated one (exact hides %v, estimated %v)", g, he, hh)
		}
	}
	for g := range hh {
		if !he[g] {
			t.Errorf("unique addresses of %s: left out of the estimated report, shown in the exact one (exact hides %v, estimated %v)", g, he, hh)
		}
	}
}

// Two published reports of one period, by country and by département:
// a country's figure is the sum of its départements' (every observation
// here is placed). Hostile case: the one département suppressed in a
// country, its complementary cell taken in another country, is the
// country's figure minus its other départements.
func TestMinCellSubdivisionNotRecoverableFromItsCountry(t *testing.T) {
	ctx := context.Background()
	var st facts
	add := func(country, sub string, n int, firstAddr byte) {
		for i := range n {
			st = append(st, Fact{Time: time.Date(2026, time.March, 2, 10, i, 0, 0, time.UTC),
				Addr: netip.AddrFrom4([4]byte{198, 51, firstAddr, byte(i)}), Device: fmt.Sprintf("T-%s-%d", sub, i),
				Network: "lab-a", Country: country, Subdivision: sub, Level: "advertised"})
		}
	}
	add("FR", "75", 30, 1)
	add("FR", "78", 3, 2)
	add("FR", "92", 12, 3)
	add("DE", "BE", 10, 4)
	q := Query{By: Month, Group: Country, From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC), MinCell: 5, ExactDays: 120}
	byCountry, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	q.Group = Subdivision
	bySub, err := Compute(ctx, st, q)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range byCountry.Rows {
		for _, m := range []struct {
			name string
			v    func(Row) *int64
		}{
			{"observations", func(r Row) *int64 { return r.Observations }},
			{"unique_addresses", func(r Row) *int64 { return r.UniqueAddresses }},
			{"unique_devices", func(r Row) *int64 { return r.UniqueDevices }},
		} {
			if m.v(c) == nil {
				continue
			}
			rest, hidden := *m.v(c), []string{}
			for _, s := range bySub.Rows {
				if s.Period != c.Period || !strings.HasPrefix(s.Group, c.Group+"/") {
					continue
				}
				if m.v(s) == nil {
					hidden = append(hidden, s.Group)
				} else {
					rest -= *m.v(s)
				}
			}
			if len(hidden) == 1 {
				t.Errorf("%s %s: the suppressed %s of %s is %s's %d minus its other départements: %d",
					c.Period, m.name, m.name, hidden[0], c.Group, *m.v(c), rest)
			}
		}
	}
}
