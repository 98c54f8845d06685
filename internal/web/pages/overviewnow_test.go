package pages

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// One IP:port, two subscribers two days apart (two endpoints, two
// targets, two agencies). The overview decided at delivery gave every row
// of the IP:port the newest generation's target: agency fr-b saw the
// earlier subscriber's observation (fr-a's target) as its own target's,
// and fr-a lost its own.
func TestOverviewRowsKeepTheirGeneration(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	mk := func(file byte, at time.Time, agency string) observe.Observation {
		b := make([]byte, 20)
		b[0], b[19] = 0xAB, file
		return observe.Observation{ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1"}, Network: observe.NetBitTorrent,
			Method: observe.MethodPeerProbe, Time: at,
			Item:       observe.Item{Hash: hashkind.MustNew(hashkind.BTIH, b), Matched: []observe.Match{{List: "national", Category: "1"}}},
			Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("192.0.2.20"), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("198.51.100.200:6881")},
			Possession: observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
			Place:      observe.Place{Country: "FR", ASN: 64512, Org: "Lab Telecom"}, Jurisdiction: observe.Jurisdiction{Agency: agency}}
	}
	old, cur := mk(1, t0, "fr-a"), mk(2, t0.Add(48*time.Hour), "fr-b")
	if err := st.InsertObservations(ctx, []observe.Observation{old, cur}); err != nil {
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
	ov := &Overview{Recent: []ObservationRow{RowFromObservation(&cur), RowFromObservation(&old)}}
	tg := &storeTargets{st: st}
	for agency, want := range map[string]string{"fr-a": old.ID, "fr-b": cur.ID} {
		got, err := tg.filterNow(ctx, analysis.Scope{Agencies: []string{agency}}, ov)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Recent) != 1 || got.Recent[0].ID != want {
			var ids []string
			for _, r := range got.Recent {
				ids = append(ids, r.ID+" ("+r.Target+")")
			}
			t.Errorf("%s sees %v, want only %s", agency, ids, want)
		}
	}
}
