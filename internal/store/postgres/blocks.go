package postgres

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
)

// blockStoredIDs returns the ids of obs that a block holds (migration
// 0030): the rows compaction moved there, which the hot rows' unique index
// and ingest's probe of the id's window no longer see. An id stored
// outside its window is listed in observation_ids_elsewhere, which
// compaction leaves alone, and found there by the INSERT's own check; one
// in its window is found here, in the blocks whose time range meets its
// window and whose UUID range holds it (their ids alone: obsblock's IDs).
// A batch whose windows meet no block (a live batch: blocks hold settled,
// older rows) costs one probe of the blocks' time index. Called under
// seqOrder's lock, which compaction takes too: no row moves between this
// look and the INSERT's.
func blockStoredIDs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) (map[string]bool, error) {
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
	}
	seqs, err := blockSeqsInWindows(ctx, tx, ids)
	if err != nil || len(seqs) == 0 {
		return nil, err
	}
	out := make(map[string]bool, len(seqs))
	for id := range seqs {
		out[id] = true
	}
	return out, nil
}

// blockSeqs returns the seq of each of ids that a block holds: in its
// window (blockSeqsInWindows) or, for an id stored outside it, at the seq
// observation_ids_elsewhere lists for it (checked against the block's
// ids: an id listed whose row was purged is in no block).
func blockSeqs(ctx context.Context, db pgQuerier, ids []string) (map[string]int64, error) {
	out, err := blockSeqsInWindows(ctx, db, ids)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = map[string]int64{}
	}
	var rest []string
	for _, id := range ids {
		if _, ok := out[id]; !ok {
			rest = append(rest, id)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	r, err := db.Query(ctx, `SELECT e.id, e.seq, b.seq_lo, b.n, b.seq_off, b.body FROM observation_ids_elsewhere e
		JOIN observation_blocks b ON int8range(b.seq_lo, b.seq_hi, '[]') @> e.seq
		WHERE e.id = ANY($1) AND e.seq IS NOT NULL`, rest)
	if err != nil {
		return nil, fmt.Errorf("ids in blocks: %w", err)
	}
	defer r.Close()
	for r.Next() {
		var id string
		var seq, lo int64
		var n int32
		var off []int32
		var body []byte
		if err := r.Scan(&id, &seq, &lo, &n, &off, &body); err != nil {
			return nil, fmt.Errorf("ids in blocks: %w", err)
		}
		got, err := blockIDSeqs(lo, int(n), off, body)
		if err != nil {
			return nil, err
		}
		if got[id] == seq {
			out[id] = seq
		}
	}
	return out, r.Err()
}

// blockSeqsInWindows returns the seq of each UUIDv7 id of ids that a
// block holds in the id's window: in the blocks whose time range meets
// the window and whose UUID range holds the id. One probe of the blocks'
// time index first, for the whole of ids.
func blockSeqsInWindows(ctx context.Context, db pgQuerier, ids []string) (map[string]int64, error) {
	var los, his []int64
	var uids []pgtype.UUID
	want := map[string]int64{} // id: its time
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, id := range ids {
		uid, _ := idValues(id)
		t, ok := idNS(uid)
		if !ok {
			continue
		}
		los, his, uids = append(los, t-idWindowNS), append(his, t+idWindowNS), append(uids, uid)
		lo, hi = min(lo, t-idWindowNS), max(hi, t+idWindowNS)
		want[formatUUID(uid.Bytes)] = t
	}
	if len(uids) == 0 {
		return nil, nil
	}
	var some bool
	if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM observation_blocks
		WHERE int8range(time_lo, time_hi, '[]') && int8range($1, $2))`, lo, hi).Scan(&some); err != nil {
		return nil, fmt.Errorf("ids in blocks: %w", err)
	}
	if !some {
		return nil, nil
	}
	r, err := db.Query(ctx, `SELECT DISTINCT b.time_lo, b.seq_lo, b.n, b.seq_off, b.body FROM unnest($1::bigint[], $2::bigint[], $3::uuid[]) AS w(lo, hi, u)
		JOIN observation_blocks b ON int8range(b.time_lo, b.time_hi, '[]') && int8range(w.lo, w.hi) AND w.u BETWEEN b.uid_lo AND b.uid_hi`,
		los, his, uids)
	if err != nil {
		return nil, fmt.Errorf("ids in blocks: %w", err)
	}
	defer r.Close()
	out := map[string]int64{}
	for r.Next() {
		var tlo, lo int64
		var n int32
		var off []int32
		var body []byte
		if err := r.Scan(&tlo, &lo, &n, &off, &body); err != nil {
			return nil, fmt.Errorf("ids in blocks: %w", err)
		}
		got, err := blockIDSeqs(lo, int(n), off, body)
		if err != nil {
			return nil, err
		}
		for id, seq := range got {
			if _, ok := want[id]; ok {
				out[id] = seq
			}
		}
	}
	return out, r.Err()
}

// blockIDSeqs reads a block's ids alone, with their seqs.
func blockIDSeqs(lo int64, n int, off []int32, body []byte) (map[string]int64, error) {
	ids, err := obsBlockIDs(body)
	if err == nil && (len(ids) != n || off != nil && len(off) != n) {
		err = fmt.Errorf("%w: %d ids, %d observations, %d seq offsets", obsblock.ErrCorrupt, len(ids), n, len(off))
	}
	if err != nil {
		return nil, fmt.Errorf("observation block of seq %d: %w", lo, err)
	}
	out := make(map[string]int64, n)
	for i, id := range ids {
		if off != nil {
			out[id] = lo + int64(off[i])
		} else {
			out[id] = lo + int64(i)
		}
	}
	return out, nil
}

// obsBlockIDs reads a block's ids alone.
func obsBlockIDs(body []byte) ([]string, error) {
	b, err := obsblock.Open(body)
	if err != nil {
		return nil, err
	}
	return b.IDs()
}

// seqObs is an observation and its seq.
type seqObs struct {
	seq int64
	o   observe.Observation
}

// coldObservations decodes the observation_blocks rows b that blockWhere
// selects (SQL on the blocks' own columns, with args) and returns, in no
// particular order, the observations of theirs that keep accepts, with
// their seqs and their transcripts' bytes. When seqs is not nil only the
// observations of those seqs are decoded (obsblock's At), else every one
// (All). A block that does not decode is an error: it is never patched
// or skipped.
func coldObservations(ctx context.Context, db pgQuerier, blockWhere string, args []any, seqs map[int64]bool,
	keep func(seq int64, o *observe.Observation) bool) ([]seqObs, error) {
	r, err := db.Query(ctx, `SELECT b.seq_lo, b.seq_hi, b.time_lo, b.time_hi, b.uid_lo::text, b.uid_hi::text, b.n, b.seq_off, b.body, b.transcript
		FROM observation_blocks b WHERE `+blockWhere, args...)
	if err != nil {
		return nil, fmt.Errorf("observation blocks: %w", err)
	}
	defer r.Close()
	var out []seqObs
	for r.Next() {
		var lo, hi, tlo, thi int64
		var ulo, uhi *string
		var n int32
		var off []int32
		var body []byte
		var tr [][]byte
		if err := r.Scan(&lo, &hi, &tlo, &thi, &ulo, &uhi, &n, &off, &body, &tr); err != nil {
			return nil, fmt.Errorf("observation blocks: %w", err)
		}
		if err := checkBlockSeqs(lo, hi, int(n), off); err != nil {
			return nil, err
		}
		// A time outside the row's range, or a UUID id outside its UUID
		// range (an edited row: the readers of a time range, and ingest's
		// look for a replayed id, would not select the block for it), is
		// refused.
		var badRow error
		got, err := decodeBlock(lo, int(n), off, body, tr, seqs, func(seq int64, o *observe.Observation) bool {
			if ns := o.Time.UnixNano(); ns < tlo || ns > thi {
				badRow = fmt.Errorf("observation block of seq %d: %w: seq %d's time %d outside the row's %d..%d",
					lo, obsblock.ErrCorrupt, seq, ns, tlo, thi)
				return false
			}
			if uid, _ := idValues(o.ID); uid.Valid {
				if id := formatUUID(uid.Bytes); ulo == nil || uhi == nil || id < *ulo || id > *uhi {
					badRow = fmt.Errorf("observation block of seq %d: %w: seq %d's id %s outside the row's UUID range", lo, obsblock.ErrCorrupt, seq, o.ID)
					return false
				}
			}
			return keep == nil || keep(seq, o)
		})
		if err == nil {
			err = badRow
		}
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("observation blocks: %w", err)
	}
	return out, nil
}

// checkBlockSeqs refuses a block row whose seqs do not hold together
// (an edited row): compaction stores seq_off strictly increasing from 0
// and seq_hi the last seq. Two observations of one seq, or one past
// seq_hi, which the readers of a seq range would not select, are refused
// wherever the block is read.
func checkBlockSeqs(lo, hi int64, n int, off []int32) error {
	last := lo + int64(n) - 1
	for i := range off {
		if i == 0 && off[0] != 0 || i > 0 && off[i] <= off[i-1] {
			return fmt.Errorf("observation block of seq %d: %w: seq offsets not increasing from 0", lo, obsblock.ErrCorrupt)
		}
		last = lo + int64(off[i])
	}
	if last != hi {
		return fmt.Errorf("observation block of seq %d: %w: last seq %d, its row says %d", lo, obsblock.ErrCorrupt, last, hi)
	}
	return nil
}

// decodeBlock is coldObservations' work on one block (seq_lo lo, n
// observations, seq_off off, its body and transcripts).
func decodeBlock(lo int64, n int, off []int32, body []byte, tr [][]byte, seqs map[int64]bool,
	keep func(seq int64, o *observe.Observation) bool) ([]seqObs, error) {
	fail := func(err error) ([]seqObs, error) {
		return nil, fmt.Errorf("observation block of seq %d: %w", lo, err)
	}
	if off != nil && len(off) != n || tr != nil && len(tr) != n {
		return fail(fmt.Errorf("%w: %d observations, %d seq offsets, %d transcripts", obsblock.ErrCorrupt, n, len(off), len(tr)))
	}
	blk, err := obsblock.Open(body)
	if err != nil {
		return fail(err)
	}
	if blk.Len() != n {
		return fail(fmt.Errorf("%w: %d observations, its row says %d", obsblock.ErrCorrupt, blk.Len(), n))
	}
	seqAt := func(i int) int64 {
		if off != nil {
			return lo + int64(off[i])
		}
		return lo + int64(i)
	}
	var out []seqObs
	add := func(i int, o observe.Observation) {
		if tr != nil {
			o.Transcript.Bytes = tr[i]
		}
		if keep == nil || keep(seqAt(i), &o) {
			out = append(out, seqObs{seq: seqAt(i), o: o})
		}
	}
	if seqs != nil {
		for i := range n {
			if !seqs[seqAt(i)] {
				continue
			}
			o, err := blk.At(i)
			if err != nil {
				return fail(err)
			}
			add(i, o)
		}
		return out, nil
	}
	all, err := blk.All()
	if err != nil {
		return fail(err)
	}
	for i := range all {
		add(i, all[i])
	}
	return out, nil
}

// byTimeSeq orders observations as Observations hands them out: by time,
// then seq.
func byTimeSeq(a, b *seqObs) int {
	ta, tb := a.o.Time.UnixNano(), b.o.Time.UnixNano()
	switch {
	case ta < tb:
		return -1
	case ta > tb:
		return 1
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

// bySeq orders observations by seq.
func bySeq(a, b *seqObs) int { return cmpInt64(a.seq, b.seq) }

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mergeHot calls fn for the hot rows that read hands out (in order) and
// the cold observations, merged in order: cold is sorted by order first.
func mergeHot(cold []seqObs, order func(a, b *seqObs) int,
	read func(fn func(seq int64, o *observe.Observation) error) error, fn func(seq int64, o *observe.Observation) error) error {
	slices.SortFunc(cold, func(a, b seqObs) int { return order(&a, &b) })
	k := 0
	err := read(func(seq int64, o *observe.Observation) error {
		h := seqObs{seq: seq, o: *o}
		for ; k < len(cold) && order(&cold[k], &h) < 0; k++ {
			if err := fn(cold[k].seq, &cold[k].o); err != nil {
				return err
			}
		}
		return fn(seq, o)
	})
	if err != nil {
		return err
	}
	for ; k < len(cold); k++ {
		if err := fn(cold[k].seq, &cold[k].o); err != nil {
			return err
		}
	}
	return nil
}

// blockObservationOfIDOn reads the observation of id from its block, if
// a block holds it (blockSeqs), through db (a snapshot's transaction).
func (s *Store) blockObservationOfIDOn(ctx context.Context, db pgQuerier, id string) (observe.Observation, bool, error) {
	seqs, err := blockSeqs(ctx, db, []string{id})
	if err != nil {
		return observe.Observation{}, false, err
	}
	seq, ok := seqs[id]
	if !ok {
		return observe.Observation{}, false, nil
	}
	got, err := coldObservations(ctx, db, blocksOfSeqsSQL, []any{[]int64{seq}}, map[int64]bool{seq: true}, nil)
	if err != nil {
		return observe.Observation{}, false, err
	}
	if len(got) != 1 || got[0].o.ID != id {
		return observe.Observation{}, false, fmt.Errorf("observation %s: %w: seq %d of its block holds %d observations", id, obsblock.ErrCorrupt, seq, len(got))
	}
	return got[0].o, true, nil
}

// snapshotRead runs fn in a read-only transaction of one snapshot
// (REPEATABLE READ), for a read of the hot rows and the blocks in two
// statements: compaction moves rows into blocks (and retention blocks
// back into rows) in transactions of their own, and a row moved between
// two statements read in snapshots of their own would be in neither (or
// in both).
func (s *Store) snapshotRead(ctx context.Context, fn func(q pgQuerier) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(tx) })
}
