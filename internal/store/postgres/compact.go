package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
)

// MaxBlockObservations is the most observations compaction puts in one
// observation_blocks row (docs/deployment.md, "Observations in blocks").
const MaxBlockObservations = 1024

// CompactOptions says which rows CompactObservations moves into blocks.
type CompactOptions struct {
	// Settle is how old a row's time must be, before Now, to be moved:
	// newer rows stay hot (the newest observations, read often, and a
	// late upload's neighbours). A day by default.
	Settle time.Duration
	// Now is the time Settle counts back from; zero: time.Now.
	Now time.Time
	// BlockSize is the most observations a block (1..MaxBlockObservations).
	BlockSize int
	// TxRows is the most rows one transaction moves (it holds ingest's
	// lock while it runs, so it is kept short).
	TxRows int
	// ignoreWatermark moves rows above the analysis's watermark too (the
	// tests' compaction after every write, whose readers must find the
	// rows in blocks wherever they are).
	ignoreWatermark bool
}

// DefaultCompactOptions returns the options the deployment would use.
func DefaultCompactOptions() CompactOptions {
	return CompactOptions{Settle: 24 * time.Hour, BlockSize: MaxBlockObservations, TxRows: 16 * MaxBlockObservations}
}

// Validate checks the options.
func (o CompactOptions) Validate() error {
	switch {
	case o.Settle < 0:
		return fmt.Errorf("compaction: settle time %s is negative", o.Settle)
	case o.BlockSize < 1 || o.BlockSize > MaxBlockObservations:
		return fmt.Errorf("compaction: block size %d, want 1..%d", o.BlockSize, MaxBlockObservations)
	case o.TxRows < o.BlockSize:
		return fmt.Errorf("compaction: %d rows a transaction, fewer than a block's %d", o.TxRows, o.BlockSize)
	}
	return nil
}

// CompactResult is what a compaction moved.
type CompactResult struct {
	Rows, Blocks int
}

// ErrBlockMismatch is returned when a block does not decode to exactly
// the rows it was made of: nothing is moved.
var ErrBlockMismatch = errors.New("observation block does not decode to its rows")

