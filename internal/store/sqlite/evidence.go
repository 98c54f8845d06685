package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// The evidence log (migration 0014): a leaf per stored observation,
// appended in the transaction that stores it (store.LogStore).

var _ store.LogStore = (*Store)(nil)

// leavesSQL is the INSERT of n leaves; signed ones carry the chain's
// five columns too (an unsigned row binds two values, not seven: each
// bound value costs the driver a conversion).
func leavesSQL(n int, signed bool) string {
	var b strings.Builder
	row := `(?,?)`
	b.WriteString(`INSERT INTO evidence_log (observation_id, leaf`)
	if signed {
		row = `(?,?,?,?,?,?,?)`
		b.WriteString(`, chain, chain_seq, chain_key, chain_prev, batch_sig`)
	}
	b.WriteString(`) VALUES `)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	// A redelivered observation (its id stored already) appends nothing:
	// its leaf is in the log since it was first stored.
	b.WriteString(` ON CONFLICT (observation_id) DO NOTHING`)
	return b.String()
}

// appendLeaves appends obs' leaves on the writer's connection inside its
// transaction, the unsigned observations' first, then the signed ones',
// each in their order; leaves nil (Config.NoEvidenceLog) appends none.
func (s *Store) appendLeaves(ctx context.Context, dc driverConn, obs []observe.Observation, leaves [][32]byte) error {
	if leaves == nil {
		return nil
	}
	var plain, signed []int
	for i := range obs {
		if obs[i].Signed() {
			signed = append(signed, i)
		} else {
			plain = append(plain, i)
		}
	}
	if err := s.insertLeaves(ctx, dc, obs, leaves, plain, false); err != nil {
		return err
	}
	return s.insertLeaves(ctx, dc, obs, leaves, signed, true)
}

func (s *Store) insertLeaves(ctx context.Context, dc driverConn, obs []observe.Observation, leaves [][32]byte, which []int, signed bool) error {
	w := &s.obs
	per := 2
	if signed {
		per = 7
	}
	chunk := 32766 / per / 4
	args := make([]any, 0, min(chunk, len(which))*per)
	for start := 0; start < len(which); {
		n := chunk
		if rest := len(which) - start; rest < chunk {
			n = 1 << (bits.Len(uint(rest)) - 1)
		}
		st, err := w.stmt(ctx, dc, leavesSQL(n, signed))
		if err != nil {
			return err
		}
		args = args[:0]
		for _, i := range which[start : start+n] {
			args = append(args, idValue(obs[i].ID), leaves[i][:])
			if signed {
				chain, seq, key, prev, sig := chainArgs(&obs[i].Chain)
				args = append(args, chain, seq, key, prev, sig)
			}
		}
		if _, err := w.exec(ctx, st, args...); err != nil {
			return fmt.Errorf("leaves %d..%d: %w", start, start+n-1, err)
		}
		start += n
	}
	return nil
}

// LogSize implements store.LogStore.
func (s *Store) LogSize(ctx context.Context) (uint64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(idx), 0) FROM evidence_log`).Scan(&n)
	return uint64(n), err
}

// LogLeaves implements store.LogStore. Leaf i is row idx i+1.
func (s *Store) LogLeaves(ctx context.Context, from, to uint64, fn func(i uint64, leaf []byte) error) error {
	r, err := s.db.QueryContext(ctx, `SELECT idx, leaf FROM evidence_log WHERE idx > ? AND idx <= ? ORDER BY idx`, int64(from), int64(to))
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

// LogIndexes implements store.LogStore.
func (s *Store) LogIndexes(ctx context.Context, ids []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(ids))
	for _, id := range ids {
		var idx int64
		err := s.db.QueryRowContext(ctx, `SELECT idx FROM evidence_log WHERE observation_id = ?`, idValue(id)).Scan(&idx)
		if errors.Is(err, sql.ErrNoRows) {
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

// chainArgs are the chain's columns of evidence_log: all NULL when no
// sensor signed the observation.
func chainArgs(c *observe.Chain) (chain, seq, key, prev, sig any) {
	if len(c.Key) == 0 {
		return nil, nil, nil, nil, nil
	}
	return c.ID, int64(c.Seq), c.Key, c.Prev, nilIfEmpty(c.BatchSig)
}

// scanChain fills c from the chain's columns.
func scanChain(chain sql.NullString, seq sql.NullInt64, key, prev, sig []byte, c *observe.Chain) {
	if !chain.Valid {
		*c = observe.Chain{}
		return
	}
	*c = observe.Chain{Key: key, ID: chain.String, Seq: uint64(seq.Int64), Prev: prev, BatchSig: sig}
}

// ChainBatch implements store.LogStore: the batch of chain that holds
// seq runs from the seq after the previous signed head to the first signed
// head at or after seq.
func (s *Store) ChainBatch(ctx context.Context, chain string, seq uint64) (first, head uint64, err error) {
	var h, p sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT MIN(chain_seq) FROM evidence_log WHERE chain = ?1 AND chain_seq >= ?2 AND batch_sig IS NOT NULL),
		(SELECT MAX(chain_seq) FROM evidence_log WHERE chain = ?1 AND chain_seq < ?2 AND batch_sig IS NOT NULL)`,
		chain, int64(seq)).Scan(&h, &p)
	if err != nil {
		return 0, 0, err
	}
	if !h.Valid {
		return 0, 0, fmt.Errorf("chain %s seq %d: the batch's signed head is not stored: %w", chain, seq, store.ErrNotFound)
	}
	return uint64(p.Int64) + 1, uint64(h.Int64), nil
}

// ChainObservations implements store.LogStore.
func (s *Store) ChainObservations(ctx context.Context, chain string, first, head uint64, fn func(o *observe.Observation) error) error {
	next := first
	err := s.observationsWhere(ctx, `e.chain = ? AND e.chain_seq BETWEEN ? AND ?`, `e.chain_seq`, []any{chain, int64(first), int64(head)},
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

// SensorKeys implements store.LogStore: each key with the sensor that
// used it and when it was first seen, oldest first.
func (s *Store) SensorKeys(ctx context.Context) ([]store.SensorKey, error) {
	// A chain whose first observation was purged under retention
	// (migration 0020) keeps its key: the sensor's name is then unknown
	// and its time is the purge record's.
	r, err := s.db.QueryContext(ctx, `SELECT DISTINCT e.chain_key, COALESCE(o.sensor, '`+PurgedSensor+`'), MIN(COALESCE(o.time_ns, p.time_ns)) FROM evidence_log e
		LEFT JOIN observation_rows o ON o.id = e.observation_id
		LEFT JOIN purged_observations p ON p.observation_id = e.observation_id
		WHERE e.idx IN (SELECT MIN(idx) FROM evidence_log WHERE chain IS NOT NULL GROUP BY chain) AND (o.seq IS NOT NULL OR p.seq IS NOT NULL)
		GROUP BY e.chain_key, 2 ORDER BY 3`)
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
