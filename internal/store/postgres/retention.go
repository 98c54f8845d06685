package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/obsblock"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
)

var _ retention.Store = (*Store)(nil)

// purgedSensor is the SQLite store's PurgedSensor: migration 0016 writes it as
// the sensor of a chain whose first observation was purged before it.
const purgedSensor = "(first observation purged under retention)"

// heldCTE is the SQLite store's (internal/store/sqlite/retention.go):
// held_seq, the observations an active hold protects (following merges,
// with every member of their sensors' signed batches; held_obs unpacks
// their endpoints' sightings, migration 0022),
// held_ep their endpoints, mark the analysis's watermark. A batch's
// bounds are its signed heads (observations_chain_heads; and
// observation_chain_heads for the heads in blocks, migration 0030), its rows those
// in the seq ranges of the commits that stored its chain's positions
// (observation_chain_runs, migration 0026; 6 is chainBlockShift).
const heldCTE = `WITH RECURSIVE held_t(id) AS (
	SELECT target FROM legal_holds WHERE released_ns IS NULL
	UNION SELECT t.merged_into FROM targets t JOIN held_t h ON t.id = h.id WHERE t.merged_into IS NOT NULL),
held_ep(id) AS (SELECT e.id FROM analysis_endpoints e WHERE e.target IN (SELECT id FROM held_t)),
held_obs(seq) AS (SELECT u.seq FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u WHERE tl.endpoint IN (SELECT id FROM held_ep)),
held_batch(ref, lo, hi) AS (SELECT DISTINCT o.chain_ref,
	COALESCE(GREATEST((SELECT max(p.chain_seq) FROM observations p WHERE p.chain_ref = o.chain_ref AND p.chain_seq < o.chain_seq AND p.batch_sig IS NOT NULL),
		(SELECT max(x.chain_seq) FROM observation_chain_heads x WHERE x.chain_ref = o.chain_ref AND x.chain_seq < o.chain_seq)), 0) + 1,
	COALESCE(LEAST((SELECT min(h.chain_seq) FROM observations h WHERE h.chain_ref = o.chain_ref AND h.chain_seq >= o.chain_seq AND h.batch_sig IS NOT NULL),
		(SELECT min(x.chain_seq) FROM observation_chain_heads x WHERE x.chain_ref = o.chain_ref AND x.chain_seq >= o.chain_seq)), 9223372036854775807)
	FROM observations o WHERE o.seq IN (SELECT seq FROM held_obs) AND o.chain_ref IS NOT NULL),
held_seq(seq) AS (SELECT seq FROM held_obs UNION
	SELECT o.seq FROM held_batch b JOIN observation_chain_runs r ON r.chain_ref = b.ref AND r.block BETWEEN b.lo >> 6 AND b.hi >> 6
		JOIN observations o ON o.seq BETWEEN r.first_seq AND r.last_seq AND o.chain_ref = b.ref AND o.chain_seq BETWEEN b.lo AND b.hi),
mark(seq) AS (SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)) `

func dueWhere(k retention.Kind) string {
	w := `o.time_ns < $1 AND o.seq <= (SELECT seq FROM mark) AND o.seq NOT IN (SELECT seq FROM held_seq)`
	if k == retention.KindTranscripts {
		w += ` AND o.transcript IS NOT NULL`
	}
	return w
}

const leadsDueWhere = `l.last_ns < $1 AND l.state <> 'confirmed' AND l.key NOT IN (
	SELECT le.lead FROM lead_endpoints le JOIN analysis_endpoints e ON e.port = le.port AND le.ip IN (e.ip, '::ffff:' || e.ip)
	WHERE e.id IN (SELECT id FROM held_ep))`

func canonicalTarget(id string) string {
	if c, ok := analysis.CanonicalTargetID(strings.TrimSpace(id)); ok {
		return c
	}
	return strings.TrimSpace(id)
}

const holdCols = `id, target, case_ref, reason, by_whom, at_ns, released_ns, released_by, release_reason`

func scanHold(r pgx.Row) (retention.Hold, error) {
	var h retention.Hold
	var at int64
	var rel *int64
	if err := r.Scan(&h.ID, &h.Target, &h.Case, &h.Reason, &h.By, &at, &rel, &h.ReleasedBy, &h.ReleaseReason); err != nil {
		return h, err
	}
	h.At = time.Unix(0, at).UTC()
	if rel != nil {
		h.Released = time.Unix(0, *rel).UTC()
	}
	return h, nil
}

func collectHolds(rows pgx.Rows) ([]retention.Hold, error) {
	defer rows.Close()
	var out []retention.Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// AddHold implements retention.HoldStore.
func (s *Store) AddHold(ctx context.Context, h retention.Hold) (retention.Hold, error) {
	h.Target = canonicalTarget(h.Target)
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM targets WHERE id = $1`, h.Target).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("legal hold: target %q: %w", h.Target, retention.ErrNotFound)
		} else if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO legal_holds (target, case_ref, reason, by_whom, at_ns) VALUES ($1, $2, $3, $4, $5) RETURNING id`,
			h.Target, h.Case, h.Reason, h.By, h.At.UnixNano()).Scan(&h.ID)
	})
	return h, err
}

