package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// chainObs is a chain of n signed observations (heads every 100th and the
// last), with a second chain of m observations: their rows are what
// several ingests sharing a bus store of two sensors.
func chainObs(r *rand.Rand, n, m int) (a, b []observe.Observation) {
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	mk := func(id string, key byte, n, k int) []observe.Observation {
		out := make([]observe.Observation, n)
		for i := range out {
			o := storetest.Observation(r, at.Add(time.Duration(k*1000+i)*time.Millisecond), i)
			o.Chain = observe.Chain{Key: bytes.Repeat([]byte{key}, 32), ID: id, Seq: uint64(i + 1), Prev: bytes.Repeat([]byte{byte(i)}, 32)}
			if (i+1)%100 == 0 || i == n-1 {
				o.Chain.BatchSig = bytes.Repeat([]byte{byte(i / 100)}, 64)
			}
			o.ID = observe.NewID(o.Time)
			out[i] = o
		}
		return out
	}
	return mk("c0ffee", 9, n, 0), mk("beef", 7, m, 1)
}

// readChain is ChainObservations(first, head) of chain, collected.
func readChain(st *Store, chain string, first, head uint64) ([]observe.Observation, error) {
	var got []observe.Observation
	err := st.ChainObservations(context.Background(), chain, first, head, func(o *observe.Observation) error {
		got = append(got, *o)
		return nil
	})
	return got, err
}

