package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

var _ retention.Store = (*Store)(nil)

// PurgedSensor stands for the sensor's name in the sensor keys of a chain
// whose first observation was purged under retention.
const PurgedSensor = "(first observation purged under retention)"

// heldCTE names, as held_seq, the observations an active legal hold
// protects: those at the endpoints of a held target or of the target it
// was merged into (followed to the survivor), and every other member of
// their sensors' signed batches (a batch's signature is checked over all
// its members' sensor hashes: without them the held observations' bundle
// could not be written, evidence.ErrBatchPurged; a batch whose signed head
// is not stored yet is kept to its chain's end; a head purged under
// retention, which its purge record says was one, still bounds its batch
// and the next), and as held_ep those endpoints.
const heldCTE = `WITH RECURSIVE held_t(id) AS (
	SELECT target FROM legal_holds WHERE released_ns IS NULL
	UNION SELECT t.merged_into FROM targets t JOIN held_t h ON t.id = h.id WHERE t.merged_into IS NOT NULL),
held_ep(id) AS (SELECT e.id FROM analysis_endpoints e WHERE e.target IN (SELECT id FROM held_t)),
held_obs(seq) AS (SELECT tl.seq FROM analysis_timeline tl WHERE tl.endpoint IN (SELECT id FROM held_ep)),
held_batch(ref, lo, hi) AS (SELECT o.chain_ref,
	max(COALESCE((SELECT MAX(p.chain_seq) FROM observations p WHERE p.chain_ref = o.chain_ref AND p.chain_seq < o.chain_seq AND p.batch_sig IS NOT NULL), 0),
		COALESCE((SELECT MAX(q.chain_seq) FROM purged_observations q WHERE q.chain_ref = o.chain_ref AND q.chain_seq < o.chain_seq AND q.batch_head = 1), 0)) + 1,
	min(COALESCE((SELECT MIN(h.chain_seq) FROM observations h WHERE h.chain_ref = o.chain_ref AND h.chain_seq >= o.chain_seq AND h.batch_sig IS NOT NULL), 9223372036854775807),
		COALESCE((SELECT MIN(q.chain_seq) FROM purged_observations q WHERE q.chain_ref = o.chain_ref AND q.chain_seq >= o.chain_seq AND q.batch_head = 1), 9223372036854775807))
	FROM observations o WHERE o.seq IN (SELECT seq FROM held_obs) AND o.chain_ref IS NOT NULL),
held_seq(seq) AS (SELECT seq FROM held_obs UNION
	SELECT o.seq FROM held_batch b JOIN observations o ON o.chain_ref = b.ref AND o.chain_seq BETWEEN b.lo AND b.hi),
mark(seq) AS (SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)) `

// dueWhere selects the observations of kind k older than ? (the cutoff)
// that no hold protects and the analysis has read.
func dueWhere(k retention.Kind) string {
	w := `o.time_ns < ? AND o.seq <= (SELECT seq FROM mark) AND o.seq NOT IN (SELECT seq FROM held_seq)`
	if k == retention.KindTranscripts {
		w += ` AND o.transcript IS NOT NULL`
	}
	return w
}

// leadsDueWhere selects the leads last seen before ? that no analyst
// confirmed and that were not seen at a held endpoint.
const leadsDueWhere = `l.last_ns < ? AND l.state <> 'confirmed' AND l.key NOT IN (
	SELECT le.lead FROM lead_endpoints le JOIN analysis_endpoints e ON e.port = le.port AND le.ip IN (e.ip, '::ffff:' || e.ip)
	WHERE e.id IN (SELECT id FROM held_ep))`

func canonicalTarget(id string) string {
	if c, ok := analysis.CanonicalTargetID(strings.TrimSpace(id)); ok {
		return c
	}
	return strings.TrimSpace(id)
}

// AddHold implements retention.HoldStore.
func (s *Store) AddHold(ctx context.Context, h retention.Hold) (retention.Hold, error) {
	h.Target = canonicalTarget(h.Target)
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM targets WHERE id = ?`, h.Target).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("legal hold: target %q: %w", h.Target, retention.ErrNotFound)
		} else if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (target, case_ref, reason, by_whom, at_ns) VALUES (?, ?, ?, ?, ?)`,
			h.Target, h.Case, h.Reason, h.By, h.At.UnixNano())
		if err != nil {
			return err
		}
		h.ID, err = res.LastInsertId()
		return err
	})
	return h, err
}

