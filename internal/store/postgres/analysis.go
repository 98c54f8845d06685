package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// The analysis tables (migration 0004) and the queries on them: the
// SQLite store's, ported (query.go). Every query that returns targets
// takes an analysis.Scope and applies it in the SQL: a target outside it
// is never read.

var _ analysis.Views = (*Store)(nil)

// obsIDCol is an observation's id as text (alias o): a UUID in its
// canonical form, which PostgreSQL prints as rowcodec.FormatUUID does, or
// the text it was given.
const obsIDCol = `COALESCE(o.uid::text, o.id_text)`

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func timeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return string(b)
}

// AnalysisLoad implements analysis.Backend.
func (s *Store) AnalysisLoad(ctx context.Context) (*analysis.Snapshot, error) {
	snap := &analysis.Snapshot{Endpoints: map[string]analysis.EndpointID{}, Quarantine: map[string]analysis.QuarantineRecord{},
		LinkIDs: map[string]int64{}, MergedInto: map[string]string{}}
	rows, err := s.db().QueryContext(ctx, `SELECT key, value FROM analysis_state`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k string
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, err
		}
		switch k {
		case "watermark":
			snap.Watermark = v
		case "next_seq":
			snap.NextSeq = v
		case "version":
			snap.Version = v
		case "figures_watermark":
			snap.FiguresWatermark = v
		}
	}
	rows.Close()
	// Homes carried over (none in this store: the table is the SQLite
	// store's shape), then the endpoints the analysis wrote (which win).
	if err := eachRow(ctx, s.db(), `SELECT 0, ip, port, gen, home FROM analysis_homes
		UNION ALL SELECT id, ip, port, gen, home FROM analysis_endpoints`, func(r pgx.Rows) error {
		var id, port, gen, home int64
		var ip string
		if err := r.Scan(&id, &ip, &port, &gen, &home); err != nil {
			return err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("analysis_endpoints %d: %w", id, err)
		}
		snap.Endpoints[analysis.EndpointKey(netip.AddrPortFrom(a, uint16(port)), int(gen))] = analysis.EndpointID{ID: id, Home: home}
		return nil
	}); err != nil {
		return nil, err
	}
	if snap.Decisions, err = s.AnalysisDecisions(ctx, 0); err != nil {
		return nil, err
	}
	qs, err := s.Quarantined(ctx)
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		snap.Quarantine[analysis.HashKey(q.Hash)] = q
	}
	if err := eachRow(ctx, s.db(), `SELECT id, a, b, rule, evidence FROM analysis_links`, func(r pgx.Rows) error {
		var id, a, b int64
		var rule, ev string
		if err := r.Scan(&id, &a, &b, &rule, &ev); err != nil {
			return err
		}
		snap.LinkIDs[strconv.FormatInt(a, 10)+"|"+strconv.FormatInt(b, 10)+"|"+rule+"|"+ev] = id
		return nil
	}); err != nil {
		return nil, err
	}
	if err := eachRow(ctx, s.db(), `SELECT id, COALESCE(merged_into, '') FROM targets`, func(r pgx.Rows) error {
		var id, m string
		if err := r.Scan(&id, &m); err != nil {
			return err
		}
		snap.MergedInto[id] = m
		return nil
	}); err != nil {
		return nil, err
	}
	leads, err := s.leads(ctx, `SELECT `+leadCols+` FROM leads`)
	if err != nil {
		return nil, err
	}
	snap.Leads = leads
	return snap, nil
}

func scanHash(kind string, b []byte) (hashkind.Hash, error) {
	k, err := hashkind.ParseKind(kind)
	if err != nil {
		return hashkind.Hash{}, err
	}
	return hashkind.New(k, b)
}

// AnalysisDecisions implements analysis.Backend: the decisions numbered
// after after, in order.
func (s *Store) AnalysisDecisions(ctx context.Context, after int64) ([]analysis.Decision, error) {
	var out []analysis.Decision
	err := eachRow(ctx, s.db(), `SELECT id, at_ns, who, why, kind, subject, value FROM analysis_decisions WHERE id > ? ORDER BY id`, func(r pgx.Rows) error {
		var d analysis.Decision
		var at int64
		if err := r.Scan(&d.ID, &at, &d.By, &d.Why, &d.Kind, &d.Subject, &d.Value); err != nil {
			return err
		}
		d.At = nsTime(at)
		out = append(out, d)
		return nil
	}, after)
	return out, err
}

// AnalysisObservations implements analysis.Backend: observations with seq
// in (after, upTo], transcripts left out. Match lists and places repeat,
// so their parsed forms are cached for the read.
//
// It reads in chunks of analysisChunk, each its own query: one read of a
// long backlog would hold its snapshot for the whole catch-up, and keep
// PostgreSQL's vacuum from reclaiming what the analysis rewrites meanwhile.
func (s *Store) AnalysisObservations(ctx context.Context, after, upTo int64, fn func(seq int64, o *observe.Observation) error) error {
	if upTo <= 0 {
		upTo = 1<<63 - 1
	}
	c := &obsReadCache{matches: map[string][]observe.Match{}, places: map[string]observe.Place{}, items: map[string]hashkind.Hash{},
		levels: map[string]observe.Level{}}
	for {
		var err error
		if after, err = s.analysisSegment(ctx, after, upTo, c, fn); err != nil || after >= upTo {
			return err
		}
	}
}

// analysisBlocks bounds the blocks one segment of AnalysisObservations
// decodes (their least seqs after the segment's start).
const analysisBlocks = 32

// analysisSegment hands out the observations of seqs in (after, hi], hot
// rows and blocks merged in seq order, where hi is upTo or less: the
// hot rows of one chunk (readAnalysisChunk) and the blocks of up to
// analysisBlocks least seqs past after. It returns hi.
func (s *Store) analysisSegment(ctx context.Context, after, upTo int64, c *obsReadCache,
	fn func(seq int64, o *observe.Observation) error) (int64, error) {
	hi := upTo
	var cut int64
	err := s.pool.QueryRow(ctx, `SELECT seq_lo FROM observation_blocks WHERE seq_lo > $1 AND seq_lo <= $2 ORDER BY seq_lo OFFSET $3 LIMIT 1`,
		after, upTo, analysisBlocks).Scan(&cut)
	switch {
	case err == nil:
		hi = cut - 1
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, err
	}
	var end any // hi + 1, NULL (no bound) past the greatest bigint
	if hi < math.MaxInt64 {
		end = hi + 1
	}
	cold, err := coldObservations(ctx, s.pool, `int8range(b.seq_lo, b.seq_hi, '[]') && int8range($1, $2)`, []any{after + 1, end}, nil,
		func(seq int64, o *observe.Observation) bool {
			o.Transcript.Bytes = nil // left out, as from the rows
			return seq > after && seq <= hi
		})
	if err != nil {
		return 0, err
	}
	slices.SortFunc(cold, func(a, b seqObs) int { return cmpInt64(a.seq, b.seq) })
	k := 0
	n, last, err := s.readAnalysisChunk(ctx, after, hi, c, func(seq int64, o *observe.Observation) error {
		for ; k < len(cold) && cold[k].seq < seq; k++ {
			if err := fn(cold[k].seq, &cold[k].o); err != nil {
				return err
			}
		}
		return fn(seq, o)
	})
	if err != nil {
		return 0, err
	}
	if n == analysisChunk { // the rest of (last, hi] next time, blocks' observations past last too
		return last, nil
	}
	for ; k < len(cold); k++ {
		if err := fn(cold[k].seq, &cold[k].o); err != nil {
			return 0, err
		}
	}
	return hi, nil
}

// analysisChunk is how many observations one read of AnalysisObservations
// hands out (a variable for the tests).
var analysisChunk = 50_000

// obsReadCache holds the parsed forms of values that repeat, across the
// chunks of one AnalysisObservations.
type obsReadCache struct {
	matches map[string][]observe.Match
	places  map[string]observe.Place
	items   map[string]hashkind.Hash
	levels  map[string]observe.Level
}

