package analysistest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// testCatchUpSameWhateverTheSaveSpan: a backlog another process stored,
// caught up in one pass (one save), in spans of a few observations a save
// or a few endpoints a save, or in small polls as it arrives, leaves the
// same targets in the store: every target, score and target page (its
// endpoints with their confidences, files and links). How often a
// catch-up saves is a matter of speed only (Config.SaveEvery, SaveRows).
func testCatchUpSameWhateverTheSaveSpan(t *testing.T, open func(t *testing.T) Store) {
	r := rand.New(rand.NewPCG(5, 6))
	var obs []observe.Observation
	for range 3000 {
		at := t0.Add(time.Duration(r.Int64N(int64(6 * 24 * time.Hour))))
		ep := fmt.Sprintf("198.51.100.%d:%d", 1+r.IntN(90), 6881+r.IntN(3))
		agency := []string{versailles, lyon}[r.IntN(2)]
		o := ob(ep, r.IntN(40), observe.Level(1+r.IntN(5)), at, agency)
		if r.IntN(2) == 0 { // a peer id seen at several endpoints: links, merges
			o.Client.PeerID = []byte(fmt.Sprintf("-TR3000-%012d", r.IntN(60)))
		}
		obs = append(obs, o)
	}
	run := func(saveEvery, saveRows, poll, killAfter int) string {
		t.Helper()
		ctx := context.Background()
		st := open(t)
		cfg := analysis.DefaultConfig()
		cfg.Now = func() time.Time { return t0.Add(30 * 24 * time.Hour) }
		cfg.SaveInterval, cfg.SaveEvery, cfg.SaveRows = 0, saveEvery, saveRows
		var be analysis.Backend = st
		if killAfter > 0 { // the process dies at its killAfter+1-th save
			be = &dyingStore{Store: st, left: killAfter}
		}
		e, err := analysis.New(ctx, be, cfg)
		if err != nil {
			t.Fatal(err)
		}
		killed := false
		for i := 0; i < len(obs); i += poll {
			ingest(t, st, nil, obs[i:min(i+poll, len(obs))]...)
			if err := e.CatchUp(ctx); errors.Is(err, errKilled) && !killed {
				killed = true
				// A new process resumes from what the store holds.
				if e, err = analysis.New(ctx, st, cfg); err != nil {
					t.Fatal(err)
				}
				err = e.CatchUp(ctx)
				if err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if killAfter > 0 && !killed {
			t.Fatalf("killed after %d saves: the process made fewer", killAfter)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		ts := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100000})
		var ds []*analysis.TargetDetail
		for _, s := range ts {
			d, err := st.Target(ctx, s.ID, analysis.AllAgencies)
			if err != nil {
				t.Fatal(err)
			}
			ds = append(ds, d)
		}
		b, err := json.Marshal(map[string]any{"targets": ts, "details": ds})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := run(len(obs)+1, len(obs)+1, len(obs), 0)
	for _, c := range []struct{ saveEvery, saveRows, poll, killAfter int }{{37, len(obs), len(obs), 0}, {len(obs), 7, len(obs), 0},
		{len(obs), len(obs), 100, 0}, {500, len(obs), len(obs), 3}, {len(obs), 40, len(obs), 5}} {
		if got := run(c.saveEvery, c.saveRows, c.poll, c.killAfter); got != want {
			t.Errorf("saving every %d observations or %d endpoints, polls of %d, killed after %d saves: the targets differ from one pass's: %s",
				c.saveEvery, c.saveRows, c.poll, c.killAfter, firstDiff(got, want))
		}
	}
}

// errKilled is dyingStore's save once its process is to die.
var errKilled = errors.New("the analysis's process was killed")

// dyingStore is a store whose analysis's process dies at a save: left
// saves are written, the next and every later one fail, writing nothing.
type dyingStore struct {
	Store
	left int
}

func (d *dyingStore) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	if d.left <= 0 {
		return errKilled
	}
	d.left--
	return d.Store.AnalysisSave(ctx, c)
}
