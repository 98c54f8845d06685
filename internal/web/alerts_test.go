package web

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// The overview's Alerts block shows the viewer's agency's alerts alone:
// never another agency's to its users, nor to a national analyst of
// another agency; and an alert about a target leaves the block once the
// target is handed off.
func TestOverviewAlertsAreTheAgencysAlone(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	b := make([]byte, 20)
	b[0] = 0xAD
	o := observe.Observation{ID: observe.NewID(t0), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
		Method: observe.MethodPeerProbe, Time: t0,
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.22"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("198.51.100.200:6881")},
		Possession: observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
		Place:      observe.Place{Country: "FR"}, Jurisdiction: observe.Jurisdiction{Agency: "fr-a"}}
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	eng, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{All: true}})
	if err != nil || len(ts) != 1 {
		t.Fatalf("targets %d, %v", len(ts), err)
	}
	for _, a := range []alerts.Alert{
		{Rule: "score", Agency: "fr-a", Kind: alerts.KindScorePassed, Event: "score:" + ts[0].ID, Target: ts[0].ID, Content: alerts.Content{Score: 42, Level: "complete"}},
		{Rule: "list", Agency: "fr-a", Kind: alerts.KindListSeen, Event: "obs:" + o.ID, Content: alerts.Content{List: "national", Category: "1", Level: "complete"}},
	} {
		a.ID, a.At, a.Created, a.Subject = alerts.AlertID(a.Rule, a.Event), t0, t0, "s"
		if _, _, err := st.RecordAlert(ctx, a, nil, 10, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	feed := alertFeed{st}
	rows := func(u *pages.User) []pages.AlertRow {
		t.Helper()
		rs, err := feed.Recent(ctx, u, 10)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	alice := &pages.User{Name: "alice", Agency: "fr-a", Role: pages.RoleInvestigator, Scope: pages.Scope{Agencies: []string{"fr-a"}}}
	bob := &pages.User{Name: "bob", Agency: "fr-b", Role: pages.RoleInvestigator, Scope: pages.Scope{Agencies: []string{"fr-b"}}}
	claire := &pages.User{Name: "claire", Agency: "ocrvp", Role: pages.RoleAnalyst, Scope: pages.Scope{All: true}}
	if rs := rows(alice); len(rs) != 2 || rs[0].Level != observe.Complete {
		t.Fatalf("alice's alerts: %+v, want 2 with their level", rs)
	}
	if rs := rows(bob); len(rs) != 0 {
		t.Fatalf("bob (agency B) sees agency A's alerts: %+v", rs)
	}
	if rs := rows(claire); len(rs) != 0 {
		t.Fatalf("a national analyst of another agency sees agency A's alerts: %+v", rs)
	}
	if err := eng.Assign(ctx, ts[0].ID, "fr-b", "supervisor", "moved"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rs := rows(alice); len(rs) != 1 || rs[0].Target != "" {
		t.Fatalf("after the hand-off alice's alerts: %+v, want only the one about no target", rs)
	}
}
