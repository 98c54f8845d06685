package postgres

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// TestPurgedObservationsAreAppendOnly: the record of what retention
// removed refuses UPDATE (but retention's own: a row whose transcript
// was purged, purged whole later), DELETE and TRUNCATE, as the evidence
// log does.
func TestPurgedObservationsAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(7, 7))
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 4 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), i)
		o.Transcript.Bytes = []byte("transcript")
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	// The analysis has read them (retention purges nothing it has not).
	if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000)`); err != nil {
		t.Fatal(err)
	}
	now := at.AddDate(1, 0, 0)
	// Retention's own writes: transcripts first, then the rows.
	for _, k := range []retention.Kind{retention.KindTranscripts, retention.KindObservations} {
		if _, err := st.PurgeChunk(ctx, k, now, 100, now); err != nil {
			t.Fatalf("purge %s: %v", k, err)
		}
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM purged_observations WHERE what = 'observations'`).Scan(&n); err != nil || n != len(obs) {
		t.Fatalf("%d purge records of whole observations (%v), want %d", n, err, len(obs))
	}
	for _, q := range []string{`UPDATE purged_observations SET purged_ns = 0`, `UPDATE purged_observations SET what = 'transcripts'`,
		`UPDATE purged_observations SET seq = seq + 1`, `DELETE FROM purged_observations`, `TRUNCATE purged_observations`} {
		if _, err := st.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM purged_observations WHERE what = 'observations' AND purged_ns > 0`).Scan(&n); err != nil || n != len(obs) {
		t.Fatalf("%d purge records after refused writes (%v), want %d", n, err, len(obs))
	}
}