// ReleaseHolds implements retention.HoldStore.
func (s *Store) ReleaseHolds(ctx context.Context, target, caseRef, by, reason string, at time.Time) ([]retention.Hold, error) {
	target = canonicalTarget(target)
	var out []retention.Hold
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE legal_holds SET released_ns = $3, released_by = $4, release_reason = $5
			WHERE released_ns IS NULL AND target = $1 AND ($2 = '' OR case_ref = $2) RETURNING `+holdCols, target, caseRef, at.UnixNano(), by, reason)
		if err != nil {
			return err
		}
		if out, err = collectHolds(rows); err != nil {
			return err
		}
		if len(out) == 0 {
			return fmt.Errorf("target %s case %q: %w", target, caseRef, retention.ErrNoHold)
		}
		return nil
	})
	return out, err
}

// Holds implements retention.HoldStore.
func (s *Store) Holds(ctx context.Context, activeOnly bool) ([]retention.Hold, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+holdCols+` FROM legal_holds WHERE NOT $1 OR released_ns IS NULL ORDER BY id`, activeOnly)
	if err != nil {
		return nil, err
	}
	return collectHolds(rows)
}

// PurgePlan implements retention.PurgeStore.
func (s *Store) PurgePlan(ctx context.Context, cutoffs map[retention.Kind]time.Time) (map[retention.Kind]retention.Due, error) {
	// Counted over the rows and, without thawing them, the blocks
	// (tallyBlocks), once the blocks of held observations are rows
	// (thawBlocks, in this transaction, rolled back: a plan changes
	// nothing), so that the held batches are found as a purge finds them.
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	defer tx.Rollback(ctx)
	if err := lockHolds(ctx, tx); err != nil { // thawBlocks needs it
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	if _, err := s.thawBlocks(ctx, tx, math.MinInt64, math.MinInt64, 0); err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	runs, err := heldRuns(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	var mark int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)`).Scan(&mark); err != nil {
		return nil, fmt.Errorf("retention plan: %w", err)
	}
	out := map[retention.Kind]retention.Due{}
	for _, k := range retention.Kinds {
		c := cutoffs[k].UnixNano()
		var d retention.Due
		var lo, hi *int64
		var q, heldQ string
		if k == retention.KindLeads {
			q = heldCTE + `SELECT count(*), min(l.last_ns), max(l.last_ns) FROM leads l WHERE ` + leadsDueWhere
			heldQ = `SELECT count(*) FROM leads l WHERE l.last_ns < $1 AND l.state <> 'confirmed'`
		} else {
			q = heldCTE + `SELECT count(*), min(o.time_ns), max(o.time_ns) FROM observations o WHERE ` + dueWhere(k)
			heldQ = heldCTE + `SELECT count(*) FROM observations o WHERE o.time_ns < $1 AND o.seq IN (SELECT seq FROM held_seq)`
			if k == retention.KindTranscripts {
				heldQ += ` AND o.transcript IS NOT NULL`
			}
		}
		if err := tx.QueryRow(ctx, q, c).Scan(&d.N, &lo, &hi); err != nil {
			return nil, fmt.Errorf("retention plan of %s: %w", k, err)
		}
		if err := tx.QueryRow(ctx, heldQ, c).Scan(&d.Held); err != nil {
			return nil, fmt.Errorf("retention plan of %s: %w", k, err)
		}
		if k == retention.KindLeads {
			d.Held -= d.N
		}
		if d.N > 0 {
			d.Oldest, d.Newest = time.Unix(0, *lo).UTC(), time.Unix(0, *hi).UTC()
		}
		if k != retention.KindLeads {
			where := `b.time_lo < $6`
			if k == retention.KindTranscripts {
				where += ` AND b.transcript IS NOT NULL`
			}
			t, err := tallyBlocks(ctx, tx, k, c, mark, runs, where, c)
			if err != nil {
				return nil, fmt.Errorf("retention plan of %s: %w", k, err)
			}
			d.Span.Add(t.due)
			d.Held += t.held
		}
		out[k] = d
	}
	return out, nil
}

// purgedConflictSet is retention's one update of a purge record
// (migrations 0020, 0021, 0024): a record of a transcript's purge becomes
// that of the row's, keeping the chain fields, leaf, address and port it
// holds.
const purgedConflictSet = `what = excluded.what, purged_ns = excluded.purged_ns,
	chain_ref = COALESCE(purged_observations.chain_ref, excluded.chain_ref), chain_seq = COALESCE(purged_observations.chain_seq, excluded.chain_seq),
	leaf = COALESCE(purged_observations.leaf, excluded.leaf),
	ip = COALESCE(purged_observations.ip, excluded.ip), port = COALESCE(purged_observations.port, excluded.port)`

