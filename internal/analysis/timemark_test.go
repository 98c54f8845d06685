package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
)

// An observation marked time_implausible (ingest found its time
// impossible: docs/evidence.md, "Times that cannot be true") is stored,
// but the analysis places nothing in time on it: alone at its address it
// makes no target; beside a target's observation it adds no file, no
// last_seen, no timeline entry and no count to the roll-ups; the
// watermark passes it, as observations come (Add) and when another
// process catches up (CatchUp).
func TestImplausibleTimeMakesNoTargetNorLastSeen(t *testing.T) {
	marked := func(o observe.Observation) observe.Observation {
		o.Mark(observe.MarkTimeImplausible)
		return o
	}
	last := t0.Add(2 * time.Hour)
	obs := []observe.Observation{
		ob("203.0.113.10:51413", 1, observe.Complete, t0),
		marked(ob("203.0.113.10:51413", 2, observe.Complete, t0.Add(time.Hour))), // inside the endpoint's span
		ob("203.0.113.10:51413", 1, observe.Complete, last),
		marked(ob("203.0.113.10:51413", 3, observe.Complete, t0.Add(10*24*time.Hour))),
		marked(ob("203.0.113.20:6881", 1, observe.Complete, t0.Add(time.Hour))),
	}
	check := func(name string, e *analysis.Engine) {
		t.Helper()
		ts := targets(t, e, analysis.TargetQuery{})
		if len(ts) != 1 {
			t.Fatalf("%s: %d targets, want 1 (the marked alone makes none)", name, len(ts))
		}
		d := detail(t, e, ts[0].ID)
		if got := endpointsOf(d); len(got) != 1 || got[0] != "203.0.113.10:51413" {
			t.Errorf("%s: target at %v", name, got)
		}
		if !d.LastSeen.Equal(last) || len(d.Files) != 1 || len(d.Timeline) != 2 {
			t.Errorf("%s: last_seen %s, %d files, %d timeline entries; want %s, 1, 2", name, d.LastSeen, len(d.Files), len(d.Timeline), last)
		}
		if w := e.Watermark(); w != int64(len(obs)) {
			t.Errorf("%s: watermark %d, want %d", name, w, len(obs))
		}
		if d, _ := e.Dropped(); d[analysis.DropTimeImplausible] != 3 {
			t.Errorf("%s: dropped %v, want 3 time_implausible", name, d)
		}
	}
	f := newFixture(t)
	e := f.engine()
	f.ingest(e, obs...)
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("Add", e)
	n := int64(0)
	if err := f.st.FigureCounts(context.Background(), figures.Month, figures.Network, 0, 1<<20, func(c *figures.Count) error {
		n += c.Observations
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("the roll-ups count %d observations, want 2", n)
	}
	f2 := newFixture(t)
	f2.ingest(nil, obs...)
	e2 := f2.engine()
	if err := e2.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("CatchUp", e2)
}
