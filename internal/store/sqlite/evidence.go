package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

// The evidence log (migration 0014): a leaf per stored observation,
// appended in the transaction that stores it (store.LogStore).

var _ store.LogStore = (*Store)(nil)

// maxBlock bounds the leaves of one evidence_blocks row.
const maxBlock = 4096

// appendLeaves appends, on the writer's connection inside its
// transaction, the leaves of the observations the batch stored as
// evidence_blocks rows (migration 0021), in the order of their seq:
// added rows, the last of seq last, all after seq before. An observation
// whose id was stored already appends nothing. leaves nil
// (Config.NoEvidenceLog) appends none.
func (s *Store) appendLeaves(ctx context.Context, dc driverConn, obs []observe.Observation, leaves [][32]byte, before int64, added int, last int64) error {
	if leaves == nil || added == 0 {
		return nil
	}
	w := &s.obs
	var order []int // obs' indexes in seq order; nil: all of them, in obs' order
	var seqs []int64
	if added != len(obs) || last != before+int64(added) {
		// A redelivery (ids stored already) or an id repeated in the
		// batch: the rows this batch added are those of a seq after
		// before, each once (the first of a repeated id was stored).
		seen := make(map[int64]bool, added)
		for i := range obs {
			seq, err := w.queryInt(ctx, dc, `SELECT seq FROM observations WHERE id = ?`, idValue(obs[i].ID))
			if err != nil {
				return fmt.Errorf("observation %s: %w", obs[i].ID, err)
			}
			if seq <= before || seen[seq] {
				continue
			}
			seen[seq] = true
			order, seqs = append(order, i), append(seqs, seq)
		}
		if len(order) != added {
			return fmt.Errorf("%d observations stored, %d found", added, len(order))
		}
		sort.Sort(bySeq{order, seqs})
	}
	next, err := w.queryInt(ctx, dc, logNextSQL)
	if err != nil {
		return err
	}
	st, err := w.stmt(ctx, dc, `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	for from := 0; from < added; from += maxBlock {
		to := min(from+maxBlock, added)
		ids, blob := make([]byte, 0, (to-from)*17), make([]byte, 0, (to-from)*32)
		firstSeq := before + 1 + int64(from)
		if order != nil {
			firstSeq = seqs[from]
		}
		for k := from; k < to; k++ {
			i := k
			if order != nil {
				i = order[k]
			}
			ids = appendID(ids, obs[i].ID)
			blob = append(blob, leaves[i][:]...)
		}
		if _, err := w.exec(ctx, st, next+int64(from), firstSeq, ids, blob); err != nil {
			return fmt.Errorf("leaves %d..%d: %w", next-1+int64(from), next-1+int64(to)-1, err)
		}
	}
	return nil
}

// logNextSQL is the idx (1-based) of the log's next leaf: after the last
// block, or after evidence_log's rows when there is none (the leaves
// stored before migration 0021).
const logNextSQL = `SELECT COALESCE((SELECT first + length(leaves) / 32 FROM evidence_blocks ORDER BY first DESC LIMIT 1),
	(SELECT COALESCE(MAX(idx), 0) + 1 FROM evidence_log))`

type bySeq struct {
	order []int
	seqs  []int64
}

func (b bySeq) Len() int           { return len(b.order) }
func (b bySeq) Less(i, j int) bool { return b.seqs[i] < b.seqs[j] }
func (b bySeq) Swap(i, j int) {
	b.order[i], b.order[j] = b.order[j], b.order[i]
	b.seqs[i], b.seqs[j] = b.seqs[j], b.seqs[i]
}

// appendID appends id to a block's ids: its length (uvarint), then the
// bytes observations (id) holds (idValue).
func appendID(b []byte, id string) []byte {
	switch v := idValue(id).(type) {
	case []byte:
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	default:
		b = binary.AppendUvarint(b, uint64(len(id)))
		return append(b, id...)
	}
}

// blockIndex returns the position of id in a block's ids, or -1.
func blockIndex(ids []byte, id string) (int, error) {
	want := idValue(id)
	var wb []byte
	switch v := want.(type) {
	case []byte:
		wb = v
	default:
		wb = []byte(id)
	}
	for k := 0; len(ids) > 0; k++ {
		n, m := binary.Uvarint(ids)
		if m <= 0 || uint64(len(ids)-m) < n {
			return -1, errors.New("evidence log: a block's ids are cut short")
		}
		if bytes.Equal(ids[m:m+int(n)], wb) {
			return k, nil
		}
		ids = ids[m+int(n):]
	}
	return -1, nil
}

// queryInt returns the one integer q selects on the writer's connection.
func (w *obsWriter) queryInt(ctx context.Context, dc driverConn, q string, args ...any) (int64, error) {
	st, err := w.stmt(ctx, dc, q)
	if err != nil {
		return 0, err
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, named)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, store.ErrNotFound
		}
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("%T, not an integer", dest[0])
	}
	return n, nil
}

// LogSize implements store.LogStore.
func (s *Store) LogSize(ctx context.Context) (uint64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, logNextSQL).Scan(&n)
	return uint64(n - 1), err
}

// LogLeaves implements store.LogStore. Leaf i is evidence_log's row idx
// i+1 or, after them, leaf i-first+1 of the block that holds it.
func (s *Store) LogLeaves(ctx context.Context, from, to uint64, fn func(i uint64, leaf []byte) error) error {
	next := from
	r, err := s.db.QueryContext(ctx, `SELECT idx, leaf FROM evidence_log WHERE idx > ? AND idx <= ? ORDER BY idx`, int64(from), int64(to))
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var idx int64
		var leaf []byte
		if err := r.Scan(&idx, &leaf); err != nil {
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
	b, err := s.db.QueryContext(ctx, `SELECT first, leaves FROM evidence_blocks
		WHERE first >= COALESCE((SELECT MAX(first) FROM evidence_blocks WHERE first <= ?1), 0) AND first <= ?2 ORDER BY first`,
		int64(next+1), int64(to))
	if err != nil {
		return err
	}
	defer b.Close()
	for b.Next() && next < to {
		var first int64
		var leaves []byte
		if err := b.Scan(&first, &leaves); err != nil {
			return err
		}
		if next, err = rowcodec.BlockLeaves(next, to, first, leaves, fn); err != nil {
			return err
		}
	}
	if err := b.Err(); err != nil {
		return err
	}
	if next < to {
		return fmt.Errorf("evidence log: leaf %d missing", next)
	}
	return nil
}

// LogIndexes implements store.LogStore: an id's leaf is in evidence_log
// (stored before migration 0021) or in the block of its seq; the leaf of
// an observation whose row retention purged is found in the blocks' ids.
func (s *Store) LogIndexes(ctx context.Context, ids []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(ids))
	var lost []string
	for _, id := range ids {
		var idx int64
		err := s.db.QueryRowContext(ctx, `SELECT idx FROM evidence_log WHERE observation_id = ?`, idValue(id)).Scan(&idx)
		if err == nil {
			out[id] = uint64(idx - 1)
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		var first int64
		var blockIDs []byte
		err = s.db.QueryRowContext(ctx, `SELECT b.first, b.ids FROM observations o JOIN evidence_blocks b
			ON b.first_seq = (SELECT MAX(first_seq) FROM evidence_blocks WHERE first_seq <= o.seq) WHERE o.id = ?`, idValue(id)).Scan(&first, &blockIDs)
		if errors.Is(err, sql.ErrNoRows) {
			lost = append(lost, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		k, err := blockIndex(blockIDs, id)
		if err != nil {
			return nil, err
		}
		if k < 0 {
			lost = append(lost, id)
			continue
		}
		out[id] = uint64(first-1) + uint64(k)
	}
	if len(lost) == 0 {
		return out, nil
	}
	return out, s.scanBlocks(ctx, lost, out)
}

// scanBlocks finds the leaves of ids in every block's ids (observations
// whose rows are gone, or a logless store's).
func (s *Store) scanBlocks(ctx context.Context, ids []string, out map[string]uint64) error {
	r, err := s.db.QueryContext(ctx, `SELECT first, ids FROM evidence_blocks ORDER BY first`)
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() && len(ids) > 0 {
		var first int64
		var blockIDs []byte
		if err := r.Scan(&first, &blockIDs); err != nil {
			return err
		}
		rest := ids[:0]
		for _, id := range ids {
			k, err := blockIndex(blockIDs, id)
			if err != nil {
				return err
			}
			if k < 0 {
				rest = append(rest, id)
				continue
			}
			out[id] = uint64(first-1) + uint64(k)
		}
		ids = rest
	}
	return r.Err()
}

// AddLogCheckpoint implements store.LogStore.
func (s *Store) AddLogCheckpoint(ctx context.Context, c store.LogCheckpoint) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO evidence_checkpoints (size, root, time_ns, note) VALUES (?,?,?,?)`,
		int64(c.Size), c.Root, c.Time.UnixNano(), c.Note)
	return err
}

