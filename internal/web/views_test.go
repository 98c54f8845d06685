package web

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// viewsStore is a small fixture store on which the engine has also
// shared, assigned and re-observed targets after the first catch-up, so
// that the maintained counts of migration 0005 went through inserts,
// updates, merges and shares.
func viewsStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fillStore(t, ctx, st, fixtureConfig{Observations: 6000, PerEndpoint: 12, Seed: 3})
	eng := newTestEngine(t, ctx, st)
	paris, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{agencyParis}}, Limit: 6})
	if err != nil || len(paris) < 6 {
		t.Fatalf("fixture: Paris targets %d, %v", len(paris), err)
	}
	// Two shared with Sud, one handed off to Sud.
	for _, id := range []string{paris[0].ID, paris[1].ID} {
		if err := eng.Share(ctx, id, agencySud, true, "test", "joint case"); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Assign(ctx, paris[2].ID, agencySud, "test", "moved"); err != nil {
		t.Fatal(err)
	}
	// New sightings of known endpoints, today, at a higher level: their
	// targets move to another day, level and count.
	var batch []observe.Observation
	now := time.Now().UTC()
	for i, s := range paris[3:] {
		d, err := st.Target(ctx, s.ID, analysis.AllAgencies)
		if err != nil || len(d.Endpoints) == 0 || len(d.Timeline) == 0 {
			t.Fatalf("target %s: %v", s.ID, err)
		}
		tl := d.Timeline[0]
		ep := d.Endpoints[0]
		for k := range 3 {
			at := now.Add(-time.Duration(i*10+k) * time.Second)
			o := observe.Observation{ID: observe.NewID(at), Sensor: observe.Sensor{ID: "views", Version: "test", Vantage: "127.0.0.1:6881"},
				Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Time: at, ClockSource: "ntp:127.0.0.1",
				Endpoint:   observe.Endpoint{IP: ep.IP, Port: ep.Port, Transport: "tcp"},
				Client:     observe.Client{Name: "Transmission", Version: "3.00", ListenPort: ep.Port},
				Possession: observe.Possession{Level: observe.Verified, PiecesHave: 64, PiecesTotal: 64},
				Place:      tl.Place, Jurisdiction: observe.Jurisdiction{Agency: tl.Agency, Rule: "test"}}
			o.Item.Hash = d.Files[0].Hash
			o.Item.Matched = d.Files[0].Matched
			batch = append(batch, o)
		}
	}
	if err := st.InsertObservations(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return st, path
}

// viewsStoreRO is viewsStore with a second, read-only handle on its file
// for plain queries.
func viewsStoreRO(t *testing.T) (*sqlite.Store, *sql.DB) {
	t.Helper()
	st, path := viewsStore(t)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return st, db
}

var viewScopes = []analysis.Scope{analysis.AllAgencies, {Agencies: []string{agencyParis}}, {Agencies: []string{agencySud}},
	{Agencies: []string{agencyParis, agencySud}}, {Agencies: []string{"fr-nowhere"}}}

// The overview from the maintained counts equals the one from a pass
// over the targets (a since one nanosecond past midnight takes that
// path; no fixture time falls on midnight exactly).
func TestOverviewCountsMatchScan(t *testing.T) {
	st, db := viewsStoreRO(t)
	ctx := context.Background()
	week := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -6)
	for _, since := range []time.Time{{}, week, week.AddDate(0, 0, 3)} {
		scanSince := since.Add(time.Nanosecond)
		if since.IsZero() {
			scanSince = time.Unix(0, 1)
		}
		for _, sc := range viewScopes {
			got, err := st.Overview(ctx, sc, since)
			if err != nil {
				t.Fatal(err)
			}
			want, err := st.Overview(ctx, sc, scanSince)
			if err != nil {
				t.Fatal(err)
			}
			// Both read analysis_daily: the observations per day are
			// checked against the observations themselves.
			daily := observationsByDay(t, db, sc, since)
			if !reflect.DeepEqual(got.Observations, daily) {
				t.Errorf("scope %+v since %v: observations by day %v, counted in the observations %v", sc, since, got.Observations, daily)
			}
			if sc.All && since.IsZero() && len(daily) < 2 {
				t.Fatalf("the fixture's observations fall on %d days, want several", len(daily))
			}
			for _, o := range []*webviews.Overview{got, want} {
				sort.Slice(o.Places, func(i, j int) bool {
					return o.Places[i].Country+"/"+o.Places[i].Subdivision < o.Places[j].Country+"/"+o.Places[j].Subdivision
				})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("scope %+v since %v:\ncounts %+v\nscan   %+v", sc, since, got, want)
			}
			if sc.All && since.IsZero() && got.Targets == 0 {
				t.Fatal("no targets in the fixture")
			}
			n, err := st.CountTargets(ctx, sc)
			if err != nil {
				t.Fatal(err)
			}
			_, total, err := st.Targets(ctx, analysis.TargetQuery{Scope: sc, Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if n != total {
				t.Errorf("scope %+v: CountTargets %d, Targets total %d", sc, n, total)
			}
		}
	}
}

// observationsByDay counts the observations routed to the scope's
// agencies on each UTC day (days since the epoch) from since on, with a
// plain query over every observation.
func observationsByDay(t *testing.T, db *sql.DB, sc analysis.Scope, since time.Time) map[int64]int {
	t.Helper()
	q := `SELECT time_ns / ?, count(*) FROM observation_rows WHERE time_ns >= ?`
	args := []any{int64(24 * time.Hour), since.Truncate(24 * time.Hour).UnixNano()}
	if since.IsZero() {
		args[1] = int64(0)
	}
	if !sc.All {
		q += ` AND agency IN (` + placeholders(len(sc.Agencies)) + `)`
		for _, a := range sc.Agencies {
			args = append(args, a)
		}
	}
	rows, err := db.Query(q+` GROUP BY 1`, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var day int64
		var n int
		if err := rows.Scan(&day, &n); err != nil {
			t.Fatal(err)
		}
		out[day] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// WebTargets lists the same targets in the same order as Targets, for
// every sort, scope and a few filters and pages, whichever plan it picks.
func TestWebTargetsMatchTargets(t *testing.T) {
	st, _ := viewsStore(t)
	ctx := context.Background()
	vpn := true
	for _, sc := range viewScopes {
		for _, sort := range []string{"score", "last_seen", "first_seen"} {
			for _, q := range []analysis.TargetQuery{
				{Limit: 50}, {Limit: 7, Offset: 30}, {Limit: 20, MinLevel: observe.Complete}, {Limit: 10, VPN: &vpn},
				{Limit: 10, Since: time.Now().Add(-48 * time.Hour)}, {Limit: 1000},
			} {
				q.Scope, q.Sort = sc, sort
				want, wantN, err := st.Targets(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				got, gotN, err := st.WebTargets(ctx, q, true)
				if err != nil {
					t.Fatal(err)
				}
				if gotN != wantN || !reflect.DeepEqual(ids(got), ids(want)) {
					t.Errorf("%+v: WebTargets %d %v, Targets %d %v", q, gotN, ids(got), wantN, ids(want))
				}
				_, n, err := st.WebTargets(ctx, q, false)
				if err != nil || n != -1 {
					t.Errorf("%+v without count: total %d, %v", q, n, err)
				}
			}
		}
	}
}

func ids(ts []analysis.TargetSummary) []string {
	out := make([]string, len(ts))
	for i := range ts {
		out[i] = ts[i].ID
	}
	return out
}

// The analysis keeps each access row's times those of its target, through
// shares, an assignment and new sightings, whether it rewrites the rows
// or only updates them (the pages sort an agency's targets by them).
func TestAccessTimesFollowTargets(t *testing.T) {
	st, db := viewsStoreRO(t)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		var rows, off int
		if err := db.QueryRow(`SELECT count(*), COALESCE(SUM(a.last_ns != t.last_ns OR a.first_ns != t.first_ns), 0)
			FROM target_access a JOIN targets t ON t.id = a.target`).Scan(&rows, &off); err != nil {
			t.Fatal(err)
		}
		if rows == 0 || off != 0 {
			t.Fatalf("%s: %d access rows, %d with other times than their target's", when, rows, off)
		}
	}
	check("fixture")
	// Two more sightings of one target, one batch each: a new engine
	// writes the first in full, and the second as a score update only.
	eng := newTestEngine(t, ctx, st)
	list, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1})
	if err != nil || len(list) == 0 {
		t.Fatalf("targets: %v", err)
	}
	d, err := st.Target(ctx, list[0].ID, analysis.AllAgencies)
	if err != nil || len(d.Timeline) == 0 {
		t.Fatalf("target %s: %v", list[0].ID, err)
	}
	tl, ep := d.Timeline[0], d.Endpoints[0]
	for k, ago := range []time.Duration{2 * time.Minute, time.Minute} {
		at := time.Now().UTC().Add(-ago)
		o := observe.Observation{ID: observe.NewID(at), Sensor: observe.Sensor{ID: "views", Version: "test", Vantage: "127.0.0.1:6881"},
			Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Time: at, ClockSource: "ntp:127.0.0.1",
			Endpoint:   observe.Endpoint{IP: ep.IP, Port: ep.Port, Transport: "tcp"},
			Client:     observe.Client{Name: "Transmission", Version: "3.00", ListenPort: ep.Port},
			Possession: observe.Possession{Level: tl.Level},
			Place:      tl.Place, Jurisdiction: observe.Jurisdiction{Agency: tl.Agency, Rule: "test"}}
		o.Item.Hash, o.Item.Matched = d.Files[0].Hash, d.Files[0].Matched
		batch := []observe.Observation{o}
		if err := st.InsertObservations(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := eng.Add(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := eng.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after sighting %d", k+1))
	}
}

// A target's timeline is the newest observations of its files at its
// endpoints, as a plain query over every observation finds them.
func TestTimelineMatchesBruteForce(t *testing.T) {
	st, db := viewsStoreRO(t)
	ctx := context.Background()
	list, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Sort: "endpoints", Limit: 40})
	if err != nil {
		t.Fatal(err)
	}
	multi := 0
	for _, s := range list {
		full, err := st.TargetWithTimeline(ctx, s.ID, analysis.AllAgencies, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Endpoints) > 1 {
			multi++
		}
		var want []string
		for _, e := range full.Endpoints {
			var items []any
			for _, f := range full.Files {
				items = append(items, f.Hash.Bytes())
			}
			rows, err := db.Query(`SELECT o.id, o.time_ns, o.seq FROM observations o JOIN items i ON i.id = o.item_id
				WHERE o.ip = ? AND o.port = ? AND o.time_ns BETWEEN ? AND ? AND i.hash IN (`+placeholders(len(items))+`)`,
				append([]any{e.IP.String(), int64(e.Port), e.FirstSeen.UnixNano(), e.LastSeen.UnixNano()}, items...)...) // an endpoint is bounded in time
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id []byte
				var ns, seq int64
				if err := rows.Scan(&id, &ns, &seq); err != nil {
					t.Fatal(err)
				}
				want = append(want, fmt.Sprintf("%020d/%020d/%x", ns, seq, id))
			}
			rows.Close()
		}
		slices.Sort(want)
		slices.Reverse(want)
		if len(full.Timeline) != len(want) {
			t.Fatalf("%s: timeline of %d, brute force %d", s.ID, len(full.Timeline), len(want))
		}
		for i := range want {
			var ns int64
			fmt.Sscanf(want[i][:20], "%d", &ns)
			if got := full.Timeline[i].Time.UnixNano(); got != ns {
				t.Fatalf("%s entry %d: time %d, brute force %d", s.ID, i, got, ns)
			}
		}
		for _, limit := range []int{1, 5, len(want) - 1} {
			if limit < 1 || limit > len(want) {
				continue
			}
			part, err := st.TargetWithTimeline(ctx, s.ID, analysis.AllAgencies, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(part.Timeline, full.Timeline[:limit]) {
				t.Errorf("%s limit %d: not the newest %d of the full timeline", s.ID, limit, limit)
			}
		}
		for _, e := range full.Timeline {
			if _, err := netip.ParseAddrPort(e.Endpoint); err != nil || e.Kind == "" || e.Hash == "" {
				t.Errorf("%s: entry %+v", s.ID, e)
			}
		}
	}
	if multi == 0 {
		t.Error("no target with more than one endpoint: the merge of endpoints is untested")
	}
}

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	return "?" + string(slices.Repeat([]byte(",?"), n-1))
}
