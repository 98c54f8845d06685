package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Read-only queries for the investigators' pages (internal/webapp): the
// overview's figures in one pass over the live targets, the newest
// observations through the time index, a search by address, hash or id,
// and the target of an endpoint. None of them scans the observations.

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

// PlaceStat counts the targets whose latest place is one (country,
// subdivision), and all their observations.
type PlaceStat struct {
	Country      string
	Subdivision  string
	Targets      int
	Observations int
}

// WebOverview is the overview page's figures within a scope, over the
// live targets last seen since a time.
type WebOverview struct {
	Targets      int                   // last seen since
	Devices      int                   // of those, with more than one endpoint
	ByAgency     map[string]int        // targets by the agency they are routed to
	ByNetwork    map[string]int        // targets by network
	ByLevel      map[observe.Level]int // targets by their highest level
	Places       []PlaceStat           // by latest place
	NewByDay     map[int64]int         // targets first seen on each UTC day (days since the epoch)
	Observations map[int64]int         // observations routed into scope per UTC day since
}

// Overview returns the figures of the overview page: one pass over the
// live targets in scope (their summary rows, not their observations) and
// one over the per-day counts.
func (s *Store) Overview(ctx context.Context, scope analysis.Scope, since time.Time) (*WebOverview, error) {
	ov := &WebOverview{ByAgency: map[string]int{}, ByNetwork: map[string]int{}, ByLevel: map[observe.Level]int{},
		NewByDay: map[int64]int{}, Observations: map[int64]int{}}
	if scope.Empty() {
		return ov, nil
	}
	where, args := scopeWhere(scope)
	places := map[[2]string]*PlaceStat{}
	sinceNS := since.UnixNano()
	if since.IsZero() {
		sinceNS = 0
	}
	err := eachRow(ctx, s.db, `SELECT t.agency, t.assigned, t.country, t.subdivision, t.networks, t.endpoints, t.max_level, t.observations, t.first_ns
		FROM targets t WHERE `+where+` AND t.last_ns >= ?`, func(r *sql.Rows) error {
		var agency, assigned, country, sub, networks string
		var eps, level, obs int
		var first int64
		if err := r.Scan(&agency, &assigned, &country, &sub, &networks, &eps, &level, &obs, &first); err != nil {
			return err
		}
		if assigned != "" {
			agency = assigned
		}
		ov.Targets++
		if eps > 1 {
			ov.Devices++
		}
		ov.ByAgency[agency]++
		ov.ByLevel[observe.Level(level)]++
		for _, n := range strings.FieldsFunc(networks, func(r rune) bool { return r == ',' }) {
			ov.ByNetwork[n]++
		}
		k := [2]string{country, sub}
		p := places[k]
		if p == nil {
			p = &PlaceStat{Country: country, Subdivision: sub}
			places[k] = p
		}
		p.Targets++
		p.Observations += obs
		if first >= sinceNS {
			ov.NewByDay[first/int64(24*time.Hour)]++
		}
		return nil
	}, append(args, sinceNS)...)
	if err != nil {
		return nil, fmt.Errorf("overview: %w", err)
	}
	for _, p := range places {
		ov.Places = append(ov.Places, *p)
	}
	dailyWhere, dailyArgs := `day >= ?`, []any{since.Unix() / 86400}
	if !scope.All {
		dailyWhere += ` AND agency IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		for _, a := range scope.Agencies {
			dailyArgs = append(dailyArgs, a)
		}
	}
	err = eachRow(ctx, s.db, `SELECT day, SUM(observations) FROM analysis_daily WHERE `+dailyWhere+` GROUP BY day`, func(r *sql.Rows) error {
		var day int64
		var n int
		if err := r.Scan(&day, &n); err != nil {
			return err
		}
		ov.Observations[day] = n
		return nil
	}, dailyArgs...)
	if err != nil {
		return nil, fmt.Errorf("overview daily: %w", err)
	}
	return ov, nil
}

// RecentObservation is a stored observation as a live page lists it, with
// the target its endpoint belongs to ("" if none yet).
type RecentObservation struct {
	observe.Observation
	Target string
}

// RecentObservations returns up to limit of the newest observations routed
// into scope, newest first. It reads at most window of the newest
// observations through the time index (0: 5000), so that a reader whose
// agencies see little is not answered by a scan of the table: such a
// reader may get fewer than limit. Transcripts are not read.
func (s *Store) RecentObservations(ctx context.Context, scope analysis.Scope, limit, window int) ([]RecentObservation, error) {
	if scope.Empty() || limit <= 0 {
		return nil, nil
	}
	if window <= 0 {
		window = 5000
	}
	window = max(window, limit)
	filter, args := ``, []any{window}
	if !scope.All {
		filter = ` WHERE o.agency IN (?` + strings.Repeat(",?", len(scope.Agencies)-1) + `)`
		for _, a := range scope.Agencies {
			args = append(args, a)
		}
	}
	args = append(args, limit)
	q := `SELECT o.id, o.time_ns, o.sensor, o.network, o.method, o.possession, o.pieces_have, o.pieces_total, o.ip, o.port,
		o.transport, o.client, o.client_version, i.kind, i.hash, o.matched, o.place, o.agency, COALESCE(e.target, '')
		FROM (SELECT * FROM observations ORDER BY time_ns DESC, seq DESC LIMIT ?) o
		JOIN items i ON i.id = o.item_id
		LEFT JOIN analysis_endpoints e ON e.ip = o.ip AND e.port = o.port` + filter + `
		ORDER BY o.time_ns DESC, o.seq DESC LIMIT ?`
	var out []RecentObservation
	err := eachRow(ctx, s.db, q, func(r *sql.Rows) error {
		var (
			ro                     RecentObservation
			id                     any
			ns, port               int64
			level, ip, kind, match string
			sum                    []byte
			place                  sql.NullString
		)
		o := &ro.Observation
		if err := r.Scan(&id, &ns, &o.Sensor.ID, &o.Network, &o.Method, &level, &o.Possession.PiecesHave, &o.Possession.PiecesTotal,
			&ip, &port, &o.Endpoint.Transport, &o.Client.Name, &o.Client.Version, &kind, &sum, &match, &place,
			&o.Jurisdiction.Agency, &ro.Target); err != nil {
			return err
		}
		var err error
		if o.ID, err = idString(id); err != nil {
			return err
		}
		o.Time = nsTime(ns)
		if o.Possession.Level, err = observe.ParseLevel(level); err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if o.Endpoint.IP, err = netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		o.Endpoint.Port = uint16(port)
		if o.Item.Hash, err = scanHash(kind, sum); err != nil {
			return fmt.Errorf("observation %s: %w", o.ID, err)
		}
		if match != "[]" && match != "" {
			if err := json.Unmarshal([]byte(match), &o.Item.Matched); err != nil {
				return fmt.Errorf("observation %s matched: %w", o.ID, err)
			}
		}
		if place.Valid {
			if err := parsePlace(place.String, &o.Place); err != nil {
				return fmt.Errorf("observation %s: %w", o.ID, err)
			}
		}
		out = append(out, ro)
		return nil
	}, args...)
	if err != nil {
		return nil, fmt.Errorf("recent observations: %w", err)
	}
	return out, nil
}

// PlacePoint is where a place was drawn from: the coordinates the geo
// database gave one address placed there.
type PlacePoint struct {
	Country     string
	Subdivision string // "" for the country itself
	Lat, Lon    float64
}

// PlacePoints returns, for each country and (country, subdivision) among
// the newest window observations (time index; 0: 20000), the coordinates
// of the newest one placed there with coordinates.
func (s *Store) PlacePoints(ctx context.Context, window int) ([]PlacePoint, error) {
	if window <= 0 {
		window = 20000
	}
	seen := map[[2]string]bool{}
	var out []PlacePoint
	err := eachRow(ctx, s.db, `SELECT place FROM (SELECT place FROM observations ORDER BY time_ns DESC LIMIT ?) WHERE place IS NOT NULL`,
		func(r *sql.Rows) error {
			var txt string
			if err := r.Scan(&txt); err != nil {
				return err
			}
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
					out = append(out, PlacePoint{Country: k[0], Subdivision: k[1], Lat: p.Lat, Lon: p.Lon})
				}
			}
			return nil
		}, window)
	if err != nil {
		return nil, fmt.Errorf("place points: %w", err)
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
		return eachRow(ctx, s.db, q, func(r *sql.Rows) error {
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
		for range 64 {
			var into sql.NullString
			e := s.db.QueryRowContext(ctx, `SELECT merged_into FROM targets WHERE id = ?`, id).Scan(&into)
			if errors.Is(e, sql.ErrNoRows) {
				break
			}
			if e != nil {
				return nil, e
			}
			if !into.Valid {
				ids[id] = true
				break
			}
			id = into.String
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
				var item int64
				e := s.db.QueryRowContext(ctx, `SELECT id FROM items WHERE hash = ? AND kind = ?`, sum, k.String()).Scan(&item)
				if errors.Is(e, sql.ErrNoRows) {
					continue
				}
				if e != nil {
					return nil, e
				}
				if err = addIDs(`SELECT DISTINCT e.target FROM (SELECT ip, port FROM observations WHERE item_id = ? ORDER BY seq DESC LIMIT 10000) o
					JOIN analysis_endpoints e ON e.ip = o.ip AND e.port = o.port`, item); err != nil {
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
	err = eachRow(ctx, s.db, `SELECT `+targetCols+` FROM targets t WHERE t.id IN (?`+strings.Repeat(",?", len(in)-1)+`) AND `+where+
		` ORDER BY t.score DESC, t.id LIMIT ?`, func(r *sql.Rows) error {
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

// EndpointTargets returns the target of each endpoint that has one (an
// endpoint the analysis has not stored yet has none), in one indexed
// query per 500 addresses.
func (s *Store) EndpointTargets(ctx context.Context, eps []netip.AddrPort) (map[netip.AddrPort]string, error) {
	out := map[netip.AddrPort]string{}
	want := map[netip.AddrPort]bool{}
	var ips []any
	seenIP := map[netip.Addr]bool{}
	for _, ap := range eps {
		a := ap.Addr().Unmap()
		want[netip.AddrPortFrom(a, ap.Port())] = true
		if !seenIP[a] {
			seenIP[a] = true
			ips = append(ips, a.String())
		}
	}
	for len(ips) > 0 {
		n := min(len(ips), 500)
		chunk := ips[:n]
		ips = ips[n:]
		err := eachRow(ctx, s.db, `SELECT ip, port, target FROM analysis_endpoints WHERE ip IN (?`+strings.Repeat(",?", n-1)+`)`, func(r *sql.Rows) error {
			var ip, target string
			var port int64
			if err := r.Scan(&ip, &port, &target); err != nil {
				return err
			}
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return err
			}
			if ap := netip.AddrPortFrom(a, uint16(port)); want[ap] {
				out[ap] = target
			}
			return nil
		}, chunk...)
		if err != nil {
			return nil, fmt.Errorf("endpoint targets: %w", err)
		}
	}
	return out, nil
}
