package postgres

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// The evidence log (migration 0008): a leaf per stored observation,
// appended in the transaction that stores it (store.LogStore). Since
// migration 0016 a commit appended its leaves as one evidence_blocks row
// (4,096 leaves at most a row), and the observation's row holds its place
// in its sensor's chain; the leaves stored before stay in evidence_log.
// Since migration 0021 a commit appends an evidence_tiles block, which
// keeps no leaf (evidencetiles.go); the blocks before stay as they are.

var _ store.LogStore = (*Store)(nil)

// maxBlock bounds the leaves of one evidence_tiles (before it
// evidence_blocks) row.
const maxBlock = 4096

// leafHashes are the leaves of a batch, hashed on a goroutine of their
// own beside the batch's writes.
type leafHashes struct {
	done   chan struct{}
	leaves [][32]byte
	sensor [][32]byte // form 2's sensor hashes, which its leaves are of (observe.KnownSensorHash)
	// known: the sensor hash is the one the observation remembers
	// (observe.HashesRemembered): remember has nothing to hand on.
	known []bool
	err   error
}

// hashLeaves starts hashing obs' leaves; nil when s.cfg.NoEvidenceLog.
// obs must not change until wait has returned.
func (s *Store) hashLeaves(obs []observe.Observation) *leafHashes {
	if s.cfg.NoEvidenceLog {
		return nil
	}
	h := &leafHashes{done: make(chan struct{}), leaves: make([][32]byte, len(obs)), sensor: make([][32]byte, len(obs)), known: make([]bool, len(obs))}
	go func() {
		defer close(h.done)
		for i := range obs {
			if h.leaves[i], h.sensor[i], h.known[i], h.err = obs[i].HashesRemembered(); h.err != nil {
				h.err = fmt.Errorf("observation %s: %w", obs[i].ID, h.err)
				return
			}
		}
	}()
	return h
}

// remember hands the form 2 sensor hashes on in obs, the batch they were
// hashed from, once it is stored (observe.RememberSensorHash): ingest's
// check then does not compute them again.
func (h *leafHashes) remember(obs []observe.Observation) {
	if h == nil || len(obs) != len(h.sensor) {
		return
	}
	if <-h.done; h.err != nil {
		return
	}
	for i := range obs {
		if obs[i].Chain.Form == observe.Form2 && !h.known[i] {
			obs[i].RememberSensorHash(h.sensor[i])
		}
	}
}

// wait returns the leaves once hashed (nil, nil for a nil h).
func (h *leafHashes) wait() ([][32]byte, error) {
	if h == nil {
		return nil, nil
	}
	<-h.done
	return h.leaves, h.err
}

// appendLeaves appends, inside tx after the observations' INSERT, the
// leaves of the observations the INSERT added (in) as evidence_tiles
// blocks (migration 0021), in the order of their seqs. An observation
// stored before (a redelivery) appends nothing: the rows added are those
// of a seq at or after in.firstSeq, as batches draw their seqs and commit
// in order under seqOrder's lock, which also orders the blocks. leaves
// nil (Config.NoEvidenceLog) appends none.
func (s *Store) appendLeaves(ctx context.Context, tx pgx.Tx, obs []observe.Observation, leaves *leafHashes, in inserted) error {
	hashes, err := leaves.wait()
	if err != nil || hashes == nil || in.n == 0 {
		return err
	}
	seqs, err := seqsFrom(ctx, tx, in.firstSeq)
	if err != nil {
		return err
	}
	byID := make(map[string]int, len(obs))
	for i := range obs {
		byID[idKey(obs[i].ID)] = i
	}
	ordered := make([][32]byte, 0, len(seqs))
	for _, r := range seqs {
		i, ok := byID[r.key]
		if !ok {
			return fmt.Errorf("evidence log: the row of seq %d is none of the batch's observations", r.seq)
		}
		ordered = append(ordered, hashes[i])
	}
	if int64(len(ordered)) != in.n {
		return fmt.Errorf("evidence log: %d observations stored, %d found", in.n, len(ordered))
	}
	var size int64
	if err := tx.QueryRow(ctx, logSizeSQL).Scan(&size); err != nil {
		return fmt.Errorf("evidence log: %w", err)
	}
	for from := 0; from < len(ordered); from += maxBlock {
		to := min(from+maxBlock, len(ordered))
		bs := make([]int64, 0, to-from)
		for _, r := range seqs[from:to] {
			bs = append(bs, r.seq)
		}
		runs, err := appendSeqRuns(nil, bs[0], bs)
		if err != nil {
			return err
		}
		begin := uint64(size) + uint64(from)
		nodes := tileHashes(begin, ordered[from:to], s.tileLevel)
		if _, err := tx.Exec(ctx, `INSERT INTO evidence_tiles (first, first_seq, n, level, seqs, nodes) VALUES ($1, $2, $3, $4, $5, $6)`,
			int64(begin)+1, bs[0], int32(to-from), int16(s.tileLevel), runs, nodes); err != nil {
			return fmt.Errorf("evidence log: %w", err)
		}
	}
	return nil
}

