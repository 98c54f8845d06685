package postgres

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// blockMonths stores, signed in batches of 4 and then all compacted into
// blocks (the analysis run over them first, so that the watermark is past
// them): nJan observations in January 2024 (without their transcripts'
// bytes, so that the purge of transcripts leaves their blocks alone), 40 in February 2024 (the
// eleventh at 192.0.2.77:51413, the address of the target a test holds),
// 20 in March 2024 before the 15th and 20 after it. It returns the
// observations as stored, by seq, and the analysis's targets by label.
func blockMonths(t *testing.T, st *Store, nJan int) (map[int64]observe.Observation, map[string]string) {
	t.Helper()
	ctx := context.Background()
	r := rand.New(rand.NewPCG(41, uint64(nJan)))
	var raw []observe.Observation
	add := func(at time.Time, ip string) {
		o := storetest.Observation(r, at, len(raw)+1)
		o.ID = observe.NewID(o.Time)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(ip), 51413
		o.Chain = observe.Chain{}
		raw = append(raw, o)
	}
	for i := range nJan { // their transcripts' bytes purged already (kept a year, the rows two)
		add(time.Date(2024, 1, 3, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute), fmt.Sprintf("198.18.%d.%d", i/200, i%200+1))
		raw[len(raw)-1].Transcript.Bytes = nil
	}
	for i := range 40 {
		ip := fmt.Sprintf("198.19.0.%d", i+1)
		if i == 10 {
			ip = "192.0.2.77"
		}
		add(time.Date(2024, 2, 3, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Hour), ip)
	}
	for i := range 40 { // one block spanning the cutoff (2024-03-15)
		add(time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*12*time.Hour), fmt.Sprintf("198.19.1.%d", i+1))
	}
	obs := signedBatches(t, raw, 41)
	for m := 1; m <= 3; m++ { // each month its partitions, as a deployment's job made them
		if _, err := st.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, time.Date(2024, time.Month(m), 1, 0, 0, 0, 0, time.UTC).UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	targets := storedAndAnalysed(t, st, obs, time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC))
	compactAll(t, st)
	if hot := storedRows(t, st); len(hot) != 0 {
		t.Fatalf("%d rows left hot", len(hot))
	}
	stored, _ := blockRows(t, st)
	if len(stored) != len(obs) {
		t.Fatalf("%d observations in blocks, %d stored", len(stored), len(obs))
	}
	return stored, targets
}

