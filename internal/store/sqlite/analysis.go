package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// The analysis tables (migration 0003) and the queries on them. Every
// query that returns targets takes an analysis.Scope and applies it in the
// SQL: a target outside it is never read.

var _ analysis.Views = (*Store)(nil)

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
	rows, err := s.db.QueryContext(ctx, `SELECT key, value FROM analysis_state`)
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
	// Homes carried over by migration 0009 first, then the endpoints the
	// analysis wrote since (which win).
	if err := eachRow(ctx, s.db, `SELECT 0, ip, port, gen, home FROM analysis_homes
		UNION ALL SELECT id, ip, port, gen, home FROM analysis_endpoints`, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT id, a, b, rule, evidence FROM analysis_links`, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT id, COALESCE(merged_into, '') FROM targets`, func(r *sql.Rows) error {
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

// AnalysisDecisions implements analysis.Backend: the decisions numbered
// after after, in order.
func (s *Store) AnalysisDecisions(ctx context.Context, after int64) ([]analysis.Decision, error) {
	var out []analysis.Decision
	err := eachRow(ctx, s.db, `SELECT id, at_ns, who, why, kind, subject, value FROM analysis_decisions WHERE id > ? ORDER BY id`, func(r *sql.Rows) error {
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

// rowsQueryer is what eachRow reads from: the pool (readDB) or a
// transaction.
type rowsQueryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func eachRow(ctx context.Context, db rowsQueryer, q string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func scanHash(kind string, b []byte) (hashkind.Hash, error) {
	k, err := hashkind.ParseKind(kind)
	if err != nil {
		return hashkind.Hash{}, err
	}
	return hashkind.New(k, b)
}

// AnalysisObservations implements analysis.Backend: observations with seq
// in (after, upTo], transcripts left out. Match lists and places repeat,
// so their parsed forms are cached for the read.
//
// It reads in chunks of analysisChunk, each its own query: one read of a
// long backlog would hold its snapshot for the whole catch-up, and while
// it does, SQLite cannot start the log over, so every page the analysis
// writes meanwhile would grow the log (seen: 17 GB over a 10M backlog).
func (s *Store) AnalysisObservations(ctx context.Context, after, upTo int64, fn func(seq int64, o *observe.Observation) error) error {
	if upTo <= 0 {
		upTo = 1<<63 - 1
	}
	c := &obsReadCache{matches: map[string][]observe.Match{}, places: map[string]observe.Place{}, items: map[string]hashkind.Hash{},
		levels: map[string]observe.Level{}}
	for {
		n, last, err := s.readAnalysisChunk(ctx, after, upTo, c, fn)
		if err != nil || n < analysisChunk {
			return err
		}
		after = last
	}
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
	r, err := s.db.QueryContext(ctx, `SELECT o.seq, o.id, o.time_ns, o.sensor, o.network, o.method, i.kind, i.hash, o.matched,
		o.ip, o.port, o.transport, o.peer_id, o.client, o.client_version, o.listen_port, o.node_id, o.user_hash, o.guid,
		o.possession, o.pieces_have, o.pieces_total, o.place, o.agency, o.agency_rule, o.marks
		FROM observation_rows o JOIN items i ON i.id = o.item_id WHERE o.seq > ? AND o.seq <= ? ORDER BY o.seq LIMIT ?`,
		after, upTo, analysisChunk)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	matchCache, placeCache, itemCache, levels := c.matches, c.places, c.items, c.levels
	for r.Next() {
		n++
		var (
			o                        observe.Observation
			seq, timeNS, port, lp    int64
			have, total              int64
			id                       any
			kind, matched, ip, level string
			sum                      []byte
			place                    sql.NullString
			marks                    string
		)
		if err = r.Scan(&seq, &id, &timeNS, &o.Sensor.ID, &o.Network, &o.Method, &kind, &sum, &matched,
			&ip, &port, &o.Endpoint.Transport, &o.Client.PeerID, &o.Client.Name, &o.Client.Version, &lp,
			&o.Client.NodeID, &o.Client.UserHash, &o.Client.GUID, &level, &have, &total, &place,
			&o.Jurisdiction.Agency, &o.Jurisdiction.Rule, &marks); err != nil {
			return n, last, err
		}
		if o.ID, err = idString(id); err != nil {
			return n, last, fmt.Errorf("observation seq %d: %w", seq, err)
		}
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
		if place.Valid {
			p, ok := placeCache[place.String]
			if !ok {
				if err := parsePlace(place.String, &p); err != nil {
					return n, last, fmt.Errorf("observation %s: %w", o.ID, err)
				}
				if len(placeCache) > 1<<16 {
					clear(placeCache)
				}
				placeCache[place.String] = p
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
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = idValue(id)
		}
		q := `SELECT id, seq FROM observations WHERE id IN (?` + strings.Repeat(",?", len(part)-1) + `)`
		if err := eachRow(ctx, s.db, q, func(r *sql.Rows) error {
			var v any
			var seq int64
			if err := r.Scan(&v, &seq); err != nil {
				return err
			}
			id, err := idString(v)
			if err != nil {
				return err
			}
			for _, i := range at[id] {
				seqs[i] = seq
			}
			return nil
		}, args...); err != nil {
			return nil, 0, err
		}
	}
	var maxSeq int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM observations`).Scan(&maxSeq); err != nil {
		return nil, 0, err
	}
	return seqs, maxSeq, nil
}

// AnalysisSave implements analysis.Backend: one transaction, written
// part by part in the order below, the first of which checks the
// analysis version (writes are serialised: BEGIN IMMEDIATE).
func (s *Store) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	return s.writeTx(ctx, func(tx *sql.Tx) error {
		x := &saveTx{ctx: ctx, tx: tx, prep: map[string]*sql.Stmt{}}
		defer x.close()
		for _, part := range []func(*analysis.Changes) error{x.checkVersion, x.saveDecisions, x.saveEndpoints, x.saveFiles, x.saveTargets,
			x.saveMerged, x.saveLinks, x.saveQuarantine, x.saveAlerts, x.saveLeads, x.saveTimeline, x.saveDaily, x.saveFigures, x.saveState} {
			if err := part(c); err != nil {
				return err
			}
		}
		return nil
	})
}

// saveTx is one AnalysisSave's transaction, with its statements prepared
// once each.
type saveTx struct {
	ctx  context.Context
	tx   *sql.Tx
	prep map[string]*sql.Stmt
}

func (x *saveTx) exec(q string, args ...any) (sql.Result, error) {
	st := x.prep[q]
	if st == nil {
		var err error
		if st, err = x.tx.PrepareContext(x.ctx, q); err != nil {
			return nil, err
		}
		x.prep[q] = st
	}
	return st.ExecContext(x.ctx, args...)
}

func (x *saveTx) close() {
	for _, st := range x.prep {
		st.Close()
	}
}

// saveDecisions writes the analysts' decisions, numbering them.
func (x *saveTx) saveDecisions(c *analysis.Changes) error {
	for i := range c.Decisions {
		d := &c.Decisions[i]
		res, err := x.exec(`INSERT INTO analysis_decisions (at_ns, who, why, kind, subject, value) VALUES (?, ?, ?, ?, ?, ?)`,
			timeNS(d.At), d.By, d.Why, d.Kind, d.Subject, d.Value)
		if err != nil {
			return fmt.Errorf("decision %s %s: %w", d.Kind, d.Subject, err)
		}
		d.ID, _ = res.LastInsertId()
	}
	return nil
}

// saveEndpoints writes the endpoints; a stored row equal to the one given
// is left as it is.
func (x *saveTx) saveEndpoints(c *analysis.Changes) error {
	for _, e := range c.Endpoints {
		in := &e.Info
		if _, err := x.exec(`INSERT INTO analysis_endpoints (id, ip, port, home, target, transport, asn, org, country, subdivision, city,
			agency, networks, first_ns, last_ns, observations, vpn, hosting, gen, confidence, first_hand) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET target = excluded.target, transport = excluded.transport, asn = excluded.asn,
			confidence = excluded.confidence, first_hand = excluded.first_hand,
			org = excluded.org, country = excluded.country, subdivision = excluded.subdivision, city = excluded.city,
			agency = excluded.agency, networks = excluded.networks, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
			observations = excluded.observations, vpn = excluded.vpn, hosting = excluded.hosting
			WHERE `+endpointChanged,
			e.ID, in.IP.String(), int64(in.Port), e.Home, e.Target, in.Transport, int64(in.ASN), in.Org, in.Country, in.Subdivision,
			in.City, in.Agency, strings.Join(e.Networks, ","), timeNS(in.FirstSeen), timeNS(in.LastSeen), in.Observations,
			b2i(in.VPN), b2i(in.Hosting), in.Gen, in.Confidence, b2i(in.FirstHand)); err != nil {
			return fmt.Errorf("endpoint %s:%d: %w", in.IP, in.Port, err)
		}
	}
	return nil
}

// saveFiles writes each endpoint's files; a stored row equal to the one
// given is left as it is.
func (x *saveTx) saveFiles(c *analysis.Changes) error {
	for _, f := range c.Files {
		fi := &f.File
		if _, err := x.exec(`INSERT INTO analysis_endpoint_files (endpoint, kind, hash, matched, severity, max_level, intent,
			first_ns, last_ns, observations, quarantined) VALUES (?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (endpoint, kind, hash) DO UPDATE SET matched = excluded.matched, severity = excluded.severity,
			max_level = excluded.max_level, intent = excluded.intent, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
			observations = excluded.observations, quarantined = excluded.quarantined
			WHERE `+fileChanged,
			f.Endpoint, fi.Kind, fi.Hash.Bytes(), string(rowcodec.AppendMatched(nil, fi.Matched)), fi.Severity, int(fi.MaxLevel), fi.Intent,
			timeNS(fi.FirstSeen), timeNS(fi.LastSeen), fi.Observations, b2i(fi.Quarantined)); err != nil {
			return fmt.Errorf("endpoint %d file %s: %w", f.Endpoint, fi.Hex, err)
		}
	}
	return nil
}

// saveTargets writes the live targets, who may see them and their
// categories. Only what changed is written: a target row equal to the
// stored one is left as it is (a rewrite costs its indexes and its
// triggers), and so are access rows of the same score and times and
// categories already there.
func (x *saveTx) saveTargets(c *analysis.Changes) error {
	for _, t := range c.Targets {
		ts := &t.Summary
		if _, err := x.exec(`INSERT INTO targets (id, seq, merged_into, agency, agencies, assigned, investigator, score, parts,
			endpoints, files, levels, max_level, observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity,
			looking, country, subdivision, label, flags, shares) VALUES (?,?,NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (id) DO UPDATE SET merged_into = NULL, agency = excluded.agency, agencies = excluded.agencies,
			assigned = excluded.assigned, investigator = excluded.investigator, score = excluded.score, parts = excluded.parts,
			endpoints = excluded.endpoints, files = excluded.files, levels = excluded.levels, max_level = excluded.max_level,
			observations = excluded.observations, first_ns = excluded.first_ns, last_ns = excluded.last_ns,
			networks = excluded.networks, vpn = excluded.vpn, hosting = excluded.hosting, categories = excluded.categories,
			max_severity = excluded.max_severity, looking = excluded.looking, country = excluded.country,
			subdivision = excluded.subdivision, label = excluded.label, flags = excluded.flags, shares = excluded.shares
			WHERE `+targetChanged,
			ts.ID, t.Seq, ts.Jurisdiction, jsonText(nonNil(ts.Agencies)), ts.Assigned, ts.Investigator, ts.Score, jsonText(ts.Parts),
			ts.Endpoints, ts.Files, jsonText(nonNilLevels(ts.Levels)), int(ts.MaxLevel), ts.Observations, timeNS(ts.FirstSeen),
			timeNS(ts.LastSeen), ","+strings.Join(ts.Networks, ",")+",", b2i(ts.VPN), b2i(ts.Hosting), jsonText(nonNil(ts.Categories)),
			ts.MaxSeverity, b2i(ts.Looking), ts.Country, ts.Subdivision, ts.Label, jsonText(nonNil(ts.Flags)), jsonText(nonNilShares(t.Shares))); err != nil {
			return fmt.Errorf("target %s: %w", ts.ID, err)
		}
		if err := x.saveAccess(t); err != nil {
			return fmt.Errorf("target %s access: %w", ts.ID, err)
		}
		if err := x.saveCategories(t); err != nil {
			return fmt.Errorf("target %s categories: %w", ts.ID, err)
		}
	}
	return nil
}

// targetCmpCols are the columns of targets a save writes, besides
// merged_into, compared with the stored row: a live row equal in all of
// them is not rewritten (targetChanged).
const targetCmpCols = `agency, agencies, assigned, investigator, score, parts, endpoints, files, levels, max_level,
	observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity, looking, country, subdivision, label, flags, shares`

// targetChanged is true of a stored target row that an upsert's excluded
// row would change; endpointChanged and fileChanged the same for
// analysis_endpoints and analysis_endpoint_files.
var (
	targetChanged = `targets.merged_into IS NOT NULL OR (` + prefixCols("targets.", targetCmpCols) + `) IS NOT (` +
		prefixCols("excluded.", targetCmpCols) + `)`
	endpointCols    = `target, transport, asn, confidence, first_hand, org, country, subdivision, city, agency, networks, first_ns, last_ns, observations, vpn, hosting`
	endpointChanged = `(` + prefixCols("analysis_endpoints.", endpointCols) + `) IS NOT (` + prefixCols("excluded.", endpointCols) + `)`
	fileCols        = `matched, severity, max_level, intent, first_ns, last_ns, observations, quarantined`
	fileChanged     = `(` + prefixCols("analysis_endpoint_files.", fileCols) + `) IS NOT (` + prefixCols("excluded.", fileCols) + `)`
)

// prefixCols is cols (comma-separated) each with prefix.
func prefixCols(prefix, cols string) string {
	var out []string
	for _, c := range strings.Split(cols, ",") {
		out = append(out, prefix+strings.TrimSpace(c))
	}
	return strings.Join(out, ", ")
}

// saveAccess writes who may see t: when its agencies are as last written
// (SameAccess) the score and times of its rows, where they moved; else
// its rows, the agencies no longer in Access deleted.
func (x *saveTx) saveAccess(t analysis.TargetRow) error {
	ts := &t.Summary
	score, last, first := ts.Score, timeNS(ts.LastSeen), timeNS(ts.FirstSeen)
	if t.SameAccess {
		_, err := x.exec(`UPDATE target_access SET score = ?1, last_ns = ?2, first_ns = ?3
			WHERE target = ?4 AND (score, last_ns, first_ns) IS NOT (?1, ?2, ?3)`, score, last, first, ts.ID)
		return err
	}
	if _, err := x.exec(`DELETE FROM target_access WHERE target = ? AND agency NOT IN (SELECT value FROM json_each(?))`,
		ts.ID, jsonText(nonNil(t.Access))); err != nil {
		return err
	}
	for _, a := range t.Access {
		if _, err := x.exec(`INSERT INTO target_access (agency, target, score, last_ns, first_ns) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (agency, target) DO UPDATE SET score = excluded.score, last_ns = excluded.last_ns, first_ns = excluded.first_ns
			WHERE (target_access.score, target_access.last_ns, target_access.first_ns) IS NOT (excluded.score, excluded.last_ns, excluded.first_ns)`,
			a, ts.ID, score, last, first); err != nil {
			return err
		}
	}
	return nil
}

// saveCategories writes t's categories if they changed since last
// written: those no longer held deleted, the new ones added.
func (x *saveTx) saveCategories(t analysis.TargetRow) error {
	if t.SameCategories {
		return nil
	}
	ts := &t.Summary
	if _, err := x.exec(`DELETE FROM target_categories WHERE target = ? AND category NOT IN (SELECT value FROM json_each(?))`,
		ts.ID, jsonText(nonNil(ts.Categories))); err != nil {
		return err
	}
	for _, cat := range ts.Categories {
		if _, err := x.exec(`INSERT OR IGNORE INTO target_categories (category, target) VALUES (?, ?)`, cat, ts.ID); err != nil {
			return err
		}
	}
	return nil
}

// saveMerged writes the targets merged into others.
func (x *saveTx) saveMerged(c *analysis.Changes) error {
	for id, into := range c.Merged {
		if into == "" {
			continue // revived: its row was written above
		}
		seq, _ := analysis.ParseTargetID(id)
		if _, err := x.exec(`INSERT INTO targets (id, seq, merged_into) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET merged_into = excluded.merged_into`,
			id, seq, into); err != nil {
			return fmt.Errorf("target %s merged into %s: %w", id, into, err)
		}
		if _, err := x.exec(`DELETE FROM target_access WHERE target = ?`, id); err != nil {
			return err
		}
		if _, err := x.exec(`DELETE FROM target_categories WHERE target = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// saveLinks writes the links.
func (x *saveTx) saveLinks(c *analysis.Changes) error {
	for _, l := range c.Links {
		if _, err := x.exec(`INSERT INTO analysis_links (id, a, b, rule, evidence, reason, confidence, obs, at_ns, state, note)
			VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (id) DO UPDATE SET state = excluded.state, note = excluded.note`,
			l.ID, l.AID, l.BID, l.Rule, l.Evidence, l.Reason, l.Confidence, jsonText(nonNil(l.Obs)), timeNS(l.At), l.State, l.Note); err != nil {
			return fmt.Errorf("link %d (%s %s): %w", l.ID, l.Rule, l.Evidence, err)
		}
	}
	return nil
}

// saveQuarantine writes the quarantine.
func (x *saveTx) saveQuarantine(c *analysis.Changes) error {
	for _, q := range c.Quarantine {
		if _, err := x.exec(`INSERT INTO quarantine (kind, hash, state, detected_ns, peers, baseline, reason, who, why, decided_ns)
			VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, hash) DO UPDATE SET state = excluded.state, detected_ns = excluded.detected_ns,
			peers = excluded.peers, baseline = excluded.baseline, reason = excluded.reason, who = excluded.who, why = excluded.why,
			decided_ns = excluded.decided_ns`,
			q.Hash.Kind().String(), q.Hash.Bytes(), q.State, timeNS(q.Detected), q.Peers, q.Baseline, q.Reason, q.By, q.Why, timeNS(q.DecidedAt)); err != nil {
			return fmt.Errorf("quarantine %s: %w", analysis.HashKey(q.Hash), err)
		}
	}
	return nil
}

// saveAlerts writes the alerts, numbering them.
func (x *saveTx) saveAlerts(c *analysis.Changes) error {
	for i := range c.Alerts {
		a := &c.Alerts[i]
		res, err := x.exec(`INSERT INTO analysis_alerts (at_ns, kind, subject, message) VALUES (?, ?, ?, ?)`, timeNS(a.Time), a.Kind, a.Subject, a.Message)
		if err != nil {
			return fmt.Errorf("alert %s: %w", a.Subject, err)
		}
		a.ID, _ = res.LastInsertId()
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
		if _, err := x.exec(`INSERT INTO leads (key, kind, hash, torrent_kind, torrent, path, size, count, first_ns, last_ns, torrents,
			watched, seen, state, who, why, decided_ns, keywords, networks, sources, searched) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT (key) DO UPDATE SET torrent_kind = excluded.torrent_kind, torrent = excluded.torrent, path = excluded.path,
			size = excluded.size, count = excluded.count,
			first_ns = excluded.first_ns, last_ns = excluded.last_ns, torrents = excluded.torrents, watched = excluded.watched,
			seen = excluded.seen, state = excluded.state, who = excluded.who, why = excluded.why, decided_ns = excluded.decided_ns,
			keywords = excluded.keywords, networks = excluded.networks, sources = excluded.sources, searched = excluded.searched`,
			l.Key, kind, hash, tkind, torrent, l.Path, l.Size, l.Count, timeNS(l.FirstSeen),
			timeNS(l.LastSeen), jsonText(nonNil(l.Torrents)), jsonText(nonNil(l.Watched)), jsonText(l.Seen), l.State, l.By, l.Why,
			timeNS(l.DecidedAt), jsonText(nonNil(l.Keywords)), jsonText(nonNil(l.Networks)), l.Sources, l.Searched); err != nil {
			return fmt.Errorf("lead %s: %w", l.Key, err)
		}
		for k := range l.Seen {
			ap, err := netip.ParseAddrPort(k)
			if err != nil {
				return fmt.Errorf("lead %s endpoint %q: %w", l.Key, k, err)
			}
			if _, err := x.exec(`INSERT OR IGNORE INTO lead_endpoints (ip, port, lead) VALUES (?, ?, ?)`, ap.Addr().String(), int64(ap.Port()), l.Key); err != nil {
				return err
			}
		}
	}
	return nil
}

// saveTimeline writes the timeline rows, a chunk an INSERT.
func (x *saveTx) saveTimeline(c *analysis.Changes) error {
	for rest := c.Timeline; len(rest) > 0; {
		n := min(len(rest), timelineChunk)
		args := make([]any, 0, 3*n)
		for _, t := range rest[:n] {
			args = append(args, t.Endpoint, t.TimeNS, t.Seq)
		}
		// OR IGNORE: a batch saved again after a failed commit, or
		// an observation processed twice, leaves one row.
		if _, err := x.exec(timelineInsert(n), args...); err != nil {
			return fmt.Errorf("timeline of %d observations: %w", n, err)
		}
		rest = rest[n:]
	}
	return nil
}

// saveDaily writes the daily counts.
func (x *saveTx) saveDaily(c *analysis.Changes) error {
	for _, d := range c.Daily {
		if _, err := x.exec(`INSERT INTO analysis_daily (day, agency, network, observations) VALUES (?, ?, ?, ?)
			ON CONFLICT (day, agency, network) DO UPDATE SET observations = excluded.observations`,
			d.Day, d.Agency, d.Network, d.Observations); err != nil {
			return err
		}
	}
	return nil
}

// checkVersion refuses the save (*analysis.StaleError) when another
// writer saved since the view behind c was loaded or last saved.
func (x *saveTx) checkVersion(c *analysis.Changes) error {
	var version, watermark, figures int64
	if err := x.tx.QueryRowContext(x.ctx, `SELECT
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

// saveState writes the watermark, the next target number and the
// analysis version after this save.
func (x *saveTx) saveState(c *analysis.Changes) error {
	if _, err := x.exec(`INSERT INTO analysis_state (key, value) VALUES ('version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, c.Version+1); err != nil {
		return err
	}
	if c.Watermark > 0 {
		if _, err := x.exec(`INSERT INTO analysis_state (key, value) VALUES ('watermark', ?)
			ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)`, c.Watermark); err != nil {
			return err
		}
	}
	if c.NextSeq > 0 {
		if _, err := x.exec(`INSERT INTO analysis_state (key, value) VALUES ('next_seq', ?)
			ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)`, c.NextSeq); err != nil {
			return err
		}
	}
	return nil
}

// timelineChunk is how many timeline rows one INSERT writes.
const timelineChunk = 500

// timelineInsert is the INSERT of n timeline rows.
func timelineInsert(n int) string {
	return `INSERT OR IGNORE INTO analysis_timeline (endpoint, time_ns, seq) VALUES (?,?,?)` + strings.Repeat(",(?,?,?)", n-1)
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
	order, err := targetOrder(q.Sort, scoreCol)
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
	} else if err := s.db.QueryRowContext(ctx, countQ, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("targets: %w", err)
	}
	var out []analysis.TargetSummary
	err = eachRow(ctx, s.db, `SELECT `+targetCols+` FROM `+from+` WHERE `+w+group+` ORDER BY `+order+` LIMIT ? OFFSET ?`, func(r *sql.Rows) error {
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
		var into sql.NullString
		err := s.db.QueryRowContext(ctx, `SELECT merged_into FROM targets WHERE id = ?`, cur).Scan(&into)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil, notFound
		}
		if err != nil {
			return "", nil, err
		}
		if !into.Valid {
			break
		}
		merged = append(merged, cur)
		cur = into.String
	}
	if !scope.All {
		q := `SELECT COUNT(*) FROM target_access WHERE target = ? AND agency IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		args := []any{cur}
		for _, a := range scope.Agencies {
			args = append(args, a)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
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
	err = eachRow(ctx, s.db, `SELECT agency FROM target_access WHERE target = ? ORDER BY agency`, func(r *sql.Rows) error {
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
	if err := s.db.QueryRowContext(ctx, `SELECT agency, assigned FROM targets WHERE id = ?`, cur).Scan(&route, &assigned); err != nil {
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
	row := s.db.QueryRowContext(ctx, `SELECT `+targetCols+`, t.shares FROM targets t WHERE t.id = ?`, cur)
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
	if err := eachRow(ctx, s.db, `SELECT id FROM targets WHERE merged_into = ? ORDER BY seq`, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT id, ip, port, transport, asn, org, country, subdivision, city, agency, first_ns, last_ns,
		observations, vpn, hosting, gen, confidence, first_hand FROM analysis_endpoints WHERE target = ? ORDER BY last_ns DESC`, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT endpoint, kind, hash, matched, severity, max_level, intent, first_ns, last_ns, observations, quarantined
		FROM analysis_endpoint_files WHERE endpoint IN `+in, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT id, a, b, rule, evidence, reason, confidence, obs, at_ns, state, note FROM analysis_links
		WHERE a IN `+in+` OR b IN `+in+` ORDER BY id`, func(r *sql.Rows) error {
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
					if err := s.db.QueryRowContext(ctx, `SELECT ip, port FROM analysis_endpoints WHERE id = ?`, id).Scan(&ip, &port); err == nil {
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
		if err := eachRow(ctx, s.db, `SELECT lead FROM lead_endpoints WHERE ip = ? AND port = ?`, func(r *sql.Rows) error {
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

// timelineQuery reads the newest of one endpoint's sightings.
const timelineQuery = `SELECT t.seq, o.id, o.time_ns, o.network, o.method, o.possession, o.transport, i.kind, i.hash, o.matched,
	o.place, o.agency, o.sensor, o.clock_offset_ns, o.clock_source, o.marks, o.sensor_address, o.transcript_sha256, o.port,
	o.client, o.client_version, o.pieces_have, o.pieces_total, o.clock_uncertainty_ns, o.sensor_version, o.build_commit, o.build_modified
	FROM analysis_timeline t JOIN observation_rows o ON o.seq = t.seq JOIN items i ON i.id = o.item_id
	WHERE t.endpoint = ? ORDER BY t.time_ns DESC, t.seq DESC LIMIT ?`

// timeline reads the newest limit observations at the target's
// endpoints, most recent first: one range read of analysis_timeline
// (migration 0006, written by the analysis) per endpoint, newest endpoint
// first, stopping once limit entries are held and the next endpoint was
// last seen before the oldest of them; then each entry's observation by
// its seq. epIDs are the ids of d.Endpoints, in the same order.
func (s *Store) timeline(ctx context.Context, d *analysis.TargetDetail, epIDs []int64, limit int) error {
	if limit <= 0 || len(d.Endpoints) == 0 {
		return nil
	}
	hexes := map[string]string{} // hash bytes -> hex, once a file
	type entry struct {
		seq int64
		t   analysis.TimelineEntry
	}
	var got []entry
	newer := func(a, b *entry) bool {
		if !a.t.Time.Equal(b.t.Time) {
			return a.t.Time.After(b.t.Time)
		}
		return a.seq > b.seq
	}
	trim := func() {
		sort.Slice(got, func(i, j int) bool { return newer(&got[i], &got[j]) })
		if len(got) > limit {
			got = got[:limit]
		}
	}
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		if len(got) >= limit {
			trim()
			if ep.LastSeen.Before(got[len(got)-1].t.Time) {
				break // endpoints come newest first
			}
		}
		epName := netip.AddrPortFrom(ep.IP.Unmap(), ep.Port).String()
		err := func() error {
			r, err := s.db.QueryContext(ctx, timelineQuery, epIDs[i], limit)
			if err != nil {
				return err
			}
			defer r.Close()
			for r.Next() {
				var (
					e              entry
					id             any
					ns             int64
					offset, unc    sql.NullInt64
					level, matched string
					place          sql.NullString
					hash, tsum     []byte
					marks          string
					port           int64
				)
				t := &e.t
				if err := r.Scan(&e.seq, &id, &ns, &t.Network, &t.Method, &level, &t.Transport, &t.Kind, &hash, &matched, &place, &t.Agency,
					&t.Sensor, &offset, &t.ClockSource, &marks, &t.SensorAddress, &tsum, &port,
					&t.Client, &t.ClientVersion, &t.PiecesHave, &t.PiecesTotal,
					&unc, &t.Build.Version, &t.Build.Commit, &t.Build.Modified); err != nil {
					return err
				}
				if marks != "" {
					if t.Marks, err = rowcodec.ParseMarks(marks); err != nil {
						return fmt.Errorf("observation seq %d: %w", e.seq, err)
					}
				}
				if len(tsum) > 0 {
					t.TranscriptSHA256 = hex.EncodeToString(tsum)
				}
				if t.ID, err = idString(id); err != nil {
					return err
				}
				hx, ok := hexes[string(hash)]
				if !ok {
					hx = hex.EncodeToString(hash)
					hexes[string(hash)] = hx
				}
				// The observation's own port: a DHT announce is grouped under
				// the port it declared but was sent from another, and an ISP
				// row needs the port of the conversation.
				t.Time, t.Endpoint, t.Hash = nsTime(ns), netip.AddrPortFrom(ep.IP.Unmap(), uint16(port)).String(), hx
				if unc.Valid {
					t.ClockKnown, t.ClockOffset, t.ClockUncertainty = true, time.Duration(offset.Int64), time.Duration(unc.Int64)
				}
				if t.Level, err = observe.ParseLevel(level); err != nil {
					return err
				}
				if matched != "[]" {
					if err := json.Unmarshal([]byte(matched), &t.Matched); err != nil {
						return err
					}
				}
				if place.Valid {
					if err := parsePlace(place.String, &t.Place); err != nil {
						return err
					}
				}
				o := observe.Observation{Method: t.Method, Endpoint: observe.Endpoint{Transport: t.Transport}, Possession: observe.Possession{Level: t.Level}, Marks: t.Marks}
				t.Intent = analysis.Intent(&o).String()
				t.FirstHand = o.FirstHand()
				got = append(got, e)
			}
			return r.Err()
		}()
		if err != nil {
			return fmt.Errorf("timeline of %s at %s: %w", d.ID, epName, err)
		}
	}
	trim()
	for i := range got {
		d.Timeline = append(d.Timeline, got[i].t)
	}
	return nil
}

const leadCols = `key, kind, hash, torrent_kind, torrent, path, size, count, first_ns, last_ns, torrents, watched, seen, state, who, why, decided_ns, keywords, networks, sources, searched`

func (s *Store) leads(ctx context.Context, q string, args ...any) ([]analysis.LeadState, error) {
	var out []analysis.LeadState
	err := eachRow(ctx, s.db, q, func(r *sql.Rows) error {
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
	where, args := `1`, []any{}
	if q.State != "" {
		where, args = `state = ?`, []any{q.State}
	}
	var total int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM leads WHERE `+where, args...).Scan(&total); err != nil {
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
	err := eachRow(ctx, s.db, `SELECT kind, hash, state, detected_ns, peers, baseline, reason, who, why, decided_ns FROM quarantine ORDER BY detected_ns`, func(r *sql.Rows) error {
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
	err := eachRow(ctx, s.db, `SELECT id, at_ns, kind, subject, message FROM analysis_alerts WHERE at_ns >= ? ORDER BY id`, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT t.agency, t.country, t.subdivision, t.networks, t.endpoints FROM `+from+` WHERE `+where, func(r *sql.Rows) error {
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
	if err := eachRow(ctx, s.db, `SELECT day, SUM(observations) FROM analysis_daily WHERE `+dailyWhere+` GROUP BY day ORDER BY day`, func(r *sql.Rows) error {
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