// readAnalysisChunk reads up to analysisChunk observations after after, and
// says how many and the last seq.
func (s *Store) readAnalysisChunk(ctx context.Context, after, upTo int64, c *obsReadCache,
	fn func(seq int64, o *observe.Observation) error) (n int, last int64, err error) {
	r, err := s.db().QueryContext(ctx, `SELECT o.seq, `+obsIDCol+`, o.time_ns, f.sensor, f.network, f.method, i.kind, i.hash, m.matched,
		`+obsIPSQL+`, o.port, f.transport, o.peer_id, f.client, f.client_version, `+obsListenPortSQL+`, o.node_id, o.user_hash, o.guid,
		f.possession, `+obsPiecesSQL+`, `+obsPlaceSQL+`, p.agency, p.agency_rule, f.marks
		FROM observations o`+obsJoins+` WHERE o.seq > ? AND o.seq <= ? ORDER BY o.seq LIMIT ?`,
		after, upTo, analysisChunk)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	matchCache, placeCache, itemCache, levels := c.matches, c.places, c.items, c.levels
	for r.Next() {
		n++
		var (
			o                     observe.Observation
			seq, timeNS, port, lp int64
			have, total           int64
			kind, ip, level       string
			sum, matchedB, place  []byte
			client, clientVersion []byte
			marks                 string
		)
		if err = r.Scan(&seq, &o.ID, &timeNS, &o.Sensor.ID, &o.Network, &o.Method, &kind, &sum, &matchedB,
			&ip, &port, &o.Endpoint.Transport, &o.Client.PeerID, &client, &clientVersion, &lp,
			&o.Client.NodeID, &o.Client.UserHash, &o.Client.GUID, &level, &have, &total, &place,
			&o.Jurisdiction.Agency, &o.Jurisdiction.Rule, &marks); err != nil {
			return n, last, err
		}
		o.Client.Name, o.Client.Version = string(client), string(clientVersion)
		matched := string(matchedB)
		o.Time = time.Unix(0, timeNS).UTC()
		o.Endpoint.Port, o.Client.ListenPort = uint16(port), uint16(lp)
		o.Possession.PiecesHave, o.Possession.PiecesTotal = int(have), int(total)
		ck := kind + string(sum)
		h, ok := itemCache[ck]
		if !ok {
			if h, err = scanHash(kind, sum); err != nil {
				return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
			}
			if len(itemCache) > 1<<16 {
				clear(itemCache)
			}
			itemCache[ck] = h
		}
		o.Item.Hash = h
		if o.Endpoint.IP, err = netip.ParseAddr(ip); err != nil {
			return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
		}
		lv, ok := levels[level]
		if !ok {
			if lv, err = observe.ParseLevel(level); err != nil {
				return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
			}
			levels[level] = lv
		}
		o.Possession.Level = lv
		if matched != "[]" {
			ms, ok := matchCache[matched]
			if !ok {
				if err := json.Unmarshal([]byte(matched), &ms); err != nil {
					return n, last, fmt.Errorf("observation %s: matched: %w", o.ID, err)
				}
				if len(matchCache) > 4096 {
					clear(matchCache)
				}
				matchCache[matched] = ms
			}
			o.Item.Matched = ms
		}
		if place != nil {
			p, ok := placeCache[string(place)]
			if !ok {
				if err := parsePlace(place, &p); err != nil {
					return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
				}
				if len(placeCache) > 1<<16 {
					clear(placeCache)
				}
				placeCache[string(place)] = p
			}
			o.Place = p
		}
		if marks != "" {
			if o.Marks, err = rowcodec.ParseMarks(marks); err != nil {
				return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
			}
		}
		if err := fn(seq, &o); err != nil {
			return n, last, err
		}
		last = seq
	}
	return n, last, r.Err()
}

// AnalysisSeqs implements analysis.Backend.
func (s *Store) AnalysisSeqs(ctx context.Context, ids []string) ([]int64, int64, error) {
	seqs := make([]int64, len(ids))
	at := make(map[string][]int, len(ids))
	for i, id := range ids {
		at[id] = append(at[id], i)
	}
	const chunk = 5000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		found, err := s.seqsInWindows(ctx, part, func(id string, seq int64) {
			for _, i := range at[id] {
				seqs[i] = seq
			}
		})
		if err != nil {
			return nil, 0, err
		}
		var uids [][16]byte
		var texts []string
		for _, id := range part {
			if found[id] {
				continue
			}
			if b, ok := parseUUID(id); ok {
				uids = append(uids, b)
			} else {
				texts = append(texts, id)
			}
		}
		if len(uids) == 0 && len(texts) == 0 {
			continue
		}
		// The rest (ids without a time, rows outside their ids' windows,
		// ids not stored) in the one index each can be in
		// (observations_uid, observations_id_text), every partition.
		q := `SELECT ` + obsIDCol + `, o.seq FROM observations o WHERE o.uid = ANY(?::uuid[])
			UNION ALL SELECT ` + obsIDCol + `, o.seq FROM observations o WHERE o.id_text = ANY(?::text[])`
		if err := eachRow(ctx, s.db(), q, func(r pgx.Rows) error {
			var id string
			var seq int64
			if err := r.Scan(&id, &seq); err != nil {
				return err
			}
			for _, i := range at[id] {
				seqs[i] = seq
			}
			return nil
		}, uids, texts); err != nil {
			return nil, 0, err
		}
	}
	// The ids not found hot, in the blocks (migration 0030).
	var rest []string
	for id, is := range at {
		if seqs[is[0]] == 0 {
			rest = append(rest, id)
		}
	}
	if len(rest) > 0 {
		cold, err := blockSeqs(ctx, s.pool, rest)
		if err != nil {
			return nil, 0, err
		}
		for id, seq := range cold {
			for _, i := range at[id] {
				seqs[i] = seq
			}
		}
	}
	var maxSeq int64
	if err := s.db().QueryRowContext(ctx, `SELECT GREATEST((SELECT COALESCE(MAX(seq), 0) FROM observations),
		(SELECT COALESCE(MAX(seq_hi), 0) FROM observation_blocks))`).Scan(&maxSeq); err != nil {
		return nil, 0, err
	}
	return seqs, maxSeq, nil
}

// seqsInWindowsSQL is seqsInWindows' lookup: a UUIDv7 id's row in its
// window, by (uid, id_ns) pairs.
var seqsInWindowsSQL = `SELECT v.uid::text, d.seq FROM unnest(?::uuid[], ?::bigint[]) AS v (uid, id_ns)
	CROSS JOIN LATERAL (SELECT o.seq FROM observations o WHERE o.uid = v.uid
		AND o.time_ns >= v.id_ns - ` + strconv.FormatInt(idWindowNS, 10) + ` AND o.time_ns < v.id_ns + ` + strconv.FormatInt(idWindowNS, 10) + ` LIMIT 1) d`

// seqsInWindows finds, among ids, those stored in their ids' windows
// (migration 0027: a UUIDv7 id's row within idWindowNS of the id's time,
// as a sensor makes them) and calls found with each one's seq: one
// index descent in one partition each (two at a month's edge), where a
// lookup by uid alone descends every partition's index. An id with rows
// in and out of its window cannot be (a replay is never stored), so the
// one found is its only row. It returns the ids found.
func (s *Store) seqsInWindows(ctx context.Context, ids []string, found func(id string, seq int64)) (map[string]bool, error) {
	var uids []pgtype.UUID
	var ns []int64
	for _, id := range ids {
		uid, _ := idValues(id)
		if t, ok := idNS(uid); ok {
			uids, ns = append(uids, uid), append(ns, t)
		}
	}
	out := make(map[string]bool, len(uids))
	if len(uids) == 0 {
		return out, nil
	}
	err := eachRow(ctx, s.db(), seqsInWindowsSQL, func(r pgx.Rows) error {
		var id string
		var seq int64
		if err := r.Scan(&id, &seq); err != nil {
			return err
		}
		out[id] = true
		found(id, seq)
		return nil
	}, uids, ns)
	return out, err
}

// AnalysisSave implements analysis.Backend: one transaction, written
// part by part in the order below. The statements go in batches of
// saveBatch (pgx's pipeline), not one round trip each: a save is
// thousands of small upserts (a catch-up of 20,000 observations at 5,000
// endpoints took 4.0 s one statement at a time).
//
// Engines of several processes save one at a time (checkAnalysisVersion's
// advisory lock, taken first); a save that still loses a deadlock to
// another writer is run again, as SQLite's single writer would have
// queued it.
func (s *Store) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	for attempt := 1; ; attempt++ {
		err := s.analysisSave(ctx, c)
		if err == nil || attempt == 3 || !retryable(err) {
			return err
		}
	}
}

func (s *Store) analysisSave(ctx context.Context, c *analysis.Changes) error {
	return s.writeTx(ctx, func(tx pgx.Tx) error {
		if err := s.checkAnalysisVersion(ctx, tx, c); err != nil {
			return err
		}
		x := &saveTx{ctx: ctx, tx: tx, b: &pgx.Batch{}}
		for _, part := range []func(*analysis.Changes) error{x.saveDecisions, x.saveEndpoints, x.saveFiles, x.saveTargets,
			x.saveMerged, x.saveLinks, x.saveQuarantine, x.saveAlerts, x.saveLeads, x.saveTimeline, x.saveDaily, x.saveFigures, x.saveState} {
			if err := part(c); err != nil {
				return err
			}
			if x.err != nil {
				return x.err
			}
		}
		return x.flush()
	})
}

