package postgres

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
)

// A prototype, not the store: observations in blocks (issue 13,
// docs/deployment.md "Observations in blocks: the plan"). It stores the
// disk benchmark's observations in today's table, copies them into two
// kinds of block tables in the same schema (dropped with it), and
// measures each one's bytes and the time of the reads the store makes:
//
//   - cols: a row for each block of -proto-block observations, a column
//     array a field (bigint[], inet[], bytea[] ...) compressed by TOAST
//     (pglz, the server's default, and lz4), read in SQL by unnest or by
//     subscripts;
//   - blk: a row for each block holding obsblock's bytes (STORAGE
//     EXTERNAL: not compressed again), decoded in Go.
//
// Both keep the block's least and greatest seq, time and UUID in plain
// columns (its primary key (time_lo, seq_lo), GiST indexes of its seq
// and time ranges), the
// transcripts' bytes in a column of their own (counted apart, as the
// disk benchmark counts them), and a signed batch's heads in a side
// table (chain_ref, chain_seq, seq). Nothing of the store reads them.

var protoBlock = flag.Int("proto-block", 1024, "observations a block in BenchmarkObservationBlocksProto")

// protoReps is how many times each read is timed on each table.
const protoReps = 5

// protoArrays are the array columns of a cols block, as observations'
// columns (migration 0023) with their types.
var protoArrays = [][2]string{
	{"time_ns", "bigint"}, {"item_id", "bigint"}, {"facet_id", "bigint"}, {"clock_uncertainty_ns", "bigint"},
	{"chain_ref", "bigint"}, {"chain_seq", "bigint"}, {"place_id", "integer"}, {"matched_id", "integer"},
	{"clock_id", "integer"}, {"port", "integer"}, {"listen_port", "integer"}, {"pieces_have", "integer"},
	{"pieces_total", "integer"}, {"uid", "uuid"}, {"ip", "inet"}, {"ip_zone", "text"}, {"id_text", "text"},
	{"peer_id", "bytea"}, {"node_id", "bytea"}, {"user_hash", "bytea"}, {"guid", "bytea"}, {"transcript", "bytea"},
	{"transcript_ref", "text"}, {"transcript_sha256", "bytea"}, {"sensor_address", "text"}, {"chain_prev", "bytea"},
	{"batch_sig", "bytea"},
}

// BenchmarkObservationBlocksProto: bytes an observation and read times
// of today's table (rows), the cols blocks and the blk blocks, for the
// disk benchmark's two shapes (BenchmarkDiskPerObservation).
//
//	go test ./internal/store/postgres -run '^$' -bench ObservationBlocksProto -benchtime 1x -bench-observations 200000 -v
func BenchmarkObservationBlocksProto(b *testing.B) {
	inBothShapes(b, protoRun)
}

// protoEnv is one run's store, its month and its block tables.
type protoEnv struct {
	b        *testing.B
	st       *Store
	n        int
	lo, hi   int64 // the month's bounds (ns)
	seqs     []int64
	ids      []string
	times    []int64
	maxSeq   int64
	blkBody  int64 // the blk blocks' bodies, bytes
	noChain  int64 // the same bodies encoded without chain_prev
	colsName string
}

