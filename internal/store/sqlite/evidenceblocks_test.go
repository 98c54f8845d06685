package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// chainObs returns n observations of one signed chain (heads at seq 3 and
// 6) followed by two unsigned ones.
func chainObs(r *rand.Rand) []observe.Observation {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	key := bytes.Repeat([]byte{4}, 32)
	var obs []observe.Observation
	for i := range 6 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		o.Chain = observe.Chain{Key: key, ID: "feed01", Seq: uint64(i + 1), Prev: bytes.Repeat([]byte{byte(i + 1)}, 32)}
		if i == 2 || i == 5 {
			o.Chain.BatchSig = bytes.Repeat([]byte{byte(i)}, 64)
		}
		obs = append(obs, o)
	}
	return append(obs, storetest.Observation(r, at.Add(time.Minute), 7), storetest.Observation(r, at.Add(2*time.Minute), 8))
}

// checkLog checks that st's log holds one leaf per observation of obs,
// the hash of the row as it reads back, and that the rows read back as
// stored, their chains with them.
func checkLog(t *testing.T, st *Store, obs []observe.Observation) {
	t.Helper()
	ctx := context.Background()
	n, err := st.LogSize(ctx)
	if err != nil || n != uint64(len(obs)) {
		t.Fatalf("LogSize = %d, %v; want %d", n, err, len(obs))
	}
	var leaves [][]byte
	if err := st.LogLeaves(ctx, 0, n, func(_ uint64, l []byte) error { leaves = append(leaves, bytes.Clone(l)); return nil }); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil || len(idx) != len(obs) {
		t.Fatalf("LogIndexes: %d of %d, %v", len(idx), len(obs), err)
	}
	i := 0
	if err := st.ObservationsByID(ctx, ids, func(o *observe.Observation) error {
		if !o.Equal(&obs[i]) {
			t.Errorf("observation %d reads back as %+v, want %+v", i, o.Chain, obs[i].Chain)
		}
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:], leaves[idx[o.ID]]) {
			t.Errorf("observation %d: leaf %d is %x, the row hashes to %x", i, idx[o.ID], leaves[idx[o.ID]], h)
		}
		i++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A store written before migration 0021 (leaves and chains in
// evidence_log) keeps its log after it: the old leaves first, at their
// indexes, the new ones after them in blocks; the chains of the old rows
// read back and batches span both.
func TestMigration0021KeepsTheLogBeforeIt(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	obs := chainObs(rand.New(rand.NewPCG(21, 21)))
	old := []observe.Observation{obs[0], obs[1], obs[2], obs[6]}
	if err := st.InsertObservations(ctx, slices.Clone(old)); err != nil {
		t.Fatal(err)
	}
	// The file as 0014 to 0020 left it: each leaf a row of evidence_log,
	// with the chain beside it.
	idx, err := st.LogIndexes(ctx, []string{old[0].ID, old[1].ID, old[2].ID, old[3].ID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range old {
		h, err := old[i].LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.db.ExecContext(ctx, `INSERT INTO evidence_log (idx, observation_id, leaf, chain, chain_seq, chain_key, chain_prev, batch_sig)
			SELECT ?, o.id, ?, c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig
			FROM observations o LEFT JOIN sensor_chains c ON c.id = o.chain_ref WHERE o.id = ?`,
			int64(idx[old[i].ID]+1), h[:], idValue(old[i].ID)); err != nil {
			t.Fatal(err)
		}
	}
	for v := SchemaVersion(); v >= 21; v-- { // 0021 and those after it
		for _, q := range append(laterUndo[v], fmt.Sprintf(`DELETE FROM schema_migrations WHERE version = %d`, v)) {
			if _, err := st.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	checkLog(t, again, old)
	var blocks int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM evidence_blocks`).Scan(&blocks); err != nil || blocks != 0 {
		t.Fatalf("%d blocks after the migration (%v), want the old leaves left in evidence_log", blocks, err)
	}
	if first, head, err := again.ChainBatch(ctx, "feed01", 2); err != nil || first != 1 || head != 3 {
		t.Fatalf("ChainBatch of an old batch = %d, %d, %v", first, head, err)
	}
	rest := []observe.Observation{obs[3], obs[4], obs[5], obs[7]}
	if err := again.InsertObservations(ctx, slices.Clone(rest)); err != nil {
		t.Fatal(err)
	}
	checkLog(t, again, append(slices.Clone(old), rest...))
	var got []observe.Observation
	if err := again.ChainObservations(ctx, "feed01", 1, 6, func(o *observe.Observation) error { got = append(got, *o); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 || got[0].ID != obs[0].ID || got[5].ID != obs[5].ID {
		t.Fatalf("ChainObservations across the migration: %d observations", len(got))
	}
	keys, err := again.SensorKeys(ctx)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Key, obs[0].Chain.Key) {
		t.Fatalf("SensorKeys = %+v, %v", keys, err)
	}
}

// An observation whose row is deleted (retention purges rows, the log
// keeps every leaf) keeps its leaf and its index: the block's ids bind
// the leaf to it.
func TestLeafOfADeletedRowIsStillFound(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	obs := chainObs(rand.New(rand.NewPCG(22, 22)))
	if err := st.InsertObservations(ctx, slices.Clone(obs[:5])); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertObservations(ctx, slices.Clone(obs[5:])); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
	}
	before, err := st.LogIndexes(ctx, ids)
	if err != nil || len(before) != len(obs) {
		t.Fatalf("LogIndexes: %d, %v", len(before), err)
	}
	for _, i := range []int{1, 6} {
		if _, err := st.db.ExecContext(ctx, `DELETE FROM observations WHERE id = ?`, idValue(obs[i].ID)); err != nil {
			t.Fatal(err)
		}
	}
	after, err := st.LogIndexes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if a, ok := after[id]; !ok || a != before[id] {
			t.Errorf("observation %s: leaf %d, %v after its row was deleted; was %d", id, a, ok, before[id])
		}
	}
	if n, err := st.LogSize(ctx); err != nil || n != uint64(len(obs)) {
		t.Fatalf("LogSize = %d, %v after deleting rows", n, err)
	}
}

// A batch stored out of chain order (a member after its signed head, as a
// redelivery may) is still read whole, in chain order.
func TestChainObservationsStoredOutOfOrder(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	obs := chainObs(rand.New(rand.NewPCG(23, 23)))
	for _, part := range [][]observe.Observation{obs[:3], {obs[3], obs[5]}, {obs[4]}} {
		if err := st.InsertObservations(ctx, slices.Clone(part)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ first, head uint64 }{{1, 3}, {4, 6}, {1, 6}} {
		var got []uint64
		if err := st.ChainObservations(ctx, "feed01", c.first, c.head, func(o *observe.Observation) error {
			got = append(got, o.Chain.Seq)
			return nil
		}); err != nil {
			t.Fatalf("ChainObservations(%d, %d): %v", c.first, c.head, err)
		}
		if uint64(len(got)) != c.head-c.first+1 || got[0] != c.first || got[len(got)-1] != c.head {
			t.Fatalf("ChainObservations(%d, %d) = %v", c.first, c.head, got)
		}
	}
}

// Migration 0022 fills in the purge records written before it from
// evidence_log, for the observations logged before migration 0021: whether
// each was its batch's signed head, and its chain (a record written before
// 0021 has none); ChainBatch then starts the batch after a purged head
// after it, and finds no head for the batch whose head was purged.
func TestMigration0022TellsThePurgedHeadsBeforeIt(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	obs := chainObs(rand.New(rand.NewPCG(22, 22)))[:6] // feed01: heads at seqs 3 and 6
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range obs {
		ids = append(ids, o.ID)
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i := range obs {
		h, err := obs[i].LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.db.ExecContext(ctx, `INSERT INTO evidence_log (idx, observation_id, leaf, chain, chain_seq, chain_key, chain_prev, batch_sig)
			SELECT ?, o.id, ?, c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig
			FROM observations o LEFT JOIN sensor_chains c ON c.id = o.chain_ref WHERE o.id = ?`,
			int64(idx[obs[i].ID]+1), h[:], idValue(obs[i].ID)); err != nil {
			t.Fatal(err)
		}
	}
	// Seqs 1 and 3 (the first batch's head) purged as 0020 did: no chain
	// in the record.
	for _, seq := range []int{1, 3} {
		for _, q := range []string{`INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns)
			SELECT id, seq, 'observations', time_ns, 1 FROM observations WHERE chain_seq = ?`,
			`DELETE FROM observations WHERE chain_seq = ?`} {
			if _, err := st.db.ExecContext(ctx, q, seq); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	for v := SchemaVersion(); v >= 21; v-- {
		for _, q := range append(laterUndo[v], fmt.Sprintf(`DELETE FROM schema_migrations WHERE version = %d`, v)) {
			if _, err := st.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for _, c := range []struct{ seq, head int }{{1, 0}, {3, 1}} {
		var head, chainSeq sql.NullInt64
		if err := again.db.QueryRowContext(ctx, `SELECT p.batch_head, p.chain_seq FROM purged_observations p JOIN sensor_chains c ON c.id = p.chain_ref
			WHERE c.chain = 'feed01' AND p.observation_id = ?`, idValue(obs[c.seq-1].ID)).Scan(&head, &chainSeq); err != nil {
			t.Fatalf("seq %d's purge record: %v", c.seq, err)
		}
		if head != (sql.NullInt64{Int64: int64(c.head), Valid: true}) || chainSeq.Int64 != int64(c.seq) {
			t.Fatalf("seq %d's purge record: batch_head %+v, chain_seq %d", c.seq, head, chainSeq.Int64)
		}
	}
	if first, head, err := again.ChainBatch(ctx, "feed01", 5); err != nil || first != 4 || head != 6 {
		t.Fatalf("ChainBatch after the purged head = %d, %d, %v; want 4, 6", first, head, err)
	}
	if _, _, err := again.ChainBatch(ctx, "feed01", 2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ChainBatch of the batch whose head was purged: %v, want ErrNotFound", err)
	}
}