// CompactObservations moves settled observations from rows into
// observation_blocks (migration 0030), oldest seq first, until none is
// left: rows of a seq at or below the analysis's watermark and the
// evidence log's last leaf, whose time is older than opt.Now - opt.Settle.
// Each transaction takes ingest's lock (seqOrder), reads up to TxRows
// such rows in seq order, cuts them by month of time into blocks of up to
// BlockSize (a block never crosses a month: retention drops months),
// checks that every block decodes to exactly its rows, stores the blocks
// and the heads of their signed batches, and deletes the rows. Seqs are
// kept.
func (s *Store) CompactObservations(ctx context.Context, opt CompactOptions) (CompactResult, error) {
	if err := opt.Validate(); err != nil {
		return CompactResult{}, err
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	var total CompactResult
	for {
		var got CompactResult
		err := s.writeTx(ctx, func(tx pgx.Tx) error {
			var err error
			got, err = s.compactTx(ctx, tx, opt)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("compaction: %w", err)
		}
		total.Rows += got.Rows
		total.Blocks += got.Blocks
		if got.Rows < opt.TxRows {
			return total, nil
		}
	}
}

// settledBound is the greatest seq compaction may move: the analysis's
// watermark, and the seq of the evidence log's last leaf (every row of a
// committed batch has its leaf: appendLeaves runs in the INSERT's
// transaction; with no log, Config.NoEvidenceLog, the watermark alone).
func (s *Store) settledBound(ctx context.Context, tx pgx.Tx, opt CompactOptions) (int64, error) {
	bound := int64(math.MaxInt64)
	if !opt.ignoreWatermark {
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)`).Scan(&bound); err != nil {
			return 0, fmt.Errorf("watermark: %w", err)
		}
	}
	if s.cfg.NoEvidenceLog {
		return bound, nil
	}
	r, err := tx.Query(ctx, `SELECT first, first_seq, n, level, seqs, nodes FROM evidence_tiles ORDER BY first DESC LIMIT 1`)
	if err != nil {
		return 0, fmt.Errorf("evidence log's end: %w", err)
	}
	defer r.Close()
	logEnd := int64(0) // no tile: no leaf appended since the tiles began
	for r.Next() {
		b, _, err := scanTileBlock(r)
		if err != nil {
			return 0, fmt.Errorf("evidence log's end: %w", err)
		}
		logEnd = slices.Max(b.seqs)
	}
	if err := r.Err(); err != nil {
		return 0, fmt.Errorf("evidence log's end: %w", err)
	}
	return min(bound, logEnd), nil
}

// compactTx is one transaction of CompactObservations. It takes
// legal_holds in ROW EXCLUSIVE mode first, which a purge's SHARE lock
// (lockHolds) excludes: no compaction runs while a purge chooses and
// removes its rows (thawBlocks relies on it), and the locks are taken in
// the same order as a purge's (the holds' table, then ingest's), so
// that neither waits for the other in a cycle.
func (s *Store) compactTx(ctx context.Context, tx pgx.Tx, opt CompactOptions) (CompactResult, error) {
	if _, err := tx.Exec(ctx, `LOCK TABLE legal_holds IN ROW EXCLUSIVE MODE`); err != nil {
		return CompactResult{}, fmt.Errorf("legal holds' lock: %w", err)
	}
	if err := s.seqOrder(ctx, tx); err != nil {
		return CompactResult{}, err
	}
	bound, err := s.settledBound(ctx, tx, opt)
	if err != nil {
		return CompactResult{}, err
	}
	cutoff := int64(math.MaxInt64)
	if c := opt.Now.Add(-opt.Settle); c.Year() < 2262 {
		cutoff = c.UnixNano()
	}
	var seqs []int64
	var obs []observe.Observation
	err = s.rowsWhereOn(ctx, tx, `o.seq <= $1 AND o.time_ns < $2`, `o.seq LIMIT $3`, []any{bound, cutoff, opt.TxRows},
		func(seq int64, o *observe.Observation) error {
			seqs, obs = append(seqs, seq), append(obs, *o)
			return nil
		})
	if err != nil || len(obs) == 0 {
		return CompactResult{}, err
	}
	res := CompactResult{Rows: len(obs)}
	for _, blk := range cutBlocks(obs, opt.BlockSize) {
		if err := storeBlock(ctx, tx, obs, seqs, blk); err != nil {
			return CompactResult{}, err
		}
		res.Blocks++
	}
	if _, err := tx.Exec(ctx, `INSERT INTO observation_chain_heads (chain_ref, chain_seq, seq)
		SELECT chain_ref, chain_seq, seq FROM observations WHERE seq = ANY($1) AND batch_sig IS NOT NULL`, seqs); err != nil {
		return CompactResult{}, fmt.Errorf("chain heads: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM observations WHERE seq = ANY($1)`, seqs)
	if err != nil {
		return CompactResult{}, fmt.Errorf("rows: %w", err)
	}
	if tag.RowsAffected() != int64(len(seqs)) {
		return CompactResult{}, fmt.Errorf("rows: %d deleted, %d put in blocks", tag.RowsAffected(), len(seqs))
	}
	return res, nil
}

// monthOf is the first instant of t_ns's month in UTC, as
// vigil_observation_partition cuts months.
func monthOf(ns int64) time.Time {
	t := time.Unix(0, ns).UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// cutBlocks groups obs (in seq order) by month of time, keeping seq
// order within a month, and cuts each group into blocks of up to size:
// each block the indexes into obs of its observations.
func cutBlocks(obs []observe.Observation, size int) [][]int {
	var months []time.Time
	byMonth := map[time.Time][]int{}
	for i := range obs {
		m := monthOf(obs[i].Time.UnixNano())
		if _, ok := byMonth[m]; !ok {
			months = append(months, m)
		}
		byMonth[m] = append(byMonth[m], i)
	}
	var out [][]int
	for _, m := range months {
		for idx := byMonth[m]; len(idx) > 0; {
			k := min(size, len(idx))
			out = append(out, idx[:k])
			idx = idx[k:]
		}
	}
	return out
}

// storeBlock encodes the observations obs[idx] (seqs[idx]) as one block,
// checks that it decodes to exactly them, and inserts its row.
func storeBlock(ctx context.Context, tx pgx.Tx, obs []observe.Observation, seqs []int64, idx []int) error {
	blk := make([]observe.Observation, len(idx))
	bseqs := make([]int64, len(idx))
	var transcripts [][]byte
	var ulo, uhi string
	tlo, thi := int64(math.MaxInt64), int64(math.MinInt64)
	for k, i := range idx {
		blk[k], bseqs[k] = obs[i], seqs[i]
		if b := obs[i].Transcript.Bytes; b != nil {
			if transcripts == nil {
				transcripts = make([][]byte, len(idx))
			}
			transcripts[k] = b
		}
		blk[k].Transcript.Bytes = nil // kept apart, in the transcript column
		if uid, _ := idValues(obs[i].ID); uid.Valid {
			id := formatUUID(uid.Bytes)
			if ulo == "" || id < ulo {
				ulo = id
			}
			uhi = max(uhi, id)
		}
		ns := obs[i].Time.UnixNano()
		tlo, thi = min(tlo, ns), max(thi, ns)
	}
	body, err := obsblock.Encode(nil, blk)
	if err != nil {
		return fmt.Errorf("block of seqs %d..%d: %w", bseqs[0], bseqs[len(bseqs)-1], err)
	}
	back, err := obsblock.Decode(body)
	if err != nil {
		return fmt.Errorf("block of seqs %d..%d: %w", bseqs[0], bseqs[len(bseqs)-1], err)
	}
	for k := range blk {
		if !reflect.DeepEqual(back[k], blk[k]) {
			return fmt.Errorf("%w: seq %d (observation %s)", ErrBlockMismatch, bseqs[k], blk[k].ID)
		}
	}
	lo, hi := slices.Min(bseqs), slices.Max(bseqs)
	var off []int32
	for k, q := range bseqs {
		if q != lo+int64(k) {
			off = make([]int32, len(bseqs))
			for j, q := range bseqs {
				off[j] = int32(q - lo)
			}
			break
		}
	}
	if hi-lo > math.MaxInt32 {
		return fmt.Errorf("block of seqs %d..%d: a span past an int32", lo, hi)
	}
	var uidLo, uidHi any
	if ulo != "" {
		uidLo, uidHi = ulo, uhi
	}
	if _, err := tx.Exec(ctx, `INSERT INTO observation_blocks (seq_lo, seq_hi, n, seq_off, time_lo, time_hi, uid_lo, uid_hi, body, transcript)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, lo, hi, len(bseqs), off, tlo, thi, uidLo, uidHi, body, transcripts); err != nil {
		return fmt.Errorf("block of seqs %d..%d: %w", lo, hi, err)
	}
	return nil
}

// thawBlocks puts back into rows, with their seqs, the observations of
// the blocks a purge must see as rows, and deletes those blocks and
// their chain heads, in tx: the blocks that begin before obsCutoff (they
// may hold observations due), those that begin before transcriptCutoff
// and hold a transcript, and those that hold an observation an active
// hold protects (held_obs: the hold's batches are found from its
// observations' chain fields). A block outside them begins after both
// cutoffs and holds nothing due; the heads of its signed batches are in
// observation_chain_heads, which the holds' CTE reads beside the rows'.
// At most limit blocks, oldest first (0: no limit).
// math.MinInt64 for a cutoff: none (both none: only the held blocks,
// what retention's plan and month drop still thaw). Under seqOrder's
// lock, taken here when there is a block to thaw. The caller holds the legal holds' SHARE lock
// (lockHolds), which compaction's lock on that table waits for: no block
// appears in tx's later statements once none is seen here. Retention
// runs it before it chooses what to purge: its SQL (the holds, the due
// rows, the months' partitions) reads rows, and a purge that missed a
// block's due rows, or a hold that missed a held row in a block (and so
// the rest of its signed batch), would be a defect. The held blocks are
// thawed at every run, and compacted again later: what retention does
// until it reads blocks itself (docs/deployment.md, "Observations in
// blocks").
func (s *Store) thawBlocks(ctx context.Context, tx pgx.Tx, obsCutoff, transcriptCutoff int64, limit int) (int, error) {
	var some bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM observation_blocks)`).Scan(&some); err != nil || !some {
		return 0, err
	}
	choose := func() (los, seqLos []int64, err error) {
		r, err := tx.Query(ctx, heldCTE+`SELECT b.time_lo, b.seq_lo FROM observation_blocks b WHERE b.time_lo < $1
		OR b.time_lo < $2 AND b.transcript IS NOT NULL
		OR EXISTS (SELECT 1 FROM held_obs h WHERE int8range(b.seq_lo, b.seq_hi, '[]') @> h.seq)
		ORDER BY b.time_lo, b.seq_lo LIMIT NULLIF($3, 0)`, obsCutoff, transcriptCutoff, limit)
		if err != nil {
			return nil, nil, fmt.Errorf("blocks back into rows: %w", err)
		}
		defer r.Close()
		for r.Next() {
			var lo, seqLo int64
			if err := r.Scan(&lo, &seqLo); err != nil {
				return nil, nil, fmt.Errorf("blocks back into rows: %w", err)
			}
			los, seqLos = append(los, lo), append(seqLos, seqLo)
		}
		return los, seqLos, r.Err()
	}
	los, seqLos, err := choose()
	if err != nil || len(los) == 0 {
		return 0, err
	}
	// Ingest's lock only when a block is put back, and the blocks chosen
	// again under it (another purge's thaw may have taken them meanwhile;
	// compaction waits for the holds' lock the caller holds).
	if err := s.seqOrder(ctx, tx); err != nil {
		return 0, err
	}
	if los, seqLos, err = choose(); err != nil || len(los) == 0 {
		return 0, err
	}
	const which = `(b.time_lo, b.seq_lo) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`
	cold, err := coldObservations(ctx, tx, which, []any{los, seqLos}, nil, nil)
	if err != nil || len(cold) == 0 {
		return 0, err
	}
	obs := make([]observe.Observation, len(cold))
	for i := range cold {
		obs[i] = cold[i].o
	}
	var fresh map[hashKey]int64
	var freshChains map[string]int64
	var freshDicts [numDicts]map[string]int64
	refs, err := s.rowRefs(ctx, tx, obs, &fresh, &freshChains, &freshDicts)
	if err != nil {
		return 0, err
	}
	cols := `seq, ` + obsColumns
	const chunk = 65535 / (obsArgs + 1) // obsArgs + 1 arguments a row, 65,535 a statement
	for start := 0; start < len(obs); start += chunk {
		end := min(start+chunk, len(obs))
		args := make([]any, 0, (end-start)*(obsArgs+1))
		var b strings.Builder
		b.WriteString(`INSERT INTO observations (` + cols + `) OVERRIDING SYSTEM VALUE VALUES `)
		row := make([]any, obsArgs)
		for i := start; i < end; i++ {
			if i > start {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			obsRow(row, &obs[i], &refs[i])
			args = append(args, cold[i].seq)
			args = append(args, row...)
			for j := 0; j <= obsArgs; j++ {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "$%d", len(args)-obsArgs+j)
			}
			b.WriteByte(')')
		}
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return 0, fmt.Errorf("blocks back into rows: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM observation_blocks b WHERE `+which, los, seqLos); err != nil {
		return 0, fmt.Errorf("blocks back into rows: %w", err)
	}
	seqs := make([]int64, len(cold))
	for i := range cold {
		seqs[i] = cold[i].seq
	}
	if _, err := tx.Exec(ctx, `DELETE FROM observation_chain_heads WHERE seq = ANY($1)`, seqs); err != nil {
		return 0, fmt.Errorf("blocks back into rows: %w", err)
	}
	return len(obs), nil
}