// seqRow is a stored row's seq and id (idKey).
type seqRow struct {
	seq int64
	key string
}

// seqsFrom returns the seq and id of the rows of a seq at or after seq,
// in seq order.
func seqsFrom(ctx context.Context, tx pgx.Tx, seq int64) ([]seqRow, error) {
	r, err := tx.Query(ctx, `SELECT o.seq, `+obsIDCol+` FROM observations o WHERE o.seq >= $1 ORDER BY o.seq`, seq)
	if err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	defer r.Close()
	var out []seqRow
	for r.Next() {
		var sr seqRow
		var id string
		if err := r.Scan(&sr.seq, &id); err != nil {
			return nil, fmt.Errorf("evidence log: %w", err)
		}
		sr.key = idKey(id)
		out = append(out, sr)
	}
	return out, r.Err()
}

// idKey is id as an evidence_blocks row holds it (migration 0016: a
// UUID's 16 bytes or any other id's text, as observations holds it, after
// its length as a uvarint), without the length.
func idKey(id string) string {
	if b, ok := parseUUID(id); ok {
		return string(b[:])
	}
	return id
}

// blockIndex returns the position of id in an evidence_blocks row's ids,
// or -1.
func blockIndex(ids []byte, id string) (int, error) {
	want := idKey(id)
	for k := 0; len(ids) > 0; k++ {
		n, m := binary.Uvarint(ids)
		if m <= 0 || uint64(len(ids)-m) < n {
			return -1, errors.New("evidence log: a block's ids are cut short")
		}
		if string(ids[m:m+int(n)]) == want {
			return k, nil
		}
		ids = ids[m+int(n):]
	}
	return -1, nil
}

// logSizeSQL is the number of leaves: up to the last block's last, in
// evidence_tiles (since migration 0021), else where the older tables end
// (evidence_older_end, migration 0024), never after a row appended to them
// since: the first tile begins there.
const logSizeSQL = `SELECT COALESCE((SELECT first - 1 + n FROM evidence_tiles ORDER BY first DESC LIMIT 1),
	(SELECT leaves FROM evidence_older_end))`

// LogSize implements store.LogStore.
func (s *Store) LogSize(ctx context.Context) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, logSizeSQL).Scan(&n)
	return uint64(n), err
}

