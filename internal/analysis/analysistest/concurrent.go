package analysistest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
	"github.com/vigil-oss/vigil/internal/observe"
)

// testEnginesOfSeveralProcessesMakeWhatOneMakes runs three Engines over one
// store, as two ingests and a server do: batches are stored in turn and
// fed to one or the other (some to none: an ingest without the
// analysis), one saves only when flushed (its view lags), and one only
// rescores (a server's poll) and records an analyst's decisions. The store must end with exactly the
// targets, files, links, scores, timelines and alerts that one Engine
// makes from the same batches on another store.
func testEnginesOfSeveralProcessesMakeWhatOneMakes(t *testing.T, shared, alone Store) {
	ctx := context.Background()
	batches := concurrentBatches()
	cfg := concurrentConfig()
	one := engineWith(t, alone, cfg)
	for i, b := range batches {
		ingest(t, alone, one, b...)
		if i == decideAfter {
			decide(t, one)
		}
	}
	if err := one.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := one.Rescore(ctx); err != nil { // as the server does last
		t.Fatal(err)
	}

	a := engineWith(t, shared, cfg)
	lazy := cfg
	lazy.SaveInterval = time.Hour // Add saves once, then only Flush does
	b := engineWith(t, shared, lazy)
	var server *analysis.Engine
	for i, batch := range batches {
		switch {
		case i%3 == 2:
			ingest(t, shared, nil, batch...)
		case i%2 == 0:
			ingest(t, shared, a, batch...)
		default:
			ingest(t, shared, b, batch...)
		}
		if i == 3 {
			server = engineWith(t, shared, cfg) // its view stops here
		}
		if i%5 == 4 {
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if i == decideAfter {
			decide(t, server) // an analyst, on the server
		}
		if server != nil && i%7 == 6 {
			if err := server.Rescore(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The server rescores; A stops (catch-up, flush); then B saves its
	// lagging view, and A rescores every target (the last to write them
	// all is not the one that recorded the decisions).
	for _, step := range []func(context.Context) error{server.Rescore, a.CatchUp, a.Flush, b.Flush, a.Rescore} {
		if err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	want, got := analysisOf(t, alone), analysisOf(t, shared)
	if len(want.Alerts) == 0 || len(want.Targets) < 5 || !slices.ContainsFunc(want.Targets, func(d analysis.TargetDetail) bool { return len(d.MergedFrom) > 0 }) {
		t.Fatalf("the reference has %d targets and %d alerts, none merged; the batches test too little", len(want.Targets), len(want.Alerts))
	}
	if !slices.ContainsFunc(want.Targets, func(d analysis.TargetDetail) bool { return slices.Contains(d.Flags, analysis.FlagKnownOffender) }) ||
		!slices.ContainsFunc(want.Targets, func(d analysis.TargetDetail) bool { return len(d.Shares) > 0 }) {
		t.Fatal("the reference has no flagged or shared target")
	}
	for i := range max(len(want.Targets), len(got.Targets)) {
		var w, g analysis.TargetDetail
		if i < len(want.Targets) {
			w = want.Targets[i]
		}
		if i < len(got.Targets) {
			g = got.Targets[i]
		}
		if jw, jg := mustJSON(t, w), mustJSON(t, g); jw != jg {
			t.Errorf("target %d of %d (%d in one engine's store) %s", i, len(got.Targets), len(want.Targets), firstDiff(jg, jw))
		}
	}
	if jw, jg := mustJSON(t, want.Alerts), mustJSON(t, got.Alerts); jw != jg {
		t.Errorf("alerts %s", firstDiff(jg, jw))
	}
	if jw, jg := mustJSON(t, want.Stats), mustJSON(t, got.Stats); jw != jg {
		t.Errorf("figures %s", firstDiff(jg, jw))
	}
	// The office's roll-ups (vigil stats --by): each observation and
	// address counted once, whichever engine folded it, however many did.
	// Devices are not compared: a roll-up counts an endpoint under the
	// target it belonged to at the save, so a target linked to another
	// later counts twice, and when saves happen differs (documented with
	// the figures).
	fw, okw := alone.(figures.Store)
	fg, okg := shared.(figures.Store)
	if okw && okg {
		rw, rg := rollups(t, fw), rollups(t, fg)
		if len(rw) == 0 {
			t.Fatal("the reference has no roll-ups: the figures test nothing")
		}
		if jw, jg := mustJSON(t, rw), mustJSON(t, rg); jw != jg {
			t.Errorf("roll-ups %s", firstDiff(jg, jw))
		}
	}
}

// rollups is every month's roll-up by network of the test's year.
func rollups(t *testing.T, st figures.Store) []figures.Count {
	t.Helper()
	var out []figures.Count
	from := figures.Day(t0.AddDate(-1, 0, 0))
	if err := st.FigureCounts(context.Background(), figures.Month, figures.Network, from, from+800, func(c *figures.Count) error {
		c.Devices = 0
		out = append(out, *c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// decideAfter is the batch after which an analyst flags a target and
// shares another.
const decideAfter = 10

func decide(t *testing.T, e *analysis.Engine) {
	t.Helper()
	ctx := context.Background()
	if err := e.SetFlag(ctx, analysis.TargetID(1), analysis.FlagKnownOffender, true, "analyst-1", "known"); err != nil {
		t.Fatal(err)
	}
	if err := e.Share(ctx, analysis.TargetID(2), lyon, true, "analyst-1", "joint case"); err != nil {
		t.Fatal(err)
	}
}

// concurrentConfig holds a hash seen at six endpoints in an hour.
func concurrentConfig() analysis.Config {
	cfg := analysis.DefaultConfig()
	cfg.Now = func() time.Time { return t0.Add(30 * 24 * time.Hour) }
	cfg.SaveInterval = 0
	cfg.Quarantine = analysis.QuarantineConfig{MinPeers: 6, Factor: 3, Baseline: 24 * time.Hour}
	return cfg
}

func engineWith(t *testing.T, st Store, cfg analysis.Config) *analysis.Engine {
	t.Helper()
	e, err := analysis.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// concurrentBatches are 24 batches of 10 observations at 8 endpoints of
// 9 files, over two days, some endpoints sharing a peer id (devices), and
// a burst of file 9 at every endpoint in one hour (a quarantine).
func concurrentBatches() [][]observe.Observation {
	r := rand.New(rand.NewPCG(13, 2))
	levels := []observe.Level{observe.Announced, observe.Acknowledged, observe.Partial, observe.Complete}
	var obs []observe.Observation
	for i := range 240 {
		ep := r.IntN(8)
		at := t0.Add(time.Duration(i)*12*time.Minute + time.Duration(r.IntN(600))*time.Second)
		o := ob(fmt.Sprintf("10.7.0.%d:%d", ep+1, 51000+ep), 1+r.IntN(8), levels[r.IntN(len(levels))], at, []string{versailles, lyon}[ep%2])
		if i >= 200 && i < 216 { // the burst
			o = ob(fmt.Sprintf("10.7.0.%d:%d", i%8+1, 51000+i%8), 9, observe.Complete, t0.Add(40*time.Hour+time.Duration(i-200)*time.Minute), versailles)
		}
		// One client moves from endpoint 0 to 1, another from 2 to 3: two
		// devices, each of two targets merged.
		if dev := ep / 2; ep < 4 && i/40 == ep {
			o.Client.PeerID = fmt.Appendf(nil, "-TR3000-device%06d", dev)
		}
		o.ID = fmt.Sprintf("concurrent-%03d", i)
		obs = append(obs, o)
	}
	var out [][]observe.Observation
	for len(obs) > 0 {
		out = append(out, obs[:10])
		obs = obs[10:]
	}
	return out
}

// analysisState is everything a store says of the analysis.
type analysisState struct {
	Targets []analysis.TargetDetail
	Alerts  []analysis.Alert
	Stats   *analysis.Stats
}

func analysisOf(t *testing.T, st Store) analysisState {
	t.Helper()
	ctx := context.Background()
	var s analysisState
	for _, x := range targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies}) {
		d, err := st.TargetWithTimeline(ctx, x.ID, analysis.AllAgencies, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		s.Targets = append(s.Targets, *d)
	}
	slices.SortFunc(s.Targets, func(a, b analysis.TargetDetail) int { return strings.Compare(a.ID, b.ID) })
	als, err := st.Alerts(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range als {
		a.ID = 0
		s.Alerts = append(s.Alerts, a)
	}
	if s.Stats, err = st.Stats(ctx, analysis.AllAgencies, t0.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	return s
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// firstDiff shows where got and want first differ.
func firstDiff(got, want string) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-300, 0)
	return fmt.Sprintf("differ at byte %d:\n got …%s…\nwant …%s…", i, got[from:min(i+200, len(got))], want[from:min(i+200, len(want))])
}
