package postgres

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack: since migration 0015 the observations' unique indexes hold the
// partition key (uid, time_ns). A forged or replayed observation that
// reuses a stored id with another time (the same month or another one),
// or a batch carrying one id twice with two times, must not be stored
// twice: that would be duplicate evidence (two rows, two leaves for one
// id) and double counting in the figures and the scores.
func TestReplayedIDWithAnotherTimeIsNotStoredTwice(t *testing.T) {
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.Schema = newSchema(t)
			cfg.InsertMethod = method
			st, err := Open(ctx, testDSN(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			r := rand.New(rand.NewPCG(13, 13))
			at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			first := storetest.Observation(r, at, 1)
			if err := st.InsertObservations(ctx, []observe.Observation{first}); err != nil {
				t.Fatal(err)
			}
			sameMonth, otherMonth := first, first
			sameMonth.Time = at.Add(time.Second)
			otherMonth.Time = at.AddDate(0, 2, 0)
			twice := storetest.Observation(r, at.Add(time.Hour), 2)
			twiceLater := twice
			twiceLater.Time = twice.Time.AddDate(0, 1, 0)
			for _, batch := range [][]observe.Observation{{sameMonth}, {otherMonth}, {twice, twiceLater}} {
				if err := st.InsertObservations(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			var rows, ids int64
			if err := st.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT `+obsIDCol+`) FROM observations o`).Scan(&rows, &ids); err != nil {
				t.Fatal(err)
			}
			if rows != 2 || ids != 2 {
				t.Fatalf("%d rows for %d ids stored, want 2 rows for 2 ids (a replayed id with another time was stored again)", rows, ids)
			}
			if size, err := st.LogSize(ctx); err != nil || size != 2 {
				t.Fatalf("evidence log of %d leaves (%v), want 2: one leaf per observation id", size, err)
			}
			got := storetest.Export(t, st, store.ObservationFilter{})
			for _, o := range got {
				if o.ID == first.ID && !o.Time.Equal(first.Time) {
					t.Fatalf("observation %s reads back at %s, want the first stored time %s", o.ID, o.Time, first.Time)
				}
			}
		})
	}
}