// LogLeaves implements store.LogStore. Leaf i is evidence_log's row idx
// i+1 or, after them, leaf i-first+1 of the evidence_blocks row that
// holds it or, after them, the leaf of the i-first+1-th observation of the
// evidence_tiles block that holds it, hashed again and checked against
// the block's node (tileLeaves). Each leaf is read from one table and one
// row: a row of evidence_log or evidence_blocks beyond where the next
// table starts, or beyond where the older tables end, is refused
// (logRowBefore, blocksRowBefore), and so is an evidence_blocks row that
// does not follow the row before it (rowFollows).
func (s *Store) LogLeaves(ctx context.Context, from, to uint64, fn func(i uint64, leaf []byte) error) error {
	tiles, err := s.tilesStart(ctx)
	if err != nil {
		return err
	}
	end, err := s.olderEnd(ctx)
	if err != nil {
		return err
	}
	if tiles >= 0 && from >= uint64(tiles) {
		// Wholly in evidence_tiles.
		next, err := s.tileLeaves(ctx, from, to, fn)
		if err == nil && next < to {
			err = fmt.Errorf("evidence log: leaf %d missing", next)
		}
		return err
	}
	r, err := s.pool.Query(ctx, `SELECT idx, leaf, (SELECT MIN(first) FROM evidence_blocks) FROM evidence_log
		WHERE idx > $1 AND idx <= $2 ORDER BY idx`, int64(from), int64(to))
	if err != nil {
		return err
	}
	defer r.Close()
	next := from
	for r.Next() {
		var idx int64
		var leaf []byte
		var blocks *int64
		if err := r.Scan(&idx, &leaf, &blocks); err != nil {
			return err
		}
		if err := logRowBefore(idx-1, blocks, end); err != nil {
			return err
		}
		if uint64(idx-1) != next {
			return fmt.Errorf("evidence log: leaf %d missing", next)
		}
		if err := fn(next, leaf); err != nil {
			return err
		}
		next++
	}
	if err := r.Err(); err != nil {
		return err
	}
	r.Close()
	if next >= to {
		return nil
	}
	// The row that holds leaf next, the row before it (whose leaves are
	// not read unless it reaches next), and the rows after it up to to.
	b, err := s.pool.Query(ctx, `SELECT first, length(leaves) / 32, CASE WHEN first - 1 + length(leaves) / 32 > $1 THEN leaves END,
		first = (SELECT MIN(first) FROM evidence_blocks),
		(SELECT COALESCE(MAX(idx), 0) FROM evidence_log WHERE idx <= (SELECT MIN(first) FROM evidence_blocks))
		FROM evidence_blocks WHERE first >= COALESCE((SELECT MAX(first) FROM evidence_blocks
			WHERE first < (SELECT MAX(first) FROM evidence_blocks WHERE first <= $1 + 1)), 0) AND first <= $2 ORDER BY first`,
		int64(next), int64(to))
	if err != nil {
		return err
	}
	defer b.Close()
	prev := int64(-1) // the end of the row before, once one was read
	for b.Next() && next < to {
		var first, n, logEnd int64
		var leaves []byte
		var tableFirst bool
		if err := b.Scan(&first, &n, &leaves, &tableFirst, &logEnd); err != nil {
			return err
		}
		if err := blocksRowBefore(first-1, n, end); err != nil {
			return err
		}
		if err := rowFollows(first-1, n, prev, tableFirst && leaves != nil, logEnd); err != nil {
			return err
		}
		prev = first - 1 + n
		if leaves == nil {
			continue // ends before next
		}
		if next, err = rowcodec.BlockLeaves(next, to, first, leaves, fn); err != nil {
			return err
		}
	}
	if err := b.Err(); err != nil {
		return err
	}
	b.Close()
	if next < to {
		if next, err = s.tileLeaves(ctx, next, to, fn); err != nil {
			return err
		}
	}
	if next < to {
		return fmt.Errorf("evidence log: leaf %d missing", next)
	}
	return nil
}

// logRowBefore refuses an evidence_log row (leaf i) at or beyond the
// first leaf of evidence_blocks (blocks, 1-based, nil when it has none)
// or where the older tables end (end, olderEnd: evidence_tiles' first
// leaf once it has one): each leaf is read from one table, and rows
// inserted into evidence_log after them (by whoever can disable its
// triggers: since migration 0024 they refuse INSERT too) are not leaves.
func logRowBefore(i int64, blocks *int64, end int64) error {
	if blocks != nil && i >= *blocks-1 {
		return fmt.Errorf("evidence log: an evidence_log row at leaf %d, at or beyond evidence_blocks' first leaf %d", i, *blocks-1)
	}
	if i >= end {
		return fmt.Errorf("evidence log: an evidence_log row at leaf %d, at or beyond the older tables' end, leaf %d (evidence_older_end, where evidence_tiles begins)", i, end)
	}
	return nil
}