// checkChain says whether chain's positions first to head read back as
// want (want[0] at first).
func checkChain(t *testing.T, st *Store, chain string, first, head uint64, want []observe.Observation) {
	t.Helper()
	got, err := readChain(st, chain, first, head)
	if err != nil {
		t.Fatalf("ChainObservations(%s, %d, %d): %v", chain, first, head, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ChainObservations(%s, %d, %d) gave %d, want %d", chain, first, head, len(got), len(want))
	}
	for i := range got {
		if !got[i].Equal(&want[i]) {
			t.Fatalf("ChainObservations(%s, %d, %d): position %d read back %+v, want %+v", chain, first, head, first+uint64(i), got[i].Chain, want[i].Chain)
		}
	}
}

// A batch's rows are found whatever commits stored them and in whatever
// order: the head's part first and the rest after it (several ingests
// sharing a bus), another sensor's rows between them, a commit in
// reverse chain order, a redelivered row skipped, positions across the
// runs' blocks. Each position is found alone (the gate's Stored), and
// one never stored is not.
func TestChainRowsFoundInTheirCommits(t *testing.T) {
	requirePostgres(t)
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(fmt.Sprint("method=", method), func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			a, b := chainObs(rand.New(rand.NewPCG(26, 26)), 230, 40)
			mix := func(x, y []observe.Observation) []observe.Observation {
				var out []observe.Observation
				for i := range max(len(x), len(y)) {
					if i < len(x) {
						out = append(out, x[i])
					}
					if i < len(y) {
						out = append(out, y[i])
					}
				}
				return out
			}
			rev := slices.Clone(a[150:200])
			slices.Reverse(rev)
			for _, batch := range [][]observe.Observation{
				mix(a[50:100], b[:20]),                                   // the head at 100 first
				append(slices.Clone(a[:50]), rev...),                     // what comes before it, and 151 to 200 backwards
				mix(append(slices.Clone(a[5:8]), a[100:150]...), b[20:]), // 6 to 8 again (skipped), 101 to 150
				slices.Clone(a[200:]),
			} {
				if err := st.InsertObservations(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			if first, head, err := st.ChainBatch(ctx, "c0ffee", 60); err != nil || first != 1 || head != 100 {
				t.Fatalf("ChainBatch(60) = %d, %d, %v; want 1, 100", first, head, err)
			}
			checkChain(t, st, "c0ffee", 1, 100, a[:100])
			checkChain(t, st, "c0ffee", 101, 200, a[100:200])
			checkChain(t, st, "c0ffee", 1, 230, a)
			checkChain(t, st, "beef", 1, 40, b)
			for k := range a {
				checkChain(t, st, "c0ffee", uint64(k+1), uint64(k+1), a[k:k+1])
			}
			for _, k := range []uint64{231, 1 << 20} {
				if got, err := readChain(st, "c0ffee", k, k); err == nil {
					t.Fatalf("position %d, never stored: read %d rows", k, len(got))
				}
			}
			if got, err := readChain(st, "nochain", 1, 1); err == nil {
				t.Fatalf("a chain never stored: read %d rows", len(got))
			}
		})
	}
}

// A row an insider writes into observations by hand with a stored chain
// position (a copy of a stored row under a new id, its chain_prev
// changed) is not read as the batch's: the batch reads back as stored.
// One given a seq inside a commit's range is not read silently either:
// the batch does not read.
func TestChainForgedRowNotRead(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	a, _ := chainObs(rand.New(rand.NewPCG(27, 27)), 100, 0)
	if err := st.InsertObservations(ctx, slices.Clone(a)); err != nil {
		t.Fatal(err)
	}
	cols := `time_ns, item_id, facet_id, clock_uncertainty_ns, chain_ref, chain_seq, place_id, matched_id, clock_id,
		port, listen_port, pieces_have, pieces_total, ip, ip_zone, id_text, peer_id, node_id, user_hash, guid,
		transcript, transcript_ref, transcript_sha256, sensor_address, batch_sig`
	if _, err := st.pool.Exec(ctx, `INSERT INTO observations (uid, chain_prev, `+cols+`)
		SELECT gen_random_uuid(), '\x00', `+cols+` FROM observations WHERE chain_seq = 42`); err != nil {
		t.Fatal(err)
	}
	checkChain(t, st, "c0ffee", 1, 100, a)
	checkChain(t, st, "c0ffee", 42, 42, a[41:42])
	if _, err := st.pool.Exec(ctx, `INSERT INTO observations (seq, uid, chain_prev, `+cols+`) OVERRIDING SYSTEM VALUE
		SELECT seq, gen_random_uuid(), '\x00', time_ns + 1, `+cols[len("time_ns, "):]+` FROM observations WHERE chain_seq = 43 AND chain_prev <> '\x00'`); err != nil {
		t.Fatal(err)
	}
	if got, err := readChain(st, "c0ffee", 1, 100); err == nil {
		t.Fatalf("a forged row at position 43 inside the commit's seqs: the batch read %d rows without error", len(got))
	}
}

// Migration 0026 drops the index of every signed row for the heads' and
// records the runs of the rows stored before it: every batch reads back
// as before, and ingest goes on after it.
func TestMigration0026KeepsChains(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := chainObs(rand.New(rand.NewPCG(28, 28)), 300, 70)
	for _, batch := range [][]observe.Observation{append(slices.Clone(a[100:200]), b...), slices.Clone(a[:100])} {
		if err := st.InsertObservations(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	runUndo(t, st, undo0026)
	again := reopen(t, st, cfg)
	var all, heads, runs int
	if err := again.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'observations' AND indexname = 'observations_chain'),
		(SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'observations' AND indexname = 'observations_chain_heads'),
		(SELECT count(*) FROM observation_chain_runs)`).Scan(&all, &heads, &runs); err != nil {
		t.Fatal(err)
	}
	if all != 0 || heads != 1 || runs == 0 {
		t.Fatalf("after the migration: observations_chain %d, observations_chain_heads %d, %d runs", all, heads, runs)
	}
	if err := again.InsertObservations(ctx, slices.Clone(a[200:])); err != nil {
		t.Fatal(err)
	}
	checkChain(t, again, "c0ffee", 1, 300, a)
	checkChain(t, again, "beef", 1, 70, b)
	for _, k := range []int{1, 64, 65, 150, 299} {
		checkChain(t, again, "c0ffee", uint64(k), uint64(k), a[k-1:k])
	}
	if first, head, err := again.ChainBatch(ctx, "c0ffee", 150); err != nil || first != 101 || head != 200 {
		t.Fatalf("ChainBatch(150) = %d, %d, %v; want 101, 200", first, head, err)
	}
}

var _ store.LogStore = (*Store)(nil)