// analysisLockKey is the transaction-scoped advisory lock that
// serialises the analysis's saves across every process.
func (s *Store) analysisLockKey() int64 { return lockKey(s.cfg.Schema + " analysis") }

// checkAnalysisVersion takes the analysis's lock for the rest of tx and
// refuses the save (*analysis.StaleError) when another writer saved since
// the view behind c was loaded or last saved. Read committed: the read
// after the lock sees every save committed before it.
func (s *Store) checkAnalysisVersion(ctx context.Context, tx pgx.Tx, c *analysis.Changes) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, s.analysisLockKey()); err != nil {
		return fmt.Errorf("analysis lock: %w", err)
	}
	var version, watermark, figures int64
	if err := tx.QueryRow(ctx, `SELECT
		COALESCE((SELECT value FROM analysis_state WHERE key = 'version'), 0),
		COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0),
		COALESCE((SELECT value FROM analysis_state WHERE key = 'figures_watermark'), 0)`).Scan(&version, &watermark, &figures); err != nil {
		return fmt.Errorf("analysis version: %w", err)
	}
	if version != c.Version {
		return &analysis.StaleError{Version: version, Watermark: watermark, FiguresWatermark: figures}
	}
	return nil
}

// saveBatch is how many statements one batch of AnalysisSave sends.
const saveBatch = 1000

// saveTx is one AnalysisSave's transaction: statements are queued, and
// sent a batch at a time; the first error stops the save.
type saveTx struct {
	ctx context.Context
	tx  pgx.Tx
	b   *pgx.Batch
	err error // the first error of a batch sent
}

// exec queues q; wrap (nil: none) gives its error the context of what
// it wrote.
func (x *saveTx) exec(wrap func(error) error, q string, args ...any) {
	x.queue(q, args...).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			if wrap != nil {
				return wrap(err)
			}
			return err
		}
		return nil
	}
}

// queue queues q, sending the batch first if it is full.
func (x *saveTx) queue(q string, args ...any) *pgx.QueuedQuery {
	if x.b.Len() >= saveBatch && x.err == nil {
		x.err = x.flush()
	}
	return x.b.Queue(rebind(q), args...)
}

// flush sends the queued statements and waits for their results.
func (x *saveTx) flush() error {
	if x.b.Len() == 0 {
		return nil
	}
	err := x.tx.SendBatch(x.ctx, x.b).Close()
	x.b = &pgx.Batch{}
	return err
}

// saveDecisions writes the analysts' decisions, numbering them.
func (x *saveTx) saveDecisions(c *analysis.Changes) error {
	for i := range c.Decisions {
		d := &c.Decisions[i]
		x.queue(`INSERT INTO analysis_decisions (at_ns, who, why, kind, subject, value) VALUES (?, ?, ?, ?, ?, ?)
			RETURNING id`, timeNS(d.At), d.By, d.Why, d.Kind, d.Subject, d.Value).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&d.ID); err != nil {
				return fmt.Errorf("decision %s %s: %w", d.Kind, d.Subject, err)
			}
			return nil
		})
	}
	return nil
}

// rowsChunk is how many rows one multi-row upsert of AnalysisSave writes
// (each column goes as one array parameter, unnest-ed by the server).
const rowsChunk = 5000

// chunks calls fn for each [lo, hi) of n rows, rowsChunk at a time.
func chunks(n int, fn func(lo, hi int)) {
	for lo := 0; lo < n; lo += rowsChunk {
		fn(lo, min(lo+rowsChunk, n))
	}
}

// saveEndpoints writes the endpoints, a chunk a statement; a stored row
// equal to the one given is left as it is.
func (x *saveTx) saveEndpoints(c *analysis.Changes) error {
	chunks(len(c.Endpoints), func(lo, hi int) {
		n := hi - lo
		var (
			ids, homes, asns, firsts, lasts, obs []int64
			ports, vpns, hostings, gens, fhs     []int32
			ips, targets, transports, orgs       []string
			countries, subs, cities, agencies    []string
			networks                             []string
			confs                                []float64
		)
		for _, e := range c.Endpoints[lo:hi] {
			in := &e.Info
			ids, homes, asns = append(ids, e.ID), append(homes, e.Home), append(asns, int64(in.ASN))
			firsts, lasts, obs = append(firsts, timeNS(in.FirstSeen)), append(lasts, timeNS(in.LastSeen)), append(obs, int64(in.Observations))
			ports, vpns, hostings = append(ports, int32(in.Port)), append(vpns, int32(b2i(in.VPN))), append(hostings, int32(b2i(in.Hosting)))
			gens, fhs, confs = append(gens, int32(in.Gen)), append(fhs, int32(b2i(in.FirstHand))), append(confs, in.Confidence)
			ips, targets, transports, orgs = append(ips, in.IP.String()), append(targets, e.Target), append(transports, in.Transport), append(orgs, in.Org)
			countries, subs, cities = append(countries, in.Country), append(subs, in.Subdivision), append(cities, in.City)
			agencies, networks = append(agencies, in.Agency), append(networks, strings.Join(e.Networks, ","))
		}
		x.exec(func(err error) error { return fmt.Errorf("%d endpoints from id %d: %w", n, ids[0], err) },
			`INSERT INTO analysis_endpoints (id, ip, port, home, target, transport, asn, org, country, subdivision, city,
			agency, networks, first_ns, last_ns, observations, vpn, hosting, gen, confidence, first_hand)
			SELECT * FROM unnest(?::bigint[], ?::text[], ?::integer[], ?::bigint[], ?::text[], ?::text[], ?::bigint[], ?::text[],
				?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::bigint[], ?::bigint[], ?::integer[],
				?::integer[], ?::integer[], ?::double precision[], ?::integer[])
			ON CONFLICT (id) DO UPDATE SET target = excluded.target, transport = excluded.transport, asn = excluded.asn,
			confidence = excluded.confidence, first_hand = excluded.first_hand,
			org = excluded.org, country = excluded.country, subdivision = excluded.subdivision, city = excluded.city,
			agency = excluded.agency, networks = excluded.networks, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
			observations = excluded.observations, vpn = excluded.vpn, hosting = excluded.hosting
			WHERE `+endpointChanged,
			ids, ips, ports, homes, targets, transports, asns, orgs, countries, subs, cities, agencies, networks, firsts, lasts, obs,
			vpns, hostings, gens, confs, fhs)
	})
	return nil
}

// fileInsertCols is the column list of analysis_endpoint_files a save
// writes, and fileRowsSQL the rows of one chunk, one array parameter a
// column.
const (
	fileInsertCols = `INSERT INTO analysis_endpoint_files (endpoint, kind, hash, matched, severity, max_level, intent,
		first_ns, last_ns, observations, quarantined)`
	fileRowsSQL = `
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::bytea[], ?::text[], ?::integer[], ?::integer[], ?::text[],
			?::bigint[], ?::bigint[], ?::bigint[], ?::integer[])`
	fileUpsert = fileInsertCols + fileRowsSQL + `
		ON CONFLICT (endpoint, kind, hash) DO UPDATE SET matched = excluded.matched, severity = excluded.severity,
		max_level = excluded.max_level, intent = excluded.intent, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
		observations = excluded.observations, quarantined = excluded.quarantined
		WHERE `
)

// newFilesSavepoint is the savepoint a save's plain INSERT of its new
// file rows runs under, rolled back to if one was stored after all.
const newFilesSavepoint = `vigil_new_files`

