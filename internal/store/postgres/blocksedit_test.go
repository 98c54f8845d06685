package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A block row whose columns lie about its body (edited by a database
// user) is refused where it is read, not read as it says: two
// observations of one seq (seq_off), a seq_hi below its last seq (the
// readers of a seq range would not select it for that seq: hidden from
// the analysis and the log's leaves), a time range that leaves out one of
// its observations (hidden from the readers of a time range), a UUID
// range that leaves out one of its ids (hidden from ingest's look for a
// replayed id, which would store it again).
func TestEditedBlockRowIsRefused(t *testing.T) {
	ctx := context.Background()
	for _, edit := range []struct{ name, sql string }{
		{"two observations of one seq", `UPDATE observation_blocks SET seq_off = array_fill(0, ARRAY[n]) WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"seq_hi below its last seq", `UPDATE observation_blocks SET seq_hi = seq_hi - 1 WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"seq_hi past its last seq", `UPDATE observation_blocks SET seq_hi = seq_hi + 5 WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"time_hi below its last time", `UPDATE observation_blocks SET time_hi = time_hi - 1 WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"uid_hi below its greatest id", `UPDATE observation_blocks SET uid_hi = uid_lo WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"no uid range", `UPDATE observation_blocks SET uid_lo = NULL, uid_hi = NULL WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
		{"time_lo above its first time", `UPDATE observation_blocks SET time_lo = time_lo + 1 WHERE seq_lo = (SELECT min(seq_lo) FROM observation_blocks)`},
	} {
		t.Run(edit.name, func(t *testing.T) {
			st := openTest(t, DefaultConfig())
			r := rand.New(rand.NewPCG(12, 31))
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			var obs []observe.Observation
			for i := range 100 {
				obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
			}
			if err := st.InsertObservations(ctx, obs); err != nil {
				t.Fatal(err)
			}
			opt := DefaultCompactOptions()
			opt.Settle, opt.Now, opt.ignoreWatermark, opt.BlockSize = 0, time.Unix(0, 1<<62), true, 32
			if _, err := st.CompactObservations(ctx, opt); err != nil {
				t.Fatal(err)
			}
			if _, err := st.pool.Exec(ctx, edit.sql); err != nil {
				t.Fatal(err)
			}
			n := 0
			err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil })
			if !errors.Is(err, obsblock.ErrCorrupt) {
				t.Errorf("Observations after the edit: %d read, error %v, want obsblock.ErrCorrupt", n, err)
			}
			t.Logf("Observations: %v", err)
			err = st.AnalysisObservations(ctx, 0, 1<<62, func(int64, *observe.Observation) error { return nil })
			t.Logf("AnalysisObservations: %v", err)
			if !errors.Is(err, obsblock.ErrCorrupt) {
				t.Errorf("AnalysisObservations after the edit: error %v, want obsblock.ErrCorrupt", err)
			}
		})
	}
}