// PurgeChunk implements retention.PurgeStore: one transaction removes at
// most n rows and writes their purged_observations records.
func (s *Store) PurgeChunk(ctx context.Context, k retention.Kind, cutoff time.Time, n int, at time.Time) (retention.Span, error) {
	var got retention.Span
	if k == retention.KindObservations {
		dropped, err := s.dropPartition(ctx, cutoff, at)
		if err != nil || dropped.N > 0 {
			return dropped, err
		}
	}
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		if err := lockHolds(ctx, tx); err != nil {
			return err
		}
		if k == retention.KindLeads {
			return purgeLeads(ctx, tx, cutoff, n, &got)
		}
		// Only the blocks of held observations become rows first, so
		// that the held batches are found (heldRuns, heldCTE).
		if _, err := s.thawBlocks(ctx, tx, math.MinInt64, math.MinInt64, 0); err != nil {
			return err
		}
		if k == retention.KindTranscripts {
			// Transcripts in blocks are purged there, without thawing.
			done, err := s.purgeBlockTranscripts(ctx, tx, cutoff.UnixNano(), n, at, &got)
			if err != nil || done > 0 {
				return err
			}
		}
		var seqs, times []int64
		var ids []string
		choose := func() error {
			rows, err := tx.Query(ctx, heldCTE+`SELECT o.seq, COALESCE(o.uid::text, o.id_text), o.time_ns FROM observations o WHERE `+dueWhere(k)+
				` ORDER BY o.time_ns, o.seq LIMIT $2 FOR UPDATE OF o`, cutoff.UnixNano(), n)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var seq, ns int64
				var id string
				if err := rows.Scan(&seq, &id, &ns); err != nil {
					return err
				}
				seqs, ids, times = append(seqs, seq), append(ids, id), append(times, ns)
			}
			return rows.Err()
		}
		// Observations in blocks (a month holding a kept one: the others
		// are dropped whole from their blocks) are put back into rows a
		// chunk's worth of blocks at a time, oldest first, until the rows
		// hold a due one or no block begins before the cutoff.
		for {
			if err := choose(); err != nil || len(seqs) > 0 || k == retention.KindTranscripts {
				if err != nil || len(seqs) == 0 {
					return err
				}
				break
			}
			thawed, err := s.thawBlocks(ctx, tx, cutoff.UnixNano(), math.MinInt64, n/MaxBlockObservations+1)
			if err != nil || thawed == 0 {
				return err
			}
		}
		leaves, err := s.purgedLeaves(ctx, tx, seqs)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, chain_ref, chain_seq, leaf, ip, port)
			SELECT u.id, u.seq, $4, u.ns, $5, o.chain_ref, o.chain_seq, u.leaf, `+obsIPSQL+`, o.port
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $6::bytea[]) AS u(id, seq, ns, leaf)
			JOIN observations o ON o.seq = u.seq AND o.time_ns = u.ns
			ON CONFLICT (observation_id) DO UPDATE SET `+purgedConflictSet,
			ids, seqs, times, string(k), at.UnixNano(), leaves); err != nil {
			return err
		}
		q := `UPDATE observations SET transcript = NULL WHERE seq = ANY($1)`
		if k == retention.KindObservations {
			q = `DELETE FROM observations WHERE seq = ANY($1)`
		}
		if _, err := tx.Exec(ctx, q, seqs); err != nil {
			return err
		}
		for _, ns := range times {
			t := time.Unix(0, ns).UTC()
			got.Add(retention.Span{N: 1, Oldest: t, Newest: t})
		}
		return nil
	})
	if err != nil {
		return retention.Span{}, fmt.Errorf("retention purge of %s: %w", k, err)
	}
	return got, nil
}

func purgeLeads(ctx context.Context, tx pgx.Tx, cutoff time.Time, n int, got *retention.Span) error {
	rows, err := tx.Query(ctx, heldCTE+`SELECT l.key, l.last_ns FROM leads l WHERE `+leadsDueWhere+` ORDER BY l.last_ns LIMIT $2`, cutoff.UnixNano(), n)
	if err != nil {
		return err
	}
	var keys []string
	var times []int64
	for rows.Next() {
		var k string
		var ns int64
		if err := rows.Scan(&k, &ns); err != nil {
			rows.Close()
			return err
		}
		keys, times = append(keys, k), append(times, ns)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(keys) == 0 {
		return err
	}
	for _, q := range []string{`DELETE FROM lead_endpoints WHERE lead = ANY($1)`, `DELETE FROM leads WHERE key = ANY($1)`} {
		if _, err := tx.Exec(ctx, q, keys); err != nil {
			return err
		}
	}
	for _, ns := range times {
		t := time.Unix(0, ns).UTC()
		got.Add(retention.Span{N: 1, Oldest: t, Newest: t})
	}
	return nil
}

// PurgedObservations implements retention.PurgeStore. A record whose
// observation's row is still stored must be of its transcript's purge, the
// row holding none, at the row's seq and time (rowcodec.PurgedLive): one
// the row contradicts is an error, not a reason to treat the observation
// as purged.
func (s *Store) PurgedObservations(ctx context.Context, ids []string) (out map[string]retention.Purged, err error) {
	// The records, the rows and the blocks in one snapshot: a block thawed
	// (or a row compacted) between two reads would be in neither, and a
	// record it contradicts would go unchecked.
	err = s.snapshotRead(ctx, func(q pgQuerier) error {
		out, err = s.purgedObservationsOn(ctx, q, ids)
		return err
	})
	return out, err
}

// purgedObservationsOn is PurgedObservations read through db.
func (s *Store) purgedObservationsOn(ctx context.Context, db pgQuerier, ids []string) (map[string]retention.Purged, error) {
	rows, err := db.Query(ctx, `SELECT observation_id, what, time_ns, purged_ns, seq FROM purged_observations WHERE observation_id = ANY($1)`, ids)
	if err != nil {
		return nil, err
	}
	type record struct {
		retention.Purged
		seq int64
	}
	var recs []record
	for rows.Next() {
		var p record
		var what string
		var ns, at int64
		if err := rows.Scan(&p.ObservationID, &what, &ns, &at, &p.seq); err != nil {
			rows.Close()
			return nil, err
		}
		p.What, p.Time, p.At = retention.Kind(what), time.Unix(0, ns).UTC(), time.Unix(0, at).UTC()
		recs = append(recs, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// The rows still stored of the records' observations, in one query.
	type live struct {
		seq, ns    int64
		transcript bool
	}
	rowsOf := map[string]live{}
	if len(recs) > 0 {
		var uids []pgtype.UUID
		var texts []string
		for _, p := range recs {
			if uid, text := idValues(p.ObservationID); uid.Valid {
				uids = append(uids, uid)
			} else {
				texts = append(texts, text.(string))
			}
		}
		err := eachRow(ctx, sqlDB{db}, `SELECT `+obsIDCol+`, o.seq, o.time_ns, o.transcript IS NOT NULL FROM observations o
			WHERE o.uid = ANY(?::uuid[]) OR o.id_text = ANY(?::text[])`, func(r pgx.Rows) error {
			var id string
			var l live
			if err := r.Scan(&id, &l.seq, &l.ns, &l.transcript); err != nil {
				return err
			}
			rowsOf[id] = l
			return nil
		}, uids, texts)
		if err != nil {
			return nil, err
		}
	}
	// And those in blocks (migration 0030), found by id as ingest finds
	// them (blockSeqs), not at the records' seqs: a record that names
	// another seq than its observation's is a contradiction to report.
	var rest []string
	for _, p := range recs {
		if _, ok := rowsOf[p.ObservationID]; !ok {
			rest = append(rest, p.ObservationID)
		}
	}
	if len(rest) > 0 {
		at, err := blockSeqs(ctx, db, rest)
		if err != nil {
			return nil, err
		}
		seqs := make([]int64, 0, len(at))
		only := make(map[int64]bool, len(at))
		for _, seq := range at {
			seqs, only[seq] = append(seqs, seq), true
		}
		cold, err := coldObservations(ctx, db, blocksOfSeqsSQL, []any{seqs}, only, nil)
		if err != nil {
			return nil, err
		}
		for i := range cold {
			o := &cold[i].o
			if _, ok := rowsOf[o.ID]; !ok {
				rowsOf[o.ID] = live{seq: cold[i].seq, ns: o.Time.UnixNano(), transcript: o.Transcript.Bytes != nil}
			}
		}
	}
	out := make(map[string]retention.Purged, len(recs))
	for _, p := range recs {
		if l, ok := rowsOf[p.ObservationID]; ok {
			if err := rowcodec.PurgedLive(p.ObservationID, string(p.What), p.seq, p.Time.UnixNano(), l.seq, l.ns, l.transcript); err != nil {
				return nil, err
			}
		}
		out[p.ObservationID] = p.Purged
	}
	return out, nil
}

// PurgedOfTarget implements retention.PurgeStore: the records of the
// observations purged whole whose sightings are on the timeline of the
// target's endpoints. A seq alone ties a record to a sighting: one whose
// time, or whose address and port (recorded since migration 0024), are
// not its sighting's and endpoint's is refused (rowcodec.PurgedSighting),
// as the timeline's reads refuse an observation of another address or
// time, rather than listed as the target's; so is a seq with two records.
func (s *Store) PurgedOfTarget(ctx context.Context, target string) ([]retention.Purged, error) {
	cur, _, err := s.resolveTarget(ctx, target, analysis.AllAgencies)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT p.observation_id, p.what, p.time_ns, p.purged_ns, p.seq, p.ip, p.port, u.time_ns, e.ip, e.port
		FROM analysis_endpoints e JOIN analysis_timeline_days tl ON tl.endpoint = e.id, vigil_timeline_unpack(tl.day, tl.packed) u
		JOIN purged_observations p ON p.seq = u.seq
		WHERE e.target = $1 AND p.what = 'observations'
		ORDER BY p.time_ns, p.seq`, cur)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []retention.Purged
	listed := map[string]bool{}
	bySeq := map[int64]string{} // the record listed of each seq
	for rows.Next() {
		var p retention.Purged
		var what, epIP string
		var ns, at, seq, seen int64
		var epPort int64
		var ip *string
		var port *int64
		if err := rows.Scan(&p.ObservationID, &what, &ns, &at, &seq, &ip, &port, &seen, &epIP, &epPort); err != nil {
			return nil, err
		}
		if err := rowcodec.PurgedSighting(p.ObservationID, seq, ns, ip, port, seen, epIP, epPort); err != nil {
			return nil, fmt.Errorf("purge records of target %s: %w", cur, err)
		}
		if other, ok := bySeq[seq]; ok && other != p.ObservationID {
			// A seq is one observation's: a second record of it was
			// not written by a purge.
			return nil, fmt.Errorf("purge records of target %s: seq %d has the records of observations %s and %s: %w",
				cur, seq, other, p.ObservationID, rowcodec.ErrPurgedSighting)
		}
		bySeq[seq] = p.ObservationID
		if listed[p.ObservationID] { // sighted at two of the target's endpoints
			continue
		}
		listed[p.ObservationID] = true
		p.What, p.Time, p.At = retention.Kind(what), time.Unix(0, ns).UTC(), time.Unix(0, at).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}