// LogCheckpoints implements store.LogStore.
func (s *Store) LogCheckpoints(ctx context.Context) ([]store.LogCheckpoint, error) {
	r, err := s.db.QueryContext(ctx, `SELECT size, root, time_ns, note FROM evidence_checkpoints ORDER BY size, time_ns`)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.LogCheckpoint
	for r.Next() {
		var c store.LogCheckpoint
		var size, t int64
		if err := r.Scan(&size, &c.Root, &t, &c.Note); err != nil {
			return nil, err
		}
		c.Size, c.Time = uint64(size), time.Unix(0, t).UTC()
		out = append(out, c)
	}
	return out, r.Err()
}

// ObservationsByID implements store.LogStore: each stored observation
// among ids, in the order of ids.
func (s *Store) ObservationsByID(ctx context.Context, ids []string, fn func(o *observe.Observation) error) error {
	for _, id := range ids {
		found := false
		err := s.observationsWhere(ctx, `o.id = ?`, `o.seq`, []any{idValue(id)}, func(o *observe.Observation) error {
			found = true
			return fn(o)
		})
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("observation %s: %w", id, store.ErrNotFound)
		}
	}
	return nil
}

// scanChain fills c from the chain's columns (form: sensor_chains.form,
// 1 or 2; form 1 is Chain.Form 0).
func scanChain(chain sql.NullString, seq sql.NullInt64, key, prev, sig []byte, form sql.NullInt64, c *observe.Chain) {
	if !chain.Valid {
		*c = observe.Chain{}
		return
	}
	*c = observe.Chain{Key: key, ID: chain.String, Seq: uint64(seq.Int64), Prev: prev, BatchSig: sig}
	if form.Int64 == observe.Form2 {
		c.Form = observe.Form2
	}
}

