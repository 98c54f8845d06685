package postgres

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Read-only queries for the investigators' pages (internal/web/pages): the
// overview's figures in one pass over the live targets, the newest
// observations through the time index, a search by address, hash or id,
// and the target of an endpoint. None of them scans the observations.

var _ webviews.Store = (*Store)(nil)

// scopeWhere is the WHERE fragment admitting the live targets (alias t)
// in scope: routed to or shared with one of its agencies.
func scopeWhere(scope analysis.Scope) (string, []any) {
	if scope.All {
		return `t.merged_into IS NULL`, nil
	}
	args := make([]any, len(scope.Agencies))
	for i, a := range scope.Agencies {
		args[i] = a
	}
	return `t.merged_into IS NULL AND t.id IN (SELECT target FROM target_access WHERE agency IN (?` +
		strings.Repeat(",?", len(scope.Agencies)-1) + `))`, args
}

// dayNS is one UTC day in nanoseconds: the day numbers of the maintained
// counts (migration 0004) are Unix nanoseconds divided by it.
const dayNS = int64(24 * time.Hour)

// Overview returns the figures of the overview page. For a since at a
// UTC midnight (what the page asks) they are sums of the counts the
// trigger of migration 0004 keeps per day of last (and first) sighting,
// plus the few live targets shared into the scope from outside it: no
// pass over the targets. Any other since reads the targets in scope.
func (s *Store) Overview(ctx context.Context, scope analysis.Scope, since time.Time) (*webviews.Overview, error) {
	if !since.IsZero() && since.UnixNano()%dayNS != 0 {
		return s.overviewScan(ctx, scope, since)
	}
	ov := newOverview()
	if scope.Empty() {
		return ov, nil
	}
	sinceDay := int64(0)
	if !since.IsZero() {
		sinceDay = since.UnixNano() / dayNS
	}
	places := map[[2]string]*webviews.PlaceStat{}
	routeWhere, routeArgs := routeIn(scope)
	err := eachRow(ctx, s.db(), `SELECT route, country, subdivision, networks, max_level, multi, SUM(targets)::bigint, SUM(observations)::bigint
		FROM web_target_days WHERE day >= ?`+routeWhere+` GROUP BY route, country, subdivision, networks, max_level, multi`,
		func(r pgx.Rows) error {
			var route, country, sub, networks string
			var level, multi, n, obs int
			if err := r.Scan(&route, &country, &sub, &networks, &level, &multi, &n, &obs); err != nil {
				return err
			}
			if n > 0 {
				addToOverview(ov, places, route, country, sub, networks, level, multi == 1, n, obs)
			}
			return nil
		}, append([]any{sinceDay}, routeArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	err = eachRow(ctx, s.db(), `SELECT day, SUM(targets)::bigint FROM web_first_days WHERE day >= ?`+routeWhere+` GROUP BY day`,
		func(r pgx.Rows) error {
			var day int64
			var n int
			if err := r.Scan(&day, &n); err != nil {
				return err
			}
			if n > 0 {
				ov.NewByDay[day] += n
			}
			return nil
		}, append([]any{sinceDay}, routeArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("overview first days: %w", err)
	}
	sinceNS := sinceDay * dayNS
	if err := s.sharedInto(ctx, scope, sinceNS, func(route, country, sub, networks string, eps, level, obs int, first int64) {
		addToOverview(ov, places, route, country, sub, networks, level, eps > 1, 1, obs)
		if first >= sinceNS {
			ov.NewByDay[first/dayNS]++
		}
	}); err != nil {
		return nil, fmt.Errorf("overview shared targets: %w", err)
	}
	for _, p := range places {
		ov.Places = append(ov.Places, *p)
	}
	if err := s.dailyObservations(ctx, scope, since, ov); err != nil {
		return nil, err
	}
	return ov, nil
}

func newOverview() *webviews.Overview {
	return &webviews.Overview{ByAgency: map[string]int{}, ByNetwork: map[string]int{}, ByLevel: map[observe.Level]int{},
		NewByDay: map[int64]int{}, Observations: map[int64]int{}}
}

// addToOverview counts n targets of one group.
func addToOverview(ov *webviews.Overview, places map[[2]string]*webviews.PlaceStat, route, country, sub, networks string, level int, multi bool, n, obs int) {
	ov.Targets += n
	if multi {
		ov.Devices += n
	}
	ov.ByAgency[route] += n
	ov.ByLevel[observe.Level(level)] += n
	for _, nw := range strings.FieldsFunc(networks, func(r rune) bool { return r == ',' }) {
		ov.ByNetwork[nw] += n
	}
	k := [2]string{country, sub}
	p := places[k]
	if p == nil {
		p = &webviews.PlaceStat{Country: country, Subdivision: sub}
		places[k] = p
	}
	p.Targets += n
	p.Observations += obs
}

// routeIn is the " AND route IN (...)" fragment of the maintained counts
// for a scope ("" for every agency).
func routeIn(scope analysis.Scope) (string, []any) {
	if scope.All {
		return "", nil
	}
	args := make([]any, len(scope.Agencies))
	for i, a := range scope.Agencies {
		args[i] = a
	}
	return ` AND route IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`, args
}

// sharedInto calls fn for each live target last seen at or after sinceNS
// that is in scope only because it is shared into it (its route is not
// one of the scope's agencies). It reads the partial index of shared
// targets (few). Nothing for an all-agencies scope.
func (s *Store) sharedInto(ctx context.Context, scope analysis.Scope, sinceNS int64,
	fn func(route, country, sub, networks string, eps, level, obs int, first int64)) error {
	if scope.All || scope.Empty() {
		return nil
	}
	in := `(?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
	args := make([]any, 0, 2*len(scope.Agencies)+1)
	args = append(args, sinceNS)
	for _, a := range scope.Agencies {
		args = append(args, a)
	}
	for _, a := range scope.Agencies {
		args = append(args, a)
	}
	return eachRow(ctx, s.db(), `SELECT CASE WHEN t.assigned != '' THEN t.assigned ELSE t.agency END AS route, t.country,
		t.subdivision, t.networks, t.endpoints, t.max_level, t.observations, t.first_ns
		FROM targets t
		WHERE t.merged_into IS NULL AND t.shares != '[]' AND t.last_ns >= ?
		AND (CASE WHEN t.assigned != '' THEN t.assigned ELSE t.agency END) NOT IN `+in+`
		AND EXISTS (SELECT 1 FROM target_access a WHERE a.target = t.id AND a.agency IN `+in+`)`, func(r pgx.Rows) error {
		var route, country, sub, networks string
		var eps, level, obs int
		var first int64
		if err := r.Scan(&route, &country, &sub, &networks, &eps, &level, &obs, &first); err != nil {
			return err
		}
		fn(route, country, sub, networks, eps, level, obs, first)
		return nil
	}, args...)
}

// dailyObservations fills ov.Observations from analysis_daily.
func (s *Store) dailyObservations(ctx context.Context, scope analysis.Scope, since time.Time, ov *webviews.Overview) error {
	dailyWhere, dailyArgs := `day >= ?`, []any{since.Unix() / 86400}
	if !scope.All {
		dailyWhere += ` AND agency IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		for _, a := range scope.Agencies {
			dailyArgs = append(dailyArgs, a)
		}
	}
	err := eachRow(ctx, s.db(), `SELECT day, SUM(observations)::bigint FROM analysis_daily WHERE `+dailyWhere+` GROUP BY day`, func(r pgx.Rows) error {
		var day int64
		var n int
		if err := r.Scan(&day, &n); err != nil {
			return err
		}
		ov.Observations[day] = n
		return nil
	}, dailyArgs...)
	if err != nil {
		return fmt.Errorf("overview daily: %w", err)
	}
	return nil
}

// overviewScan computes the overview's figures in one pass over the live
// targets in scope (their summary rows, not their observations).
func (s *Store) overviewScan(ctx context.Context, scope analysis.Scope, since time.Time) (*webviews.Overview, error) {
	ov := newOverview()
	if scope.Empty() {
		return ov, nil
	}
	where, args := scopeWhere(scope)
	places := map[[2]string]*webviews.PlaceStat{}
	sinceNS := since.UnixNano()
	if since.IsZero() {
		sinceNS = 0
	}
	err := eachRow(ctx, s.db(), `SELECT t.agency, t.assigned, t.country, t.subdivision, t.networks, t.endpoints, t.max_level, t.observations, t.first_ns
		FROM targets t WHERE `+where+` AND t.last_ns >= ?`, func(r pgx.Rows) error {
		var agency, assigned, country, sub, networks string
		var eps, level, obs int
		var first int64
		if err := r.Scan(&agency, &assigned, &country, &sub, &networks, &eps, &level, &obs, &first); err != nil {
			return err
		}
		if assigned != "" {
			agency = assigned
		}
		addToOverview(ov, places, agency, country, sub, networks, level, eps > 1, 1, obs)
		if first >= sinceNS {
			ov.NewByDay[first/dayNS]++
		}
		return nil
	}, append(args, sinceNS)...)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for _, p := range places {
		ov.Places = append(ov.Places, *p)
	}
	if err := s.dailyObservations(ctx, scope, since, ov); err != nil {
		return nil, err
	}
	return ov, nil
}

// CountTargets returns how many live targets are in scope, from the
// maintained counts (migration 0004) and the targets shared into the
// scope: no pass over the targets.
func (s *Store) CountTargets(ctx context.Context, scope analysis.Scope) (int, error) {
	return s.countSince(ctx, scope, 0)
}

// countSince is CountTargets of the targets last seen on or after the
// UTC day of sinceNS (an estimate of those last seen since sinceNS: it
// may count a few seen earlier that day).
func (s *Store) countSince(ctx context.Context, scope analysis.Scope, sinceNS int64) (int, error) {
	if scope.Empty() {
		return 0, nil
	}
	day := sinceNS / dayNS
	routeWhere, routeArgs := routeIn(scope)
	var total int
	if err := s.db().QueryRowContext(ctx, `SELECT COALESCE(SUM(targets), 0)::bigint FROM web_target_days WHERE day >= ?`+routeWhere,
		append([]any{day}, routeArgs...)...).Scan(&total); err != nil {
		return 0, fmt.Errorf("count targets: %w", err)
	}
	if err := s.sharedInto(ctx, scope, day*dayNS, func(string, string, string, string, int, int, int, int64) { total++ }); err != nil {
		return 0, fmt.Errorf("count targets: %w", err)
	}
	return total, nil
}

// RecentObservations returns up to limit of the newest observations in
// scope now (see below), newest first. It reads at most window of the newest
// observations through the time index (0: 5000), so that a reader whose
// agencies see little is not answered by a scan of the table: such a
// reader may get fewer than limit. Transcripts are not read.
func (s *Store) RecentObservations(ctx context.Context, scope analysis.Scope, limit, window int) (out []webviews.RecentObservation, err error) {
	if scope.Empty() || limit <= 0 {
		return nil, nil
	}
	err = s.snapshotRead(ctx, func(q pgQuerier) error {
		out, err = s.recentObservationsOn(ctx, q, scope, limit, window)
		return err
	})
	return out, err
}

// recentObservationsOn is RecentObservations read through q, one
// snapshot: its reads of the hot rows and the blocks see the same
// observations (a row compacted, or a block thawed, between two reads
// would be in neither, or the page would fail on a seq in neither).
func (s *Store) recentObservationsOn(ctx context.Context, q pgQuerier, scope analysis.Scope, limit, window int) ([]webviews.RecentObservation, error) {
	if scope.Empty() || limit <= 0 {
		return nil, nil
	}
	if window <= 0 {
		window = 5000
	}
	window = max(window, limit)
	// The newest limit in scope are found in the time index (bounded to
	// the newest window) before anything else is read: only those rows
	// are then joined with their item and endpoint.
	//
	// Who may see a row is decided now, not when it was stored: a row
	// whose endpoint belongs to a target is in scope when the target is
	// (routed, assigned or shared: target_access), whatever agency the
	// observation was routed to at ingest; a row whose endpoint belongs
	// to no target yet is in scope when its routed agency is. After a
	// hand-off the old agency sees none of the target's rows, and the new
	// one sees them all.
	//
	// An IP:port is several endpoints over time (one per silence longer
	// than the analysis's window), each its own target: a row belongs to
	// the generation in effect at its time (genTargetSQL), never to
	// another subscriber's before or after it.
	//
	// The newest window are the hot rows' and the blocks' (migration
	// 0030) together: the blocks' observations newer than the hot rows'
	// window-th newest (newestInBlocks) join the rows in the same
	// statement as rows of their own (the c CTE), and the same scope
	// filter runs on both.
	since, cold, err := s.newestInBlocks(ctx, q, window)
	if err != nil {
		return nil, fmt.Errorf("recent observations: %w", err)
	}
	var cSeq, cTime []int64
	var cIP, cAgency []string
	var cZone []*string
	var cPort []int32
	coldBySeq := make(map[int64]*observe.Observation, len(cold))
	for i := range cold {
		o := &cold[i].o
		cSeq, cTime = append(cSeq, cold[i].seq), append(cTime, o.Time.UnixNano())
		cIP, cPort, cAgency = append(cIP, o.Endpoint.IP.WithZone("").String()), append(cPort, int32(o.Endpoint.Port)), append(cAgency, o.Jurisdiction.Agency)
		var zone *string
		if z := o.Endpoint.IP.Zone(); z != "" {
			zone = &z
		}
		cZone = append(cZone, zone)
		coldBySeq[cold[i].seq] = o
	}
	filter, args := ``, []any{since, cSeq, cTime, cIP, cZone, cPort, cAgency}
	if !scope.All {
		in := `(?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		filter = ` AND CASE WHEN EXISTS (SELECT 1 FROM analysis_endpoints e0 WHERE e0.ip = vigil_ip_text(c.ip, c.ip_zone) AND e0.port = c.port)
			THEN EXISTS (SELECT 1 FROM target_access a WHERE a.target = ` + genTargetSQL("c") + ` AND a.agency IN ` + in + `)
			ELSE c.agency IN ` + in + ` END`
		for range 2 {
			for _, a := range scope.Agencies {
				args = append(args, a)
			}
		}
	}
	args = append(args, limit)
	var keys []int64
	targets := map[int64]string{}
	var hotSeqs []int64
	var hotTargets []string
	err = eachRow(ctx, sqlDB{q}, `WITH c AS (SELECT o.seq, o.time_ns, o.ip, o.ip_zone, o.port, pl.agency FROM observations o
			LEFT JOIN observation_places pl ON pl.id = o.place_id WHERE o.time_ns >= ?
		UNION ALL SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[]::inet[], ?::text[], ?::integer[], ?::text[]))
		SELECT c.seq, COALESCE(`+genTargetSQL("c")+`, '') FROM c WHERE true`+filter+` ORDER BY c.time_ns DESC, c.seq DESC LIMIT ?`,
		func(r pgx.Rows) error {
			var seq int64
			var target string
			if err := r.Scan(&seq, &target); err != nil {
				return err
			}
			keys, targets[seq] = append(keys, seq), target
			if coldBySeq[seq] == nil {
				hotSeqs, hotTargets = append(hotSeqs, seq), append(hotTargets, target)
			}
			return nil
		}, args...)
	if err != nil {
		return nil, fmt.Errorf("recent observations: %w", err)
	}
	hotQ := `SELECT ` + obsIDCol + `, o.time_ns, f.sensor, f.network, f.method, f.possession, ` + obsPiecesSQL + `, ` + obsIPSQL + `, o.port,
		f.transport, f.client, f.client_version, i.kind, i.hash, m.matched, ` + obsPlaceSQL + `, p.agency, k.target,
		f.marks, o.seq
		FROM unnest(?::bigint[], ?::text[]) AS k(seq, target) JOIN observations o ON o.seq = k.seq` + obsJoins
	bySeq := make(map[int64]webviews.RecentObservation, len(keys))
	for seq, o := range coldBySeq {
		if _, ok := targets[seq]; ok {
			bySeq[seq] = recentOfBlock(o, targets[seq])
		}
	}
	args = []any{hotSeqs, hotTargets}
	var out []webviews.RecentObservation
	err = eachRow(ctx, sqlDB{q}, hotQ, func(r pgx.Rows) error {
		seq, ro, err := scanRecentRow(r)
		if err == nil {
			bySeq[seq] = ro
		}
		return err
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("recent observations: %w", err)
	}
	for _, seq := range keys {
		ro, ok := bySeq[seq]
		if !ok {
			return nil, fmt.Errorf("recent observations: seq %d neither a row nor in a block", seq)
		}
		out = append(out, ro)
	}
	return out, nil
}

// scanRecentRow reads one row of RecentObservations' statement over hot
// rows: the observation and its target, and its seq.
func scanRecentRow(r pgx.Rows) (int64, webviews.RecentObservation, error) {
	var (
		ro                    webviews.RecentObservation
		ns, port              int64
		level, ip, kind       string
		sum, match, place     []byte
		client, clientVersion []byte
		marks                 string
	)
	o := &ro.Observation
	var seq int64
	if err := r.Scan(&o.ID, &ns, &o.Sensor.ID, &o.Network, &o.Method, &level, &o.Possession.PiecesHave, &o.Possession.PiecesTotal,
		&ip, &port, &o.Endpoint.Transport, &client, &clientVersion, &kind, &sum, &match, &place,
		&o.Jurisdiction.Agency, &ro.Target, &marks, &seq); err != nil {
		return 0, ro, err
	}
	o.Client.Name, o.Client.Version = string(client), string(clientVersion)
	var err error
	o.Time = nsTime(ns)
	if o.Possession.Level, err = observe.ParseLevel(level); err != nil {
		return 0, ro, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	if o.Endpoint.IP, err = netip.ParseAddr(ip); err != nil {
		return 0, ro, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	o.Endpoint.Port = uint16(port)
	if o.Item.Hash, err = scanHash(kind, sum); err != nil {
		return 0, ro, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	if string(match) != "[]" && len(match) != 0 {
		if err := json.Unmarshal(match, &o.Item.Matched); err != nil {
			return 0, ro, fmt.Errorf("observation %s matched: %w", o.ID, err)
		}
	}
	if place != nil {
		if err := parsePlace(place, &o.Place); err != nil {
			return 0, ro, fmt.Errorf("observation %s: %w", o.ID, err)
		}
	}
	if o.Marks, err = rowcodec.ParseMarks(marks); err != nil {
		return 0, ro, fmt.Errorf("observation %s: %w", o.ID, err)
	}
	return seq, ro, nil
}

// recentOfBlock is the RecentObservation of o read from a block: the
// fields RecentObservations reads from a row, and no other.
func recentOfBlock(o *observe.Observation, target string) webviews.RecentObservation {
	return webviews.RecentObservation{Target: target, Observation: observe.Observation{
		ID: o.ID, Time: o.Time, Sensor: observe.Sensor{ID: o.Sensor.ID}, Network: o.Network, Method: o.Method,
		Possession: observe.Possession{Level: o.Possession.Level, PiecesHave: o.Possession.PiecesHave, PiecesTotal: o.Possession.PiecesTotal},
		Endpoint:   observe.Endpoint{IP: o.Endpoint.IP, Port: o.Endpoint.Port, Transport: o.Endpoint.Transport},
		Client:     observe.Client{Name: o.Client.Name, Version: o.Client.Version},
		Item:       observe.Item{Hash: o.Item.Hash, Matched: o.Item.Matched},
		Place:      o.Place, Jurisdiction: observe.Jurisdiction{Agency: o.Jurisdiction.Agency}, Marks: o.Marks,
	}}
}

// newestInBlocks returns the least time of the newest window observations
// (hot rows and blocks together; the least int64 when there are fewer),
// and the blocks' observations at or after it, newest first: those that
// are among the newest window, ties at that time included.
func (s *Store) newestInBlocks(ctx context.Context, q pgQuerier, window int) (int64, []seqObs, error) {
	var times []int64
	if err := eachRow(ctx, sqlDB{q}, `SELECT time_ns FROM observations ORDER BY time_ns DESC LIMIT ?`, func(r pgx.Rows) error {
		var t int64
		if err := r.Scan(&t); err != nil {
			return err
		}
		times = append(times, t)
		return nil
	}, window); err != nil {
		return 0, nil, err
	}
	hotSince := int64(math.MinInt64)
	if len(times) == window {
		hotSince = times[window-1]
	}
	cold, err := coldObservations(ctx, q, `int8range(b.time_lo, b.time_hi, '[]') && int8range($1, NULL)`, []any{hotSince}, nil,
		func(_ int64, o *observe.Observation) bool { return o.Time.UnixNano() >= hotSince })
	if err != nil {
		return 0, nil, err
	}
	slices.SortFunc(cold, func(a, b seqObs) int { return byTimeSeq(&b, &a) })
	for i := range cold {
		times = append(times, cold[i].o.Time.UnixNano())
	}
	slices.SortFunc(times, func(a, b int64) int { return cmpInt64(b, a) })
	since := int64(math.MinInt64)
	if len(times) >= window {
		since = times[window-1]
	}
	k := 0
	for k < len(cold) && cold[k].o.Time.UnixNano() >= since {
		k++
	}
	return since, cold[:k], nil
}

// PlacePoints returns, for each country and (country, subdivision) among
// the newest window observations (time index; 0: 20000), the coordinates
// of the newest one placed there with coordinates.
func (s *Store) PlacePoints(ctx context.Context, window int) ([]webviews.PlacePoint, error) {
	if window <= 0 {
		window = 20000
	}
	// The newest window of the hot rows and of the blocks' observations
	// (migration 0030) together, newest first; a place as its dictionary
	// row holds it (placeValue), '' when nothing was known.
	type newest struct {
		seq, ns int64
		place   string
	}
	var all []newest
	var cold []seqObs
	// One snapshot for the hot rows and the blocks (newestInBlocks).
	err := s.snapshotRead(ctx, func(q pgQuerier) (err error) {
		if err := eachRow(ctx, sqlDB{q}, `SELECT newest.seq, newest.time_ns, p.place FROM (SELECT place_id, time_ns, seq FROM observations ORDER BY time_ns DESC, seq DESC LIMIT ?) AS newest
		JOIN observation_places p ON p.id = newest.place_id`, func(r pgx.Rows) error {
			var n newest
			if err := r.Scan(&n.seq, &n.ns, &n.place); err != nil {
				return err
			}
			all = append(all, n)
			return nil
		}, window); err != nil {
			return err
		}
		_, cold, err = s.newestInBlocks(ctx, q, window)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("place points: %w", err)
	}
	for i := range cold {
		txt, _ := placeValue(&cold[i].o.Place).(string)
		all = append(all, newest{seq: cold[i].seq, ns: cold[i].o.Time.UnixNano(), place: txt})
	}
	slices.SortFunc(all, func(a, b newest) int {
		if c := cmpInt64(b.ns, a.ns); c != 0 {
			return c
		}
		return cmpInt64(b.seq, a.seq)
	})
	seen := map[[2]string]bool{}
	var out []webviews.PlacePoint
	for _, n := range all[:min(len(all), window)] {
		if n.place == "" {
			continue
		}
		err := func(txt []byte) error {
			var p observe.Place
			if err := parsePlace(txt, &p); err != nil {
				return err
			}
			if p.Country == "" || (p.Lat == 0 && p.Lon == 0) {
				return nil
			}
			keys := [][2]string{{p.Country, ""}}
			if n := len(p.Subdivisions); n > 0 {
				keys = append(keys, [2]string{p.Country, p.Subdivisions[n-1]})
			}
			for _, k := range keys {
				if !seen[k] {
					seen[k] = true
					out = append(out, webviews.PlacePoint{Country: k[0], Subdivision: k[1], Lat: p.Lat, Lon: p.Lon})
				}
			}
			return nil
		}([]byte(n.place))
		if err != nil {
			return nil, fmt.Errorf("place points: %w", err)
		}
	}
	return out, nil
}

// SearchTargets returns the live targets in scope that search names: a
// target id (a merged one leads to its survivor), an address ("ip" or
// "ip:port") one of its endpoints had, or the hex digest of a watched file
// it was seen with. At most limit (0: 50), by score. An address or hash
// search reads the endpoint index or the item index, never a table scan;
// a hash seen at more than 10000 observations is searched among its
// newest 10000.
func (s *Store) SearchTargets(ctx context.Context, search string, scope analysis.Scope, limit int) ([]analysis.TargetSummary, error) {
	search = strings.TrimSpace(search)
	if scope.Empty() || search == "" {
		return nil, nil
	}
	if limit <= 0 {
		limit = 50
	}
	ids := map[string]bool{}
	addIDs := func(q string, args ...any) error {
		return eachRow(ctx, s.db(), q, func(r pgx.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			ids[id] = true
			return nil
		}, args...)
	}
	var err error
	switch {
	case strings.HasPrefix(strings.ToUpper(search), "T-"):
		id := strings.ToUpper(search)
		if c, ok := analysis.CanonicalTargetID(search); ok {
			id = c
		}
		for range 64 {
			var into *string
			e := s.db().QueryRowContext(ctx, `SELECT merged_into FROM targets WHERE id = ?`, id).Scan(&into)
			if errors.Is(e, pgx.ErrNoRows) {
				break
			}
			if e != nil {
				return nil, e
			}
			if into == nil {
				ids[id] = true
				break
			}
			id = *into
		}
	default:
		if ap, e := netip.ParseAddrPort(search); e == nil {
			err = addIDs(`SELECT target FROM analysis_endpoints WHERE ip = ? AND port = ?`, ap.Addr().Unmap().String(), int64(ap.Port()))
		} else if a, e := netip.ParseAddr(search); e == nil {
			err = addIDs(`SELECT target FROM analysis_endpoints WHERE ip = ?`, a.Unmap().String())
		} else if sum, e := hex.DecodeString(strings.ToLower(search)); e == nil && len(sum) >= 16 {
			for _, k := range hashkind.All() {
				if k.Size() != len(sum) {
					continue
				}
				if err = addIDs(`SELECT DISTINCT e.target FROM analysis_endpoint_files f JOIN analysis_endpoints e ON e.id = f.endpoint
					WHERE f.hash = ? AND f.kind = ?`, sum, k.String()); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", search, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	where, args := scopeWhere(scope)
	in := make([]any, 0, len(ids))
	for id := range ids {
		in = append(in, id)
	}
	var out []analysis.TargetSummary
	err = eachRow(ctx, s.db(), `SELECT `+targetCols+` FROM targets t WHERE t.id IN (?`+strings.Repeat(",?", len(in)-1)+`) AND `+where+
		` ORDER BY t.score DESC, t.id LIMIT ?`, func(r pgx.Rows) error {
		t, err := scanTarget(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	}, append(append(in, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("search %q: %w", search, err)
	}
	return out, nil
}

// genTargetSQL is the target of the generation of row's IP:port in effect
// at row's time, as an SQL expression over the row's ip, port and
// time_ns: the last one begun by then, else the first; NULL when the
// IP:port has no endpoint. It does not know the analysis's window: a row
// not analysed yet, after a long silence, gets the generation before it,
// which only narrows who sees it (the webapp decides again at delivery
// with EndpointTargetsAt, which does).
func genTargetSQL(row string) string {
	ip := `vigil_ip_text(` + row + `.ip, ` + row + `.ip_zone)`
	return `COALESCE((SELECT g.target FROM analysis_endpoints g WHERE g.ip = ` + ip + ` AND g.port = ` + row + `.port AND g.first_ns <= ` + row + `.time_ns ORDER BY g.first_ns DESC LIMIT 1),
		(SELECT g.target FROM analysis_endpoints g WHERE g.ip = ` + ip + ` AND g.port = ` + row + `.port ORDER BY g.first_ns LIMIT 1))`
}

// genAt is the generation of an IP:port (spans firsts[i]..lasts[i],
// disjoint) that an observation at t belongs to, as the analysis decides
// it for the endpoint's own contacts: the one whose span holds t, else the
// nearer of the two next to t within the window w; -1 when none is that
// close (a new generation, not analysed yet, has no target).
func genAt(firsts, lasts []int64, t, w int64) int {
	best, bestGap := -1, int64(0)
	for i := range firsts {
		g := max(firsts[i]-t, t-lasts[i], 0)
		if g <= w && (best < 0 || g < bestGap) {
			best, bestGap = i, g
		}
	}
	return best
}

// EndpointTargetsAt returns, for each IP:port at an instant (eps[i] at
// at[i]), the target of the generation it belongs to then (genAt, with
// the analysis's endpoint window; 0: its default), or "" when none: an
// IP:port seen again after a silence longer than the window is another
// subscriber's endpoint, and an observation is never given the target of
// another generation.
func (s *Store) EndpointTargetsAt(ctx context.Context, eps []netip.AddrPort, at []time.Time, window time.Duration) ([]string, error) {
	if len(at) != len(eps) {
		return nil, fmt.Errorf("endpoint targets: %d endpoints and %d times", len(eps), len(at))
	}
	if window <= 0 {
		window = analysis.DefaultConfig().EndpointWindow
	}
	gens, err := s.endpointGenerations(ctx, eps)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(eps))
	for i, ap := range eps {
		g := gens[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
		firsts, lasts := make([]int64, len(g)), make([]int64, len(g))
		for j := range g {
			firsts[j], lasts[j] = g[j].first, g[j].last
		}
		if j := genAt(firsts, lasts, at[i].UnixNano(), int64(window)); j >= 0 {
			out[i] = g[j].target
		}
	}
	return out, nil
}

// EndpointTargets returns the target of each endpoint that has one (an
// endpoint the analysis has not stored yet has none), in one indexed
// query per 500 addresses. An IP:port seen again after a silence longer
// than the analysis's window is several endpoints: the target of the one
// that began last (in time; generation numbers follow arrival) is
// returned. To place an observation, use EndpointTargetsAt.
func (s *Store) EndpointTargets(ctx context.Context, eps []netip.AddrPort) (map[netip.AddrPort]string, error) {
	gens, err := s.endpointGenerations(ctx, eps)
	if err != nil {
		return nil, err
	}
	out := map[netip.AddrPort]string{}
	for ap, g := range gens {
		if len(g) > 0 {
			out[ap] = g[len(g)-1].target // the generation that began last
		}
	}
	return out, nil
}

// endpointGen is one generation of an IP:port: when it was first and last
// seen, and its target.
type endpointGen struct {
	first, last int64
	target      string
}

// endpointGenerations reads the stored generations of each endpoint (its
// address unmapped), oldest first, in one indexed query per 500
// addresses. An endpoint the analysis has not stored has none.
func (s *Store) endpointGenerations(ctx context.Context, eps []netip.AddrPort) (map[netip.AddrPort][]endpointGen, error) {
	gens := map[netip.AddrPort][]endpointGen{}
	var ips []any
	seenIP := map[netip.Addr]bool{}
	for _, ap := range eps {
		a := ap.Addr().Unmap()
		gens[netip.AddrPortFrom(a, ap.Port())] = nil
		if !seenIP[a] {
			seenIP[a] = true
			ips = append(ips, a.String())
		}
	}
	for len(ips) > 0 {
		n := min(len(ips), 500)
		chunk := ips[:n]
		ips = ips[n:]
		err := eachRow(ctx, s.db(), `SELECT ip, port, target, first_ns, last_ns FROM analysis_endpoints WHERE ip IN (?`+strings.Repeat(",?", n-1)+`) ORDER BY first_ns`, func(r pgx.Rows) error {
			var ip, target string
			var port, first, last int64
			if err := r.Scan(&ip, &port, &target, &first, &last); err != nil {
				return err
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return err
			}
			ap := netip.AddrPortFrom(a, uint16(port))
			if g, ok := gens[ap]; ok {
				gens[ap] = append(g, endpointGen{first, last, target})
			}
			return nil
		}, chunk...)
		if err != nil {
			return nil, fmt.Errorf("endpoint targets: %w", err)
		}
	}
	return gens, nil
}

// WebTargets is Targets for the investigators' list page: the same
// filters, scope and orders, with three differences. Rows carry the
// summary without its JSON columns (Parts, Levels, Categories, Flags and
// Agencies are empty): a list shows none of them. The total is counted
// only when count is true (-1 otherwise: the page keeps filtered counts
// a few seconds, and an unfiltered count comes from CountTargets). And
// an order is read by walking an index in that order, keeping the rows
// the scope and filters admit, when that reads fewer rows than sorting
// every match (see below): a scoped list by last or first seen, or an
// unscoped one by score with a since filter. Here that choice only
// shapes the query (the scope as an EXISTS, the order by the index's
// columns): PostgreSQL's planner decides, where SQLite is told (INDEXED
// BY).
func (s *Store) WebTargets(ctx context.Context, q analysis.TargetQuery, count bool) ([]analysis.TargetSummary, int, error) {
	if q.Scope.Empty() {
		return nil, 0, nil
	}
	// An index in the order asked for is walked (keeping the rows that
	// pass the scope and filters) when that reads fewer rows than
	// sorting every match: about (offset+limit) * all/matching rows
	// against matching ones. The number matching is estimated from the
	// maintained counts (scope and Since; other filters are taken to
	// keep most rows).
	walk := true
	byDate := q.Sort == "last_seen" || q.Sort == "first_seen"
	if !q.Scope.All && (q.Sort == "score" || q.Sort == "" || byDate && len(q.Scope.Agencies) == 1) {
		// target_access_rank is in score order within the scope already,
		// and target_access_last and _first in date order within one
		// agency (several agencies by date: either plan, as below).
		walk = false
	} else if !q.Scope.All || !q.Since.IsZero() {
		since := int64(0)
		if !q.Since.IsZero() {
			since = q.Since.UnixNano()
		}
		matching, err := s.countSince(ctx, q.Scope, since)
		if err != nil {
			return nil, 0, err
		}
		all, err := s.CountTargets(ctx, analysis.AllAgencies)
		if err != nil {
			return nil, 0, err
		}
		walk = matching > 0 && int64(max(q.Offset+q.Limit, 1))*int64(all) < int64(matching)*int64(matching)
	}
	return s.webTargets(ctx, q, count, walk)
}

// targetRowCols are the columns of a list row: no JSON to decode (Parts,
// Levels, Categories, Flags and Agencies are left empty).
const targetRowCols = `t.id, t.agency, t.assigned, t.investigator, t.score, t.endpoints, t.files, t.max_level, t.observations,
	t.first_ns, t.last_ns, t.networks, t.vpn, t.hosting, t.max_severity, t.looking, t.country, t.subdivision, t.label`

// webTargets is the query of Targets, counting only if count; walk
// reads a last/first-seen order from the targets' time index (see
// WebTargets).
func (s *Store) webTargets(ctx context.Context, q analysis.TargetQuery, count, walk bool) ([]analysis.TargetSummary, int, error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	q.Limit = min(q.Limit, 1000)
	var where []string
	var args []any
	from := `targets t`
	scoreCol := "t.score"
	order := ""
	group := ""
	switch {
	case walk && q.Sort == "last_seen":
		order = `t.last_ns DESC, t.id`
	case walk && q.Sort == "first_seen":
		order = `t.first_ns, t.id`
	}
	where = append(where, `t.merged_into IS NULL`)
	if !q.Scope.All {
		in := `(?` + strings.Repeat(",?", len(q.Scope.Agencies)-1) + `)`
		if order != "" {
			where = append(where, `EXISTS (SELECT 1 FROM target_access a WHERE a.target = t.id AND a.agency IN `+in+`)`)
		} else {
			from = `target_access a JOIN targets t ON t.id = a.target`
			where = append(where, `a.agency IN `+in)
			scoreCol = "a.score"
			if len(q.Scope.Agencies) > 1 {
				group = ` GROUP BY t.id`
			}
			// One agency: its rows of target_access in date order
			// (target_access_last, _first; migration 0004), ties by id.
			switch {
			case len(q.Scope.Agencies) == 1 && q.Sort == "last_seen":
				order = `a.last_ns DESC, a.target`
			case len(q.Scope.Agencies) == 1 && q.Sort == "first_seen":
				order = `a.first_ns, a.target`
			}
		}
		for _, a := range q.Scope.Agencies {
			args = append(args, a)
		}
	}
	// A date order an index plan chose above stands; else the shared one.
	if def, err := targetOrder(q.Sort, groupedScore(scoreCol, group != "")); err != nil {
		return nil, 0, err
	} else if order == "" || (q.Sort != "last_seen" && q.Sort != "first_seen") {
		order = def
	}
	where, args = rowcodec.TargetFilters(q, scoreCol, where, args)
	w := strings.Join(where, " AND ")
	total := -1
	if count {
		countQ := `SELECT COUNT(*) FROM ` + from + ` WHERE ` + w
		if group != "" {
			countQ = `SELECT COUNT(DISTINCT t.id) FROM ` + from + ` WHERE ` + w
		}
		if err := s.db().QueryRowContext(ctx, countQ, args...).Scan(&total); err != nil {
			return nil, 0, fmt.Errorf("targets: %w", err)
		}
	}
	out := make([]analysis.TargetSummary, 0, min(q.Limit, 100))
	err := eachRow(ctx, s.db(), `SELECT `+targetRowCols+` FROM `+from+` WHERE `+w+group+` ORDER BY `+order+` LIMIT ? OFFSET ?`, func(r pgx.Rows) error {
		var (
			t                     analysis.TargetSummary
			networks              string
			maxLevel, first, last int64
			vpn, hosting, looking int
		)
		if err := r.Scan(&t.ID, &t.Jurisdiction, &t.Assigned, &t.Investigator, &t.Score, &t.Endpoints, &t.Files, &maxLevel,
			&t.Observations, &first, &last, &networks, &vpn, &hosting, &t.MaxSeverity, &looking, &t.Country, &t.Subdivision,
			&t.Label); err != nil {
			return err
		}
		t.MaxLevel = observe.Level(maxLevel)
		t.FirstSeen, t.LastSeen = nsTime(first), nsTime(last)
		t.VPN, t.Hosting, t.Looking = vpn == 1, hosting == 1, looking == 1
		t.Networks = strings.FieldsFunc(networks, func(r rune) bool { return r == ',' })
		out = append(out, t)
		return nil
	}, append(args, q.Limit, q.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("targets: %w", err)
	}
	return out, total, nil
}

// EntryNames returns the name the current entries of the lists give each
// hash (the first by list name among those that name it), in one query
// over the hash index: what a target's page shows beside its files.
// Hashes no list names are absent.
func (s *Store) EntryNames(ctx context.Context, hs []hashkind.Hash) (map[hashkind.Hash]string, error) {
	out := map[hashkind.Hash]string{}
	want := map[hashkind.Hash]bool{}
	args := make([]any, 0, len(hs))
	for _, h := range hs {
		if h.Kind().Valid() && !want[h] {
			want[h] = true
			args = append(args, h.Bytes())
		}
	}
	if len(args) == 0 {
		return out, nil
	}
	err := eachRow(ctx, s.db(), `SELECT e.kind, e.hash, e.name FROM entries e JOIN lists l ON l.id = e.list_id
		WHERE e.hash IN (?`+strings.Repeat(",?", len(args)-1)+`) AND e.last_version IS NULL AND e.name != ''
		ORDER BY l.name`, func(r pgx.Rows) error {
		var kind, name string
		var sum []byte
		if err := r.Scan(&kind, &sum, &name); err != nil {
			return err
		}
		h, err := scanHash(kind, sum)
		if err != nil {
			return err
		}
		if _, ok := out[h]; !ok && want[h] {
			out[h] = name
		}
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("entry names: %w", err)
	}
	return out, nil
}

// VisibleTargets returns which of the target ids scope may see now: those
// routed or assigned to one of its agencies or shared with one
// (target_access), in one indexed query. An all-agencies scope sees every
// live target. Merged and unknown ids are not visible.
func (s *Store) VisibleTargets(ctx context.Context, scope analysis.Scope, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	uniq := make([]any, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	if scope.Empty() || len(uniq) == 0 {
		return out, nil
	}
	for len(uniq) > 0 {
		n := min(len(uniq), 400)
		chunk := uniq[:n]
		uniq = uniq[n:]
		q := `SELECT id FROM targets WHERE merged_into IS NULL AND id IN (?` + strings.Repeat(",?", n-1) + `)`
		args := chunk
		if !scope.All {
			q = `SELECT DISTINCT target FROM target_access WHERE target IN (?` + strings.Repeat(",?", n-1) + `) AND agency IN (?` +
				strings.Repeat(",?", len(scope.Agencies)-1) + `)`
			args = append(append([]any{}, chunk...), agencyArgs(scope)...)
		}
		err := eachRow(ctx, s.db(), q, func(r pgx.Rows) error {
			var id string
			if err := r.Scan(&id); err != nil {
				return err
			}
			out[id] = true
			return nil
		}, args...)
		if err != nil {
			return nil, fmt.Errorf("visible targets: %w", err)
		}
	}
	return out, nil
}

// TargetAccess returns, for each of the live target ids, the agencies that
// may see it now (routed or assigned, and shared with): who a live event
// of the target is for.
func (s *Store) TargetAccess(ctx context.Context, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	uniq := make([]any, 0, len(ids))
	seen := map[string]bool{}
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			uniq = append(uniq, id)
		}
	}
	for len(uniq) > 0 {
		n := min(len(uniq), 400)
		chunk := uniq[:n]
		uniq = uniq[n:]
		err := eachRow(ctx, s.db(), `SELECT target, agency FROM target_access WHERE target IN (?`+strings.Repeat(",?", n-1)+`) ORDER BY target, agency`,
			func(r pgx.Rows) error {
				var id, ag string
				if err := r.Scan(&id, &ag); err != nil {
					return err
				}
				out[id] = append(out[id], ag)
				return nil
			}, chunk...)
		if err != nil {
			return nil, fmt.Errorf("target access: %w", err)
		}
	}
	return out, nil
}

func agencyArgs(scope analysis.Scope) []any {
	out := make([]any, len(scope.Agencies))
	for i, a := range scope.Agencies {
		out[i] = a
	}
	return out
}
