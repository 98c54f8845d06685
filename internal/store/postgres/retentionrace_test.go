package postgres

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack (court): a late upload of an old observation into a month that
// retention is dropping whole. The upload's INSERT into the month's
// partition is made (not committed) before the drop counts the month; it
// commits while the drop waits. The row, above the analysis's watermark,
// must not go, and never without its purge record: dropMonth counted the
// partition without locking it against inserts, and the DETACH (which
// waited for the INSERT) dropped the row committed since, with no record.
func TestMonthDropWaitsForALateInsert(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(7, 13))
	var obs []observe.Observation
	for i := range 10 {
		o := storetest.Observation(r, time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute), i+1)
		o.ID = observe.NewID(o.Time)
		o.Chain = observe.Chain{}
		obs = append(obs, o)
	}
	for m := 1; m <= 2; m++ {
		if _, err := st.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, time.Date(2024, time.Month(m), 1, 0, 0, 0, 0, time.UTC).UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	var mark int64
	if err := st.pool.QueryRow(ctx, `SELECT max(seq) FROM observations`).Scan(&mark); err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, mark); err != nil {
		t.Fatal(err)
	}
	// The late upload: a row of January with a new seq and id, not committed.
	late, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback(ctx)
	var lateSeq int64
	if err := late.QueryRow(ctx, `INSERT INTO observations OVERRIDING SYSTEM VALUE
		SELECT (jsonb_populate_record(NULL::observations, to_jsonb(o) || jsonb_build_object('seq', o.seq + 1000, 'uid', gen_random_uuid()))).*
		FROM observations o ORDER BY o.seq LIMIT 1 RETURNING seq`).Scan(&lateSeq); err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	type res struct {
		got retention.Span
		err error
	}
	done := make(chan res, 1)
	go func() {
		got, err := st.PurgeChunk(ctx, retention.KindObservations, cut, 100, cut)
		done <- res{got, err}
	}()
	time.Sleep(1500 * time.Millisecond) // the drop counts, then waits for the INSERT
	if err := late.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	d := <-done
	if d.err != nil {
		t.Fatal(d.err)
	}
	var rows, records int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations WHERE seq = $1), (SELECT count(*) FROM purged_observations WHERE seq = $1)`,
		lateSeq).Scan(&rows, &records); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || records != 0 {
		t.Fatalf("the late row (seq %d, above the watermark %d): %d rows, %d purge records after the purge (%+v); want the row kept", lateSeq, mark, rows, records, d.got)
	}
}