// ChainBatch implements store.LogStore: the batch of chain that holds
// seq runs from the seq after the previous signed head to the first signed
// head at or after seq. A head retention purged counts as a head (its
// purge record says it was one, migration 0022): the batch after it starts
// after it, and a batch whose own head was purged has no head stored
// (store.ErrNotFound).
func (s *Store) ChainBatch(ctx context.Context, chain string, seq uint64) (first, head uint64, err error) {
	var h, p, ph, pp sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT MIN(o.chain_seq) FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = ?1 AND o.chain_seq >= ?2 AND o.batch_sig IS NOT NULL),
		(SELECT MAX(o.chain_seq) FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = ?1 AND o.chain_seq < ?2 AND o.batch_sig IS NOT NULL),
		(SELECT MIN(p.chain_seq) FROM sensor_chains c JOIN purged_observations p ON p.chain_ref = c.id
			WHERE c.chain = ?1 AND p.chain_seq >= ?2 AND p.batch_head = 1),
		(SELECT MAX(p.chain_seq) FROM sensor_chains c JOIN purged_observations p ON p.chain_ref = c.id
			WHERE c.chain = ?1 AND p.chain_seq < ?2 AND p.batch_head = 1)`,
		chain, int64(seq)).Scan(&h, &p, &ph, &pp)
	if err != nil {
		return 0, 0, err
	}
	if ph.Valid && (!h.Valid || ph.Int64 < h.Int64) {
		return 0, 0, fmt.Errorf("chain %s seq %d: the batch's signed head (seq %d) was purged under retention, it is not stored: %w", chain, seq, ph.Int64, store.ErrNotFound)
	}
	if !h.Valid {
		return 0, 0, fmt.Errorf("chain %s seq %d: the batch's signed head is not stored: %w", chain, seq, store.ErrNotFound)
	}
	return uint64(max(p.Int64, pp.Int64)) + 1, uint64(h.Int64), nil
}

// ChainObservations implements store.LogStore. The batch is read among
// the rows stored after the chain's signed head before first (stored, or
// purged under retention: its purge record keeps its seq) and up to
// its last signed head at or before head (a sensor publishes its chain in
// order, and ingest stores it so); should a seq be missing there (stored
// out of order), every row is read.
func (s *Store) ChainObservations(ctx context.Context, chain string, first, head uint64, fn func(o *observe.Observation) error) error {
	var lo, hi sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT
		MAX(COALESCE((SELECT o.seq FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = ?1 AND o.chain_seq < ?2 AND o.batch_sig IS NOT NULL ORDER BY o.chain_seq DESC LIMIT 1), 0),
		COALESCE((SELECT p.seq FROM sensor_chains c JOIN purged_observations p ON p.chain_ref = c.id
			WHERE c.chain = ?1 AND p.chain_seq < ?2 AND p.batch_head = 1 ORDER BY p.chain_seq DESC LIMIT 1), 0)),
		(SELECT o.seq FROM sensor_chains c JOIN observations o ON o.chain_ref = c.id
			WHERE c.chain = ?1 AND o.chain_seq BETWEEN ?2 AND ?3 AND o.batch_sig IS NOT NULL ORDER BY o.chain_seq DESC LIMIT 1)`,
		chain, int64(first), int64(head)).Scan(&lo, &hi)
	if err != nil {
		return err
	}
	where := `o.chain_ref IN (SELECT id FROM sensor_chains WHERE chain = ?) AND o.chain_seq BETWEEN ? AND ?`
	args := []any{chain, int64(first), int64(head)}
	upTo := int64(math.MaxInt64)
	if hi.Valid {
		upTo = hi.Int64
	}
	got, err := s.chainRows(ctx, `o.seq > ? AND o.seq <= ? AND `+where, append([]any{lo.Int64, upTo}, args...), first, head)
	if err == nil && uint64(len(got)) != head-first+1 {
		got, err = s.chainRows(ctx, where, args, first, head)
	}
	if err != nil {
		return err
	}
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

