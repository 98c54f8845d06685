package sqlite

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
// removed refuses DELETE and any UPDATE but retention's own (a row whose
// transcript was purged, purged whole later), as the evidence log does.
func TestPurgedObservationsAreAppendOnly(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
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
	if _, err := st.db.ExecContext(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000)`); err != nil {
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
	if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM purged_observations WHERE what = 'observations'`).Scan(&n); err != nil || n != len(obs) {
		t.Fatalf("%d purge records of whole observations (%v), want %d", n, err, len(obs))
	}
	for _, q := range []string{`UPDATE purged_observations SET purged_ns = 0`, `UPDATE purged_observations SET what = 'transcripts'`,
		`UPDATE purged_observations SET seq = seq + 1`, `DELETE FROM purged_observations`,
		`DELETE FROM purged_observations WHERE seq = (SELECT min(seq) FROM purged_observations)`} {
		if _, err := st.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM purged_observations WHERE what = 'observations' AND purged_ns > 0`).Scan(&n); err != nil || n != len(obs) {
		t.Fatalf("%d purge records after refused writes (%v), want %d", n, err, len(obs))
	}
}

// TestPurgeKeepsTheChainFieldsRecorded: retention's upsert (a row whose
// transcript was purged, purged whole later) never blanks the chain
// fields the purge record already holds, even when the row it purges has
// none (here a record written with chain fields for a row without them):
// the upsert keeps them, and an update that would blank them is refused.
func TestPurgeKeepsTheChainFieldsRecorded(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	at := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	o := storetest.Observation(rand.New(rand.NewPCG(8, 8)), at, 0)
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', 1000000)`); err != nil {
		t.Fatal(err)
	}
	if _, err := st.db.ExecContext(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, chain_ref, chain_seq, batch_head)
		SELECT id, seq, 'transcripts', time_ns, 1, 7, 3, 1 FROM observations`); err != nil {
		t.Fatal(err)
	}
	check := func(when, want string) {
		t.Helper()
		var what string
		var ref, seq, head *int64
		if err := st.db.QueryRowContext(ctx, `SELECT what, chain_ref, chain_seq, batch_head FROM purged_observations`).Scan(&what, &ref, &seq, &head); err != nil {
			t.Fatal(err)
		}
		if what != want || ref == nil || *ref != 7 || seq == nil || *seq != 3 || head == nil || *head != 1 {
			t.Fatalf("%s: what %s, chain_ref %v, chain_seq %v, batch_head %v; want %s, 7, 3, 1", when, what, ref, seq, head, want)
		}
	}
	// The update retention may make (transcripts to observations), with
	// a chain field blanked or changed: refused.
	for _, set := range []string{`chain_ref = NULL`, `chain_seq = NULL`, `batch_head = NULL`, `batch_head = 0`, `chain_ref = 8`} {
		if _, err := st.db.ExecContext(ctx, `UPDATE purged_observations SET what = 'observations', purged_ns = 2, `+set); err == nil {
			t.Errorf("%s: accepted", set)
		}
	}
	check("after the refused updates", "transcripts")
	now := at.AddDate(1, 0, 0)
	if _, err := st.PurgeChunk(ctx, retention.KindObservations, now, 100, now); err != nil {
		t.Fatalf("purge: %v", err)
	}
	check("after the purge", "observations")
}