// Attack (court), with blocks: a purge of a store whose every
// observation is in blocks, read without thawing (PurgePlan's counts,
// January's month dropped with its blocks' partition, its records decoded
// from the blocks): a held row in an otherwise due month (February), a
// block that spans the cutoff (March). The plan counts exactly the due
// observations; every observation due has a purge record holding exactly
// its seq, time, chain and position, leaf (as the log's tiles hold it),
// address and port, checked one by one against what was stored; every
// other observation (the held one's whole signed batch, those after the
// cutoff) reads back unchanged.
func TestRetentionReadsBlocksWithoutThawing(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	stored, targets := blockMonths(t, st, 2100)
	now := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	cfg := retention.DefaultConfig()
	cutObs, cutTr := now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)
	var seqs []int64
	var held observe.Observation
	for seq, o := range stored {
		seqs = append(seqs, seq)
		if o.Endpoint.IP.String() == "192.0.2.77" {
			held = o
		}
	}
	leaves, err := st.checkedLeaves(ctx, st.pool, seqs)
	if err != nil || len(leaves) != len(seqs) {
		t.Fatalf("%d leaves of %d observations: %v", len(leaves), len(seqs), err)
	}
	first, head, err := st.ChainBatch(ctx, held.Chain.ID, held.Chain.Seq)
	if err != nil || head-first != 3 {
		t.Fatalf("the held observation's batch: %d..%d, %v", first, head, err)
	}
	inBatch := func(o observe.Observation) bool {
		return o.Chain.ID == held.Chain.ID && o.Chain.Seq >= first && o.Chain.Seq <= head
	}
	if _, err := st.AddHold(ctx, retention.Hold{Target: targets["192.0.2.77:51413"], Reason: "court case", By: "a", At: now}); err != nil {
		t.Fatal(err)
	}
	var want retention.Due
	var wantTr retention.Due
	for _, o := range stored {
		t1 := o.Time.UTC()
		if o.Time.Before(cutObs) {
			if inBatch(o) {
				want.Held++
			} else {
				want.Add(retention.Span{N: 1, Oldest: t1, Newest: t1})
			}
		}
		if o.Time.Before(cutTr) && o.Transcript.Bytes != nil {
			if inBatch(o) {
				wantTr.Held++
			} else {
				wantTr.Add(retention.Span{N: 1, Oldest: t1, Newest: t1})
			}
		}
	}
	plan, err := st.PurgePlan(ctx, map[retention.Kind]time.Time{retention.KindObservations: cutObs, retention.KindTranscripts: cutTr, retention.KindLeads: cutTr})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan[retention.KindObservations]; got != want {
		t.Errorf("plan of observations %+v, want %+v", got, want)
	}
	if got := plan[retention.KindTranscripts]; got != wantTr {
		t.Errorf("plan of transcripts %+v, want %+v", got, wantTr)
	}
	partsBefore := map[string]bool{}
	for _, part := range []string{"observations_p202401", "observation_blocks_p202401"} {
		var there bool
		if err := st.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, part).Scan(&there); err != nil {
			t.Fatal(err)
		}
		partsBefore[part] = there
	}
	run := &retention.Runner{Store: st, Trail: &audit.Log{Store: st}, Config: cfg, Now: func() time.Time { return now }}
	if _, err := run.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"observations_p202401", "observation_blocks_p202401"} {
		if !partsBefore[part] {
			t.Errorf("partition %s was not made", part)
		}
		var gone bool
		if err := st.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NULL`, part).Scan(&gone); err != nil || !gone {
			t.Errorf("partition %s is still there (%v)", part, err)
		}
	}
	type record struct {
		what       string
		seq, ns    int64
		chain      *string
		chainSeq   *int64
		leaf       []byte
		ip         *string
		port       *int64
		purgedWhen int64
	}
	recs := map[string]record{}
	r, err := st.pool.Query(ctx, `SELECT p.observation_id, p.what, p.seq, p.time_ns, c.chain, p.chain_seq, p.leaf, p.ip, p.port, p.purged_ns
		FROM purged_observations p LEFT JOIN sensor_chains c ON c.id = p.chain_ref`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id string
		var x record
		if err := r.Scan(&id, &x.what, &x.seq, &x.ns, &x.chain, &x.chainSeq, &x.leaf, &x.ip, &x.port, &x.purgedWhen); err != nil {
			t.Fatal(err)
		}
		recs[id] = x
	}
	r.Close()
	hot := storedRows(t, st)
	cold, _ := blockRows(t, st)
	purged := 0
	for seq, o := range stored {
		due := o.Time.Before(cutObs) && !inBatch(o)
		x, ok := recs[o.ID]
		after, inHot := hot[seq]
		if !inHot {
			after, inHot = cold[seq]
		}
		leaf := leaves[seq]
		check := func(what string) {
			t.Helper()
			switch {
			case !ok:
				t.Errorf("seq %d (%s, %s): no purge record", seq, o.ID, o.Time)
			case x.what != what || x.seq != seq || x.ns != o.Time.UnixNano() || x.purgedWhen != now.UnixNano():
				t.Errorf("seq %d: record %+v, want one of its %s", seq, x, what)
			case x.chain == nil || *x.chain != o.Chain.ID || x.chainSeq == nil || *x.chainSeq != int64(o.Chain.Seq):
				t.Errorf("seq %d: record's chain %v %v, want %s %d", seq, x.chain, x.chainSeq, o.Chain.ID, o.Chain.Seq)
			case !bytes.Equal(x.leaf, leaf[:]):
				t.Errorf("seq %d: record's leaf %x, the log's %x", seq, x.leaf, leaf)
			case x.ip == nil || *x.ip != o.Endpoint.IP.String() || x.port == nil || *x.port != int64(o.Endpoint.Port):
				t.Errorf("seq %d: record's address %v:%v, want %s:%d", seq, x.ip, x.port, o.Endpoint.IP, o.Endpoint.Port)
			}
		}
		if !due {
			if !inHot {
				t.Errorf("seq %d (%s, %s) is gone, it was not due", seq, o.ID, o.Time)
				continue
			}
			wantAfter := o
			if o.Time.Before(cutTr) && !inBatch(o) && o.Transcript.Bytes != nil {
				wantAfter.Transcript.Bytes = nil // its transcript purged
				check("transcripts")
			} else if ok {
				t.Errorf("seq %d (%s) kept whole has a purge record %+v", seq, o.Time, x)
			}
			if !reflect.DeepEqual(after, wantAfter) {
				t.Errorf("seq %d changed: %+v, was %+v", seq, after, wantAfter)
			}
			continue
		}
		purged++
		if inHot {
			t.Errorf("seq %d (%s) is still stored, it was due", seq, o.Time)
		}
		check("observations")
	}
	if purged != int(want.N) || len(hot)+len(cold) != len(stored)-purged {
		t.Errorf("%d purged, %d planned; %d left of %d", purged, want.N, len(hot)+len(cold), len(stored))
	}
}

// A month of blocks wholly due is counted and dropped, its records
// written, without ingest's lock: another session holds it throughout
// (an ingest's long transaction), and neither the plan nor the drop
// waits for it. Putting the blocks back into rows (what retention did
// before) took that lock, and waited.
func TestRetentionDropsBlocksWithoutIngestsLock(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	stored, _ := blockMonths(t, st, 1500)
	jan := 0
	for _, o := range stored {
		if o.Time.Month() == time.January {
			jan++
		}
	}
	conn, err := st.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, st.seqLockKey()); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, st.seqLockKey())
	cut := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	plan, err := st.PurgePlan(tctx, map[retention.Kind]time.Time{retention.KindObservations: cut, retention.KindTranscripts: cut, retention.KindLeads: cut})
	if err != nil || plan[retention.KindObservations].N != int64(jan) {
		t.Fatalf("plan under ingest's lock: %+v, %v; want %d due", plan[retention.KindObservations], err, jan)
	}
	got, err := st.PurgeChunk(tctx, retention.KindObservations, cut, 500, cut)
	if err != nil || got.N != int64(jan) {
		t.Fatalf("January's drop under ingest's lock: %+v, %v; want %d", got, err, jan)
	}
	// February's 40 transcripts, purged in their blocks.
	cut = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	if got, err = st.PurgeChunk(tctx, retention.KindTranscripts, cut, 500, cut); err != nil || got.N != 40 {
		t.Fatalf("February's transcripts under ingest's lock: %+v, %v; want 40", got, err)
	}
}

// The month's drop timed with blocks (read natively), with the same
// blocks first put back into rows (what retention did before: thawBlocks,
// timed alone) and with rows, in the same run: a log, not an assertion.
// VIGIL_BENCH_MONTHDROP=N runs it with N observations in the month
// (docs/benchmarks.md, "Retention's month drop with blocks").
func TestMonthDropTimed(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_BENCH_MONTHDROP"))
	if n <= 0 {
		t.Skip("VIGIL_BENCH_MONTHDROP=N (observations in the month) runs it")
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	var raw []observe.Observation
	for i := range n {
		o := storetest.Observation(r, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*(30*24*time.Hour/time.Duration(n))), i+1)
		o.ID, o.Chain, o.Transcript.Bytes = observe.NewID(o.Time), observe.Chain{}, nil
		raw = append(raw, o)
	}
	obs := signedBatches(t, raw, 7)
	cut := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range []string{"rows", "blocks", "thawed blocks"} {
		st := openTest(t, DefaultConfig())
		if _, err := st.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < len(obs); k += 5000 {
			if err := st.InsertObservations(ctx, obs[k:min(k+5000, len(obs))]); err != nil {
				t.Fatal(err)
			}
		}
		setWatermark(t, st, 1<<62)
		if mode != "rows" {
			compactAll(t, st)
		}
		start := time.Now()
		var thaw time.Duration
		if mode == "thawed blocks" {
			err := st.writeTx(ctx, func(tx pgx.Tx) error {
				if err := lockHolds(ctx, tx); err != nil {
					return err
				}
				_, err := st.thawBlocks(ctx, tx, cut.UnixNano(), math.MinInt64, 0)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			thaw = time.Since(start)
		}
		got, err := st.PurgeChunk(ctx, retention.KindObservations, cut, 500, cut)
		if err != nil || got.N != int64(n) {
			t.Fatalf("%s: dropped %d of %d: %v", mode, got.N, n, err)
		}
		total := time.Since(start)
		t.Logf("%s: %d observations, month dropped in %s (of which putting blocks back into rows, under ingest's lock: %s); %.1f µs an observation",
			mode, n, total.Round(time.Millisecond), thaw.Round(time.Millisecond), float64(total.Microseconds())/float64(n))
	}
}

// A month holding a held observation is purged in chunks, its blocks put
// back into rows a chunk's worth at a time, not the month at once: the
// first chunk thaws the held observation's block (to find its batch) and
// purges from it, and leaves January's two other blocks alone; the
// chunks that follow purge all of January but the held batch.
func TestRetentionThawsAMonthHoldingAHeldRowAChunkAtATime(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	stored, targets := blockMonths(t, st, 3000)
	var held observe.Observation
	for _, o := range stored {
		if o.Endpoint.IP.String() == "198.18.0.1" {
			held = o
		}
	}
	first, head, err := st.ChainBatch(ctx, held.Chain.ID, held.Chain.Seq)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.AddHold(ctx, retention.Hold{Target: targets["198.18.0.1:51413"], Reason: "court case", By: "a", At: now}); err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	janBlocks := func() (n int) {
		if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observation_blocks WHERE time_lo < $1`, cut.UnixNano()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := janBlocks(); n != 3 {
		t.Fatalf("%d blocks in January, want 3", n)
	}
	got, err := st.PurgeChunk(ctx, retention.KindObservations, cut, 500, now)
	if err != nil || got.N != 500 {
		t.Fatalf("first chunk: %+v, %v", got, err)
	}
	if n := janBlocks(); n != 2 {
		t.Errorf("after the first chunk %d of January's blocks are left, want 2 (only the held one's thawed)", n)
	}
	total := got.N
	for got.N > 0 {
		if got, err = st.PurgeChunk(ctx, retention.KindObservations, cut, 500, now); err != nil {
			t.Fatal(err)
		}
		total += got.N
	}
	if want := int64(3000 - (head - first + 1)); total != want {
		t.Errorf("%d purged, want %d (all January but the held batch)", total, want)
	}
	if n, err := st.ChainPurged(ctx, held.Chain.ID, first, head); err != nil || n != 0 {
		t.Errorf("the held batch has %d purged members (%v)", n, err)
	}
}
