package api

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// A fresh observation at an IP:port whose only endpoint went silent three
// days ago is a new subscriber's (a new endpoint the analysis has not
// stored yet): the live feed must not offer it as the old target's to the
// old target's agency.
func TestLiveEventAfterTheWindowIsNotTheOldTargets(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	b := make([]byte, 20)
	b[0] = 0xAB
	old := observe.Observation{ID: observe.NewID(t0), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
		Method: observe.MethodPeerProbe, Time: t0,
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.20"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("198.51.100.200:6881")},
		Possession: observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
		Place:      observe.Place{Country: "FR", ASN: 64512, Org: "Lab Telecom"}, Jurisdiction: observe.Jurisdiction{Agency: "fr-a"}}
	if err := st.InsertObservations(ctx, []observe.Observation{old}); err != nil {
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
	now := time.Now().UTC()
	ev := Event{Kind: EventObservation, Time: now, Addr: netip.MustParseAddrPort("192.0.2.20:51413"), Agency: "fr-b"}
	ok, err := StoreAccess{Store: st}.Deliverable(ctx, &access.Principal{Name: "a", Agency: "fr-a", Role: access.RoleInvestigator}, []Event{ev})
	if err != nil {
		t.Fatal(err)
	}
	if ok[0] {
		t.Fatal("agency fr-a is offered a new subscriber's event as its 3-day-old target's")
	}
}

// An agency's alert (internal/alerts) reaches that agency's users alone:
// not another agency's, not a national analyst's; and once its target is
// handed off, not even its agency's.
func TestAgencyAlertReachesItsAgencyOnly(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	b := make([]byte, 20)
	b[0] = 0xAC
	o := observe.Observation{ID: observe.NewID(t0), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
		Method: observe.MethodPeerProbe, Time: t0,
		Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.21"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("198.51.100.200:6881")},
		Possession: observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
		Place:      observe.Place{Country: "FR", ASN: 64512, Org: "Lab Telecom"}, Jurisdiction: observe.Jurisdiction{Agency: "fr-a"}}
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
	evs := func() []Event {
		return []Event{
			{Kind: EventAlert, Time: t0, Agency: "fr-a", Alert: "A-1", Target: ts[0].ID, Message: "target passed", Access: []string{"fr-a"}},
			{Kind: EventAlert, Time: t0, Agency: "fr-a", Alert: "A-2", Message: "list seen", Access: []string{"fr-a"}},
		}
	}
	a := &access.Principal{Name: "a", Agency: "fr-a", Role: access.RoleInvestigator}
	bb := &access.Principal{Name: "b", Agency: "fr-b", Role: access.RoleInvestigator}
	nat := &access.Principal{Name: "n", Agency: "ocrvp", Role: access.RoleAnalyst}
	check := func(p *access.Principal, want ...bool) {
		t.Helper()
		ok, err := StoreAccess{Store: st}.Deliverable(ctx, p, evs())
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if ok[i] != want[i] {
				t.Fatalf("%s (%s): alert %d deliverable %v, want %v", p.Name, p.Agency, i, ok[i], want[i])
			}
		}
		// The hub offers it by the same rule before delivery decides.
		for i, ev := range evs() {
			if want[i] && !offered(p.Scope(), &ev) {
				t.Fatalf("%s: alert %d not offered", p.Name, i)
			}
		}
	}
	check(a, true, true)
	check(bb, false, false)
	check(nat, false, false)
	if err := eng.Assign(ctx, ts[0].ID, "fr-b", "supervisor", "moved"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check(a, false, true) // the target is fr-b's now: fr-a's alert about it is withheld
	check(bb, false, false)
}