func protoRun(b *testing.B, n int, fill func(batch []observe.Observation)) {
	ctx := context.Background()
	st := openTest(b, DefaultConfig())
	batch := make([]observe.Observation, 10000)
	for done := 0; done < n; done += len(batch) {
		k := min(len(batch), n-done)
		fill(batch[:k])
		if err := st.InsertObservations(ctx, batch[:k]); err != nil {
			b.Fatal(err)
		}
	}
	e := &protoEnv{b: b, st: st, n: n}
	e.load(ctx)
	e.exec(ctx, `VACUUM ANALYZE observations, observation_chain_runs`)
	rows := e.size(ctx, `SELECT (SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('observations'))
		- (SELECT COALESCE(SUM(pg_column_size(transcript)), 0) FROM observations)`)
	runs := e.size(ctx, `SELECT pg_total_relation_size('observation_chain_runs')`)
	idx := e.size(ctx, `SELECT SUM(pg_indexes_size(relid)) FROM pg_partition_tree('observations')`)
	heads := e.buildHeads(ctx)
	e.buildCols(ctx, "proto_cols_pglz", "pglz")
	e.buildCols(ctx, "proto_cols_lz4", "lz4")
	e.colsName = "proto_cols_lz4"
	e.buildBlk(ctx)
	e.exec(ctx, `VACUUM ANALYZE proto_cols_pglz, proto_cols_lz4, proto_blk, proto_heads`)
	colsBytes := func(t string) float64 {
		return e.size(ctx, `SELECT (SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('`+t+`'))
			- (SELECT COALESCE(SUM(pg_column_size(transcript)), 0) FROM `+t+`)`)
	}
	pglz, lz4 := colsBytes("proto_cols_pglz"), colsBytes("proto_cols_lz4")
	blk := colsBytes("proto_blk")
	chainPrev := e.size(ctx, `SELECT SUM(pg_column_size(chain_prev)) FROM proto_cols_lz4`)
	per := func(v float64) float64 { return v / float64(n) }
	b.ReportMetric(per(rows+runs), "rows-bytes/obs")
	b.ReportMetric(per(idx), "rows-index-bytes/obs")
	b.ReportMetric(per(pglz+runs+heads), "cols-pglz-bytes/obs")
	b.ReportMetric(per(lz4+runs+heads), "cols-lz4-bytes/obs")
	b.ReportMetric(per(lz4-chainPrev+runs+heads), "cols-lz4-nochainprev-bytes/obs")
	b.ReportMetric(per(blk+runs+heads), "blk-bytes/obs")
	b.ReportMetric(per(blk-float64(e.blkBody-e.noChain)+runs+heads), "blk-nochainprev-bytes/obs")
	b.ReportMetric(per(heads), "heads-bytes/obs")
	b.ReportMetric(per(e.size(ctx, `SELECT SUM(pg_indexes_size(relid)) FROM pg_partition_tree('proto_blk')`)), "blk-index-bytes/obs")
	b.ReportMetric(per(float64(e.blkBody)), "blk-body-bytes/obs")
	e.columnBytes(ctx, "proto_cols_lz4")
	e.reads(ctx)
}

func (e *protoEnv) exec(ctx context.Context, q string, args ...any) {
	e.b.Helper()
	if _, err := e.st.pool.Exec(ctx, q, args...); err != nil {
		e.b.Fatalf("%v: %s", err, q)
	}
}

func (e *protoEnv) size(ctx context.Context, q string) float64 {
	e.b.Helper()
	var v *int64
	if err := e.st.pool.QueryRow(ctx, q).Scan(&v); err != nil {
		e.b.Fatalf("%v: %s", err, q)
	}
	if v == nil {
		return 0
	}
	return float64(*v)
}

