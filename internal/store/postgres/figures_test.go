package postgres

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/figures"
)

// Two processes saving roll-up deltas of one period at once (an ingest and
// a server's poll, two pools on one schema) lose none of them: each
// save's sketch merge reads what the other wrote, and a save refused as
// stale adds nothing.
func TestConcurrentSavesAddUpTheRollups(t *testing.T) {
	ctx := context.Background()
	a := openTest(t, DefaultConfig())
	b, err := Open(ctx, testDSN(), a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	at := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	const rounds = 20
	for i := range rounds {
		var wg sync.WaitGroup
		for j, st := range []*Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var acc figures.Accumulator
				keys := figures.Keys(&figures.Fact{Time: at, Network: "bittorrent", Level: "complete"})
				acc.Count(keys, 1)
				acc.See(keys, netip.AddrFrom4([4]byte{192, 0, 2, byte(2*i + j)}), "T-test")
				// Each save is checked against the analysis's version: a
				// refused one reads the version again and tries again, as
				// an Engine does after catching up.
				for try := 0; ; try++ {
					snap, err := st.AnalysisLoad(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					err = st.AnalysisSave(ctx, &analysis.Changes{Version: snap.Version, Figures: acc.Rollups()})
					if err == nil {
						return
					}
					if !errors.Is(err, analysis.ErrStale) || try == 50 {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	day := figures.Day(at)
	var got []figures.Count
	if err := a.FigureCounts(ctx, figures.Month, figures.All, day-31, day, func(c *figures.Count) error {
		got = append(got, *c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Observations != 2*rounds || got[0].Addresses != 2*rounds || got[0].Devices != 1 {
		t.Fatalf("the month's total after %d saves of one observation each: %+v, want %d observations from %d addresses, 1 device",
			2*rounds, got, 2*rounds, 2*rounds)
	}
}