// ReleaseHolds implements retention.HoldStore.
func (s *Store) ReleaseHolds(ctx context.Context, target, caseRef, by, reason string, at time.Time) ([]retention.Hold, error) {
	target = canonicalTarget(target)
	var out []retention.Hold
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		q := `SELECT ` + holdCols + ` FROM legal_holds WHERE released_ns IS NULL AND target = ?`
		args := []any{target}
		if caseRef != "" {
			q += ` AND case_ref = ?`
			args = append(args, caseRef)
		}
		if err := eachRow(ctx, tx, q+` ORDER BY id`, func(r *sql.Rows) error {
			h, err := scanHold(r)
			out = append(out, h)
			return err
		}, args...); err != nil {
			return err
		}
		if len(out) == 0 {
			return fmt.Errorf("target %s case %q: %w", target, caseRef, retention.ErrNoHold)
		}
		for i := range out {
			out[i].Released, out[i].ReleasedBy, out[i].ReleaseReason = at.UTC(), by, reason
			if _, err := tx.ExecContext(ctx, `UPDATE legal_holds SET released_ns = ?, released_by = ?, release_reason = ? WHERE id = ?`,
				at.UnixNano(), by, reason, out[i].ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

const holdCols = `id, target, case_ref, reason, by_whom, at_ns, released_ns, released_by, release_reason`

func scanHold(r interface{ Scan(...any) error }) (retention.Hold, error) {
	var h retention.Hold
	var at int64
	var rel sql.NullInt64
	if err := r.Scan(&h.ID, &h.Target, &h.Case, &h.Reason, &h.By, &at, &rel, &h.ReleasedBy, &h.ReleaseReason); err != nil {
		return h, err
	}
	h.At = time.Unix(0, at).UTC()
	if rel.Valid {
		h.Released = time.Unix(0, rel.Int64).UTC()
	}
	return h, nil
}

// Holds implements retention.HoldStore.
func (s *Store) Holds(ctx context.Context, activeOnly bool) ([]retention.Hold, error) {
	q := `SELECT ` + holdCols + ` FROM legal_holds`
	if activeOnly {
		q += ` WHERE released_ns IS NULL`
	}
	var out []retention.Hold
	err := eachRow(ctx, s.db, q+` ORDER BY id`, func(r *sql.Rows) error {
		h, err := scanHold(r)
		out = append(out, h)
		return err
	})
	return out, err
}

// PurgePlan implements retention.PurgeStore.
func (s *Store) PurgePlan(ctx context.Context, cutoffs map[retention.Kind]time.Time) (map[retention.Kind]retention.Due, error) {
	out := map[retention.Kind]retention.Due{}
	for _, k := range retention.Kinds {
		c := cutoffs[k].UnixNano()
		var d retention.Due
		var lo, hi sql.NullInt64
		var q, heldQ string
		if k == retention.KindLeads {
			q = heldCTE + `SELECT count(*), min(l.last_ns), max(l.last_ns) FROM leads l WHERE ` + leadsDueWhere
			heldQ = heldCTE + `SELECT count(*) FROM leads l WHERE l.last_ns < ? AND l.state <> 'confirmed'`
		} else {
			q = heldCTE + `SELECT count(*), min(o.time_ns), max(o.time_ns) FROM observations o WHERE ` + dueWhere(k)
			heldQ = heldCTE + `SELECT count(*) FROM observations o WHERE o.time_ns < ? AND o.seq IN (SELECT seq FROM held_seq)`
			if k == retention.KindTranscripts {
				heldQ += ` AND o.transcript IS NOT NULL`
			}
		}
		if err := s.db.QueryRowContext(ctx, q, c).Scan(&d.N, &lo, &hi); err != nil {
			return nil, fmt.Errorf("retention plan of %s: %w", k, err)
		}
		if err := s.db.QueryRowContext(ctx, heldQ, c).Scan(&d.Held); err != nil {
			return nil, fmt.Errorf("retention plan of %s: %w", k, err)
		}
		if k == retention.KindLeads {
			d.Held -= d.N // the leads past their period less those due
		}
		if d.N > 0 {
			d.Oldest, d.Newest = time.Unix(0, lo.Int64).UTC(), time.Unix(0, hi.Int64).UTC()
		}
		out[k] = d
	}
	return out, nil
}

// PurgeChunk implements retention.PurgeStore: one transaction removes at
// most n rows and writes their purged_observations records, so that a
// crash leaves either both or neither.
func (s *Store) PurgeChunk(ctx context.Context, k retention.Kind, cutoff time.Time, n int, at time.Time) (retention.Span, error) {
	var got retention.Span
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		if k == retention.KindLeads {
			return purgeLeads(ctx, tx, cutoff, n, &got)
		}
		type row struct {
			seq, ns int64
			id      any
		}
		var rows []row
		if err := eachRow(ctx, tx, heldCTE+`SELECT o.seq, o.id, o.time_ns FROM observations o WHERE `+dueWhere(k)+` ORDER BY o.time_ns, o.seq LIMIT ?`,
			func(r *sql.Rows) error {
				var x row
				if err := r.Scan(&x.seq, &x.id, &x.ns); err != nil {
					return err
				}
				rows = append(rows, x)
				return nil
			}, cutoff.UnixNano(), n); err != nil {
			return err
		}
		for _, x := range rows {
			// batch_head: the row's batch_sig, which the purge of the
			// row removes, says it was its batch's signed head
			// (ChainBatch: where the batch after it starts).
			// ip and port: the record is checked against the sighting
			// that ties it to a target (PurgedOfTarget).
			if _, err := tx.ExecContext(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, chain_ref, chain_seq, batch_head, ip, port)
				SELECT ?1, ?2, ?3, ?4, ?5, chain_ref, chain_seq, batch_sig IS NOT NULL, ip, port FROM observations WHERE seq = ?2
				ON CONFLICT (observation_id) DO UPDATE SET what = excluded.what, purged_ns = excluded.purged_ns,
					chain_ref = COALESCE(purged_observations.chain_ref, excluded.chain_ref), chain_seq = COALESCE(purged_observations.chain_seq, excluded.chain_seq),
					batch_head = COALESCE(purged_observations.batch_head, excluded.batch_head),
					ip = COALESCE(purged_observations.ip, excluded.ip), port = COALESCE(purged_observations.port, excluded.port)`,
				x.id, x.seq, string(k), x.ns, at.UnixNano()); err != nil {
				return err
			}
			q := `UPDATE observations SET transcript = NULL WHERE seq = ?`
			if k == retention.KindObservations {
				q = `DELETE FROM observations WHERE seq = ?`
			}
			if _, err := tx.ExecContext(ctx, q, x.seq); err != nil {
				return err
			}
			t := time.Unix(0, x.ns).UTC()
			got.Add(retention.Span{N: 1, Oldest: t, Newest: t})
		}
		return nil
	})
	if err != nil {
		return retention.Span{}, fmt.Errorf("retention purge of %s: %w", k, err)
	}
	return got, nil
}

func purgeLeads(ctx context.Context, tx *sql.Tx, cutoff time.Time, n int, got *retention.Span) error {
	type row struct {
		key string
		ns  int64
	}
	var rows []row
	if err := eachRow(ctx, tx, heldCTE+`SELECT l.key, l.last_ns FROM leads l WHERE `+leadsDueWhere+` ORDER BY l.last_ns LIMIT ?`, func(r *sql.Rows) error {
		var x row
		if err := r.Scan(&x.key, &x.ns); err != nil {
			return err
		}
		rows = append(rows, x)
		return nil
	}, cutoff.UnixNano(), n); err != nil {
		return err
	}
	for _, x := range rows {
		for _, q := range []string{`DELETE FROM lead_endpoints WHERE lead = ?`, `DELETE FROM leads WHERE key = ?`} {
			if _, err := tx.ExecContext(ctx, q, x.key); err != nil {
				return err
			}
		}
		t := time.Unix(0, x.ns).UTC()
		got.Add(retention.Span{N: 1, Oldest: t, Newest: t})
	}
	return nil
}

func scanPurged(r interface{ Scan(...any) error }, more ...any) (retention.Purged, error) {
	var p retention.Purged
	var id any
	var what string
	var ns, at int64
	if err := r.Scan(append([]any{&id, &what, &ns, &at}, more...)...); err != nil {
		return p, err
	}
	var err error
	p.ObservationID, err = idString(id)
	p.What, p.Time, p.At = retention.Kind(what), time.Unix(0, ns).UTC(), time.Unix(0, at).UTC()
	return p, err
}

// PurgedObservations implements retention.PurgeStore. A record whose
// observation's row is still stored must be of its transcript's purge, the
// row holding none, at the row's seq and time (rowcodec.PurgedLive): one
// the row contradicts is an error, not a reason to treat the observation
// as purged.
func (s *Store) PurgedObservations(ctx context.Context, ids []string) (map[string]retention.Purged, error) {
	out := map[string]retention.Purged{}
	for _, id := range ids {
		var seq int64
		var rowSeq, rowNS sql.NullInt64
		var transcript sql.NullBool
		p, err := scanPurged(s.db.QueryRowContext(ctx, `SELECT p.observation_id, p.what, p.time_ns, p.purged_ns, p.seq, o.seq, o.time_ns, o.transcript IS NOT NULL
			FROM purged_observations p LEFT JOIN observations o ON o.id = p.observation_id WHERE p.observation_id = ?`, idValue(id)), &seq, &rowSeq, &rowNS, &transcript)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if rowSeq.Valid { // the row is still stored
			if err := rowcodec.PurgedLive(p.ObservationID, string(p.What), seq, p.Time.UnixNano(), rowSeq.Int64, rowNS.Int64, transcript.Bool); err != nil {
				return nil, err
			}
		}
		out[id] = p
	}
	return out, nil
}

// PurgedOfTarget implements retention.PurgeStore: the records of the
// observations purged whole whose sightings are on the timeline of the
// target's endpoints. A seq alone ties a record to a sighting: one whose
// time, or whose address and port (recorded since migration 0026), are
// not its sighting's and endpoint's is refused (rowcodec.PurgedSighting)
// rather than listed as the target's; so is a seq with two records.
func (s *Store) PurgedOfTarget(ctx context.Context, target string) ([]retention.Purged, error) {
	cur, _, err := s.resolveTarget(ctx, target, analysis.AllAgencies)
	if err != nil {
		return nil, err
	}
	var out []retention.Purged
	listed := map[string]bool{}
	bySeq := map[int64]string{} // the record listed of each seq
	err = eachRow(ctx, s.db, `SELECT DISTINCT p.observation_id, p.what, p.time_ns, p.purged_ns, p.seq, p.ip, p.port, tl.time_ns, e.ip, e.port
		FROM analysis_endpoints e JOIN analysis_timeline tl ON tl.endpoint = e.id JOIN purged_observations p ON p.seq = tl.seq
		WHERE e.target = ? AND p.what = 'observations'
		ORDER BY p.time_ns, p.seq`, func(r *sql.Rows) error {
		var id any
		var what, epIP string
		var ns, at, seq, seen, epPort int64
		var ip sql.NullString
		var port sql.NullInt64
		if err := r.Scan(&id, &what, &ns, &at, &seq, &ip, &port, &seen, &epIP, &epPort); err != nil {
			return err
		}
		var p retention.Purged
		var err error
		if p.ObservationID, err = idString(id); err != nil {
			return err
		}
		var ipp *string
		var portp *int64
		if ip.Valid {
			ipp = &ip.String
		}
		if port.Valid {
			portp = &port.Int64
		}
		if err := rowcodec.PurgedSighting(p.ObservationID, seq, ns, ipp, portp, seen, epIP, epPort); err != nil {
			return fmt.Errorf("purge records of target %s: %w", cur, err)
		}
		if other, ok := bySeq[seq]; ok && other != p.ObservationID {
			// A seq is one observation's: a second record of it was
			// not written by a purge.
			return fmt.Errorf("purge records of target %s: seq %d has the records of observations %s and %s: %w",
				cur, seq, other, p.ObservationID, rowcodec.ErrPurgedSighting)
		}
		bySeq[seq] = p.ObservationID
		if listed[p.ObservationID] { // sighted at two of the target's endpoints
			return nil
		}
		listed[p.ObservationID] = true
		p.What, p.Time, p.At = retention.Kind(what), time.Unix(0, ns).UTC(), time.Unix(0, at).UTC()
		out = append(out, p)
		return nil
	}, cur)
	return out, err
}

// ChainPurged implements evidence.ChainPurger.
func (s *Store) ChainPurged(ctx context.Context, chain string, first, head uint64) (int, error) {
	var n int
	// Observations logged before migration 0021 keep their chain in
	// evidence_log; later ones, in their row, which the purge record
	// copies.
	err := s.db.QueryRowContext(ctx, `SELECT count(DISTINCT id) FROM (
		SELECT p.observation_id AS id FROM purged_observations p JOIN evidence_log e ON e.observation_id = p.observation_id
			WHERE e.chain = ?1 AND e.chain_seq BETWEEN ?2 AND ?3
		UNION ALL
		SELECT p.observation_id FROM purged_observations p JOIN sensor_chains c ON c.id = p.chain_ref
			WHERE c.chain = ?1 AND p.chain_seq BETWEEN ?2 AND ?3)`, chain, int64(first), int64(head)).Scan(&n)
	return n, err
}
