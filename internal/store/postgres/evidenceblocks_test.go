package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// logState is what a store's evidence log says: its leaves, each
// observation's leaf index, the observations (with their chains) and the
// sensors' keys.
type logState struct {
	leaves  [][]byte
	indexes map[string]uint64
	obs     []observe.Observation
	keys    []store.SensorKey
}

func readLogState(t *testing.T, st *Store, ids []string) logState {
	t.Helper()
	ctx := context.Background()
	var s logState
	size, err := st.LogSize(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.LogLeaves(ctx, 0, size, func(_ uint64, leaf []byte) error {
		s.leaves = append(s.leaves, bytes.Clone(leaf))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if s.indexes, err = st.LogIndexes(ctx, ids); err != nil {
		t.Fatal(err)
	}
	s.obs = storetest.Export(t, st, store.ObservationFilter{})
	if s.keys, err = st.SensorKeys(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// signedBatch returns n observations as a BatchSigner publishes them.
func signedBatch(t *testing.T, r *rand.Rand, at time.Time, n int) []observe.Observation {
	t.Helper()
	ctx := context.Background()
	c := &collector{}
	signer := evidence.NewBatchSigner(c, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)), evidence.DefaultSignerConfig())
	for i := range n {
		if err := signer.Publish(ctx, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := signer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

// Migration 0016 moves a store's log, with data, to blocks and the chains
// into the observations' rows: the same leaves at the same indexes, the
// same observations and chains, the same sensor keys; the log goes on
// after its last leaf.
func TestMigration0016KeepsTheLog(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(16, 16))
	at := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	signed := signedBatch(t, r, at, 300) // two signed heads: 256 and 300
	for i := range signed {
		// Before 0016 (and 0018) sensors signed in evidence form 1 only.
		signed[i].Chain.Form = 0
	}
	var plain []observe.Observation
	for i := range 20 {
		plain = append(plain, storetest.Observation(r, at.Add(time.Hour+time.Duration(i)*time.Minute), 1000+i))
	}
	for _, batch := range [][]observe.Observation{signed[:100], plain[:10], signed[100:], plain[10:]} {
		if err := st.InsertObservations(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, o := range append(signed[:len(signed):len(signed)], plain...) {
		ids = append(ids, o.ID)
	}
	want := readLogState(t, st, ids)
	if len(want.leaves) != len(ids) || len(want.indexes) != len(ids) || len(want.keys) != 1 {
		t.Fatalf("before: %d leaves, %d indexes, %d keys; want %d, %d, 1", len(want.leaves), len(want.indexes), len(want.keys), len(ids), len(ids))
	}
	for _, q := range undo0016 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var rows int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM evidence_log WHERE (chain IS NOT NULL) = (batch_sig IS NOT NULL OR chain_seq IS NOT NULL)`).Scan(&rows); err != nil || rows != len(ids) {
		t.Fatalf("before the migration: %d evidence_log rows (%v), want %d", rows, err, len(ids))
	}
	st.Close()
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := readLogState(t, again, ids)
	if !reflect.DeepEqual(got.leaves, want.leaves) {
		t.Fatal("the leaves changed in the migration")
	}
	if !reflect.DeepEqual(got.indexes, want.indexes) {
		t.Fatalf("leaf indexes after the migration %v, want %v", got.indexes, want.indexes)
	}
	if !reflect.DeepEqual(got.keys, want.keys) {
		t.Fatalf("sensor keys after the migration %+v, want %+v", got.keys, want.keys)
	}
	if len(got.obs) != len(want.obs) {
		t.Fatalf("%d observations after the migration, want %d", len(got.obs), len(want.obs))
	}
	for i := range got.obs {
		if !reflect.DeepEqual(got.obs[i].Chain, want.obs[i].Chain) {
			t.Fatalf("observation %s: chain %+v after the migration, want %+v", got.obs[i].ID, got.obs[i].Chain, want.obs[i].Chain)
		}
	}
	first, head, err := again.ChainBatch(ctx, signed[0].Chain.ID, 260)
	if err != nil || first != 257 || head != 300 {
		t.Fatalf("ChainBatch(seq 260) = %d..%d, %v; want 257..300", first, head, err)
	}
	n := 0
	if err := again.ChainObservations(ctx, signed[0].Chain.ID, first, head, func(*observe.Observation) error { n++; return nil }); err != nil || n != 44 {
		t.Fatalf("ChainObservations: %d, %v; want 44", n, err)
	}
	more := storetest.Observation(r, at.Add(2*time.Hour), 99)
	if err := again.InsertObservations(ctx, []observe.Observation{more, plain[0]}); err != nil {
		t.Fatal(err)
	}
	idx, err := again.LogIndexes(ctx, []string{more.ID})
	if size, serr := again.LogSize(ctx); err != nil || serr != nil || size != uint64(len(ids)+1) || idx[more.ID] != uint64(len(ids)) {
		t.Fatalf("after one more: log size %d (%v), its leaf at %v (%v); want %d, at %d", size, serr, idx, err, len(ids)+1, len(ids))
	}
}

// A commit appends its leaves as one evidence_tiles block, whatever its
// size up to maxBlock, and none to evidence_log or evidence_blocks: its
// seqs in one run (2 bytes) and a node a 16 leaves; a redelivery among new
// observations appends the new ones' leaves only.
func TestACommitAppendsOneBlock(t *testing.T) {
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			r := rand.New(rand.NewPCG(17, 17))
			at := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
			var obs []observe.Observation
			for i := range 1500 {
				obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
			}
			if err := st.InsertObservations(ctx, obs[:1000]); err != nil {
				t.Fatal(err)
			}
			if err := st.InsertObservations(ctx, obs[500:]); err != nil {
				t.Fatal(err)
			}
			var blocks, logRows, leaves, seqBytes, nodeBytes int
			if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM evidence_tiles), (SELECT count(*) FROM evidence_log) + (SELECT count(*) FROM evidence_blocks),
				(SELECT COALESCE(sum(n), 0) FROM evidence_tiles), (SELECT sum(length(seqs)) FROM evidence_tiles), (SELECT sum(length(nodes)) FROM evidence_tiles)`).
				Scan(&blocks, &logRows, &leaves, &seqBytes, &nodeBytes); err != nil {
				t.Fatal(err)
			}
			if blocks != 2 || logRows != 0 || leaves != 1500 {
				t.Fatalf("%d blocks of %d leaves and %d evidence_log and evidence_blocks rows; want 2 blocks of 1500 leaves, no row", blocks, leaves, logRows)
			}
			// One run of seqs a block (a gap of 0, then 999 and 499 in two
			// bytes each); 1,000 leaves: 62 nodes of 16 and 8; 500 from
			// 1,000: 8+16*31+4.
			if seqBytes != 6 || nodeBytes != 32*(63+33) {
				t.Fatalf("%d bytes of seqs and %d of nodes; want 6 and %d", seqBytes, nodeBytes, 32*(63+33))
			}
			var ids []string
			for _, o := range obs {
				ids = append(ids, o.ID)
			}
			idx, err := st.LogIndexes(ctx, ids)
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				if got, ok := idx[id]; !ok || got != uint64(i) {
					t.Fatalf("observation %d: leaf at %d (%v), want %d", i, got, ok, i)
				}
			}
		})
	}
}
