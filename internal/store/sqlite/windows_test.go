package sqlite

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
)

func windowObs(ep string, file byte, at time.Time) observe.Observation {
	ap := netip.MustParseAddrPort(ep)
	b := make([]byte, 20)
	b[0], b[19] = 0xAB, file
	return observe.Observation{ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
		Method: observe.MethodPeerProbe, Time: at,
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:   observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp", Local: netip.MustParseAddrPort("198.51.100.200:6881")},
		Possession: observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
		Place:      observe.Place{Country: "FR", ASN: 64512, Org: "Lab Telecom"}, Jurisdiction: observe.Jurisdiction{Agency: "fr-versailles"}}
}

// A file the analysis filled under schema 8 had one endpoint per IP:port
// forever: the same 192.0.2.20:51413 seen a year apart was one endpoint,
// one target, the year-old complete copy lent to the new subscriber.
// Migration 0009 clears what the old rules derived and resets the
// watermark; the analysis, restarted, splits the address into two
// endpoints and two targets, and the first keeps its target number.
func TestMigration0009SplitsAnIPPortSeenAYearApart(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	obs := []observe.Observation{
		windowObs("192.0.2.20:51413", 1, t0),
		windowObs("192.0.2.20:51413", 1, t0.Add(time.Hour)),
		windowObs("192.0.2.20:51413", 2, t0.AddDate(1, 0, 0)), // another subscriber, a year later
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	// What schema 8's analysis left: one endpoint, home 1, one target.
	undoLater(ctx, t, st.db)
	for _, q := range []string{
		`INSERT INTO analysis_endpoints (id, ip, port, gen, home, target, first_ns, last_ns, observations) VALUES (1, '192.0.2.20', 51413, 0, 1, 'T-1', 0, 0, 3)`,
		`INSERT INTO targets (id, seq, endpoints, files, observations) VALUES ('T-1', 1, 1, 2, 3)`,
		`INSERT INTO analysis_timeline (endpoint, time_ns, seq) SELECT 1, time_ns, seq FROM observations`,
		`INSERT INTO analysis_state (key, value) VALUES ('watermark', 3), ('next_seq', 2)`,
		`DROP TABLE analysis_homes`,
		`DROP VIEW observation_rows`, // 0013's
		`ALTER TABLE observations DROP COLUMN clock_uncertainty_ns`,
		`ALTER TABLE leads DROP COLUMN keywords`, `ALTER TABLE leads DROP COLUMN networks`, `ALTER TABLE leads DROP COLUMN sources`, // 0012's
		`ALTER TABLE agencies DROP COLUMN address`,         // 0011's
		`DELETE FROM schema_migrations WHERE version >= 9`, // migrations apply from MAX(version)
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	cfg.Now = func() time.Time { return t0.AddDate(1, 0, 1) }
	eng, err := analysis.New(ctx, again, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	ts, n, err := again.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d targets after migration 0009, want 2 (one per year): %+v", n, ts)
	}
	d, err := again.Target(ctx, "T-1", analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	if d.TargetSummary.Files != 1 || d.Observations != 2 || len(d.Endpoints) != 1 || d.Endpoints[0].Gen != 0 || !d.Endpoints[0].FirstSeen.Equal(t0) {
		t.Fatalf("T-1 after migration: %d files, %d observations, endpoints %+v; want the year-old endpoint alone", d.TargetSummary.Files, d.Observations, d.Endpoints)
	}
	var other analysis.TargetSummary
	for _, x := range ts {
		if x.ID != analysis.TargetID(1) {
			other = x
		}
	}
	if other.ID != analysis.TargetID(2) || other.Files != 1 {
		t.Fatalf("the later endpoint's target %+v: want T-2, the next number never given", other)
	}
	var rows int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM analysis_timeline`).Scan(&rows); err != nil || rows != 3 {
		t.Fatalf("%d timeline rows after the recomputation, want 3 (%v)", rows, err)
	}
}
