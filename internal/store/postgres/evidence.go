package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// The evidence log (migration 0008): a leaf per stored observation,
// appended in the transaction that stores it (store.LogStore).

var _ store.LogStore = (*Store)(nil)

// appendLeavesSQL appends the leaves of the observations of a batch that
// the batch's INSERT stored (those already stored before have their leaf),
// in the batch's order, numbered after the log's last leaf under the
// table's lock. The rows the INSERT stored are those of a seq after the
// last logged one: batches draw their seqs and commit in order (seqOrder)
// and every committed row has its leaf, so a row stored before has a
// seq at or below it. (A NOT EXISTS on evidence_log was planned as a
// hash anti-join over the whole log, every batch: docs/benchmarks.md.)
const appendLeavesSQL = `INSERT INTO evidence_log (idx, obs_seq, leaf, chain, chain_seq, chain_key, chain_prev, batch_sig)
SELECT (SELECT COALESCE(MAX(idx), 0) FROM evidence_log) + row_number() OVER (ORDER BY a.ord),
	o.seq, a.leaf, a.chain, a.chain_seq, a.chain_key, a.chain_prev, a.batch_sig
FROM unnest($1::int[], $2::uuid[], $3::text[], $4::bytea[], $5::text[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bytea[])
	AS a(ord, uid, id_text, leaf, chain, chain_seq, chain_key, chain_prev, batch_sig)
JOIN observations o ON (a.uid IS NOT NULL AND o.uid = a.uid) OR (a.id_text IS NOT NULL AND o.id_text = a.id_text)
WHERE o.seq > (SELECT COALESCE(MAX(obs_seq), 0) FROM evidence_log)`

// appendLeaves appends obs' leaves inside tx, after the observations'
// INSERT; s.cfg.NoEvidenceLog appends none.
func (s *Store) appendLeaves(ctx context.Context, tx pgx.Tx, obs []observe.Observation) error {
	if s.cfg.NoEvidenceLog {
		return nil
	}
	n := len(obs)
	ord := make([]int32, n)
	uids := make([]pgtype.UUID, n)
	texts := make([]*string, n)
	leaves := make([][]byte, n)
	chains := make([]*string, n)
	seqs := make([]*int64, n)
	keys, prevs, sigs := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for i := range obs {
		o := &obs[i]
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		ord[i], leaves[i] = int32(i), h[:]
		uid, text := idValues(o.ID)
		uids[i] = uid
		if t, ok := text.(string); ok {
			texts[i] = &t
		}
		if o.Signed() {
			id, seq := o.Chain.ID, int64(o.Chain.Seq)
			chains[i], seqs[i] = &id, &seq
			keys[i], prevs[i] = o.Chain.Key, o.Chain.Prev
			if len(o.Chain.BatchSig) > 0 {
				sigs[i] = o.Chain.BatchSig
			}
		}
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE evidence_log IN SHARE ROW EXCLUSIVE MODE`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, appendLeavesSQL, ord, uids, texts, leaves, chains, seqs, keys, prevs, sigs); err != nil {
		return fmt.Errorf("evidence log: %w", err)
	}
	return nil
}

// LogSize implements store.LogStore.
func (s *Store) LogSize(ctx context.Context) (uint64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(idx), 0) FROM evidence_log`).Scan(&n)
	return uint64(n), err
}

// LogLeaves implements store.LogStore. Leaf i is row idx i+1.
func (s *Store) LogLeaves(ctx context.Context, from, to uint64, fn func(i uint64, leaf []byte) error) error {
	r, err := s.pool.Query(ctx, `SELECT idx, leaf FROM evidence_log WHERE idx > $1 AND idx <= $2 ORDER BY idx`, int64(from), int64(to))
	if err != nil {
		return err
	}
	defer r.Close()
	next := from
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
	return r.Err()
}

// idWhere is the condition on observations o that selects the id in $1.
func idWhere(id string) (string, any) {
	uid, text := idValues(id)
	if uid.Valid {
		return `o.uid = $1`, uid
	}
	return `o.id_text = $1`, text
}

// LogIndexes implements store.LogStore.
func (s *Store) LogIndexes(ctx context.Context, ids []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(ids))
	for _, id := range ids {
		where, arg := idWhere(id)
		var idx int64
		err := s.pool.QueryRow(ctx, `SELECT e.idx FROM observations o JOIN evidence_log e ON e.obs_seq = o.seq WHERE `+where, arg).Scan(&idx)
		if errors.Is(err, pgx.ErrNoRows) {
			// A row purged under retention: its leaf is found through
			// its purge record (migration 0015), which keeps its seq.
			err = s.pool.QueryRow(ctx, `SELECT e.idx FROM purged_observations p JOIN evidence_log e ON e.obs_seq = p.seq WHERE p.observation_id = $1`, id).Scan(&idx)
		}
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = uint64(idx - 1)
	}
	return out, nil
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
	for _, id := range ids {
		where, arg := idWhere(id)
		found := false
		err := s.observationsWhere(ctx, where, `o.seq`, []any{arg}, func(o *observe.Observation) error {
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

// ChainBatch implements store.LogStore.
func (s *Store) ChainBatch(ctx context.Context, chain string, seq uint64) (first, head uint64, err error) {
	var h, p *int64
	err = s.pool.QueryRow(ctx, `SELECT
		(SELECT MIN(chain_seq) FROM evidence_log WHERE chain = $1 AND chain_seq >= $2 AND batch_sig IS NOT NULL),
		(SELECT MAX(chain_seq) FROM evidence_log WHERE chain = $1 AND chain_seq < $2 AND batch_sig IS NOT NULL)`,
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

// ChainObservations implements store.LogStore.
func (s *Store) ChainObservations(ctx context.Context, chain string, first, head uint64, fn func(o *observe.Observation) error) error {
	next := first
	err := s.observationsWhere(ctx, `e.chain = $1 AND e.chain_seq BETWEEN $2 AND $3`, `e.chain_seq`, []any{chain, int64(first), int64(head)},
		func(o *observe.Observation) error {
			if o.Chain.Seq != next {
				return fmt.Errorf("chain %s: seq %d missing from the store", chain, next)
			}
			next++
			return fn(o)
		})
	if err == nil && next != head+1 {
		err = fmt.Errorf("chain %s: seq %d missing from the store", chain, next)
	}
	return err
}

// SensorKeys implements store.LogStore.
func (s *Store) SensorKeys(ctx context.Context) ([]store.SensorKey, error) {
	// A chain whose first observation was purged under retention keeps
	// its key (the SQLite store's SensorKeys).
	r, err := s.pool.Query(ctx, `SELECT e.chain_key, COALESCE(o.sensor, '`+purgedSensor+`'), MIN(COALESCE(o.time_ns, p.time_ns)) FROM evidence_log e
		LEFT JOIN observations o ON o.seq = e.obs_seq
		LEFT JOIN purged_observations p ON p.seq = e.obs_seq
		WHERE e.idx IN (SELECT MIN(idx) FROM evidence_log WHERE chain IS NOT NULL GROUP BY chain) AND (o.seq IS NOT NULL OR p.seq IS NOT NULL)
		GROUP BY e.chain_key, 2 ORDER BY 3`)
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