// chainRows reads the observations where selects, in chain order, at
// most head-first+1 of them.
func (s *Store) chainRows(ctx context.Context, where string, args []any, first, head uint64) ([]observe.Observation, error) {
	var out []observe.Observation
	err := s.observationsWhere(ctx, where, `o.chain_seq`, args, func(o *observe.Observation) error {
		if uint64(len(out)) > head-first {
			return fmt.Errorf("chain %s: seq %d twice in the store", o.Chain.ID, o.Chain.Seq)
		}
		out = append(out, *o)
		return nil
	})
	return out, err
}

// SensorKeys implements store.LogStore: each key with the sensor that
// used it and when it was first seen, oldest first.
func (s *Store) SensorKeys(ctx context.Context) ([]store.SensorKey, error) {
	r, err := s.db.QueryContext(ctx, `SELECT chain_key, sensor, MIN(first_ns) FROM sensor_chains GROUP BY chain_key, sensor ORDER BY 3`)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []store.SensorKey
	seen := map[string]bool{}
	for r.Next() {
		var k store.SensorKey
		var t int64
		if err := r.Scan(&k.Key, &k.Sensor, &t); err != nil {
			return nil, err
		}
		if seen[string(k.Key)+"\x00"+k.Sensor] {
			continue
		}
		seen[string(k.Key)+"\x00"+k.Sensor] = true
		k.FirstSeen = time.Unix(0, t).UTC()
		out = append(out, k)
	}
	return out, r.Err()
}