// blocksRowBefore refuses an evidence_blocks row of n leaves from leaf
// begin that reaches where the older tables end (end, olderEnd), as
// logRowBefore refuses an evidence_log row.
func blocksRowBefore(begin, n, end int64) error {
	if begin+n > end {
		return fmt.Errorf("evidence log: an evidence_blocks row at leaves %d to %d, at or beyond the older tables' end, leaf %d (evidence_older_end, where evidence_tiles begins)", begin, begin+n-1, end)
	}
	return nil
}

// rowFollows refuses the evidence_blocks row of n leaves from leaf begin
// unless it begins where the row before it ends (prev; -1: that row was
// not read) or, the table's first row read for its leaves (tableFirst),
// where evidence_log ends below it (logEnd: its last idx at or below the
// row's first, so that an evidence_log row at the row's first leaf
// counts). Commits appended the rows one after another: a row INSERTed
// over the leaves of others would be read in their place.
func rowFollows(begin, n, prev int64, tableFirst bool, logEnd int64) error {
	switch {
	case prev >= 0 && begin != prev:
		return fmt.Errorf("evidence log: the evidence_blocks row at leaves %d to %d does not follow the row before it, which ends at leaf %d", begin, begin+n-1, prev-1)
	case prev < 0 && tableFirst && begin != logEnd:
		return fmt.Errorf("evidence log: the first evidence_blocks row begins at leaf %d, not where evidence_log ends (leaf %d)", begin, logEnd)
	}
	return nil
}