// saveFiles writes each endpoint's files, a chunk a statement; a stored
// row equal to the one given is left as it is. The rows the engine
// marks New go in with a plain INSERT, under a savepoint: an upsert's
// speculative insertion (a probe of the key before the row is written,
// and a WAL record to confirm it after) costs about 40 % more a new row
// (docs/benchmarks.md, "the analysis's save for less"), and during
// ingest nearly every file row a save writes is new. Should one of them
// be stored after all (a row that outlived its observations, or one
// another process wrote), the INSERT fails on the key, the savepoint is
// rolled back and they are upserted like the others.
func (x *saveTx) saveFiles(c *analysis.Changes) error {
	var known, fresh []*analysis.EndpointFileRow
	for i := range c.Files {
		if c.Files[i].New {
			fresh = append(fresh, &c.Files[i])
		} else {
			known = append(known, &c.Files[i])
		}
	}
	x.upsertFiles(known)
	if len(fresh) == 0 {
		return nil
	}
	if err := x.flush(); err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT ` + newFilesSavepoint)
	chunks(len(fresh), func(lo, hi int) {
		b.Queue(rebind(fileInsertCols+fileRowsSQL), fileArgs(fresh[lo:hi])...)
	})
	b.Queue(`RELEASE SAVEPOINT ` + newFilesSavepoint)
	err := x.tx.SendBatch(x.ctx, b).Close()
	if err == nil || !isUnique(err) {
		if err != nil {
			err = fmt.Errorf("%d new files from endpoint %d: %w", len(fresh), fresh[0].Endpoint, err)
		}
		return err
	}
	if _, err := x.tx.Exec(x.ctx, `ROLLBACK TO SAVEPOINT `+newFilesSavepoint); err != nil {
		return fmt.Errorf("files: back to the savepoint after %d new ones met stored rows: %w", len(fresh), err)
	}
	x.upsertFiles(fresh)
	return nil
}

// upsertFiles queues the upsert of rows, a chunk a statement.
func (x *saveTx) upsertFiles(rows []*analysis.EndpointFileRow) {
	chunks(len(rows), func(lo, hi int) {
		n, first := hi-lo, rows[lo].Endpoint
		x.exec(func(err error) error { return fmt.Errorf("%d files from endpoint %d: %w", n, first, err) },
			fileUpsert+fileChanged, fileArgs(rows[lo:hi])...)
	})
}

// fileArgs are the array parameters of fileRowsSQL for rows.
func fileArgs(rows []*analysis.EndpointFileRow) []any {
	n := len(rows)
	eps, firsts, lasts, obs := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	sevs, levels, qs := make([]int32, 0, n), make([]int32, 0, n), make([]int32, 0, n)
	kinds, matched, intents := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	hashes := make([][]byte, 0, n)
	for _, f := range rows {
		fi := &f.File
		eps, firsts, lasts, obs = append(eps, f.Endpoint), append(firsts, timeNS(fi.FirstSeen)), append(lasts, timeNS(fi.LastSeen)), append(obs, int64(fi.Observations))
		sevs, levels, qs = append(sevs, int32(fi.Severity)), append(levels, int32(fi.MaxLevel)), append(qs, int32(b2i(fi.Quarantined)))
		kinds, intents, hashes = append(kinds, fi.Kind), append(intents, fi.Intent), append(hashes, fi.Hash.Bytes())
		matched = append(matched, string(rowcodec.AppendMatched(nil, fi.Matched)))
	}
	return []any{eps, kinds, hashes, matched, sevs, levels, intents, firsts, lasts, obs, qs}
}

// saveTargets writes the live targets, who may see them and their
// categories, a chunk of targets a few statements. Only what changed is
// written: a target row equal to the stored one is left as it is (every
// rewrite costs a new row version, an entry in each of the table's
// indexes and a pass of its counting trigger), and so are access rows of
// the same score and times and categories already there.
func (x *saveTx) saveTargets(c *analysis.Changes) error {
	chunks(len(c.Targets), func(lo, hi int) {
		rows := c.Targets[lo:hi]
		x.saveTargetRows(rows)
		x.saveAccess(rows)
		x.saveCategories(rows)
	})
	return nil
}

// targetCmpCols are the columns of targets a save writes, besides
// merged_into, compared with the stored row: a live row equal in all of
// them is not rewritten.
const targetCmpCols = `agency, agencies, assigned, investigator, score, parts, endpoints, files, levels, max_level,
	observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity, looking, country, subdivision, label, flags, shares`

// saveTargetRows upserts the target rows of one chunk.
func (x *saveTx) saveTargetRows(rows []analysis.TargetRow) {
	var (
		ids, agency, agencies, assigned, investigator, parts, levels []string
		networks, cats, country, sub, label, flags, shares           []string
		seqs, obs, firsts, lasts                                     []int64
		eps, files, maxLevel, vpn, hosting, maxSev, looking          []int32
		scores                                                       []float64
	)
	for _, t := range rows {
		ts := &t.Summary
		ids, seqs, agency = append(ids, ts.ID), append(seqs, t.Seq), append(agency, ts.Jurisdiction)
		agencies, assigned = append(agencies, jsonText(nonNil(ts.Agencies))), append(assigned, ts.Assigned)
		investigator, scores, parts = append(investigator, ts.Investigator), append(scores, ts.Score), append(parts, jsonText(ts.Parts))
		eps, files, levels = append(eps, int32(ts.Endpoints)), append(files, int32(ts.Files)), append(levels, jsonText(nonNilLevels(ts.Levels)))
		maxLevel, obs = append(maxLevel, int32(ts.MaxLevel)), append(obs, int64(ts.Observations))
		firsts, lasts = append(firsts, timeNS(ts.FirstSeen)), append(lasts, timeNS(ts.LastSeen))
		networks = append(networks, ","+strings.Join(ts.Networks, ",")+",")
		vpn, hosting, cats = append(vpn, int32(b2i(ts.VPN))), append(hosting, int32(b2i(ts.Hosting))), append(cats, jsonText(nonNil(ts.Categories)))
		maxSev, looking = append(maxSev, int32(ts.MaxSeverity)), append(looking, int32(b2i(ts.Looking)))
		country, sub, label = append(country, ts.Country), append(sub, ts.Subdivision), append(label, ts.Label)
		flags, shares = append(flags, jsonText(nonNil(ts.Flags))), append(shares, jsonText(nonNilShares(t.Shares)))
	}
	x.exec(func(err error) error { return fmt.Errorf("%d targets from %s: %w", len(ids), ids[0], err) },
		`INSERT INTO targets (id, seq, merged_into, agency, agencies, assigned, investigator, score, parts,
		endpoints, files, levels, max_level, observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity,
		looking, country, subdivision, label, flags, shares)
		SELECT id, seq, NULL, agency, agencies, assigned, investigator, score, parts, endpoints, files, levels, max_level,
			observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity, looking, country, subdivision,
			label, flags, shares
		FROM unnest(?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::double precision[], ?::text[],
			?::integer[], ?::integer[], ?::text[], ?::integer[], ?::bigint[], ?::bigint[], ?::bigint[], ?::text[], ?::integer[],
			?::integer[], ?::text[], ?::integer[], ?::integer[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
			AS v (id, seq, agency, agencies, assigned, investigator, score, parts, endpoints, files, levels, max_level,
			observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity, looking, country, subdivision,
			label, flags, shares)
		ON CONFLICT (id) DO UPDATE SET merged_into = NULL, agency = excluded.agency, agencies = excluded.agencies,
		assigned = excluded.assigned, investigator = excluded.investigator, score = excluded.score, parts = excluded.parts,
		endpoints = excluded.endpoints, files = excluded.files, levels = excluded.levels, max_level = excluded.max_level,
		observations = excluded.observations, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
		networks = excluded.networks, vpn = excluded.vpn, hosting = excluded.hosting, categories = excluded.categories,
		max_severity = excluded.max_severity, looking = excluded.looking, country = excluded.country,
		subdivision = excluded.subdivision, label = excluded.label, flags = excluded.flags, shares = excluded.shares
		WHERE `+targetChanged,
		ids, seqs, agency, agencies, assigned, investigator, scores, parts, eps, files, levels, maxLevel, obs, firsts, lasts,
		networks, vpn, hosting, cats, maxSev, looking, country, sub, label, flags, shares)
}

// targetChanged is true of a stored target row that an upsert's excluded
// row would change.
var targetChanged = `targets.merged_into IS NOT NULL OR (` + prefixCols("targets.", targetCmpCols) + `) IS DISTINCT FROM (` +
	prefixCols("excluded.", targetCmpCols) + `)`

// endpointChanged and fileChanged are targetChanged for
// analysis_endpoints and analysis_endpoint_files.
var (
	endpointCols    = `target, transport, asn, confidence, first_hand, org, country, subdivision, city, agency, networks, first_ns, last_ns, observations, vpn, hosting`
	endpointChanged = `(` + prefixCols("analysis_endpoints.", endpointCols) + `) IS DISTINCT FROM (` + prefixCols("excluded.", endpointCols) + `)`
	fileCols        = `matched, severity, max_level, intent, first_ns, last_ns, observations, quarantined`
	fileChanged     = `(` + prefixCols("analysis_endpoint_files.", fileCols) + `) IS DISTINCT FROM (` + prefixCols("excluded.", fileCols) + `)`
)

// prefixCols is cols (comma-separated) each with prefix.
func prefixCols(prefix, cols string) string {
	var out []string
	for _, c := range strings.Split(cols, ",") {
		out = append(out, prefix+strings.TrimSpace(c))
	}
	return strings.Join(out, ", ")
}

// saveAccess writes who may see the targets of one chunk: for a target
// whose agencies are as last written (SameAccess) the score and times of
// its rows, where they moved; for the others their rows, the agencies no
// longer in Access deleted.
func (x *saveTx) saveAccess(rows []analysis.TargetRow) {
	var (
		sameIDs, changedIDs, accAgency, accTarget []string
		sameScores, accScore                      []float64
		sameLasts, sameFirsts, accLast, accFirst  []int64
	)
	for _, t := range rows {
		ts := &t.Summary
		if t.SameAccess {
			sameIDs, sameScores = append(sameIDs, ts.ID), append(sameScores, ts.Score)
			sameLasts, sameFirsts = append(sameLasts, timeNS(ts.LastSeen)), append(sameFirsts, timeNS(ts.FirstSeen))
			continue
		}
		changedIDs = append(changedIDs, ts.ID)
		for _, a := range t.Access {
			accAgency, accTarget, accScore = append(accAgency, a), append(accTarget, ts.ID), append(accScore, ts.Score)
			accLast, accFirst = append(accLast, timeNS(ts.LastSeen)), append(accFirst, timeNS(ts.FirstSeen))
		}
	}
	if len(sameIDs) > 0 {
		x.exec(nil, `UPDATE target_access a SET score = v.score, last_ns = v.last_ns, first_ns = v.first_ns
			FROM unnest(?::text[], ?::double precision[], ?::bigint[], ?::bigint[]) AS v (target, score, last_ns, first_ns)
			WHERE a.target = v.target AND (a.score, a.last_ns, a.first_ns) IS DISTINCT FROM (v.score, v.last_ns, v.first_ns)`,
			sameIDs, sameScores, sameLasts, sameFirsts)
	}
	if len(changedIDs) == 0 {
		return
	}
	x.exec(nil, `DELETE FROM target_access a WHERE a.target = ANY(?::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(?::text[], ?::text[]) AS v (agency, target) WHERE v.agency = a.agency AND v.target = a.target)`,
		changedIDs, accAgency, accTarget)
	// DISTINCT ON: an upsert may not touch a row twice (SQLite's INSERT
	// OR REPLACE took the last of an agency named twice; all carry the
	// same values).
	x.exec(nil, `INSERT INTO target_access AS a (agency, target, score, last_ns, first_ns)
		SELECT DISTINCT ON (agency, target) * FROM unnest(?::text[], ?::text[], ?::double precision[], ?::bigint[], ?::bigint[])
			AS v (agency, target, score, last_ns, first_ns)
		ON CONFLICT (agency, target) DO UPDATE SET score = excluded.score, last_ns = excluded.last_ns, first_ns = excluded.first_ns
		WHERE (a.score, a.last_ns, a.first_ns) IS DISTINCT FROM (excluded.score, excluded.last_ns, excluded.first_ns)`,
		accAgency, accTarget, accScore, accLast, accFirst)
}

// saveCategories writes the categories of the targets of one chunk whose
// categories changed since last written: those no longer held deleted,
// the new ones added.
func (x *saveTx) saveCategories(rows []analysis.TargetRow) {
	var changedIDs, catName, catTarget []string
	for _, t := range rows {
		if t.SameCategories {
			continue
		}
		changedIDs = append(changedIDs, t.Summary.ID)
		for _, cat := range t.Summary.Categories {
			catName, catTarget = append(catName, cat), append(catTarget, t.Summary.ID)
		}
	}
	if len(changedIDs) == 0 {
		return
	}
	x.exec(nil, `DELETE FROM target_categories c WHERE c.target = ANY(?::text[])
		AND NOT EXISTS (SELECT 1 FROM unnest(?::text[], ?::text[]) AS v (category, target) WHERE v.category = c.category AND v.target = c.target)`,
		changedIDs, catName, catTarget)
	x.exec(nil, `INSERT INTO target_categories (category, target) SELECT * FROM unnest(?::text[], ?::text[]) ON CONFLICT DO NOTHING`,
		catName, catTarget)
}

// saveMerged writes the targets merged into others, a chunk of them
// three statements: their rows (merged_into set; a row not stored yet is
// written with its id and seq alone), and their access and category rows
// deleted. One statement a merged target cost a round of the targets'
// statement triggers (web_targets_count_*, insert and update) each: a
// catch-up from nothing merges one target in ten of the fixture's, and
// these statements took 40 % of PostgreSQL's time of it
// (docs/benchmarks.md, "The analysis's catch-up in PostgreSQL").
func (x *saveTx) saveMerged(c *analysis.Changes) error {
	ids := make([]string, 0, len(c.Merged))
	for id, into := range c.Merged {
		if into != "" { // "": revived, its row was written above
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // rows locked in one order by every save
	chunks(len(ids), func(lo, hi int) {
		part := ids[lo:hi]
		seqs, intos := make([]int64, len(part)), make([]string, len(part))
		for i, id := range part {
			seqs[i], _ = analysis.ParseTargetID(id)
			intos[i] = c.Merged[id]
		}
		x.exec(func(err error) error {
			return fmt.Errorf("%d targets merged, from %s into %s: %w", len(part), part[0], intos[0], err)
		},
			`INSERT INTO targets (id, seq, merged_into) SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[])
			ON CONFLICT (id) DO UPDATE SET merged_into = excluded.merged_into`, part, seqs, intos)
		x.exec(nil, `DELETE FROM target_access WHERE target = ANY(?::text[])`, part)
		x.exec(nil, `DELETE FROM target_categories WHERE target = ANY(?::text[])`, part)
	})
	return nil
}

// saveLinks writes the links.
func (x *saveTx) saveLinks(c *analysis.Changes) error {
	for _, l := range c.Links {
		x.exec(func(err error) error { return fmt.Errorf("link %d (%s %s): %w", l.ID, l.Rule, l.Evidence, err) }, `INSERT INTO analysis_links (id, a, b, rule, evidence, reason, confidence, obs, at_ns, state, note)
			VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, note = excluded.note`,
			l.ID, l.AID, l.BID, l.Rule, l.Evidence, l.Reason, l.Confidence, jsonText(nonNil(l.Obs)), timeNS(l.At), l.State, l.Note)
	}
	return nil
}

// saveQuarantine writes the quarantine.
func (x *saveTx) saveQuarantine(c *analysis.Changes) error {
	for _, q := range c.Quarantine {
		x.exec(func(err error) error { return fmt.Errorf("quarantine %s: %w", analysis.HashKey(q.Hash), err) }, `INSERT INTO quarantine (kind, hash, state, detected_ns, peers, baseline, reason, who, why, decided_ns)
			VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, hash) DO UPDATE SET state = excluded.state, detected_ns = excluded.detected_ns,
			peers = excluded.peers, baseline = excluded.baseline, reason = excluded.reason, who = excluded.who, why = excluded.why,
			decided_ns = excluded.decided_ns`,
			q.Hash.Kind().String(), q.Hash.Bytes(), q.State, timeNS(q.Detected), q.Peers, q.Baseline, q.Reason, q.By, q.Why, timeNS(q.DecidedAt))
	}
	return nil
}

// saveAlerts writes the alerts, numbering them.
func (x *saveTx) saveAlerts(c *analysis.Changes) error {
	for i := range c.Alerts {
		a := &c.Alerts[i]
		x.queue(`INSERT INTO analysis_alerts (at_ns, kind, subject, message) VALUES (?, ?, ?, ?) RETURNING id`,
			timeNS(a.Time), a.Kind, a.Subject, a.Message).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&a.ID); err != nil {
				return fmt.Errorf("alert %s: %w", a.Subject, err)
			}
			return nil
		})
	}
	return nil
}

// saveLeads writes the leads and where they were seen.
func (x *saveTx) saveLeads(c *analysis.Changes) error {
	for _, l := range c.Leads {
		var kind string
		var hash []byte
		if !l.Hash.IsZero() {
			kind, hash = l.Hash.Kind().String(), l.Hash.Bytes()
		}
		// A suspect lead comes from no torrent: '' and no bytes.
		tkind, torrent := "", []byte{}
		if !l.TorrentHash.IsZero() {
			tkind, torrent = l.TorrentHash.Kind().String(), l.TorrentHash.Bytes()
		}
		x.exec(func(err error) error { return fmt.Errorf("lead %s: %w", l.Key, err) }, `INSERT INTO leads (key, kind, hash, torrent_kind, torrent, path, size, count, first_ns, last_ns, torrents,
			watched, seen, state, who, why, decided_ns, keywords, networks, sources, searched) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (key) DO UPDATE SET torrent_kind = excluded.torrent_kind, torrent = excluded.torrent, path = excluded.path,
			size = excluded.size, count = excluded.count,
			first_ns = excluded.first_ns, last_ns = excluded.last_ns, torrents = excluded.torrents, watched = excluded.watched,
			seen = excluded.seen, state = excluded.state, who = excluded.who, why = excluded.why, decided_ns = excluded.decided_ns,
			keywords = excluded.keywords, networks = excluded.networks, sources = excluded.sources, searched = excluded.searched`,
			l.Key, kind, hash, tkind, torrent, l.Path, l.Size, l.Count, timeNS(l.FirstSeen),
			timeNS(l.LastSeen), jsonText(nonNil(l.Torrents)), jsonText(nonNil(l.Watched)), jsonText(l.Seen), l.State, l.By, l.Why,
			timeNS(l.DecidedAt), jsonText(nonNil(l.Keywords)), jsonText(nonNil(l.Networks)), l.Sources, l.Searched)
		for k := range l.Seen {
			ap, err := netip.ParseAddrPort(k)
			if err != nil {
				return fmt.Errorf("lead %s endpoint %q: %w", l.Key, k, err)
			}
			x.exec(nil, `INSERT INTO lead_endpoints (ip, port, lead) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, ap.Addr().String(), int64(ap.Port()), l.Key)
		}
	}
	return nil
}

