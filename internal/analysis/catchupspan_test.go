package analysis_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TestCatchUpSameWhateverTheSaveSpan: a backlog caught up in one pass
// (one save at the end), in spans of a few observations a save, or in
// small polls as observations arrive, gives the same results byte for
// byte: every target, target page (its endpoints with their
// confidences, files, links), lead and stat (resultsOf). How often the
// analysis saves while behind is a matter of speed only
// (docs/benchmarks.md, "The analysis's catch-up in PostgreSQL").
func TestCatchUpSameWhateverTheSaveSpan(t *testing.T) {
	n := 6000
	if testing.Short() {
		n = 2500
	}
	r := rand.New(rand.NewPCG(3, 4))
	var obs []observe.Observation
	for i := range n {
		obs = append(obs, dumpObs(r, i))
	}
	run := func(span, poll int) []byte {
		t.Helper()
		f := newFixture(t)
		f.cfg.SaveEvery = span
		e := f.engine()
		for i := 0; i < len(obs); i += poll {
			f.ingest(nil, obs[i:min(i+poll, len(obs))]...)
			if poll < len(obs) {
				if err := e.CatchUp(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := e.CatchUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		return resultsOf(t, e)
	}
	want := run(len(obs)+1, len(obs)) // one pass, one save
	for _, c := range []struct{ span, poll int }{{37, len(obs)}, {500, len(obs)}, {1 << 20, 250}, {41, 300}} {
		got := run(c.span, c.poll)
		if bytes.Equal(got, want) {
			continue
		}
		a, b := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("saving every %d observations, polls of %d: line %d differs from one pass:\n%s\n%s\n(context: %s)",
					c.span, c.poll, i+1, a[i], b[i], strings.Join(a[max(0, i-12):i], " "))
			}
		}
		t.Fatalf("saving every %d observations, polls of %d: %d lines, one pass %d", c.span, c.poll, len(b), len(a))
	}
}
