package ed2k

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
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

// A client whose hello answer carries the sensor's own user hash (a
// mirror that echoes the hello it was sent): the hash names the sensor,
// not the client. The sensor keeps one user hash for years, so every
// mirror it ever probed would carry it, and the emule_user_hash rule
// would join them into one device. The code before this recorded it as
// the client's user_hash.
func TestProbeOfAClientEchoingTheSensorsUserHash(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
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
	f := labed2k.NewFile(7, 300_000)
	c, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: s.cfg.UserHash, Software: labed2k.AMule233,
		Shares: []labed2k.Share{{File: f}}, Addr: netip.MustParseAddrPort("127.91.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, f.Hash[:]), Size: f.Size}
	s.probe(t.Context(), s.probeConfig(), probeJob{c.Addr(), w})
	obs := pub.all()
	if len(obs) != 1 || obs[0].Method != observe.MethodPeerProbe {
		t.Fatalf("observations %+v, want one peer_probe", obs)
	}
	if got := obs[0].Client.UserHash; bytes.Equal(got, s.cfg.UserHash[:]) {
		t.Fatalf("the sensor's own user hash %x recorded as the client's", got)
	}
	if obs[0].Possession.Level != observe.Complete {
		t.Fatalf("level %v, want complete (the rest of what it said stands)", obs[0].Possession.Level)
	}
}