// saveDaily writes the daily counts.
func (x *saveTx) saveDaily(c *analysis.Changes) error {
	for _, d := range c.Daily {
		x.exec(nil, `INSERT INTO analysis_daily (day, agency, network, observations) VALUES (?, ?, ?, ?)
			ON CONFLICT (day, agency, network) DO UPDATE SET observations = excluded.observations`,
			d.Day, d.Agency, d.Network, d.Observations)
	}
	return nil
}

// saveState writes the watermark, the next target number and the
// analysis version after this save.
func (x *saveTx) saveState(c *analysis.Changes) error {
	x.exec(nil, `INSERT INTO analysis_state (key, value) VALUES ('version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, c.Version+1)
	if c.Watermark > 0 {
		x.exec(nil, `INSERT INTO analysis_state (key, value) VALUES ('watermark', ?)
			ON CONFLICT (key) DO UPDATE SET value = GREATEST(analysis_state.value, excluded.value)`, c.Watermark)
	}
	if c.NextSeq > 0 {
		x.exec(nil, `INSERT INTO analysis_state (key, value) VALUES ('next_seq', ?)
			ON CONFLICT (key) DO UPDATE SET value = GREATEST(analysis_state.value, excluded.value)`, c.NextSeq)
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilLevels(s []analysis.LevelCount) []analysis.LevelCount { return nonNil(s) }
func nonNilShares(s []analysis.Share) []analysis.Share           { return nonNil(s) }

const targetCols = `t.id, t.agency, t.agencies, t.assigned, t.investigator, t.score, t.parts, t.endpoints, t.files, t.levels,
	t.max_level, t.observations, t.first_ns, t.last_ns, t.networks, t.vpn, t.hosting, t.categories, t.max_severity, t.looking,
	t.country, t.subdivision, t.label, t.flags`

func scanTarget(r interface{ Scan(...any) error }) (analysis.TargetSummary, error) {
	var (
		t                                 analysis.TargetSummary
		agencies, parts, levels, networks string
		cats, flags                       string
		maxLevel, first, last             int64
		vpn, hosting, looking             int
	)
	if err := r.Scan(&t.ID, &t.Jurisdiction, &agencies, &t.Assigned, &t.Investigator, &t.Score, &parts, &t.Endpoints, &t.Files,
		&levels, &maxLevel, &t.Observations, &first, &last, &networks, &vpn, &hosting, &cats, &t.MaxSeverity, &looking,
		&t.Country, &t.Subdivision, &t.Label, &flags); err != nil {
		return t, err
	}
	t.MaxLevel = observe.Level(maxLevel)
	t.FirstSeen, t.LastSeen = nsTime(first), nsTime(last)
	t.VPN, t.Hosting, t.Looking = vpn == 1, hosting == 1, looking == 1
	t.Networks = strings.FieldsFunc(networks, func(r rune) bool { return r == ',' })
	for _, j := range []struct {
		s string
		v any
	}{{agencies, &t.Agencies}, {parts, &t.Parts}, {levels, &t.Levels}, {cats, &t.Categories}, {flags, &t.Flags}} {
		if err := json.Unmarshal([]byte(j.s), j.v); err != nil {
			return t, fmt.Errorf("target %s: %w", t.ID, err)
		}
	}
	return t, nil
}

// groupedScore is the score to order by: scoreCol, or its MAX when the
// rows are grouped by target (a scope of several agencies joins a target
// once per agency, each row with the same score; PostgreSQL orders a
// group by an aggregate only).
func groupedScore(scoreCol string, grouped bool) string {
	if grouped {
		return `MAX(` + scoreCol + `)`
	}
	return scoreCol
}

// targetOrder is the ORDER BY of a target list sorted by sort, the
// score read from scoreCol; the lists of the API and of the pages share
// it (and targetFilters).
func targetOrder(sort, scoreCol string) (string, error) {
	switch sort {
	case "", "score":
		return scoreCol + ` DESC, t.id`, nil
	case "last_seen":
		return `t.last_ns DESC, t.id`, nil
	case "first_seen":
		return `t.first_ns, t.id`, nil
	case "files":
		return `t.files DESC, ` + scoreCol + ` DESC, t.id`, nil
	case "endpoints":
		return `t.endpoints DESC, ` + scoreCol + ` DESC, t.id`, nil
	}
	return "", fmt.Errorf("targets: sort %q: want score, last_seen, first_seen, files or endpoints", sort)
}

// Targets implements analysis.Backend: a ranked page within q.Scope and
// the number of targets matching. The scope is a join on target_access,
// so a target neither routed to nor shared with the reader's agencies is
// never read.
func (s *Store) Targets(ctx context.Context, q analysis.TargetQuery) ([]analysis.TargetSummary, int, error) {
	if q.Scope.Empty() {
		return nil, 0, nil
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	var (
		from  string
		where []string
		args  []any
		order string
	)
	scoreCol := "t.score"
	if q.Scope.All {
		from = `targets t`
		where = append(where, `t.merged_into IS NULL`)
	} else {
		from = `target_access a JOIN targets t ON t.id = a.target`
		where = append(where, `a.agency IN (?`+strings.Repeat(",?", len(q.Scope.Agencies)-1)+`)`)
		for _, a := range q.Scope.Agencies {
			args = append(args, a)
		}
		scoreCol = "a.score"
	}
	where, args = rowcodec.TargetFilters(q, scoreCol, where, args)
	order, err := targetOrder(q.Sort, groupedScore(scoreCol, !q.Scope.All && len(q.Scope.Agencies) > 1))
	if err != nil {
		return nil, 0, err
	}
	w := strings.Join(where, " AND ")
	group := ""
	if !q.Scope.All && len(q.Scope.Agencies) > 1 {
		group = ` GROUP BY t.id`
	}
	var total int
	countQ := `SELECT COUNT(*) FROM ` + from + ` WHERE ` + w
	if group != "" {
		countQ = `SELECT COUNT(DISTINCT t.id) FROM ` + from + ` WHERE ` + w
	}
	if len(where) == 1 {
		// Scope alone (every live target, or an agency's): the day counts
		// the triggers keep, plus the targets shared into the scope, sum
		// to it (CountTargets, as the pages count) without a pass over
		// the scope's targets: a distinct count of an agency's 255,000
		// rows of target_access took 280 ms at 10M observations, and
		// seconds with 50 readers.
		n, err := s.CountTargets(ctx, q.Scope)
		if err != nil {
			return nil, 0, fmt.Errorf("targets: %w", err)
		}
		total = n
	} else if err := s.db().QueryRowContext(ctx, countQ, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("targets: %w", err)
	}
	var out []analysis.TargetSummary
	err = eachRow(ctx, s.db(), `SELECT `+targetCols+` FROM `+from+` WHERE `+w+group+` ORDER BY `+order+` LIMIT ? OFFSET ?`, func(r pgx.Rows) error {
		t, err := scanTarget(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("targets: %w", err)
	}
	return out, total, nil
}

// resolveTarget follows merged_into to the live target and checks the
// scope; ErrNotFound either way.
func (s *Store) resolveTarget(ctx context.Context, id string, scope analysis.Scope) (string, []string, error) {
	notFound := fmt.Errorf("target %q: %w", id, analysis.ErrNotFound)
	if scope.Empty() {
		return "", nil, notFound
	}
	var merged []string
	cur := id
	if c, ok := analysis.CanonicalTargetID(id); ok {
		cur = c // an old base-32 or unpadded id names the same number
	}
	for range 64 {
		var into *string
		err := s.db().QueryRowContext(ctx, `SELECT merged_into FROM targets WHERE id = ?`, cur).Scan(&into)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", nil, notFound
		}
		if err != nil {
			return "", nil, err
		}
		if into == nil {
			break
		}
		merged = append(merged, cur)
		cur = *into
	}
	if !scope.All {
		q := `SELECT COUNT(*) FROM target_access WHERE target = ? AND agency IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		args := []any{cur}
		for _, a := range scope.Agencies {
			args = append(args, a)
		}
		var n int
		if err := s.db().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			return "", nil, err
		}
		if n == 0 {
			return "", nil, notFound
		}
	}
	return cur, merged, nil
}