// monthlyPartition is the name of a monthly partition of observations
// (migration 0015, vigil_observation_partition).
// lockHolds makes a purge transaction and a hold's placement (or
// release) take turns: a hold committed before the purge chose its rows is
// seen by it (each statement after the lock reads anew), and one placed
// while the purge runs waits for it to commit, so that a hold that
// returned protects from then on. SHARE: purges do not wait for each
// other.
func lockHolds(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `LOCK TABLE legal_holds IN SHARE MODE`); err != nil {
		return fmt.Errorf("legal holds' lock: %w", err)
	}
	return nil
}

var monthlyPartition = regexp.MustCompile(`^observations_p([0-9]{4})([0-9]{2})$`)

// dropPartition drops the oldest monthly partition of observations that
// ends at or before cutoff, if it holds no observation a hold protects
// and none the analysis has not read, writing the purge records of its
// rows in the same transaction; it returns what it removed (nothing: no
// such partition, and the caller deletes rows instead).
func (s *Store) dropPartition(ctx context.Context, cutoff, at time.Time) (retention.Span, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'observations'::regclass ORDER BY c.relname`)
	if err != nil {
		return retention.Span{}, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return retention.Span{}, err
	}
	for _, name := range names {
		m := monthlyPartition.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		if end := time.Date(y, time.Month(mo)+1, 1, 0, 0, 0, 0, time.UTC); end.After(cutoff) {
			return retention.Span{}, nil // partitions are named in time order
		}
		var got retention.Span
		dropped := false
		mlo := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
		err := s.writeTx(ctx, func(tx pgx.Tx) error {
			var err error
			got, dropped, err = s.dropMonth(ctx, tx, name, "observation_blocks_p"+m[1]+m[2], mlo, at)
			return err
		})
		if err != nil {
			return retention.Span{}, fmt.Errorf("retention: dropping partition %s: %w", name, err)
		}
		if dropped && got.N > 0 {
			return got, nil
		}
		// An empty partition went without a count: look at the next one.
	}
	return retention.Span{}, nil
}

// PreparePartitions implements retention.Partitioner: the partitions of
// the months from now's to ahead months later exist.
func (s *Store) PreparePartitions(ctx context.Context, now time.Time, ahead int) error {
	m := time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i <= ahead; i++ {
		if _, err := s.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, m.AddDate(0, i, 0).UnixNano()); err != nil {
			return fmt.Errorf("retention: partition of %s: %w", m.AddDate(0, i, 0).Format("2006-01"), err)
		}
	}
	return nil
}

// ChainPurged implements evidence.ChainPurger.
func (s *Store) ChainPurged(ctx context.Context, chain string, first, head uint64) (int, error) {
	var n int
	// Migration 0016 copied the chains of the records before it from
	// evidence_log.
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM purged_observations p JOIN sensor_chains c ON c.id = p.chain_ref
		WHERE c.chain = $1 AND p.chain_seq BETWEEN $2 AND $3`, chain, int64(first), int64(head)).Scan(&n)
	return n, err
}

