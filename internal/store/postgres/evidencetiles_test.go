package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// leavesOnly hides a store's LogNodes: internal/evidence then computes
// from LogLeaves alone, as it does for a store that keeps each leaf.
type leavesOnly struct{ store.LogStore }

// refLog is the log as the observations themselves give it: the leaf of
// each (observe.LeafHash) at the index the store gives it.
type refLog struct {
	leaves [][]byte
	root   []byte
}

func makeRefLog(t *testing.T, st *Store, obs []observe.Observation) refLog {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil || len(idx) != len(obs) {
		t.Fatalf("LogIndexes: %d of %d, %v", len(idx), len(obs), err)
	}
	r := refLog{leaves: make([][]byte, len(obs))}
	for i := range obs {
		h, err := obs[i].LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		r.leaves[idx[obs[i].ID]] = h[:]
	}
	rng := (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0)
	for i, l := range r.leaves {
		if l == nil {
			t.Fatalf("no observation at leaf %d", i)
		}
		if err := rng.Append(l, nil); err != nil {
			t.Fatal(err)
		}
	}
	if r.root, err = rng.GetRootHash(nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// checkProofs checks that the store's root and the inclusion proof of
// every leaf are the reference log's, computed from its nodes and from its
// leaves alike.
func checkProofs(t *testing.T, st *Store, ref refLog) {
	t.Helper()
	ctx := context.Background()
	size := uint64(len(ref.leaves))
	if n, err := st.LogSize(ctx); err != nil || n != size {
		t.Fatalf("log size %d, %v; want %d", n, err, size)
	}
	all := make([]uint64, size)
	for i := range all {
		all[i] = uint64(i)
	}
	// LogLeavesAt: every third index, backwards and one twice, gives
	// their leaves (and their nodes' others), in order, once each.
	var some []uint64
	for i := int(size) - 1; i >= 0; i -= 3 {
		some = append(some, uint64(i))
	}
	some = append(some, some[0])
	got := map[uint64]bool{}
	last := -1
	if err := st.LogLeavesAt(ctx, some, func(i uint64, leaf []byte) error {
		if int(i) <= last || !bytes.Equal(leaf, ref.leaves[i]) {
			t.Fatalf("LogLeavesAt: leaf %d (after %d) is %x, want %x", i, last, leaf, ref.leaves[i])
		}
		last, got[i] = int(i), true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, i := range some {
		if !got[i] {
			t.Fatalf("LogLeavesAt: leaf %d not handed out", i)
		}
	}
	var want map[uint64][][]byte
	for _, ls := range []store.LogStore{st, leavesOnly{st}} {
		root, err := evidence.Root(ctx, ls, size)
		if err != nil || !bytes.Equal(root, ref.root) {
			t.Fatalf("%T: root %x, %v; the observations give %x", ls, root, err, ref.root)
		}
		proofs, root, err := evidence.InclusionProofs(ctx, ls, size, all)
		if err != nil || !bytes.Equal(root, ref.root) {
			t.Fatalf("%T: proofs' root %x, %v; want %x", ls, root, err, ref.root)
		}
		for i, p := range proofs {
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, size, ref.leaves[i], p, ref.root); err != nil {
				t.Fatalf("%T: leaf %d of %d: %v", ls, i, size, err)
			}
		}
		if want == nil {
			want = proofs
		} else if !reflect.DeepEqual(proofs, want) {
			t.Fatal("the proofs from the store's nodes and from its leaves differ")
		}
	}
}

func tileObs(r *rand.Rand, at time.Time, n, from int) []observe.Observation {
	out := make([]observe.Observation, n)
	for i := range out {
		out[i] = storetest.Observation(r, at.Add(time.Duration(from+i)*time.Second), from+i)
	}
	return out
}

// A store filled before migration 0021 (its leaves and ids in
// evidence_blocks, as that code wrote them) gives after it the same
// leaves, indexes, roots and proofs, its checkpoint still checks, and the
// blocks appended after it (in tiles) prove the same as the leaves the
// observations give, from the nodes and from the leaves, for commits of
// every size and alignment.
func TestMigration0021KeepsProofs(t *testing.T) {
	ctx := context.Background()
	levelZeroTiles(t)
	tileBlocksRead, leavesAtNodes = 2, 3 // the 11 blocks, and the rows of LogLeavesAt, are read in pages
	t.Cleanup(func() { tileBlocksRead, leavesAtNodes = 1024, 256 })
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(22, 22))
	at := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for _, n := range []int{37, 100, 5, 1, 300} {
		batch := tileObs(r, at, n, len(obs))
		if err := st.InsertObservations(ctx, slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
		obs = append(obs, batch...)
	}
	before := makeRefLog(t, st, obs)
	checkProofs(t, st, before)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	cp, err := evidence.MakeCheckpoint(ctx, st, key, at)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range undo0021 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var blocks, leaves int
	if err := st.pool.QueryRow(ctx, `SELECT count(*), sum(length(leaves) / 32) FROM evidence_blocks`).Scan(&blocks, &leaves); err != nil || blocks != 5 || leaves != len(obs) {
		t.Fatalf("before 0021: %d evidence_blocks rows of %d leaves (%v), want 5 of %d", blocks, leaves, err, len(obs))
	}
	st.Close()
	openTileLevel = tileLevel
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := makeRefLog(t, again, obs); !reflect.DeepEqual(got, before) {
		t.Fatal("the leaves or their indexes changed in the migration")
	}
	checkProofs(t, again, before)
	for _, n := range []int{3, 16, 29, 1, 700, 64} {
		batch := tileObs(r, at, n, len(obs))
		if err := again.InsertObservations(ctx, slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
		obs = append(obs, batch...)
	}
	after := makeRefLog(t, again, obs)
	if !reflect.DeepEqual(after.leaves[:len(before.leaves)], before.leaves) {
		t.Fatal("the leaves before the migration moved")
	}
	checkProofs(t, again, after)
	next, err := evidence.MakeCheckpoint(ctx, again, key, at.Add(time.Hour))
	if err != nil || next.Size != uint64(len(obs)) || !bytes.Equal(next.Root, after.root) {
		t.Fatalf("checkpoint after the migration: %d %x, %v; want %d %x (the one before: %d)", next.Size, next.Root, err, len(obs), after.root, cp.Size)
	}
	var tiles int
	if err := again.pool.QueryRow(ctx, `SELECT count(*) FROM evidence_tiles WHERE level = $1`, tileLevel).Scan(&tiles); err != nil || tiles != 6 {
		t.Fatalf("%d evidence_tiles rows of level %d (%v), want 6", tiles, tileLevel, err)
	}
	// A bundle of observations logged before and after the migration
	// checks with nothing but itself.
	checkBundle(t, again, key, []string{obs[0].ID, obs[200].ID, obs[442].ID, obs[443].ID, obs[700].ID, obs[len(obs)-1].ID}, nil)
}

// A row changed or removed after it was logged is caught when its node is
// read: the leaves of its node, its proof and those of its node's
// neighbours, a checkpoint's check of its own leaves, and a bundle all
// refuse it, naming the leaves; an observation in another node still
// proves.
func TestTilesCatchAChangedOrRemovedRow(t *testing.T) {
	ctx := context.Background()
	for _, tamper := range []struct{ name, sql, want string }{
		{"changed", `UPDATE observations SET port = port + 1 WHERE seq = $1`, "a row was changed"},
		{"removed", `DELETE FROM observations WHERE seq = $1`, "removed after it was logged"},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			st := openTest(t, DefaultConfig())
			r := rand.New(rand.NewPCG(23, 23))
			obs := tileObs(r, time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), 64, 0)
			if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
				t.Fatal(err)
			}
			ref := makeRefLog(t, st, obs)
			idx, err := st.LogIndexes(ctx, []string{obs[20].ID})
			if err != nil {
				t.Fatal(err)
			}
			var seq int64
			if err := st.pool.QueryRow(ctx, `SELECT seq FROM observations WHERE uid = $1`, obs[20].ID).Scan(&seq); err != nil {
				t.Fatal(err)
			}
			if _, err := st.pool.Exec(ctx, tamper.sql, seq); err != nil {
				t.Fatal(err)
			}
			i := idx[obs[20].ID] // leaf 20, in the node of leaves 16 to 31
			for _, j := range []uint64{i, 16, 31} {
				err := st.LogLeaves(ctx, j, j+1, func(uint64, []byte) error { return nil })
				if err == nil || !strings.Contains(err.Error(), tamper.want) {
					t.Errorf("LogLeaves(%d) after the row of leaf %d was %s: %v, want %q", j, i, tamper.name, err, tamper.want)
				}
				if _, _, err := evidence.InclusionProofs(ctx, st, 64, []uint64{j}); err == nil || !strings.Contains(err.Error(), tamper.want) {
					t.Errorf("proof of leaf %d: %v, want %q", j, err, tamper.want)
				}
			}
			// The other nodes, and the root from the nodes, still check.
			proofs, root, err := evidence.InclusionProofs(ctx, st, 64, []uint64{3, 40})
			if err != nil || !bytes.Equal(root, ref.root) {
				t.Fatalf("proofs of leaves 3 and 40: root %x, %v; want %x", root, err, ref.root)
			}
			for _, j := range []uint64{3, 40} {
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, j, 64, ref.leaves[j], proofs[j], ref.root); err != nil {
					t.Fatalf("leaf %d: %v", j, err)
				}
			}
			key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
			if _, err := evidence.MakeCheckpoint(ctx, st, key, time.Now()); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			err = evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "t", IDs: []string{obs[17].ID}, Now: time.Now()})
			if err == nil || !strings.Contains(err.Error(), tamper.want) {
				t.Fatalf("bundle of a neighbour of the %s row: %v, want %q", tamper.name, err, tamper.want)
			}
			buf.Reset()
			if err := evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "t", IDs: []string{obs[40].ID}, Now: time.Now()}); err != nil {
				t.Fatalf("bundle of an observation in another node: %v", err)
			}
		})
	}
}

