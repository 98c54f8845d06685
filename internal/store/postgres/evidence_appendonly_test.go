package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"math/rand/v2"
)

// TestEvidenceLogIsAppendOnly: the evidence log (its rows before
// migration 0016, its blocks since and its tiles since 0021, where the
// older two end since 0024) and its checkpoints refuse UPDATE, DELETE and
// TRUNCATE from any connection, as the audit trail does (a row trigger
// does not fire on TRUNCATE: it needs its own); the older tables refuse
// INSERT too (migration 0024).
func TestEvidenceLogIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(1, 1))
	o := storetest.Observation(r, time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC), 0)
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddLogCheckpoint(ctx, store.LogCheckpoint{Size: 1, Root: make([]byte, 32), Time: time.Unix(1, 0), Note: []byte("n")}); err != nil {
		t.Fatal(err)
	}
	// Since migration 0024 the older tables refuse INSERT too: the log
	// appends to evidence_tiles only.
	for _, q := range []string{`INSERT INTO evidence_log (idx, obs_seq, leaf) VALUES (0, 0, '\x00')`,
		`INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES (0, 0, '\x00', '\x00')`,
		`INSERT INTO evidence_older_end (leaves) VALUES (7)`} {
		if _, err := st.pool.Exec(ctx, q); err == nil || !(strings.Contains(err.Error(), "closed") || strings.Contains(err.Error(), "duplicate key")) {
			t.Errorf("%s: %v, want it refused", q, err)
		}
	}
	openOlderTables(t, st)
	// evidence_log holds the leaves stored before migration 0016: one
	// of them, as that store held it.
	if _, err := st.pool.Exec(ctx, `INSERT INTO evidence_log (idx, obs_seq, leaf) VALUES (0, 0, '\x00')`); err != nil {
		t.Fatal(err)
	}
	// evidence_blocks those stored between migrations 0016 and 0021: one.
	if _, err := st.pool.Exec(ctx, `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES (0, 0, '\x00', '\x00')`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE evidence_log SET leaf = '\x00'`, `DELETE FROM evidence_log`, `TRUNCATE evidence_log`,
		`UPDATE evidence_blocks SET leaves = '\x00'`, `DELETE FROM evidence_blocks`, `TRUNCATE evidence_blocks`,
		`UPDATE evidence_tiles SET nodes = '\x00'`, `UPDATE evidence_tiles SET seqs = '\x00'`, `DELETE FROM evidence_tiles`, `TRUNCATE evidence_tiles`,
		`UPDATE evidence_checkpoints SET root = '\x00'`, `DELETE FROM evidence_checkpoints`, `TRUNCATE evidence_checkpoints`,
		`UPDATE evidence_older_end SET leaves = 7`, `DELETE FROM evidence_older_end`, `TRUNCATE evidence_older_end`} {
		if _, err := st.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if n, err := st.LogSize(ctx); err != nil || n != 1 {
		t.Fatalf("log size %d, %v after refused writes; want 1", n, err)
	}
}