// blocksFollow refuses the evidence_blocks row of n leaves at first
// (1-based) unless it begins where the row before it ends (the table's
// first row: where evidence_log ends, rowFollows) and the row after it begins where
// it ends (the last row: where the older tables end, end): a row INSERTed
// over the leaves of others would give an observation another leaf index.
func (s *Store) blocksFollow(ctx context.Context, first, n, end int64) error {
	var before, next *int64
	var logEnd int64
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT first - 1 + length(leaves) / 32 FROM evidence_blocks WHERE first < $1 ORDER BY first DESC LIMIT 1),
		(SELECT first - 1 FROM evidence_blocks WHERE first > $1 ORDER BY first LIMIT 1), (SELECT COALESCE(MAX(idx), 0) FROM evidence_log WHERE idx <= $1)`,
		first).Scan(&before, &next, &logEnd); err != nil {
		return fmt.Errorf("evidence log: %w", err)
	}
	begin := first - 1
	switch {
	case before != nil && *before != begin:
		return fmt.Errorf("evidence log: the evidence_blocks row at leaves %d to %d does not follow the row before it, which ends at leaf %d", begin, begin+n-1, *before-1)
	case before == nil && begin != logEnd:
		return fmt.Errorf("evidence log: the first evidence_blocks row begins at leaf %d, not where evidence_log ends (leaf %d)", begin, logEnd)
	case next != nil && *next != begin+n:
		return fmt.Errorf("evidence log: the evidence_blocks row at leaves %d to %d is not followed by the row after it, which begins at leaf %d", begin, begin+n-1, *next)
	case next == nil && begin+n != end:
		return fmt.Errorf("evidence log: the last evidence_blocks row ends at leaf %d, not where the older tables end (leaf %d, evidence_older_end)", begin+n-1, end)
	}
	return nil
}

// idWhere is the condition on observations o that selects the id in $1.
func idWhere(id string) (string, any) {
	uid, text := idValues(id)
	if uid.Valid {
		return `o.uid = $1`, uid
	}
	return `o.id_text = $1`, text
}

// LogIndexes implements store.LogStore: an id's leaf is in the
// evidence_tiles block of the largest first_seq at or below its seq (since
// migration 0021), in evidence_log (stored before migration 0016) or in
// an evidence_blocks row of its commit, found by
// the seq of its row or, for a row purged under retention, of its purge
// record (migration 0015); failing that, in every block's ids.
func (s *Store) LogIndexes(ctx context.Context, ids []string) (map[string]uint64, error) {
	if _, err := s.tilesStart(ctx); err != nil {
		return nil, err
	}
	end, err := s.olderEnd(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]uint64, len(ids))
	checked := map[int64]bool{} // evidence_blocks rows (first) that blocksFollow passed
	var lost []string
	for _, id := range ids {
		where, arg := idWhere(id)
		var seq int64
		err := s.pool.QueryRow(ctx, `SELECT o.seq FROM observations o WHERE `+where+`
			UNION ALL SELECT p.seq FROM purged_observations p WHERE p.observation_id = $2 LIMIT 1`, arg, id).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) { // in a block (migration 0030)?
			cold, cerr := blockSeqs(ctx, s.pool, []string{id})
			if cerr != nil {
				return nil, cerr
			}
			if q, ok := cold[id]; ok {
				seq, err = q, nil
			}
		}
		if errors.Is(err, pgx.ErrNoRows) {
			lost = append(lost, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		if i, ok, err := s.tileIndex(ctx, seq); err != nil {
			return nil, err
		} else if ok {
			out[id] = i
			continue
		}
		var idx int64
		var blocks *int64
		err = s.pool.QueryRow(ctx, `SELECT idx, (SELECT MIN(first) FROM evidence_blocks) FROM evidence_log WHERE obs_seq = $1`, seq).Scan(&idx, &blocks)
		if err == nil {
			if err := logRowBefore(idx-1, blocks, end); err != nil {
				return nil, err
			}
			out[id] = uint64(idx - 1)
			continue
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return nil, err
		}
		found, err := s.findInBlocks(ctx, end, checked, `WHERE first_seq = (SELECT MAX(first_seq) FROM evidence_blocks WHERE first_seq <= $1)`,
			[]any{seq}, []string{id}, out)
		if err != nil {
			return nil, err
		}
		if found == 0 {
			lost = append(lost, id)
		}
	}
	if len(lost) == 0 {
		return out, nil
	}
	// Observations found neither way (a store written by a logless
	// binary between logged ones): every block's ids.
	_, err = s.findInBlocks(ctx, end, checked, ``, nil, lost, out)
	return out, err
}

// findInBlocks looks ids up in the ids of the blocks where selects,
// recording each one found in out; it returns how many it found. It
// refuses a block that finds one but reaches where the older tables end
// (end, olderEnd), holds more ids than leaves, or does not sit between the
// rows before and after it (blocksFollow), as LogLeaves does; checked
// holds the rows (by first) already checked by the caller's earlier calls.
func (s *Store) findInBlocks(ctx context.Context, end int64, checked map[int64]bool, where string, args []any, ids []string, out map[string]uint64) (int, error) {
	r, err := s.pool.Query(ctx, `SELECT first, length(leaves) / 32, ids FROM evidence_blocks `+where+` ORDER BY first`, args...)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	type hit struct{ first, n int64 }
	var hits []hit // the rows that named one, checked once r is closed (one connection at a time)
	found := 0
	for r.Next() && found < len(ids) {
		var first, n int64
		var blockIDs []byte
		if err := r.Scan(&first, &n, &blockIDs); err != nil {
			return 0, err
		}
		named := false
		for _, id := range ids {
			if _, done := out[id]; done {
				continue
			}
			k, err := blockIndex(blockIDs, id)
			if err != nil {
				return 0, err
			}
			if k >= 0 {
				if int64(k) >= n {
					return 0, fmt.Errorf("evidence log: the evidence_blocks row at leaf %d holds %d leaves and names observation %s at its leaf %d", first-1, n, id, k)
				}
				out[id] = uint64(first-1) + uint64(k)
				found++
				named = true
			}
		}
		if named {
			hits = append(hits, hit{first, n})
		}
	}
	if err := r.Err(); err != nil {
		return 0, err
	}
	r.Close()
	for _, h := range hits {
		if checked[h.first] {
			continue
		}
		checked[h.first] = true
		if err := blocksRowBefore(h.first-1, h.n, end); err != nil {
			return 0, err
		}
		if err := s.blocksFollow(ctx, h.first, h.n, end); err != nil {
			return 0, err
		}
	}
	return found, nil
}

// AddLogCheckpoint implements store.LogStore.
func (s *Store) AddLogCheckpoint(ctx context.Context, c store.LogCheckpoint) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO evidence_checkpoints (size, time_ns, root, note) VALUES ($1, $2, $3, $4)`,
		int64(c.Size), c.Time.UnixNano(), c.Root, c.Note)
	return err
}

