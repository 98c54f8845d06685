package analysis_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// savesKept is the store, keeping each change the analysis saves.
type savesKept struct {
	*sqlite.Store
	saves []analysis.Changes
}

func (s *savesKept) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	s.saves = append(s.saves, *c)
	return s.Store.AnalysisSave(ctx, c)
}

// The roll-ups a save writes are those of its observations' facts, each
// counted by figures.Accumulator.Add: one observation each, its address
// (unmapped) and its endpoint's target as the device, in every roll-up
// its week and month, network, country, subdivision, categories and
// level give it. The observations here share endpoints across profiles
// (days of one week and month, levels, one or two categories, two
// networks), an address at two ports, IPv6 and IPv4-mapped addresses,
// and two ports of an address that a node id links into one device, so that many roll-ups see the same
// endpoint from several profiles.
func TestFiguresRollupsAreTheirObservationsFacts(t *testing.T) {
	f := newFixture(t)
	st := &savesKept{Store: f.st}
	cfg := f.cfg
	cfg.FiguresInterval = time.Hour // but the first save's, held back until the flush
	e, err := analysis.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	eps := []string{"203.0.113.1:6881", "203.0.113.1:6882", "203.0.113.2:6881", "[2001:db8::1]:6881",
		"[::ffff:198.51.100.9]:51413", "198.51.100.10:51413", "[2001:db8::2]:6881", "203.0.113.3:6881"}
	var obs []observe.Observation
	levels := []observe.Level{observe.Announced, observe.Partial, observe.Complete}
	for i := range 120 {
		at := t0.Add(time.Duration(i) * 7 * time.Hour) // March 1 to March 36: two months, several weeks
		o := ob(eps[i%len(eps)], i%5, levels[i%len(levels)], at)
		if i%4 == 0 {
			o.Item.Matched = append(o.Item.Matched, observe.Match{List: "interpol", Category: "2"})
		}
		if i%6 == 0 {
			o.Network = observe.NetED2K
		}
		if i%8 == 3 {
			o.Place.Subdivisions = nil
		}
		if i%len(eps) < 2 { // 203.0.113.1 at two ports: one device
			o = withSecureNode(o, 7, "203.0.113.1")
		}
		obs = append(obs, o)
	}
	for i := 0; i < len(obs); i += 30 {
		batch := obs[i:min(i+30, len(obs))]
		if err := f.st.InsertObservations(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	// The first save wrote the first batch's roll-ups; the others wait.
	for i, c := range st.saves {
		if len(c.Figures) > 0 && i > 0 {
			t.Fatalf("roll-ups saved by save %d, before the flush", i)
		}
	}
	before := len(st.saves)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Each endpoint (an IP:port's generation, by its id) as last saved:
	// an observation's is the one of its IP:port whose span holds it.
	last := map[int64]analysis.EndpointRow{}
	for _, c := range st.saves {
		for _, r := range c.Endpoints {
			last[r.ID] = r
		}
	}
	targetOf := func(ap netip.AddrPort, at time.Time) string {
		var ids []string
		for _, r := range last {
			if netip.AddrPortFrom(r.Info.IP.Unmap(), r.Info.Port) == ap && !at.Before(r.Info.FirstSeen) && !at.After(r.Info.LastSeen) {
				ids = append(ids, r.Target)
			}
		}
		if len(ids) != 1 {
			t.Fatalf("%s at %s: %d endpoints", ap, at, len(ids))
		}
		return ids[0]
	}
	var want figures.Accumulator
	devices := map[string]bool{}
	for i := 30; i < len(obs); i++ {
		o := &obs[i]
		addr := o.Endpoint.IP.Unmap()
		dev := targetOf(netip.AddrPortFrom(addr, o.Endpoint.Port), o.Time)
		devices[dev] = true
		want.Add(figures.FactOf(o, addr, dev))
	}
	if len(devices) < 2 || len(devices) >= len(last) {
		t.Fatalf("%d devices of %d endpoints: want some linked, not all", len(devices), len(last))
	}
	var got []figures.Rollup
	for _, c := range st.saves[before:] {
		got = append(got, c.Figures...)
	}
	if len(got) != want.Len() {
		t.Fatalf("flush saved %d roll-ups, want %d", len(got), want.Len())
	}
	for i, w := range want.Rollups() {
		g := got[i]
		if g.Key != w.Key || g.Count() != w.Count() {
			t.Errorf("roll-up %d: got %+v, want %+v", i, g.Count(), w.Count())
		}
	}
}

// An ingest's poll calls CatchUp every few seconds and finds nothing
// another process stored: the roll-ups of its own observations then wait
// for Config.FiguresInterval, as Add's saves hold them, instead of being
// rewritten at every poll. A CatchUp that reads observations another
// process stored still writes them at once.
func TestCatchUpWritesRollupsAtOnceOnlyWhenItReadObservations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	st := &savesKept{Store: f.st}
	cfg := f.cfg
	cfg.FiguresInterval = time.Hour
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	figuresSaved := func(from int) bool {
		for _, c := range st.saves[from:] {
			if len(c.Figures) > 0 {
				return true
			}
		}
		return false
	}
	add := func(i int) []observe.Observation {
		b := []observe.Observation{ob("203.0.113.7:6881", i, observe.Complete, t0.Add(time.Duration(i)*time.Hour))}
		if err := f.st.InsertObservations(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The first save writes the roll-ups (none written yet); the second
	// batch's wait for the interval.
	for i := range 2 {
		if err := e.Add(ctx, add(i)); err != nil {
			t.Fatal(err)
		}
	}
	from := len(st.saves)
	if err := e.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if figuresSaved(from) {
		t.Fatal("a catch-up that read nothing rewrote the roll-ups before their interval")
	}
	// Another process stores one: the catch-up reads it and writes at once.
	add(2)
	from = len(st.saves)
	if err := e.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if !figuresSaved(from) {
		t.Fatal("a catch-up that read another process's observation did not write the roll-ups")
	}
}
