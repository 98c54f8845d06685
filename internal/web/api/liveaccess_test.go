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