// purgedLeaves returns the evidence-log leaf of each observation of seqs
// that an evidence_tiles block holds, hashed from its row before a purge
// removes it (or its transcript), for its purge record (migration 0021):
// the blocks keep no leaf, and proofs of the observation and of its
// neighbours need it. A leaf a purge record already holds is kept. The
// leaves of each subtree that holds one of seqs are checked against its
// stored hash first (checkedLeaves): a row changed after it was logged
// refuses the purge, which would otherwise record the changed row's leaf
// for good, with the original row gone. nil (NULL) for a row whose leaf
// evidence_blocks or evidence_log keeps (stored before 0021), or when the
// store keeps no log. It reads inside the purge's transaction tx, which
// holds legal_holds' lock: through the pool it waited for a second
// connection, which a pool whose others wait on that lock never gave.
func (s *Store) purgedLeaves(ctx context.Context, tx pgx.Tx, seqs []int64) ([][]byte, error) {
	out := make([][]byte, len(seqs))
	if s.cfg.NoEvidenceLog {
		return out, nil
	}
	got, err := s.checkedLeaves(ctx, tx, seqs)
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	for i, seq := range seqs {
		if l, ok := got[seq]; ok {
			out[i] = l[:]
		}
	}
	return out, nil
}

// purgePartitionRecords writes the purge records of the rows of part
// (every one purged whole), with their leaves (purgedLeaves), 10,000 rows
// at a time.
func (s *Store) purgePartitionRecords(ctx context.Context, tx pgx.Tx, part string, at time.Time) error {
	for last := int64(-1 << 63); ; {
		rows, err := tx.Query(ctx, `SELECT seq FROM `+part+` WHERE seq > $1 ORDER BY seq LIMIT 10000`, last)
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(seqs) == 0 {
			return err
		}
		last = seqs[len(seqs)-1]
		leaves, err := s.purgedLeaves(ctx, tx, seqs)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, chain_ref, chain_seq, leaf, ip, port)
			SELECT `+obsIDCol+`, o.seq, 'observations', o.time_ns, $1, o.chain_ref, o.chain_seq, u.leaf, `+obsIPSQL+`, o.port
			FROM unnest($2::bigint[], $3::bytea[]) AS u(seq, leaf) JOIN `+part+` o ON o.seq = u.seq
			ON CONFLICT (observation_id) DO UPDATE SET `+purgedConflictSet,
			at.UnixNano(), seqs, leaves); err != nil {
			return err
		}
	}
}

// heldRun is a held signed batch's chain and positions, and the seq range
// of one commit that stored rows of its chain there (heldCTE's held_batch
// joined to observation_chain_runs): a block member of the batch lies in
// such a range. Found once every held observation is a row (thawBlocks
// with no cutoff), as held_seq finds the batch's rows.
type heldRun struct {
	chain       string
	lo, hi      uint64
	first, last int64
}

func heldRuns(ctx context.Context, tx pgx.Tx) ([]heldRun, error) {
	r, err := tx.Query(ctx, heldCTE+`SELECT c.chain, b.lo, b.hi, r.first_seq, r.last_seq FROM held_batch b
		JOIN sensor_chains c ON c.id = b.ref
		JOIN observation_chain_runs r ON r.chain_ref = b.ref AND r.block BETWEEN b.lo >> 6 AND b.hi >> 6`)
	if err != nil {
		return nil, fmt.Errorf("held batches: %w", err)
	}
	defer r.Close()
	var out []heldRun
	for r.Next() {
		var h heldRun
		var lo, hi int64
		if err := r.Scan(&h.chain, &lo, &hi, &h.first, &h.last); err != nil {
			return nil, fmt.Errorf("held batches: %w", err)
		}
		h.lo, h.hi = uint64(lo), uint64(hi)
		out = append(out, h)
	}
	return out, r.Err()
}

// heldIn says whether the observation o at seq may be a member of a held
// batch: of its chain (by name, under any key: a superset of held_seq's
// chain_ref), at a position of the batch, in a seq range of its commits.
func heldIn(runs []heldRun, seq int64, o *observe.Observation) bool {
	for _, h := range runs {
		if seq >= h.first && seq <= h.last && o.Chain.ID == h.chain && o.Chain.Seq >= h.lo && o.Chain.Seq <= h.hi {
			return true
		}
	}
	return false
}

// blockTally is what retention counts of some blocks: the observations
// due (before the cutoff, at or below the watermark, in no held batch;
// for transcripts, holding one), those a hold keeps back before the
// cutoff, and those kept for any reason (held, or above the watermark).
type blockTally struct {
	due        retention.Span
	held, kept int64
}

// tallyBlocks counts, without thawing, the observations of the blocks
// that where (SQL on observation_blocks b, its arguments from $4)
// selects, for kind k at cutoff (ns): a block wholly before the cutoff,
// at or below the watermark mark and meeting no held batch's seq range
// counts its n between its time_lo and time_hi, read from its row alone;
// any other block is opened for its Times (and decoded whole when it
// meets a held batch's range, to read its chains). The caller holds the
// holds' lock and has thawed the blocks of held observations, so that
// runs are every held batch's (heldRuns).
func tallyBlocks(ctx context.Context, tx pgx.Tx, k retention.Kind, cutoff, mark int64, runs []heldRun, where string, args ...any) (blockTally, error) {
	var firsts, lasts []int64
	for _, h := range runs {
		firsts, lasts = append(firsts, h.first), append(lasts, h.last)
	}
	transcripts := k == retention.KindTranscripts
	q := `SELECT b.seq_lo, b.seq_hi, b.n, b.seq_off, b.time_lo, b.time_hi, c.meets,
		CASE WHEN $3 OR b.time_hi >= $1 OR b.seq_hi > $2 OR c.meets THEN b.body END,
		CASE WHEN $3 THEN (SELECT array_agg(t IS NOT NULL ORDER BY i) FROM unnest(b.transcript) WITH ORDINALITY x(t, i)) END
		FROM observation_blocks b, LATERAL (SELECT EXISTS (SELECT 1 FROM unnest($4::bigint[], $5::bigint[]) r(f, l)
			WHERE int8range(b.seq_lo, b.seq_hi, '[]') && int8range(r.f, r.l, '[]')) AS meets) c WHERE ` + where
	r, err := tx.Query(ctx, q, append([]any{cutoff, mark, transcripts, firsts, lasts}, args...)...)
	if err != nil {
		return blockTally{}, fmt.Errorf("blocks due: %w", err)
	}
	defer r.Close()
	var t blockTally
	for r.Next() {
		var lo, hi, tlo, thi int64
		var n int32
		var off []int32
		var meets bool
		var body []byte
		var has []bool
		if err := r.Scan(&lo, &hi, &n, &off, &tlo, &thi, &meets, &body, &has); err != nil {
			return blockTally{}, fmt.Errorf("blocks due: %w", err)
		}
		if body == nil { // wholly due: no observation kept
			t.due.Add(retention.Span{N: int64(n), Oldest: time.Unix(0, tlo).UTC(), Newest: time.Unix(0, thi).UTC()})
			continue
		}
		if err := tallyBlock(&t, lo, int(n), off, body, has, meets, transcripts, cutoff, mark, runs); err != nil {
			return blockTally{}, err
		}
	}
	return t, r.Err()
}

// tallyBlock is tallyBlocks' count of one opened block.
func tallyBlock(t *blockTally, lo int64, n int, off []int32, body []byte, has []bool, meets, transcripts bool, cutoff, mark int64, runs []heldRun) error {
	fail := func(err error) error { return fmt.Errorf("observation block of seq %d: %w", lo, err) }
	if off != nil && len(off) != n || transcripts && has != nil && len(has) != n {
		return fail(fmt.Errorf("%w: %d observations, %d seq offsets, %d transcripts", obsblock.ErrCorrupt, n, len(off), len(has)))
	}
	blk, err := obsblock.Open(body)
	if err != nil {
		return fail(err)
	}
	if blk.Len() != n {
		return fail(fmt.Errorf("%w: %d observations, its row says %d", obsblock.ErrCorrupt, blk.Len(), n))
	}
	times, err := blk.Times()
	if err != nil {
		return fail(err)
	}
	var all []observe.Observation
	if meets {
		if all, err = blk.All(); err != nil {
			return fail(err)
		}
	}
	for i := range n {
		seq := lo + int64(i)
		if off != nil {
			seq = lo + int64(off[i])
		}
		held := meets && heldIn(runs, seq, &all[i])
		if held || seq > mark {
			t.kept++
		}
		ns := times[i].UnixNano()
		if ns >= cutoff || transcripts && (has == nil || !has[i]) {
			continue
		}
		switch {
		case held:
			t.held++
		case seq <= mark:
			t.due.Add(retention.Span{N: 1, Oldest: times[i].UTC(), Newest: times[i].UTC()})
		}
	}
	return nil
}

// dropMonth is one transaction of dropPartition: the month from mlo of
// the rows' partition part and the blocks' partition bpart (migration
// 0030), dropped whole when none of its observations is held or above
// the analysis's watermark, with a purge record for each (rows:
// purgePartitionRecords; blocks: purgeBlockRecords, decoded, never
// thawed). Only the blocks of held observations are put back into rows
// first (thawBlocks with no cutoff: what the holds protect, not the
// month), so that the held batches are found; the month's blocks are
// counted from their rows (tallyBlocks: the watermark and the held
// batches' seq ranges), and one that is not wholly due leaves the month
// to PurgeChunk. Ingest's lock is not taken (unless a held block is
// thawed): ingest writes no block, and compaction waits for the holds'
// lock; ingest waits only on the DETACH and DROP, as for rows.
func (s *Store) dropMonth(ctx context.Context, tx pgx.Tx, name, bpart string, mlo, at time.Time) (retention.Span, bool, error) {
	var got retention.Span
	if err := lockHolds(ctx, tx); err != nil {
		return got, false, err
	}
	if _, err := s.thawBlocks(ctx, tx, math.MinInt64, math.MinInt64, 0); err != nil {
		return got, false, err
	}
	// No row may enter the month's partition once it is counted: an
	// INSERT (a late upload of old observations) committed between the
	// count and the DETACH, which waits for it, would go unrecorded.
	// After thawBlocks, which may take ingest's lock: the same order as
	// ingest's (its lock, then the partition).
	part := pgx.Identifier{name}.Sanitize()
	if _, err := tx.Exec(ctx, `LOCK TABLE `+part+` IN SHARE MODE`); err != nil {
		return got, false, err
	}
	var bexists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, bpart).Scan(&bexists); err != nil {
		return got, false, err
	}
	var blocks blockTally
	mhi := mlo.AddDate(0, 1, 0)
	if bexists {
		// Every block of the month is in its partition
		// (vigil_observation_partition moves them out of the default
		// one): one that is not would get a record and not be dropped.
		var strays bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM observation_blocks b WHERE b.time_lo >= $1 AND b.time_lo < $2
			AND b.tableoid <> $3::regclass)`, mlo.UnixNano(), mhi.UnixNano(), bpart).Scan(&strays); err != nil || strays {
			return got, false, err
		}
		runs, err := heldRuns(ctx, tx)
		if err != nil {
			return got, false, err
		}
		var mark int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)`).Scan(&mark); err != nil {
			return got, false, err
		}
		blocks, err = tallyBlocks(ctx, tx, retention.KindObservations, mhi.UnixNano(), mark, runs,
			`b.time_lo >= $6 AND b.time_lo < $7`, mlo.UnixNano(), mhi.UnixNano())
		if err != nil {
			return got, false, err
		}
		if blocks.kept > 0 {
			return got, false, nil // the month's rows are purged one by one
		}
	}
	var keep int64
	var lo, hi *int64
	if err := tx.QueryRow(ctx, heldCTE+`SELECT count(*) FILTER (WHERE o.seq IN (SELECT seq FROM held_seq) OR o.seq > (SELECT seq FROM mark)),
		count(*), min(o.time_ns), max(o.time_ns) FROM `+part+` o`).Scan(&keep, &got.N, &lo, &hi); err != nil {
		return got, false, err
	}
	if keep > 0 {
		return retention.Span{}, false, nil // rows are deleted one by one in this one
	}
	if got.N > 0 {
		got.Oldest, got.Newest = time.Unix(0, *lo).UTC(), time.Unix(0, *hi).UTC()
		if err := s.purgePartitionRecords(ctx, tx, part, at); err != nil {
			return got, false, err
		}
	}
	if blocks.due.N > 0 {
		if err := s.purgeBlockRecords(ctx, tx, mlo.UnixNano(), mhi.UnixNano(), at); err != nil {
			return got, false, err
		}
		got.Add(blocks.due)
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE observations DETACH PARTITION `+part); err != nil {
		return got, false, err
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+part); err != nil {
		return got, false, err
	}
	if !bexists {
		return got, true, nil
	}
	// The month's blocks' partition, dropped with it: no block of a
	// purged month can be written there again unseen.
	bp := pgx.Identifier{bpart}.Sanitize()
	if _, err := tx.Exec(ctx, `ALTER TABLE observation_blocks DETACH PARTITION `+bp); err != nil {
		return got, false, err
	}
	_, err := tx.Exec(ctx, `DROP TABLE `+bp)
	return got, err == nil, err
}