// load reads the stored rows' seqs, ids and times (seq order) and the
// month they lie in.
func (e *protoEnv) load(ctx context.Context) {
	r, err := e.st.pool.Query(ctx, `SELECT seq, `+obsIDCol+`, time_ns FROM observations o ORDER BY seq`)
	if err != nil {
		e.b.Fatal(err)
	}
	for r.Next() {
		var seq, ns int64
		var id string
		if err := r.Scan(&seq, &id, &ns); err != nil {
			e.b.Fatal(err)
		}
		e.seqs, e.ids, e.times = append(e.seqs, seq), append(e.ids, id), append(e.times, ns)
	}
	if err := r.Err(); err != nil {
		e.b.Fatal(err)
	}
	e.maxSeq = e.seqs[len(e.seqs)-1]
	first, last := time.Unix(0, slices.Min(e.times)).UTC(), time.Unix(0, slices.Max(e.times)).UTC()
	lo := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(last.Year(), last.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	e.lo, e.hi = lo.UnixNano(), hi.UnixNano()
	if lo.AddDate(0, 1, 0) != hi {
		e.b.Fatalf("the observations span %v to %v: more than one month", first, last)
	}
}

// buildHeads writes the signed batches' heads (a row a head: what
// observations_chain_heads indexes today) and says their bytes.
func (e *protoEnv) buildHeads(ctx context.Context) float64 {
	e.exec(ctx, `CREATE TABLE proto_heads (chain_ref bigint NOT NULL, chain_seq bigint NOT NULL, seq bigint NOT NULL,
		PRIMARY KEY (chain_ref, chain_seq))`)
	e.exec(ctx, `INSERT INTO proto_heads SELECT chain_ref, chain_seq, seq FROM observations WHERE batch_sig IS NOT NULL`)
	e.exec(ctx, `VACUUM ANALYZE proto_heads`)
	return e.size(ctx, `SELECT pg_total_relation_size('proto_heads')`)
}

// buildCols copies the stored rows into cols blocks of -proto-block
// (consecutive seqs: one month here, times in seq order), an array a
// column, NULL when every value of the block is NULL, compressed by
// TOAST with method.
func (e *protoEnv) buildCols(ctx context.Context, name, method string) {
	var def, agg []string
	for _, c := range protoArrays {
		def = append(def, c[0]+" "+c[1]+"[]")
		agg = append(agg, fmt.Sprintf(`CASE WHEN bool_and(%[1]s IS NULL) THEN NULL ELSE array_agg(%[1]s ORDER BY seq) END`, c[0]))
	}
	e.exec(ctx, `CREATE TABLE `+name+` (seq_lo bigint NOT NULL, seq_hi bigint NOT NULL, n integer NOT NULL, seq_off integer[],
		time_lo bigint NOT NULL, time_hi bigint NOT NULL, uid_lo uuid, uid_hi uuid, `+strings.Join(def, ", ")+`,
		PRIMARY KEY (time_lo, seq_lo)) PARTITION BY RANGE (time_lo)`)
	protoRangeIndexes(e, ctx, name)
	e.exec(ctx, fmt.Sprintf(`CREATE TABLE %s_m PARTITION OF %s FOR VALUES FROM (%d) TO (%d)`, name, name, e.lo, e.hi))
	for _, c := range append(protoArrays, [2]string{"seq_off", ""}) {
		e.exec(ctx, `ALTER TABLE `+name+`_m ALTER COLUMN `+c[0]+` SET COMPRESSION `+method)
	}
	e.exec(ctx, `INSERT INTO `+name+` SELECT min(seq), max(seq), count(*),
		CASE WHEN max(seq) - min(seq) + 1 = count(*) THEN NULL ELSE array_agg(off::int ORDER BY seq) END,
		min(time_ns), max(time_ns), min(uid::text)::uuid, max(uid::text)::uuid, `+strings.Join(agg, ", ")+`
		FROM (SELECT o.*, seq - min(seq) OVER (PARTITION BY blk) AS off
			FROM (SELECT o.*, (row_number() OVER (ORDER BY seq) - 1) / $1 AS blk FROM observations o) o) o
		GROUP BY blk`, *protoBlock)
	var method2 *string
	if err := e.st.pool.QueryRow(ctx, `SELECT pg_column_compression(time_ns) FROM `+name+` LIMIT 1`).Scan(&method2); err != nil {
		e.b.Fatal(err)
	}
	if method2 == nil || *method2 != method {
		e.b.Fatalf("%s: time_ns compressed by %v, not %s", name, method2, method)
	}
}

// protoRangeIndexes indexes a block table's seq and time ranges (GiST on
// int8range: a lookup of the blocks that meet a range, whatever the
// blocks' spans).
func protoRangeIndexes(e *protoEnv, ctx context.Context, name string) {
	e.exec(ctx, `CREATE INDEX ON `+name+` USING gist (int8range(seq_lo, seq_hi, '[]'))`)
	e.exec(ctx, `CREATE INDEX ON `+name+` USING gist (int8range(time_lo, time_hi, '[]'))`)
}

// buildBlk reads the stored observations back (seq order), encodes them
// as obsblock blocks of -proto-block and stores them, the transcripts'
// bytes in a column apart. It also encodes each block again without the
// chain hash (chain_prev), to say what deriving it would save.
func (e *protoEnv) buildBlk(ctx context.Context) {
	e.exec(ctx, `CREATE TABLE proto_blk (seq_lo bigint NOT NULL, seq_hi bigint NOT NULL, n integer NOT NULL, seq_off integer[],
		time_lo bigint NOT NULL, time_hi bigint NOT NULL, uid_lo uuid, uid_hi uuid, body bytea NOT NULL, transcript bytea[],
		PRIMARY KEY (time_lo, seq_lo)) PARTITION BY RANGE (time_lo)`)
	protoRangeIndexes(e, ctx, "proto_blk")
	e.exec(ctx, fmt.Sprintf(`CREATE TABLE proto_blk_m PARTITION OF proto_blk FOR VALUES FROM (%d) TO (%d)`, e.lo, e.hi))
	e.exec(ctx, `ALTER TABLE proto_blk_m ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN transcript SET STORAGE EXTERNAL`)
	var obs []observe.Observation
	if err := e.st.observationsWhere(ctx, `true`, `o.seq`, nil, func(o *observe.Observation) error {
		obs = append(obs, *o)
		return nil
	}); err != nil {
		e.b.Fatal(err)
	}
	if len(obs) != len(e.seqs) {
		e.b.Fatalf("%d observations read back, %d seqs", len(obs), len(e.seqs))
	}
	for lo := 0; lo < len(obs); lo += *protoBlock {
		hi := min(lo+*protoBlock, len(obs))
		e.storeBlk(ctx, obs[lo:hi], e.seqs[lo:hi])
	}
}

func (e *protoEnv) storeBlk(ctx context.Context, obs []observe.Observation, seqs []int64) {
	body, err := obsblock.Encode(nil, obs)
	if err != nil {
		e.b.Fatal(err)
	}
	var tr [][]byte
	var uids []string
	tlo, thi := obs[0].Time.UnixNano(), obs[0].Time.UnixNano()
	bare := make([]observe.Observation, len(obs))
	for i := range obs {
		if obs[i].Transcript.Bytes != nil && tr == nil {
			tr = make([][]byte, len(obs))
		}
		if tr != nil {
			tr[i] = obs[i].Transcript.Bytes
		}
		if uid, _ := idValues(obs[i].ID); uid.Valid {
			uids = append(uids, obs[i].ID)
		}
		tlo, thi = min(tlo, obs[i].Time.UnixNano()), max(thi, obs[i].Time.UnixNano())
		bare[i] = obs[i]
		bare[i].Chain.Prev = nil
	}
	noChain, err := obsblock.Encode(nil, bare)
	if err != nil {
		e.b.Fatal(err)
	}
	e.blkBody += int64(len(body))
	e.noChain += int64(len(noChain))
	var off []int32
	if seqs[len(seqs)-1]-seqs[0]+1 != int64(len(seqs)) {
		for _, s := range seqs {
			off = append(off, int32(s-seqs[0]))
		}
	}
	var ulo, uhi *string
	if len(uids) > 0 {
		a, z := slices.Min(uids), slices.Max(uids)
		ulo, uhi = &a, &z
	}
	e.exec(ctx, `INSERT INTO proto_blk VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		seqs[0], seqs[len(seqs)-1], len(seqs), off, tlo, thi, ulo, uhi, body, tr)
}

// columnBytes logs the bytes an observation of each column of a cols
// table (pg_column_size: as stored, compressed or not).
func (e *protoEnv) columnBytes(ctx context.Context, name string) {
	var parts []string
	for _, c := range protoArrays {
		parts = append(parts, fmt.Sprintf(`COALESCE(SUM(pg_column_size(%s)), 0)`, c[0]))
	}
	r, err := e.st.pool.Query(ctx, `SELECT `+strings.Join(parts, ", ")+` FROM `+name)
	if err != nil {
		e.b.Fatal(err)
	}
	defer r.Close()
	if !r.Next() {
		e.b.Fatal(r.Err())
	}
	v, err := r.Values()
	if err != nil {
		e.b.Fatal(err)
	}
	var out []string
	for i, c := range protoArrays {
		if s := fmt.Sprint(v[i]); s != "0" {
			var x float64
			fmt.Sscan(s, &x)
			out = append(out, fmt.Sprintf("%s %.1f", c[0], x/float64(e.n)))
		}
	}
	e.b.Logf("%s, bytes an observation a column: %s", name, strings.Join(out, ", "))
}

// colsRows is a cols table's rows as observations' rows (a subquery
// aliased o), of the blocks that pred (on b) selects.
func colsRows(table, pred string) string {
	var cols, ucols []string
	for _, c := range protoArrays {
		cols, ucols = append(cols, "b."+c[0]), append(ucols, c[0])
	}
	return `(SELECT CASE WHEN b.seq_off IS NULL THEN b.seq_lo + u.ord - 1 ELSE b.seq_lo + b.seq_off[u.ord] END AS seq, u.*
		FROM ` + table + ` b CROSS JOIN LATERAL unnest(` + strings.Join(cols, ", ") + `) WITH ORDINALITY AS u(` +
		strings.Join(ucols, ", ") + `, ord) WHERE ` + pred + `) o`
}

// colsAt is a cols table's rows of the seqs $1 (bigint[]), found by
// subscripts in their blocks (no unnest), aliased o.
func colsAt(table string) string {
	var cols []string
	for _, c := range protoArrays {
		cols = append(cols, "b."+c[0]+"[b.i] AS "+c[0])
	}
	return `(SELECT t.seq, ` + strings.Join(cols, ", ") + ` FROM unnest($1::bigint[]) AS t(seq)
		CROSS JOIN LATERAL (SELECT b.*, CASE WHEN b.seq_off IS NULL THEN (t.seq - b.seq_lo + 1)::int
			ELSE array_position(b.seq_off, (t.seq - b.seq_lo)::int) END AS i FROM ` + table + ` b
			WHERE int8range(b.seq_lo, b.seq_hi, '[]') @> t.seq) b WHERE b.i IS NOT NULL) o`
}

// obsQuery is the store's read of whole observations (obsSelect) from
// src (observations o, or a block table's rows as o).
func obsQuery(src, where, order string) string {
	return `SELECT o.seq, ` + obsSelect + ` FROM ` + src + obsJoins + ` LEFT JOIN sensor_chains c ON c.id = o.chain_ref WHERE ` +
		where + ` ORDER BY ` + order
}

// valuesOf runs q and decodes every value of every row (pgx), and says
// how many rows.
func (e *protoEnv) valuesOf(ctx context.Context, q string, args ...any) int {
	e.b.Helper()
	r, err := e.st.pool.Query(ctx, q, args...)
	if err != nil {
		e.b.Fatalf("%v: %s", err, q)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		if _, err := r.Values(); err != nil {
			e.b.Fatal(err)
		}
		n++
	}
	if err := r.Err(); err != nil {
		e.b.Fatalf("%v: %s", err, q)
	}
	return n
}

// blkRead reads the blk blocks that q selects (seq_lo, seq_off, body)
// and decodes them whole, calling keep with each observation's seq.
func (e *protoEnv) blkRead(ctx context.Context, keep func(seq int64, o *observe.Observation), q string, args ...any) {
	e.b.Helper()
	r, err := e.st.pool.Query(ctx, q, args...)
	if err != nil {
		e.b.Fatalf("%v: %s", err, q)
	}
	defer r.Close()
	for r.Next() {
		var lo int64
		var off []int32
		var body []byte
		if err := r.Scan(&lo, &off, &body); err != nil {
			e.b.Fatal(err)
		}
		obs, err := obsblock.Decode(body)
		if err != nil {
			e.b.Fatal(err)
		}
		for i := range obs {
			seq := lo + int64(i)
			if off != nil {
				seq = lo + int64(off[i])
			}
			keep(seq, &obs[i])
		}
	}
	if err := r.Err(); err != nil {
		e.b.Fatal(err)
	}
}

// protoRead is one read, done on each kind of table; each returns how
// many observations it found (checked equal).
type protoRead struct {
	name string
	rows func() int
	cols func() int
	blk  func() int
}

func (e *protoEnv) reads(ctx context.Context) {
	rng := rand.New(rand.NewPCG(7, 7))
	mid := e.n / 2
	after, upTo := e.seqs[mid], e.seqs[min(mid+10000, e.n-1)]
	var tl []int64
	for range 100 {
		tl = append(tl, e.seqs[rng.IntN(e.n)])
	}
	slices.Sort(tl)
	tl = slices.Compact(tl)
	stored := e.ids[mid : mid+1000]
	var fresh []string
	for k := range 1000 {
		fresh = append(fresh, observe.NewID(time.Unix(0, e.times[(mid+k*97)%e.n])))
	}
	// Distinct ids: an id drawn twice is found once by rows and blocks
	// (= ANY) but twice by the column arrays' subscripts, and the three
	// counts, which must agree, would differ on small fills.
	var scattered []string
	for _, k := range rng.Perm(e.n)[:min(100, e.n)] {
		scattered = append(scattered, e.ids[k])
	}
	cols := e.colsName
	seqPred := `int8range(b.seq_lo, b.seq_hi, '[]') && int8range($1, $2, '(]')`
	list := []protoRead{
		{"seq range of 10,000 (the analysis)",
			func() int {
				return e.valuesOf(ctx, obsQuery(`observations o`, `o.seq > $1 AND o.seq <= $2`, `o.seq`), after, upTo)
			},
			func() int {
				return e.valuesOf(ctx, obsQuery(colsRows(cols, seqPred), `o.seq > $1 AND o.seq <= $2`, `o.seq`), after, upTo)
			},
			func() int {
				n := 0
				e.blkRead(ctx, func(seq int64, _ *observe.Observation) {
					if seq > after && seq <= upTo {
						n++
					}
				}, `SELECT seq_lo, seq_off, body FROM proto_blk b WHERE `+seqPred+` ORDER BY seq_lo`, after, upTo)
				return n
			}},
		{"timeline: 100 seqs at random",
			func() int { return e.valuesOf(ctx, obsQuery(`observations o`, `o.seq = ANY($1)`, `o.seq`), tl) },
			func() int { return e.valuesOf(ctx, obsQuery(colsAt(cols), `true`, `o.seq`), tl) },
			func() int { return e.blkAt(ctx, tl) }},
		{"newest 100",
			func() int {
				return e.valuesOf(ctx, obsQuery(`observations o`, `true`, `o.time_ns DESC, o.seq DESC LIMIT 100`))
			},
			func() int {
				return e.valuesOf(ctx, obsQuery(colsRows(`(SELECT * FROM `+cols+` ORDER BY time_lo DESC LIMIT 2)`, `true`), `true`,
					`o.time_ns DESC, o.seq DESC LIMIT 100`))
			},
			func() int { return e.blkNewest(ctx) }},
		{"ids: a batch of 1,000 stored (a replay)",
			func() int { return e.rowsIDs(ctx, stored) },
			func() int { return e.colsIDs(ctx, stored) },
			func() int { return e.blkIDs(ctx, stored) }},
		{"ids: a batch of 1,000 not stored, times among the stored",
			func() int { return e.rowsIDs(ctx, fresh) },
			func() int { return e.colsIDs(ctx, fresh) },
			func() int { return e.blkIDs(ctx, fresh) }},
		{"ids: 100 stored at random (a bundle's LogIndexes)",
			func() int { return e.rowsIDs(ctx, scattered) },
			func() int { return e.colsIDs(ctx, scattered) },
			func() int { return e.blkIDs(ctx, scattered) }},
		{"a month read whole (a purge's records)",
			func() int {
				return e.valuesOf(ctx, obsQuery(`observations o`, `o.time_ns >= $1 AND o.time_ns < $2`, `o.time_ns, o.seq`), e.lo, e.hi)
			},
			func() int {
				return e.valuesOf(ctx, obsQuery(colsRows(cols, `b.time_lo >= $1 AND b.time_lo < $2`), `true`, `o.time_ns, o.seq`), e.lo, e.hi)
			},
			func() int {
				n := 0
				e.blkRead(ctx, func(int64, *observe.Observation) { n++ },
					`SELECT seq_lo, seq_off, body FROM proto_blk b WHERE b.time_lo >= $1 AND b.time_lo < $2 ORDER BY time_lo, seq_lo`, e.lo, e.hi)
				return n
			}},
	}
	for _, rd := range list {
		e.timeRead(rd)
	}
	e.timeAnalysis(ctx, after, upTo)
	e.timeDrop(ctx)
}

// timeRead times rd on each table protoReps times, in the order rows,
// cols, blk, then the reverse, and reports the medians (ms).
func (e *protoEnv) timeRead(rd protoRead) {
	fns := []func() int{rd.rows, rd.cols, rd.blk}
	var took [3][]float64
	var got [3]int
	for rep := 0; rep < protoReps; rep++ {
		order := []int{0, 1, 2}
		if rep%2 == 1 {
			order = []int{2, 1, 0}
		}
		for _, k := range order {
			t := time.Now()
			got[k] = fns[k]()
			took[k] = append(took[k], float64(time.Since(t).Microseconds())/1000)
		}
	}
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	e.b.Logf("%-58s rows %8.2f ms  cols %8.2f ms  blk %8.2f ms  (found %d / %d / %d)",
		rd.name, med(took[0]), med(took[1]), med(took[2]), got[0], got[1], got[2])
	if got[0] != got[1] || got[0] != got[2] {
		e.b.Errorf("%s: rows found %d, cols %d, blk %d", rd.name, got[0], got[1], got[2])
	}
}

// timeAnalysis times the store's own read of the seq range
// (AnalysisObservations: typed scans, the analysis's columns), for
// comparison with the generic reads above.
func (e *protoEnv) timeAnalysis(ctx context.Context, after, upTo int64) {
	var took []float64
	n := 0
	for range protoReps {
		n = 0
		t := time.Now()
		if err := e.st.AnalysisObservations(ctx, after, upTo, func(int64, *observe.Observation) error { n++; return nil }); err != nil {
			e.b.Fatal(err)
		}
		took = append(took, float64(time.Since(t).Microseconds())/1000)
	}
	sort.Float64s(took)
	e.b.Logf("seq range of 10,000 by AnalysisObservations (today's code): %.2f ms (found %d)", took[len(took)/2], n)
}

// blkAt reads the observations of seqs, each from its block: the blocks
// found in SQL, opened once each, At for each seq in it.
func (e *protoEnv) blkAt(ctx context.Context, seqs []int64) int {
	r, err := e.st.pool.Query(ctx, `SELECT DISTINCT ON (b.seq_lo) b.seq_lo, b.seq_off, b.body FROM unnest($1::bigint[]) AS t(seq)
		CROSS JOIN LATERAL (SELECT * FROM proto_blk b WHERE int8range(b.seq_lo, b.seq_hi, '[]') @> t.seq) b ORDER BY b.seq_lo`, seqs)
	if err != nil {
		e.b.Fatal(err)
	}
	defer r.Close()
	n := 0
	for r.Next() {
		var lo int64
		var off []int32
		var body []byte
		if err := r.Scan(&lo, &off, &body); err != nil {
			e.b.Fatal(err)
		}
		blk, err := obsblock.Open(body)
		if err != nil {
			e.b.Fatal(err)
		}
		for _, s := range seqs {
			i := int(s - lo)
			if off != nil {
				i = slices.Index(off, int32(s-lo))
			}
			if i < 0 || i >= blk.Len() {
				continue
			}
			if _, err := blk.At(i); err != nil {
				e.b.Fatal(err)
			}
			n++
		}
	}
	if err := r.Err(); err != nil {
		e.b.Fatal(err)
	}
	return n
}

// blkNewest reads the newest 100 observations from the two newest blocks.
func (e *protoEnv) blkNewest(ctx context.Context) int {
	type tobs struct {
		seq int64
		o   observe.Observation
	}
	var all []tobs
	e.blkRead(ctx, func(seq int64, o *observe.Observation) { all = append(all, tobs{seq, *o}) },
		`SELECT seq_lo, seq_off, body FROM proto_blk b ORDER BY time_lo DESC LIMIT 2`)
	slices.SortFunc(all, func(a, b tobs) int {
		if c := b.o.Time.Compare(a.o.Time); c != 0 {
			return c
		}
		return int(b.seq - a.seq)
	})
	return min(len(all), 100)
}

// protoIDArgs are ids' UUIDs and the times their UUIDv7 say.
func protoIDArgs(ids []string) ([]pgtype.UUID, []int64) {
	var uids []pgtype.UUID
	var ns []int64
	for _, id := range ids {
		uid, _ := idValues(id)
		if t, ok := idNS(uid); ok {
			uids, ns = append(uids, uid), append(ns, t)
		}
	}
	return uids, ns
}

// rowsIDs is today's lookup of ids in their windows (seqsInWindows).
func (e *protoEnv) rowsIDs(ctx context.Context, ids []string) int {
	found, err := e.st.seqsInWindows(context.Background(), ids, func(string, int64) {})
	if err != nil {
		e.b.Fatal(err)
	}
	return len(found)
}

// idBlockPred is the blocks (b) that may hold id v.uid of time v.ns: a
// block whose time range meets the id's window and whose UUID range
// holds it.
var idBlockPred = fmt.Sprintf(`int8range(b.time_lo, b.time_hi, '[]') && int8range(v.ns - %[1]d, v.ns + %[1]d)
	AND v.uid BETWEEN b.uid_lo AND b.uid_hi`, idWindowNS)

func (e *protoEnv) colsIDs(ctx context.Context, ids []string) int {
	uids, ns := protoIDArgs(ids)
	return e.valuesOf(ctx, `SELECT v.uid FROM unnest($1::uuid[], $2::bigint[]) AS v(uid, ns)
		CROSS JOIN LATERAL (SELECT 1 FROM `+e.colsName+` b WHERE `+idBlockPred+` AND v.uid = ANY(b.uid) LIMIT 1) d`, uids, ns)
}

// blkIDs finds the blocks that may hold ids in SQL and reads their ids
// alone (obsblock's IDs: five columns decompressed of a block).
func (e *protoEnv) blkIDs(ctx context.Context, ids []string) int {
	uids, ns := protoIDArgs(ids)
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	r, err := e.st.pool.Query(ctx, `SELECT b.body FROM proto_blk b WHERE (b.time_lo, b.seq_lo) IN (
		SELECT d.time_lo, d.seq_lo FROM unnest($1::uuid[], $2::bigint[]) AS v(uid, ns)
		CROSS JOIN LATERAL (SELECT b.time_lo, b.seq_lo FROM proto_blk b WHERE `+idBlockPred+`) d)`, uids, ns)
	if err != nil {
		e.b.Fatal(err)
	}
	defer r.Close()
	found := map[string]bool{}
	for r.Next() {
		var body []byte
		if err := r.Scan(&body); err != nil {
			e.b.Fatal(err)
		}
		blk, err := obsblock.Open(body)
		if err != nil {
			e.b.Fatal(err)
		}
		got, err := blk.IDs()
		if err != nil {
			e.b.Fatal(err)
		}
		for _, id := range got {
			if want[id] {
				found[id] = true
			}
		}
	}
	if err := r.Err(); err != nil {
		e.b.Fatal(err)
	}
	return len(found)
}

// timeDrop times the purge of the month on each table: what the store
// does once a partition's records are written (DETACH and DROP).
func (e *protoEnv) timeDrop(ctx context.Context) {
	var part string
	if err := e.st.pool.QueryRow(ctx, `SELECT tableoid::regclass::text FROM observations LIMIT 1`).Scan(&part); err != nil {
		e.b.Fatal(err)
	}
	var out []string
	for _, p := range [][2]string{{"observations", part}, {e.colsName, e.colsName + "_m"}, {"proto_blk", "proto_blk_m"}} {
		t := time.Now()
		err := e.st.writeTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `ALTER TABLE `+p[0]+` DETACH PARTITION `+p[1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP TABLE `+p[1])
			return err
		})
		if err != nil {
			e.b.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %.1f ms", p[0], float64(time.Since(t).Microseconds())/1000))
	}
	e.b.Logf("the month's partition detached and dropped: %s", strings.Join(out, ", "))
}