// TargetAgencies implements analysis.Backend.
func (s *Store) TargetAgencies(ctx context.Context, id string) (string, []string, error) {
	cur, _, err := s.resolveTarget(ctx, id, analysis.AllAgencies)
	if err != nil {
		return "", nil, err
	}
	var route string
	var shares []string
	err = eachRow(ctx, s.db(), `SELECT agency FROM target_access WHERE target = ? ORDER BY agency`, func(r pgx.Rows) error {
		var a string
		if err := r.Scan(&a); err != nil {
			return err
		}
		shares = append(shares, a)
		return nil
	}, cur)
	if err != nil {
		return "", nil, err
	}
	var assigned string
	if err := s.db().QueryRowContext(ctx, `SELECT agency, assigned FROM targets WHERE id = ?`, cur).Scan(&route, &assigned); err != nil {
		return "", nil, err
	}
	if assigned != "" {
		route = assigned
	}
	out := shares[:0]
	for _, a := range shares {
		if a != route {
			out = append(out, a)
		}
	}
	return route, out, nil
}

// Target implements analysis.Backend: a target's page, or ErrNotFound for
// one that does not exist or is outside scope (redirecting a merged id).
func (s *Store) Target(ctx context.Context, id string, scope analysis.Scope) (*analysis.TargetDetail, error) {
	return s.TargetWithTimeline(ctx, id, scope, analysis.TimelineLimit)
}