// A purge keeps each purged observation's leaf in its purge record,
// hashed from the row before the purge: its transcript (whose form 1 leaf
// covers it) or its whole row (a chunk deleted, a partition dropped), and
// every leaf still proves, the purged ones and their neighbours.
func TestPurgeKeepsTheLeavesOfTiles(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(24, 24))
	var obs []observe.Observation
	for i := range 48 {
		// January, February and March 2025, interleaved: every node
		// holds observations of each month.
		at := time.Date(2025, time.Month(1+i%3), 3, 12, 0, i, 0, time.UTC)
		obs = append(obs, storetest.Observation(r, at, i))
	}
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	// Retention purges what the analysis has read.
	acfg := analysis.DefaultConfig()
	acfg.Now = func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	acfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ref := makeRefLog(t, st, obs)
	checkProofs(t, st, ref)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Transcripts of January and February, then February's rows one by
	// one (January's partition holds only purgeable rows: it is dropped).
	if _, err := st.PurgeChunk(ctx, retention.KindTranscripts, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), 100, now); err != nil {
		t.Fatal(err)
	}
	checkProofs(t, st, ref)
	for range 3 {
		if _, err := st.PurgeChunk(ctx, retention.KindObservations, time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC), 100, now); err != nil {
			t.Fatal(err)
		}
	}
	var rows, records, withLeaf int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM purged_observations WHERE what = 'observations'),
		(SELECT count(*) FROM purged_observations WHERE length(leaf) = 32)`).Scan(&rows, &records, &withLeaf); err != nil {
		t.Fatal(err)
	}
	if rows != 16 || records != 32 || withLeaf != 32 {
		t.Fatalf("%d rows left, %d purged whole, %d purge records with a leaf; want 16, 32, 32", rows, records, withLeaf)
	}
	var dropped bool
	if err := st.pool.QueryRow(ctx, `SELECT to_regclass('observations_p202501') IS NULL`).Scan(&dropped); err != nil || !dropped {
		t.Fatalf("January's partition dropped: %v, %v; want it dropped", dropped, err)
	}
	checkProofs(t, st, ref)
	// March's observations and, in purged.json, the leaves and proofs of
	// their purged neighbours (January's and February's: i%3 is 0 and 1).
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	if _, err := evidence.MakeCheckpoint(ctx, st, key, now); err != nil {
		t.Fatal(err)
	}
	checkBundle(t, st, key, []string{obs[2].ID, obs[17].ID, obs[47].ID}, []evidence.PurgedObservation{
		{ID: obs[0].ID, What: "observations", Time: obs[0].Time, At: now},
		{ID: obs[16].ID, What: "observations", Time: obs[16].Time, At: now},
		{ID: obs[46].ID, What: "observations", Time: obs[46].Time, At: now},
	})
}

// checkBundle writes the bundle of ids (and purged) and checks it as
// 'vigil verify' does.
func checkBundle(t *testing.T, st *Store, key ed25519.PrivateKey, ids []string, purged []evidence.PurgedObservation) {
	t.Helper()
	var buf bytes.Buffer
	if err := evidence.WriteBundle(context.Background(), &buf, st, key, evidence.Export{Target: "t", IDs: ids, Purged: purged, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Verify(bytes.NewReader(buf.Bytes()), int64(buf.Len()), verify.Options{})
	if err != nil || rep.Observations != len(ids) {
		t.Fatalf("verify: %d observations read, %v; want %d", rep.Observations, err, len(ids))
	}
	for _, p := range rep.Problems {
		// storetest.Observation's transcripts are random bytes: the
		// proofs, leaves, checkpoint and signatures must check.
		if !strings.Contains(fmt.Sprint(p), "transcript: does not decode") {
			t.Errorf("verify: %v", p)
		}
	}
}

// FuzzSeqRuns: what decodes re-encodes to what decodes to the same seqs,
// and no block's columns panic the decoder.
func FuzzSeqRuns(f *testing.F) {
	f.Add([]byte{0, 99}, int64(7), 100)
	f.Add([]byte{0, 3, 2, 0}, int64(1), 5)
	f.Add([]byte{0x80}, int64(1), 1)
	f.Add([]byte{}, int64(0), 0)
	f.Fuzz(func(t *testing.T, b []byte, first int64, n int) {
		seqs, err := seqRuns(b, first, n)
		if err != nil {
			return
		}
		if len(seqs) != n {
			t.Fatalf("%d seqs for %d", len(seqs), n)
		}
		again, err := appendSeqRuns(nil, first, seqs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := seqRuns(again, first, n)
		if err != nil || !slices.Equal(back, seqs) {
			t.Fatalf("%x: %v re-encoded %x decodes to %v, %v", b, seqs, again, back, err)
		}
		_, _ = decodeTileBlock(1+first&0xffff, first, int32(n), int16(n%14), b, b)
	})
}

// Several ingests at once (three stores on one schema, as three
// processes, committing batches of mixed sizes, some redelivered by
// another): one leaf a stored row, no gap, every proof the observations'
// own leaves give.
func TestTilesUnderConcurrentIngests(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	r := rand.New(rand.NewPCG(25, 25))
	obs := tileObs(r, time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), 1200, 0)
	stores := make([]*Store, 3)
	for i := range stores {
		st, err := Open(ctx, testDSN(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	errs := make(chan error, len(stores))
	for w, st := range stores {
		go func() {
			var err error
			// Each takes its third of the observations in batches of 7 to
			// 70, and the batch after its third's start again (a
			// redelivery of what another ingest stores).
			part := obs[w*400 : (w+1)*400]
			for from, k := 0, 0; from < len(part) && err == nil; k++ {
				to := min(len(part), from+7+(k*13)%64)
				batch := slices.Clone(part[from:to])
				if k%5 == 4 {
					batch = append(batch, obs[((w+1)%3)*400+k])
				}
				err = st.InsertObservations(ctx, batch)
				from = to
			}
			errs <- err
		}()
	}
	for range stores {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	checkProofs(t, stores[0], makeRefLog(t, stores[0], obs))
}

// A block changed or removed by whoever can drop the triggers is caught:
// a node or a block gone no longer gives the root signed before (the next
// checkpoint refuses, evidence.ErrLogChanged), and a leaf bound to
// another row (its seqs rewritten) no longer gives its node's hash (its
// node's bundle refuses; the checkpoint, which hashes no row, does not
// see it, as it never saw a row changed).
func TestTilesChangedBlockIsCaught(t *testing.T) {
	ctx := context.Background()
	for _, tamper := range []struct {
		sql        string
		checkpoint bool // the next checkpoint refuses
		bundle     int  // the observation whose bundle refuses
	}{
		{`UPDATE evidence_tiles SET nodes = overlay(nodes PLACING '\xff'::bytea FROM 40 FOR 1) WHERE first = 1`, true, 5},
		// The first block's 100th leaf bound to the second's first row.
		{`UPDATE evidence_tiles SET seqs = '\x00620100'::bytea WHERE first = 1`, false, 97},
		{`DELETE FROM evidence_tiles WHERE first = 101`, true, 110},
	} {
		st := openTest(t, DefaultConfig())
		r := rand.New(rand.NewPCG(26, 26))
		obs := tileObs(r, time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), 120, 0)
		for _, b := range [][]observe.Observation{obs[:100], obs[100:]} {
			if err := st.InsertObservations(ctx, slices.Clone(b)); err != nil {
				t.Fatal(err)
			}
		}
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
		if _, err := evidence.MakeCheckpoint(ctx, st, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, `ALTER TABLE evidence_tiles DISABLE TRIGGER USER`); err != nil {
			t.Fatal(err)
		}
		if tag, err := st.pool.Exec(ctx, tamper.sql); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %d rows", tamper.sql, err, tag.RowsAffected())
		}
		_, err := evidence.MakeCheckpoint(ctx, st, key, time.Now())
		if tamper.checkpoint && !errors.Is(err, evidence.ErrLogChanged) {
			t.Errorf("%s: checkpoint: %v, want ErrLogChanged", tamper.sql, err)
		}
		if !tamper.checkpoint && err != nil {
			t.Errorf("%s: checkpoint: %v", tamper.sql, err)
		}
		var buf bytes.Buffer
		if err := evidence.WriteBundle(ctx, &buf, st, key, evidence.Export{Target: "t", IDs: []string{obs[tamper.bundle].ID}, Now: time.Now()}); err == nil {
			t.Errorf("%s: the bundle of observation %d was written", tamper.sql, tamper.bundle)
		} else {
			t.Logf("%s: %v", tamper.sql, err)
		}
	}
}

// A block inserted over the leaves of others (an INSERT, which the
// append-only triggers let through) is refused: read from it, the next
// checkpoint would sign leaves that are not the commits' (here the second
// commit's first 50 observations gone and 50 of its others twice), and
// the leaves of the log would depend on which block a read starts from.
func TestTilesOverlappingBlockIsRefused(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(27, 27))
	obs := tileObs(r, time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC), 200, 0)
	for _, b := range [][]observe.Observation{obs[:100], obs[100:]} {
		if err := st.InsertObservations(ctx, slices.Clone(b)); err != nil {
			t.Fatal(err)
		}
	}
	ref := makeRefLog(t, st, obs)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	seqOf := func(i int) int64 {
		var seq int64
		if err := st.pool.QueryRow(ctx, `SELECT seq FROM observations WHERE uid = $1`, obs[i].ID).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	// Leaves 50 to 149: the first commit's observations 0 to 49, then the
	// second's 150 to 199, their nodes hashed right.
	var seqs []int64
	var leaves [][32]byte
	var which []int
	for i := range 200 {
		if i < 50 || i >= 150 {
			which = append(which, i)
		}
	}
	for _, i := range which {
		seqs = append(seqs, seqOf(i))
		leaves = append(leaves, [32]byte(ref.leaves[i]))
	}
	firstSeq := seqs[0] - 1
	runs, err := appendSeqRuns(nil, firstSeq, seqs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.pool.Exec(ctx, `INSERT INTO evidence_tiles (first, first_seq, n, level, seqs, nodes) VALUES (51, $1, 100, 4, $2, $3)`,
		firstSeq, runs, tileHashes(50, leaves, 4)); err != nil {
		t.Fatal(err)
	}
	root, err := evidence.Root(ctx, st, 200)
	if err == nil {
		t.Errorf("root over a log with a block over others: %x (the commits give %x), no error", root, ref.root)
	}
	if err := st.LogLeaves(ctx, 0, 200, func(uint64, []byte) error { return nil }); err == nil {
		t.Error("LogLeaves over a log with a block over others: no error")
	}
	if c, err := evidence.MakeCheckpoint(ctx, st, key, time.Now()); err == nil {
		t.Errorf("checkpoint signed over a log with a block over others: root %x (the commits give %x)", c.Root, ref.root)
	}
}

// A purge checks the leaves it records against their nodes first: a row
// changed after it was logged refuses the purge (its transcript's, its
// row's, its partition's), which would otherwise record the changed row's
// leaf for good with the original row gone, leaving its node's 16
// observations unprovable however the row is put back.
func TestPurgeRefusesAChangedRow(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []retention.Kind{retention.KindTranscripts, retention.KindObservations} {
		for _, whole := range []bool{true, false} { // January's partition dropped whole, or rows one by one
			if kind == retention.KindTranscripts && !whole {
				continue
			}
			t.Run(fmt.Sprintf("%s/%v", kind, whole), func(t *testing.T) {
				st := openTest(t, DefaultConfig())
				r := rand.New(rand.NewPCG(28, 28))
				var obs []observe.Observation
				for i := range 32 {
					month := time.January
					if !whole && i%2 == 1 {
						month = time.March // January's partition is not all due
					}
					obs = append(obs, storetest.Observation(r, time.Date(2025, month, 3, 12, 0, i, 0, time.UTC), i))
				}
				if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
					t.Fatal(err)
				}
				acfg := analysis.DefaultConfig()
				acfg.Now = func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
				acfg.SaveInterval = 0
				e, err := analysis.New(ctx, st, acfg)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Add(ctx, slices.Clone(obs)); err != nil {
					t.Fatal(err)
				}
				if err := e.Flush(ctx); err != nil {
					t.Fatal(err)
				}
				if _, err := st.pool.Exec(ctx, `UPDATE observations SET port = port + 1 WHERE uid = $1`, obs[20].ID); err != nil {
					t.Fatal(err)
				}
				now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
				_, err = st.PurgeChunk(ctx, kind, time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC), 100, now)
				if err == nil || !strings.Contains(err.Error(), "a row was changed") {
					t.Errorf("purge of a changed row: %v, want it refused", err)
				}
				var rows, records int
				if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations WHERE transcript IS NOT NULL), (SELECT count(*) FROM purged_observations)`).Scan(&rows, &records); err != nil {
					t.Fatal(err)
				}
				if rows != 32 || records != 0 {
					t.Errorf("after the refused purge: %d rows with their transcripts, %d purge records; want 32, 0", rows, records)
				}
			})
		}
	}
}