// purgeBlockRecords writes the purge records of every observation of the
// blocks whose time_lo is in [lo, hi) (a month's partition, dropped
// whole), decoded from the blocks, as purgePartitionRecords writes
// those of rows: id, seq, time, the sensor_chains row and chain
// position, the leaf (purgedLeaves: checked against the log's tiles),
// the address (vigil_ip_text, as from a row) and port; and deletes the
// chain heads (observation_chain_heads) of those observations. 16 blocks
// at a time.
func (s *Store) purgeBlockRecords(ctx context.Context, tx pgx.Tx, lo, hi int64, at time.Time) error {
	r, err := tx.Query(ctx, `SELECT seq_lo FROM observation_blocks WHERE time_lo >= $1 AND time_lo < $2 ORDER BY seq_lo`, lo, hi)
	if err != nil {
		return err
	}
	starts, err := pgx.CollectRows(r, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	for len(starts) > 0 {
		k := min(16, len(starts))
		cold, err := coldObservations(ctx, tx, `b.time_lo >= $1 AND b.time_lo < $2 AND b.seq_lo = ANY($3)`, []any{lo, hi, starts[:k]}, nil, nil)
		if err != nil {
			return err
		}
		starts = starts[k:]
		seqs, err := s.writeBlockRecords(ctx, tx, cold, retention.KindObservations, at)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM observation_chain_heads WHERE seq = ANY($1)`, seqs); err != nil {
			return err
		}
	}
	return nil
}

// writeBlockRecords writes the purge records (what: k) of cold,
// observations decoded from blocks, as purgePartitionRecords and
// PurgeChunk write those of rows, and returns their seqs.
func (s *Store) writeBlockRecords(ctx context.Context, tx pgx.Tx, cold []seqObs, k retention.Kind, at time.Time) ([]int64, error) {
	n := len(cold)
	seqs, times, ports := make([]int64, n), make([]int64, n), make([]int32, n)
	ids, ips := make([]string, n), make([]string, n)
	zones, chains := make([]*string, n), make([]*string, n)
	keys := make([][]byte, n)
	forms := make([]int16, n)
	cseqs := make([]*int64, n)
	for i := range cold {
		o := &cold[i].o
		seqs[i], ids[i], times[i] = cold[i].seq, o.ID, o.Time.UnixNano()
		ips[i], ports[i] = o.Endpoint.IP.WithZone("").String(), int32(o.Endpoint.Port)
		if z := o.Endpoint.IP.Zone(); z != "" {
			zones[i] = &z
		}
		if o.Signed() {
			c, q := o.Chain.ID, int64(o.Chain.Seq)
			chains[i], keys[i], forms[i], cseqs[i] = &c, o.Chain.Key, chainForm(o), &q
		}
	}
	leaves, err := s.purgedLeaves(ctx, tx, seqs)
	if err != nil {
		return nil, err
	}
	var unknown, wrote int64
	if err := tx.QueryRow(ctx, `WITH u AS (SELECT u.*, c.id AS ref FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[], $5::text[], $6::text[],
			$7::int[], $8::text[], $9::bytea[], $10::smallint[], $11::bigint[]) AS u(id, seq, ns, leaf, ip, zone, port, chain, key, form, cseq)
			LEFT JOIN sensor_chains c ON c.chain = u.chain AND c.chain_key = u.key AND c.form = u.form),
		ins AS (INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns, chain_ref, chain_seq, leaf, ip, port)
			SELECT u.id, u.seq, $13, u.ns, $12, u.ref, u.cseq, u.leaf, vigil_ip_text(u.ip::inet, u.zone), u.port FROM u
			ON CONFLICT (observation_id) DO UPDATE SET `+purgedConflictSet+` RETURNING 1)
		SELECT (SELECT count(*) FROM u WHERE u.chain IS NOT NULL AND u.ref IS NULL), (SELECT count(*) FROM ins)`,
		ids, seqs, times, leaves, ips, zones, ports, chains, keys, forms, cseqs, at.UnixNano(), string(k)).Scan(&unknown, &wrote); err != nil {
		return nil, err
	}
	if unknown > 0 || wrote != int64(n) {
		return nil, fmt.Errorf("purge records of blocks: %d signed observations of no known chain, %d records for %d observations", unknown, wrote, n)
	}
	return seqs, nil
}

// purgeBlockTranscripts purges, in the blocks and without thawing them,
// up to n transcripts due at cutoff (before it, at or below the
// watermark, in no held batch's range: heldIn), oldest block first: each
// block holding one is decoded, the records written (writeBlockRecords,
// leaves hashed before the transcripts go), and its transcript column
// rewritten without them (NULL when none is left; its body untouched).
// The caller holds the holds' lock and has thawed the blocks of held
// observations. A block whose transcripts are all kept is read again by
// the next chunk. It returns how many it purged.
func (s *Store) purgeBlockTranscripts(ctx context.Context, tx pgx.Tx, cutoff int64, n int, at time.Time, got *retention.Span) (int, error) {
	runs, err := heldRuns(ctx, tx)
	if err != nil {
		return 0, err
	}
	var mark int64
	if err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)`).Scan(&mark); err != nil {
		return 0, err
	}
	r, err := tx.Query(ctx, `SELECT b.time_lo, b.seq_lo FROM observation_blocks b WHERE b.time_lo < $1 AND b.transcript IS NOT NULL
		ORDER BY b.time_lo, b.seq_lo`, cutoff)
	if err != nil {
		return 0, err
	}
	keys, err := pgx.CollectRows(r, pgx.RowToStructByPos[struct{ TimeLo, SeqLo int64 }])
	if err != nil {
		return 0, err
	}
	done := 0
	for _, key := range keys {
		if done >= n {
			break
		}
		var lo int64
		var cnt int32
		var off []int32
		var body []byte
		var tr [][]byte
		if err := tx.QueryRow(ctx, `SELECT b.seq_lo, b.n, b.seq_off, b.body, b.transcript FROM observation_blocks b
			WHERE b.time_lo = $1 AND b.seq_lo = $2 FOR UPDATE`, key.TimeLo, key.SeqLo).Scan(&lo, &cnt, &off, &body, &tr); err != nil {
			return 0, err
		}
		if tr == nil {
			continue
		}
		all, err := decodeBlock(lo, int(cnt), off, body, tr, nil, nil) // in the block's order
		if err != nil {
			return 0, err
		}
		var due []seqObs
		left := false
		for i := range all {
			o := &all[i].o
			if tr[i] != nil && done+len(due) < n && o.Time.UnixNano() < cutoff && all[i].seq <= mark && !heldIn(runs, all[i].seq, o) {
				due = append(due, all[i])
				tr[i] = nil
			}
			left = left || tr[i] != nil
		}
		if len(due) == 0 {
			continue
		}
		if _, err := s.writeBlockRecords(ctx, tx, due, retention.KindTranscripts, at); err != nil {
			return 0, err
		}
		var keep any = tr
		if !left {
			keep = nil
		}
		if _, err := tx.Exec(ctx, `UPDATE observation_blocks SET transcript = $3 WHERE time_lo = $1 AND seq_lo = $2`, key.TimeLo, key.SeqLo, keep); err != nil {
			return 0, err
		}
		for i := range due {
			t := due[i].o.Time.UTC()
			got.Add(retention.Span{N: 1, Oldest: t, Newest: t})
		}
		done += len(due)
	}
	return done, nil
}