// TargetWithTimeline is Target with up to limit timeline entries (an ISP
// request needs every sighting, not the newest 500).
func (s *Store) TargetWithTimeline(ctx context.Context, id string, scope analysis.Scope, limit int) (*analysis.TargetDetail, error) {
	cur, merged, err := s.resolveTarget(ctx, id, scope)
	if err != nil {
		return nil, err
	}
	d, err := s.targetHead(ctx, cur, merged)
	if err != nil {
		return nil, err
	}
	eps, err := s.targetEndpoints(ctx, d, cur)
	if err != nil {
		return nil, err
	}
	if len(eps.keys) == 0 {
		return d, nil
	}
	for _, part := range []func() error{
		func() error { return s.targetFiles(ctx, d, eps) },
		func() error { return s.targetLinks(ctx, d, eps) },
		func() error { return s.timeline(ctx, d, eps.order, limit) },
		func() error { return s.targetLeads(ctx, d) },
	} {
		if err := part(); err != nil {
			return nil, err
		}
	}
	d.AttachFileMarks() // each file's level with the marks behind it
	return d, nil
}

// targetHead reads target cur's summary, shares and the ids merged into
// it (merged: those resolveTarget followed to it).
func (s *Store) targetHead(ctx context.Context, cur string, merged []string) (*analysis.TargetDetail, error) {
	var err error
	d := &analysis.TargetDetail{}
	var shares string
	row := s.db().QueryRowContext(ctx, `SELECT `+targetCols+`, t.shares FROM targets t WHERE t.id = ?`, cur)
	var r scanFunc = func(dest ...any) error {
		return row.Scan(append(dest, &shares)...)
	}
	if d.TargetSummary, err = scanTarget(r); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(shares), &d.Shares); err != nil {
		return nil, fmt.Errorf("target %s shares: %w", cur, err)
	}
	d.MergedFrom = merged
	if err := eachRow(ctx, s.db(), `SELECT id FROM targets WHERE merged_into = ? ORDER BY seq`, func(r pgx.Rows) error {
		var m string
		if err := r.Scan(&m); err != nil {
			return err
		}
		d.MergedFrom = append(d.MergedFrom, m)
		return nil
	}, cur); err != nil {
		return nil, err
	}
	return d, nil
}

// targetEPs are a target's endpoints as the rest of its page reads them.
type targetEPs struct {
	keys  map[int64]string  // by row id: "ip:port", "#n" from the second generation on
	conf  map[int64]float64 // by row id: the endpoint's confidence
	order []int64           // row ids, last seen first
	in    string            // "(?,?,...)" over args
	args  []any             // the row ids
}

// targetEndpoints reads target cur's endpoints into d, last seen first.
func (s *Store) targetEndpoints(ctx context.Context, d *analysis.TargetDetail, cur string) (targetEPs, error) {
	epIDs := map[int64]string{}
	epConf := map[int64]float64{}
	var epOrder []int64
	if err := eachRow(ctx, s.db(), `SELECT id, ip, port, transport, asn, org, country, subdivision, city, agency, first_ns, last_ns,
		observations, vpn, hosting, gen, confidence, first_hand FROM analysis_endpoints WHERE target = ? ORDER BY last_ns DESC`, func(r pgx.Rows) error {
		var (
			e                   analysis.EndpointInfo
			id, port, asn, f, l int64
			ip                  string
			vpn, hosting, fh    int
		)
		if err := r.Scan(&id, &ip, &port, &e.Transport, &asn, &e.Org, &e.Country, &e.Subdivision, &e.City, &e.Agency, &f, &l,
			&e.Observations, &vpn, &hosting, &e.Gen, &e.Confidence, &fh); err != nil {
			return err
		}
		e.FirstHand = fh == 1
		epConf[id] = e.Confidence
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return err
		}
		e.IP, e.Port, e.ASN, e.FirstSeen, e.LastSeen, e.VPN, e.Hosting = a, uint16(port), uint32(asn), nsTime(f), nsTime(l), vpn == 1, hosting == 1
		d.Endpoints = append(d.Endpoints, e)
		epOrder = append(epOrder, id)
		epIDs[id] = analysis.EndpointKey(netip.AddrPortFrom(a, uint16(port)), e.Gen) // "ip:port", "#n" from the second generation on
		return nil
	}, cur); err != nil {
		return targetEPs{}, err
	}
	idArgs := make([]any, 0, len(epIDs))
	for id := range epIDs {
		idArgs = append(idArgs, id)
	}
	in := `(?` + strings.Repeat(",?", max(len(idArgs), 1)-1) + `)`
	return targetEPs{keys: epIDs, conf: epConf, order: epOrder, in: in, args: idArgs}, nil
}

// targetFiles reads the files of the endpoints eps into d, highest level
// first, each with the level every endpoint itself reached.
func (s *Store) targetFiles(ctx context.Context, d *analysis.TargetDetail, eps targetEPs) error {
	epIDs, epConf, in, idArgs := eps.keys, eps.conf, eps.in, eps.args
	var files rowcodec.TargetFiles
	if err := eachRow(ctx, s.db(), `SELECT endpoint, kind, hash, matched, severity, max_level, intent, first_ns, last_ns, observations, quarantined
		FROM analysis_endpoint_files WHERE endpoint IN `+in, func(r pgx.Rows) error {
		var (
			f           rowcodec.FileRow
			kind        string
			sum         []byte
			ep          int64
			quarantined int
		)
		if err := r.Scan(&ep, &kind, &sum, &f.Matched, &f.Severity, &f.Level, &f.Intent, &f.FirstNS, &f.LastNS, &f.Observations, &quarantined); err != nil {
			return err
		}
		h, err := scanHash(kind, sum)
		if err != nil {
			return err
		}
		f.Hash, f.Quarantined = h, quarantined == 1
		return files.Add(f, analysis.FileAt{Endpoint: epIDs[ep], Level: observe.Level(f.Level), Confidence: epConf[ep]})
	}, idArgs...); err != nil {
		return err
	}
	d.Files = append(d.Files, files.Sorted()...)
	return nil
}

// targetLinks reads the links of the endpoints eps into d, naming an end
// that belongs to another target now from its row.
func (s *Store) targetLinks(ctx context.Context, d *analysis.TargetDetail, eps targetEPs) error {
	epIDs, in, idArgs := eps.keys, eps.in, eps.args
	if err := eachRow(ctx, s.db(), `SELECT id, a, b, rule, evidence, reason, confidence, obs, at_ns, state, note FROM analysis_links
		WHERE a IN `+in+` OR b IN `+in+` ORDER BY id`, func(r pgx.Rows) error {
		var l analysis.Link
		var a, b, at int64
		var obs string
		if err := r.Scan(&l.ID, &a, &b, &l.Rule, &l.Evidence, &l.Reason, &l.Confidence, &obs, &at, &l.State, &l.Note); err != nil {
			return err
		}
		l.A, l.B = epIDs[a], epIDs[b]
		if l.A == "" || l.B == "" {
			// The other end belongs to another target now (a rejected or
			// withdrawn link): name it from its row.
			for _, p := range []*string{&l.A, &l.B} {
				if *p == "" {
					id := a
					if p == &l.B {
						id = b
					}
					var ip string
					var port int64
					if err := s.db().QueryRowContext(ctx, `SELECT ip, port FROM analysis_endpoints WHERE id = ?`, id).Scan(&ip, &port); err == nil {
						if ad, err := netip.ParseAddr(ip); err == nil {
							*p = netip.AddrPortFrom(ad, uint16(port)).String()
						}
					}
				}
			}
		}
		l.EndpointA, l.EndpointB = l.A, l.B
		l.At = nsTime(at)
		if err := json.Unmarshal([]byte(obs), &l.Obs); err != nil {
			return err
		}
		d.Links = append(d.Links, l)
		return nil
	}, append(idArgs, idArgs...)...); err != nil {
		return err
	}
	return nil
}