// A purge reads the leaves it records inside its own transaction: read
// through the pool, it needed a second connection while its transaction
// holds legal_holds' lock, and a pool whose other connections are taken
// (a hold being placed waits on that lock) never gave it one.
func TestPurgeNeedsNoSecondConnection(t *testing.T) {
	for _, whole := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.MaxConns = 2
		st := openTest(t, cfg)
		ctx := context.Background()
		r := rand.New(rand.NewPCG(29, 29))
		var obs []observe.Observation
		for i := range 32 {
			month := time.January
			if !whole && i%2 == 1 {
				month = time.March
			}
			obs = append(obs, storetest.Observation(r, time.Date(2025, month, 3, 12, 0, i, 0, time.UTC), i))
		}
		if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
			t.Fatal(err)
		}
		acfg := analysis.DefaultConfig()
		acfg.Now = func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
		acfg.SaveInterval = 0
		e, err := analysis.New(ctx, st, acfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Add(ctx, slices.Clone(obs)); err != nil {
			t.Fatal(err)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		other, err := st.pool.Acquire(ctx) // the pool's other connection, taken
		if err != nil {
			t.Fatal(err)
		}
		// Not a measure of time: a purge that waits for a connection
		// waits until this ends.
		wait, cancel := context.WithTimeout(ctx, 20*time.Second)
		_, err = st.PurgeChunk(wait, retention.KindObservations, time.Date(2025, 2, 10, 0, 0, 0, 0, time.UTC), 100, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		cancel()
		other.Release()
		if err != nil {
			t.Errorf("purge (partition dropped whole: %v) with the pool's other connection taken: %v", whole, err)
		}
	}
}

// Each leaf index is read from exactly one table: evidence_log below
// evidence_blocks' first leaf, evidence_blocks below evidence_tiles'
// first leaf. A row inserted into an older table at or beyond where the
// next one starts (their triggers stop UPDATE and DELETE, not INSERT) is
// never read in place of the leaves there: a read across the boundary
// returns the right leaves or refuses, naming the table.
func TestOlderLogTablesEndWhereTheNextStarts(t *testing.T) {
	ctx := context.Background()
	levelZeroTiles(t)
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(24, 24))
	at := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for _, n := range []int{37, 100} {
		batch := tileObs(r, at, n, len(obs))
		if err := st.InsertObservations(ctx, slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
		obs = append(obs, batch...)
	}
	for _, q := range undo0021 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	openTileLevel = tileLevel
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	batch := tileObs(r, at, 64, len(obs))
	if err := again.InsertObservations(ctx, slices.Clone(batch)); err != nil {
		t.Fatal(err)
	}
	obs = append(obs, batch...)
	ref := makeRefLog(t, again, obs)
	tiles, err := again.tilesStart(ctx)
	if err != nil || tiles != 137 {
		t.Fatalf("tiles start at leaf %d (%v), want 137", tiles, err)
	}
	forged := bytes.Repeat([]byte{0xAA}, 32)
	openOlderTables(t, again)
	if _, err := again.pool.Exec(ctx, `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES ($1, $2, '\x00'::bytea, $3)`,
		tiles+1, int64(1)<<40, bytes.Repeat(forged, 20)); err != nil {
		t.Fatal(err)
	}
	if _, err := again.pool.Exec(ctx, `INSERT INTO evidence_log (idx, obs_seq, leaf) VALUES (1, $1, $2)`, int64(1)<<41, forged); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from, to uint64
		table    string
	}{
		{0, 16, "evidence_log"},       // evidence_log row over evidence_blocks' leaf 0
		{128, 144, "evidence_blocks"}, // the leaf cache's group of 16 across the tiles' start
		{130, 201, "evidence_blocks"},
	} {
		var got [][]byte
		err := again.LogLeaves(ctx, c.from, c.to, func(i uint64, leaf []byte) error {
			if bytes.Equal(leaf, forged) {
				return fmt.Errorf("leaf %d is the inserted one", i)
			}
			got = append(got, slices.Clone(leaf))
			return nil
		})
		switch {
		case err == nil:
			if !reflect.DeepEqual(got, ref.leaves[c.from:c.to]) {
				t.Errorf("LogLeaves(%d, %d): wrong leaves", c.from, c.to)
			}
		case !strings.Contains(err.Error(), c.table):
			t.Errorf("LogLeaves(%d, %d): %v, want the right leaves or an error naming %s", c.from, c.to, err, c.table)
		}
	}
	// LogIndexes of observations logged in evidence_blocks, given by rows
	// inserted beyond the tiles' start: the right index or a refusal.
	seqOf := func(id string) int64 {
		where, arg := idWhere(id)
		var seq int64
		if err := again.pool.QueryRow(ctx, `SELECT o.seq FROM observations o WHERE `+where, arg).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	if _, err := again.pool.Exec(ctx, `INSERT INTO evidence_log (idx, obs_seq, leaf) VALUES ($1, $2, $3)`, tiles+2, seqOf(obs[5].ID), forged); err != nil {
		t.Fatal(err)
	}
	key := idKey(obs[6].ID)
	ids := append(binary.AppendUvarint(nil, uint64(len(key))), key...)
	if _, err := again.pool.Exec(ctx, `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES ($1, $2, $3, $4)`,
		tiles+50, seqOf(obs[6].ID), ids, forged); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o     observe.Observation
		table string
	}{{obs[5], "evidence_log"}, {obs[6], "evidence_blocks"}} {
		idx, err := again.LogIndexes(ctx, []string{c.o.ID})
		h, _ := c.o.LeafHash()
		switch {
		case err == nil:
			if i, ok := idx[c.o.ID]; !ok || !bytes.Equal(ref.leaves[i], h[:]) {
				t.Errorf("LogIndexes(%s) = %d, %v: not its leaf's index", c.table, i, ok)
			}
		case !strings.Contains(err.Error(), c.table):
			t.Errorf("LogIndexes(%s): %v, want its index or an error naming %[1]s", c.table, err)
		}
	}
	// Reads that meet no inserted row still answer; a read from the
	// first evidence_blocks row, whose first leaf the evidence_log row
	// inserted at idx 1 claims too, is refused.
	var got [][]byte
	if err := again.LogLeaves(ctx, 40, 130, func(i uint64, leaf []byte) error { got = append(got, slices.Clone(leaf)); return nil }); err != nil ||
		!reflect.DeepEqual(got, ref.leaves[40:130]) {
		t.Errorf("LogLeaves(40, 130): %d leaves, %v", len(got), err)
	}
	if err := again.LogLeaves(ctx, 1, 30, func(i uint64, leaf []byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "evidence_log") {
		t.Errorf("LogLeaves(1, 30): %v, want a refusal naming evidence_log", err)
	}
}