// LogCheckpoints implements store.LogStore.
func (s *Store) LogCheckpoints(ctx context.Context) ([]store.LogCheckpoint, error) {
	r, err := s.pool.Query(ctx, `SELECT size, time_ns, root, note FROM evidence_checkpoints ORDER BY size, time_ns`)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.LogCheckpoint
	for r.Next() {
		var c store.LogCheckpoint
		var size, t int64
		if err := r.Scan(&size, &t, &c.Root, &c.Note); err != nil {
			return nil, err
		}
		c.Size, c.Time = uint64(size), time.Unix(0, t).UTC()
		out = append(out, c)
	}
	return out, r.Err()
}

// ObservationsByID implements store.LogStore.
func (s *Store) ObservationsByID(ctx context.Context, ids []string, fn func(o *observe.Observation) error) error {
	// Every id's row or block read in one snapshot (one transaction for
	// the list, not one an id): a row compacted (or a block thawed)
	// between two reads would be in neither.
	return s.snapshotRead(ctx, func(q pgQuerier) error {
		for _, id := range ids {
			where, arg := idWhere(id)
			found := false
			err := s.observationsWhereOn(ctx, q, where, `o.seq`, []any{arg}, func(o *observe.Observation) error {
				found = true
				return fn(o)
			})
			if err != nil {
				return err
			}
			if !found { // in a block (migration 0030)?
				o, ok, err := s.blockObservationOfIDOn(ctx, q, id)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("observation %s: %w", id, store.ErrNotFound)
				}
				if err := fn(&o); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// ChainBatch implements store.LogStore: the batch of chain that holds
// seq runs from the seq after the previous signed head to the first signed
// head at or after seq.
func (s *Store) ChainBatch(ctx context.Context, chain string, seq uint64) (first, head uint64, err error) {
	var h, p *int64
	// The heads among the hot rows and among the blocks'
	// (observation_chain_heads, migration 0030).
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT MIN(x) FROM (SELECT MIN(o.chain_seq) FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = $1 AND o.chain_seq >= $2 AND o.batch_sig IS NOT NULL
			UNION ALL SELECT MIN(h.chain_seq) FROM sensor_chains c JOIN observation_chain_heads h ON h.chain_ref = c.id
			WHERE c.chain = $1 AND h.chain_seq >= $2) AS a(x)),
		(SELECT MAX(x) FROM (SELECT MAX(o.chain_seq) FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = $1 AND o.chain_seq < $2 AND o.batch_sig IS NOT NULL
			UNION ALL SELECT MAX(h.chain_seq) FROM sensor_chains c JOIN observation_chain_heads h ON h.chain_ref = c.id
			WHERE c.chain = $1 AND h.chain_seq < $2) AS b(x))`,
		chain, int64(seq)).Scan(&h, &p)
	if err != nil {
		return 0, 0, err
	}
	if h == nil {
		return 0, 0, fmt.Errorf("chain %s seq %d: the batch's signed head is not stored: %w", chain, seq, store.ErrNotFound)
	}
	var prev int64
	if p != nil {
		prev = *p
	}
	return uint64(prev) + 1, uint64(*h), nil
}

// ChainObservations implements store.LogStore. The rows are read in the
// seq ranges where the commits that stored the chain's positions first
// to head put them (observation_chain_runs, migration 0026): no index
// holds every signed row. A position stored twice, or missing, is an
// error; a row in no run's range is not read (the store did not store
// it: one written into observations by hand, whatever its chain fields).
func (s *Store) ChainObservations(ctx context.Context, chain string, first, head uint64, fn func(o *observe.Observation) error) error {
	ranges, err := s.chainSeqRanges(ctx, chain, first, head)
	if err != nil {
		return err
	}
	var got []observe.Observation
	add := func(o *observe.Observation) error {
		if uint64(len(got)) > head-first {
			return fmt.Errorf("chain %s: seq %d twice in the store", chain, o.Chain.Seq)
		}
		got = append(got, *o)
		return nil
	}
	// The rows and the blocks in one snapshot: a row compaction moved
	// between two reads of their own was read twice.
	err = s.snapshotRead(ctx, func(q pgQuerier) error {
		for _, r := range ranges {
			err := s.observationsWhereOn(ctx, q, `o.seq BETWEEN $1 AND $2 AND o.chain_ref IN (SELECT id FROM sensor_chains WHERE chain = $3)
			AND o.chain_seq BETWEEN $4 AND $5`, `o.chain_seq`, []any{r[0], r[1], chain, int64(first), int64(head)}, add)
			if err != nil {
				return err
			}
			// The range's observations in blocks (migration 0030), filtered
			// on chain and position in Go.
			cold, err := coldObservations(ctx, q, `int8range(b.seq_lo, b.seq_hi, '[]') && int8range($1, $2, '[]')`, []any{r[0], r[1]}, nil,
				func(seq int64, o *observe.Observation) bool {
					return seq >= r[0] && seq <= r[1] && o.Chain.ID == chain && o.Chain.Seq >= first && o.Chain.Seq <= head
				})
			if err != nil {
				return err
			}
			for i := range cold {
				if err := add(&cold[i].o); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Each range is in chain order; the ranges are in seq order.
	slices.SortStableFunc(got, func(a, b observe.Observation) int { return cmp.Compare(a.Chain.Seq, b.Chain.Seq) })
	next := first
	for i := range got {
		if got[i].Chain.Seq != next {
			return &store.ChainGapError{Chain: chain, Seq: next}
		}
		next++
		if err := fn(&got[i]); err != nil {
			return err
		}
	}
	if next != head+1 {
		return &store.ChainGapError{Chain: chain, Seq: next}
	}
	return nil
}

// chainSeqRanges gives the seq ranges, disjoint and in order, of the
// commits that stored rows of chain (under any key) at positions first to
// head: those of their runs (observation_chain_runs) in the blocks of
// those positions, ranges that meet or overlap merged.
func (s *Store) chainSeqRanges(ctx context.Context, chain string, first, head uint64) ([][2]int64, error) {
	r, err := s.pool.Query(ctx, `SELECT r.first_seq, r.last_seq FROM observation_chain_runs r
		WHERE r.chain_ref IN (SELECT id FROM sensor_chains WHERE chain = $1) AND r.block BETWEEN $2 AND $3
		ORDER BY r.first_seq`, chain, int64(first)>>chainBlockShift, int64(head)>>chainBlockShift)
	if err != nil {
		return nil, fmt.Errorf("chain %s: runs: %w", chain, err)
	}
	defer r.Close()
	var out [][2]int64
	for r.Next() {
		var lo, hi int64
		if err := r.Scan(&lo, &hi); err != nil {
			return nil, fmt.Errorf("chain %s: runs: %w", chain, err)
		}
		if n := len(out); n > 0 && lo <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], hi)
			continue
		}
		out = append(out, [2]int64{lo, hi})
	}
	return out, r.Err()
}

// SensorKeys implements store.LogStore: each key with the sensor that
// used it and when it was first seen, oldest first. A chain whose first
// observation was purged keeps its key (sensor_chains keeps it).
func (s *Store) SensorKeys(ctx context.Context) ([]store.SensorKey, error) {
	r, err := s.pool.Query(ctx, `SELECT chain_key, sensor, MIN(first_ns) FROM sensor_chains GROUP BY chain_key, sensor ORDER BY 3, 2`)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.SensorKey
	for r.Next() {
		var k store.SensorKey
		var t int64
		if err := r.Scan(&k.Key, &k.Sensor, &t); err != nil {
			return nil, err
		}
		k.FirstSeen = time.Unix(0, t).UTC()
		out = append(out, k)
	}
	return out, r.Err()
}

// chainKey identifies a chain and its key in Store.chains.
func chainKey(o *observe.Observation) string {
	return chainKeyOf(o.Chain.ID, o.Chain.Key, chainForm(o))
}

// chainKeyOf is chainKey of a chain, its key and sensor_chains.form.
func chainKeyOf(chain string, key []byte, form int16) string {
	return chain + "\x00" + string(key) + "\x00" + strconv.Itoa(int(form))
}

// chainForm is sensor_chains.form of o: its evidence form, 1 or 2
// (migration 0018).
func chainForm(o *observe.Observation) int16 { return int16(max(o.Chain.Form, 1)) }

// chainRefs returns the sensor_chains row of every signed observation (0
// for an unsigned one; nil when none is signed), adding rows for new
// chains (with the sensor and time of their first observation), and the
// ids it added or read for the cache once the transaction commits (as
// itemIDs does).
func (s *Store) chainRefs(ctx context.Context, tx pgx.Tx, obs []observe.Observation) ([]int64, map[string]int64, error) {
	var refs []int64
	var missing map[string]int
	s.mu.Lock()
	for i := range obs {
		if !obs[i].Signed() {
			continue
		}
		if refs == nil {
			refs = make([]int64, len(obs))
		}
		k := chainKey(&obs[i])
		id, ok := s.chains[k]
		if !ok {
			if missing == nil {
				missing = map[string]int{}
			}
			if _, seen := missing[k]; !seen {
				missing[k] = i
			}
		}
		refs[i] = id
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return refs, nil, nil
	}
	fresh := make(map[string]int64, len(missing))
	// A chain another transaction is adding at the same moment: the next
	// round sees it (itemIDs).
	for round := 0; len(missing) > 0; round++ {
		if round == 3 {
			return nil, nil, fmt.Errorf("sensor chains: %d neither added nor found after %d rounds", len(missing), round)
		}
		var chains, sensors []string
		var keys [][]byte
		var times []int64
		var forms []int16
		for _, i := range missing {
			o := &obs[i]
			chains, keys = append(chains, o.Chain.ID), append(keys, o.Chain.Key)
			sensors, times = append(sensors, o.Sensor.ID), append(times, o.Time.UnixNano())
			forms = append(forms, chainForm(o))
		}
		r, err := tx.Query(ctx, `WITH input (chain, chain_key, sensor, first_ns, form) AS (SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[], $5::smallint[])),
			added AS (INSERT INTO sensor_chains (chain, chain_key, sensor, first_ns, form) SELECT * FROM input ORDER BY chain, chain_key, form
				ON CONFLICT DO NOTHING RETURNING id, chain, chain_key, form)
			SELECT id, chain, chain_key, form FROM added
			UNION ALL
			SELECT c.id, c.chain, c.chain_key, c.form FROM sensor_chains c JOIN input ON c.chain = input.chain AND c.chain_key = input.chain_key AND c.form = input.form`,
			chains, keys, sensors, times, forms)
		if err != nil {
			return nil, nil, fmt.Errorf("sensor chains: %w", err)
		}
		for r.Next() {
			var id int64
			var chain string
			var key []byte
			var form int16
			if err := r.Scan(&id, &chain, &key, &form); err != nil {
				r.Close()
				return nil, nil, fmt.Errorf("sensor chains: %w", err)
			}
			k := chainKeyOf(chain, key, form)
			fresh[k] = id
			delete(missing, k)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return nil, nil, fmt.Errorf("sensor chains: %w", err)
		}
	}
	for i := range obs {
		if obs[i].Signed() && refs[i] == 0 {
			refs[i] = fresh[chainKey(&obs[i])]
		}
	}
	return refs, fresh, nil
}

func (s *Store) commitChains(fresh map[string]int64) {
	if len(fresh) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.chains)+len(fresh) > maxCachedItems {
		clear(s.chains)
	}
	for k, v := range fresh {
		s.chains[k] = v
	}
}