// targetLeads reads the leads seen at d's endpoints into d, by key.
func (s *Store) targetLeads(ctx context.Context, d *analysis.TargetDetail) error {
	leadKeys := map[string]bool{}
	for _, ep := range d.Endpoints {
		if err := eachRow(ctx, s.db(), `SELECT lead FROM lead_endpoints WHERE ip = ? AND port = ?`, func(r pgx.Rows) error {
			var k string
			if err := r.Scan(&k); err != nil {
				return err
			}
			leadKeys[k] = true
			return nil
		}, ep.IP.String(), int64(ep.Port)); err != nil {
			return err
		}
	}
	for k := range leadKeys {
		ls, err := s.leads(ctx, `SELECT `+leadCols+` FROM leads WHERE key = ?`, k)
		if err != nil {
			return err
		}
		for _, l := range ls {
			d.Leads = append(d.Leads, l.Lead.OnTarget())
		}
	}
	sort.Slice(d.Leads, func(i, j int) bool { return d.Leads[i].Key < d.Leads[j].Key })
	return nil
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

const leadCols = `key, kind, hash, torrent_kind, torrent, path, size, count, first_ns, last_ns, torrents, watched, seen, state, who, why, decided_ns, keywords, networks, sources, searched`

func (s *Store) leads(ctx context.Context, q string, args ...any) ([]analysis.LeadState, error) {
	var out []analysis.LeadState
	err := eachRow(ctx, s.db(), q, func(r pgx.Rows) error {
		var (
			l                       analysis.LeadState
			kind, tkind             string
			hash, torrent           []byte
			first, last, decided    int64
			torrents, watched, seen string
			keywords, networks      string
		)
		if err := r.Scan(&l.Key, &kind, &hash, &tkind, &torrent, &l.Path, &l.Size, &l.Count, &first, &last, &torrents, &watched,
			&seen, &l.State, &l.By, &l.Why, &decided, &keywords, &networks, &l.Sources, &l.Searched); err != nil {
			return err
		}
		var err error
		if kind != "" {
			if l.Hash, err = scanHash(kind, hash); err != nil {
				return fmt.Errorf("lead %s: %w", l.Key, err)
			}
		}
		if tkind != "" {
			if l.TorrentHash, err = scanHash(tkind, torrent); err != nil {
				return fmt.Errorf("lead %s: %w", l.Key, err)
			}
		}
		l.FirstSeen, l.LastSeen, l.DecidedAt = nsTime(first), nsTime(last), nsTime(decided)
		for _, j := range []struct {
			s string
			v any
		}{{torrents, &l.Torrents}, {watched, &l.Watched}, {seen, &l.Seen}, {keywords, &l.Keywords}, {networks, &l.Networks}} {
			if err := json.Unmarshal([]byte(j.s), j.v); err != nil {
				return fmt.Errorf("lead %s: %w", l.Key, err)
			}
		}
		l.Endpoints = len(l.Seen)
		out = append(out, l)
		return nil
	}, args...)
	return out, err
}

// Leads implements analysis.Backend: leads by state, most recently seen
// first. Leads name files and torrents, not targets: who may review them
// is the caller's (analyst role) decision.
func (s *Store) Leads(ctx context.Context, q analysis.LeadQuery) ([]analysis.Lead, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	where, args := `true`, []any{}
	if q.State != "" {
		where, args = `state = ?`, []any{q.State}
	}
	var total int
	if err := s.db().QueryRowContext(ctx, `SELECT COUNT(*) FROM leads WHERE `+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	ls, err := s.leads(ctx, `SELECT `+leadCols+` FROM leads WHERE `+where+` ORDER BY last_ns DESC, key LIMIT ? OFFSET ?`, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	out := make([]analysis.Lead, len(ls))
	for i := range ls {
		out[i] = ls[i].Lead
	}
	return out, total, nil
}

// Quarantined implements analysis.Backend.
func (s *Store) Quarantined(ctx context.Context) ([]analysis.QuarantineRecord, error) {
	var out []analysis.QuarantineRecord
	err := eachRow(ctx, s.db(), `SELECT kind, hash, state, detected_ns, peers, baseline, reason, who, why, decided_ns FROM quarantine ORDER BY detected_ns`, func(r pgx.Rows) error {
		var q analysis.QuarantineRecord
		var sum []byte
		var det, dec int64
		if err := r.Scan(&q.Kind, &sum, &q.State, &det, &q.Peers, &q.Baseline, &q.Reason, &q.By, &q.Why, &dec); err != nil {
			return err
		}
		h, err := scanHash(q.Kind, sum)
		if err != nil {
			return err
		}
		q.Hash, q.Hex, q.Detected, q.DecidedAt = h, h.Hex(), nsTime(det), nsTime(dec)
		out = append(out, q)
		return nil
	})
	return out, err
}

// Alerts implements analysis.Backend.
func (s *Store) Alerts(ctx context.Context, since time.Time) ([]analysis.Alert, error) {
	var out []analysis.Alert
	err := eachRow(ctx, s.db(), `SELECT id, at_ns, kind, subject, message FROM analysis_alerts WHERE at_ns >= ? ORDER BY id`, func(r pgx.Rows) error {
		var a analysis.Alert
		var at int64
		if err := r.Scan(&a.ID, &at, &a.Kind, &a.Subject, &a.Message); err != nil {
			return err
		}
		a.Time = nsTime(at)
		out = append(out, a)
		return nil
	}, timeNS(since))
	return out, err
}

// Stats implements analysis.Backend: counts of live targets within scope
// by agency, country, subdivision and network, and observations per day
// since a time (for a scoped reader, those routed to its agencies).
func (s *Store) Stats(ctx context.Context, scope analysis.Scope, since time.Time) (*analysis.Stats, error) {
	st := &analysis.Stats{ByAgency: map[string]int{}, ByCountry: map[string]int{}, BySubdivision: map[string]int{}, ByNetwork: map[string]int{}}
	if scope.Empty() {
		return st, nil
	}
	from, where, args := `targets t`, `t.merged_into IS NULL`, []any{}
	dailyWhere, dailyArgs := `day >= ?`, []any{since.Unix() / 86400}
	if since.IsZero() {
		dailyArgs[0] = int64(-1 << 40)
	}
	if !scope.All {
		in := `(?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		from = `targets t`
		where = `t.id IN (SELECT target FROM target_access WHERE agency IN ` + in + `)`
		dailyWhere += ` AND agency IN ` + in
		for _, a := range scope.Agencies {
			args = append(args, a)
			dailyArgs = append(dailyArgs, a)
		}
	}
	if err := eachRow(ctx, s.db(), `SELECT t.agency, t.country, t.subdivision, t.networks, t.endpoints FROM `+from+` WHERE `+where, func(r pgx.Rows) error {
		var agency, country, sub, networks string
		var eps int
		if err := r.Scan(&agency, &country, &sub, &networks, &eps); err != nil {
			return err
		}
		st.Targets++
		if eps > 1 {
			st.Devices++
		}
		st.ByAgency[agency]++
		st.ByCountry[country]++
		if sub != "" {
			st.BySubdivision[country+"/"+sub]++
		}
		for _, n := range strings.FieldsFunc(networks, func(r rune) bool { return r == ',' }) {
			st.ByNetwork[n]++
		}
		return nil
	}, args...); err != nil {
		return nil, err
	}
	if err := eachRow(ctx, s.db(), `SELECT day, SUM(observations) FROM analysis_daily WHERE `+dailyWhere+` GROUP BY day ORDER BY day`, func(r pgx.Rows) error {
		var day int64
		var n int
		if err := r.Scan(&day, &n); err != nil {
			return err
		}
		st.Daily = append(st.Daily, analysis.DayCount{Day: time.Unix(day*86400, 0).UTC().Format("2006-01-02"), Observations: n})
		return nil
	}, dailyArgs...); err != nil {
		return nil, err
	}
	return st, nil
}

// AddToList is store.AddToList on s (analysis tests and older callers
// call it as a method).
func (s *Store) AddToList(ctx context.Context, list, source string, e watchlist.Entry, by, reason string) (store.ImportReport, error) {
	return store.AddToList(ctx, s, list, source, e, by, reason)
}
