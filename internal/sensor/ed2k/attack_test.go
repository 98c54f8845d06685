package ed2k

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// Outside lab scope a server or a Kad node that names a source at an
// address that names no subscriber (this network 0/8, the reserved
// 240/4, documentation and benchmark ranges, IETF 192.0.0.0/24) is not
// recorded, as for BitTorrent (docs/evidence.md, "Never the sensor
// itself; non-public addresses"). The code before this took them for
// public: only loopback, private, CGNAT, link-local and what Go calls
// not global unicast were dropped.
func TestThirdPartyClaimOfANonPublicAddressIsDroppedOutsideTheLab(t *testing.T) {
	g, err := scope.New(scope.Config{Mode: scope.ModeInternet,
		Deployment: &scope.Deployment{LegalAuthority: "test", Operator: "test", Retention: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := hashkind.MustNew(hashkind.ED2K, make([]byte, 16))
	for _, a := range []string{"0.1.2.3", "240.0.0.1", "192.0.2.7", "198.51.100.7", "203.0.113.9", "198.18.0.1", "192.0.0.8"} {
		o := observe.Observation{Network: observe.NetED2K, Method: observe.MethodED2KServerSources,
			Item:       observe.Item{Hash: h},
			Endpoint:   observe.Endpoint{IP: netip.MustParseAddr(a), Port: 4662, Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}}
		o.Mark(observe.MarkThirdParty)
		if s.emit(t.Context(), o) {
			t.Errorf("internet scope: a server's claim of %s was recorded", a)
		}
	}
	// A public address is still recorded.
	o := observe.Observation{Network: observe.NetED2K, Method: observe.MethodED2KServerSources,
		Item:       observe.Item{Hash: h},
		Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("2.3.4.5"), Port: 4662, Transport: "tcp"},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1}}
	o.Mark(observe.MarkThirdParty)
	if !s.emit(t.Context(), o) {
		t.Error("internet scope: a server's claim of a public address was dropped")
	}
}
