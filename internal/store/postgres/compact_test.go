package postgres

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// storedRows reads every hot row, by seq.
func storedRows(t *testing.T, st *Store) map[int64]observe.Observation {
	t.Helper()
	out := map[int64]observe.Observation{}
	if err := st.rowsWhereOn(context.Background(), st.pool, `true`, `o.seq`, nil, func(seq int64, o *observe.Observation) error {
		out[seq] = *o
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// blockRows decodes every observation_blocks row by itself (obsblock
// and SQL only, not the store's reader), by seq, and checks each block's
// columns against its observations: one month, its ranges, its seqs.
func blockRows(t *testing.T, st *Store) (map[int64]observe.Observation, int) {
	t.Helper()
	ctx := context.Background()
	r, err := st.pool.Query(ctx, `SELECT seq_lo, seq_hi, n, seq_off, time_lo, time_hi, uid_lo::text, uid_hi::text, body, transcript
		FROM observation_blocks ORDER BY seq_lo`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[int64]observe.Observation{}
	blocks := 0
	for r.Next() {
		var lo, hi, tlo, thi int64
		var n int32
		var off []int32
		var ulo, uhi *string
		var body []byte
		var tr [][]byte
		if err := r.Scan(&lo, &hi, &n, &off, &tlo, &thi, &ulo, &uhi, &body, &tr); err != nil {
			t.Fatal(err)
		}
		blocks++
		obs, err := obsblock.Decode(body)
		if err != nil {
			t.Fatalf("block %d: %v", lo, err)
		}
		if len(obs) != int(n) || n > MaxBlockObservations || off != nil && len(off) != int(n) || tr != nil && len(tr) != int(n) {
			t.Fatalf("block %d: n %d, %d observations, %d offsets, %d transcripts", lo, n, len(obs), len(off), len(tr))
		}
		var seqs []int64
		for i := range obs {
			seq := lo + int64(i)
			if off != nil {
				seq = lo + int64(off[i])
			}
			seqs = append(seqs, seq)
			if tr != nil {
				obs[i].Transcript.Bytes = tr[i]
			}
			ns := obs[i].Time.UnixNano()
			if ns < tlo || ns > thi || monthOf(ns) != monthOf(tlo) {
				t.Fatalf("block %d: observation at %d outside its time range %d..%d or month", lo, ns, tlo, thi)
			}
			if uid, _ := idValues(obs[i].ID); uid.Valid && (ulo == nil || obs[i].ID < *ulo || obs[i].ID > *uhi) {
				t.Fatalf("block %d: id %s outside its UUID range %v..%v", lo, obs[i].ID, ulo, uhi)
			}
			if _, dup := out[seq]; dup {
				t.Fatalf("seq %d in two blocks", seq)
			}
			out[seq] = obs[i]
		}
		if seqs[0] != lo || slices.Max(seqs) != hi || !slices.IsSorted(seqs) {
			t.Fatalf("block %d..%d holds seqs %v", lo, hi, seqs)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out, blocks
}

func setWatermark(t *testing.T, st *Store, seq int64) {
	t.Helper()
	if _, err := st.pool.Exec(context.Background(), `INSERT INTO analysis_state (key, value) VALUES ('watermark', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, seq); err != nil {
		t.Fatal(err)
	}
}

// Compaction moves exactly the settled rows (at or below the watermark,
// older than the settle time) into blocks of up to the block size that
// never cross a month, keeps their seqs, and the blocks decode to exactly
// the observations the rows held; the heads of the signed batches go to
// observation_chain_heads.
func TestCompactionMovesSettledRowsIntoBlocks(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(30, 2))
	edge := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	// Seqs alternate between two months, so that a month's blocks have
	// gaps in their seqs (seq_off), and the lab's signed batches.
	for i := range 300 {
		when := edge.Add(-time.Hour + time.Duration(i)*time.Minute/3)
		if i%3 == 0 {
			when = edge.Add(time.Duration(i) * time.Second)
		}
		o := storetest.Observation(r, when, i)
		if i%7 == 0 {
			o.Transcript.Bytes = []byte{byte(i), 1, 2}
		}
		obs = append(obs, o)
	}
	obs = append(obs, storetest.LabObservations(2500, 30)...)
	for len(obs) > 0 {
		k := min(len(obs), 400)
		if err := st.InsertObservations(ctx, obs[:k]); err != nil {
			t.Fatal(err)
		}
		obs = obs[k:]
	}
	before := storedRows(t, st)
	setWatermark(t, st, 2700)
	now := before[1500].Time.Add(24 * time.Hour) // the lab's (seqs 301..2800) times increase: seqs from 1500 on are not settled
	opt := DefaultCompactOptions()
	opt.Now, opt.BlockSize, opt.TxRows = now, 256, 1000
	res, err := st.CompactObservations(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	hot := storedRows(t, st)
	cold, blocks := blockRows(t, st)
	if res.Rows != len(cold) || res.Blocks != blocks {
		t.Fatalf("compaction says %+v, the blocks hold %d observations in %d blocks", res, len(cold), blocks)
	}
	cutoff := now.Add(-24 * time.Hour).UnixNano()
	for seq, o := range before {
		settled := seq <= 2700 && o.Time.UnixNano() < cutoff
		h, isHot := hot[seq]
		c, isCold := cold[seq]
		switch {
		case settled && (!isCold || isHot):
			t.Fatalf("seq %d (settled) hot %v, in a block %v", seq, isHot, isCold)
		case !settled && (isCold || !isHot):
			t.Fatalf("seq %d (not settled) hot %v, in a block %v", seq, isHot, isCold)
		case isCold && !reflect.DeepEqual(c, o):
			t.Fatalf("seq %d decodes from its block as\n%+v\nstored as\n%+v", seq, c, o)
		case isHot && !reflect.DeepEqual(h, o):
			t.Fatalf("seq %d changed in its row", seq)
		}
	}
	if len(cold) != 1499 || len(hot) != 1301 {
		t.Fatalf("%d rows compacted, %d left: the test moves too few or too many", len(cold), len(hot))
	}
	var heads []int64 // seq, chain position
	for seq, o := range cold {
		if len(o.Chain.BatchSig) > 0 {
			heads = append(heads, seq<<20|int64(o.Chain.Seq))
		}
	}
	var got []int64
	if err := st.pool.QueryRow(ctx, `SELECT COALESCE(array_agg(h.seq << 20 | h.chain_seq), '{}') FROM observation_chain_heads h`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	slices.Sort(heads)
	slices.Sort(got)
	if len(heads) == 0 || !slices.Equal(got, heads) {
		t.Fatalf("chain heads of the blocks: seqs %v, want the signed heads compacted %v", got, heads)
	}
	// Again: nothing more is settled.
	if res, err := st.CompactObservations(ctx, opt); err != nil || res.Rows != 0 {
		t.Fatalf("a second compaction moved %+v (%v)", res, err)
	}
}

// A compaction waits for a purge that holds the legal holds' lock (its
// choice of rows reads rows only, after thawBlocks saw no block), and a
// purge that finds no block does not take ingest's lock: an INSERT runs
// beside it.
func TestCompactionWaitsForAPurge(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(30, 6))
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if err := st.InsertObservations(ctx, []observe.Observation{storetest.Observation(r, at, 0)}); err != nil {
		t.Fatal(err)
	}
	tx, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := lockHolds(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if n, err := st.thawBlocks(ctx, tx, math.MaxInt64, math.MaxInt64, 0); err != nil || n != 0 {
		t.Fatalf("thaw with no block: %d, %v", n, err)
	}
	// Ingest goes on meanwhile: the purge took no seq lock.
	ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := st.InsertObservations(ictx, []observe.Observation{storetest.Observation(r, at.Add(time.Second), 1)}); err != nil {
		t.Fatalf("an insert beside a purge that found no block: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		opt := DefaultCompactOptions()
		opt.Settle, opt.Now, opt.ignoreWatermark = 0, time.Unix(0, 1<<62), true
		_, err := st.CompactObservations(ctx, opt)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a compaction ran during a purge (%v)", err)
	case <-time.After(time.Second):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hot := storedRows(t, st); len(hot) != 0 {
		t.Fatalf("%d rows hot after the purge ended and the compaction ran", len(hot))
	}
}
