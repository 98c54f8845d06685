package ed2k

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kad"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
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

// A client the sensor connected to sees the sensor's address and source
// port, and a hostile server or Kad node can name that endpoint as a
// source of a watched file. Outside lab scope any port of the listen
// address is the sensor; in lab scope (the default, where clients share
// an address) the code before this knew only the Kad node's own address
// and port, and recorded the sensor's own connection as a suspect (and
// queued a probe of it). The BitTorrent sensor remembers the source port
// of each connection it makes; so does this one now.
func TestSourceNamingTheSensorsOwnConnectionIsNotRecorded(t *testing.T) {
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		accepted <- netip.MustParseAddrPort(c.RemoteAddr().String()) // the sensor's end, as the client sees it
	}()
	c, err := s.dial(t.Context(), "tcp", ln.Addr().String()) // as a probe or a server session dials
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := <-accepted
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	var found server.Found
	found.Sources = []wire.Source{{ID: ed2kID(me.Addr()), Port: me.Port()}}
	found.Kept, found.At = true, time.Now()
	s.recordServer(t.Context(), nil, w, found)
	st := s.Stats()
	if n := st.Emitted[observe.MethodED2KServerSources]; n != 0 {
		t.Fatalf("the sensor's own connection %v recorded as a source (%d observations)", me, n)
	}
	if st.Dropped["self"] != 1 || len(s.queue) != 0 {
		t.Fatalf("dropped %v, %d probes queued; want 1 self and none queued", st.Dropped, len(s.queue))
	}
}

// ed2kID is the client id of a high-id client at a: its IPv4 address in
// network order read little-endian.
func ed2kID(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// A Kad node answers the sensor's source search with 1,000 sources, one
// of them eleven times; another names 3. eMule and aMule stop a source
// search at 300 answers (SEARCHFILE_TOTAL). The code before this recorded
// all 1,013 (the repeated one eleven times), each carrying the node's
// answer, and queued a probe of each. Now a search records each source
// a node named once, at most maxKadSourcesPerNode of a node; the rest
// are counted (kad_sources_over_cap); the other node's are all recorded.
func TestKadSourcesFloodFromOneNodeIsBounded(t *testing.T) {
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
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	hostile := kadwire.Contact{Addr: netip.MustParseAddrPort("127.0.0.9:4672")}
	honest := kadwire.Contact{Addr: netip.MustParseAddrPort("127.0.0.10:4672")}
	source := func(i int) kadwire.Source {
		return kadwire.Source{Type: 1, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 50, byte(i >> 8), byte(i)}), 4662)}
	}
	var found []kad.Found
	for i := range 1000 {
		found = append(found, kad.Found{Node: hostile, Source: source(i)})
		if i == 0 {
			for range 10 {
				found = append(found, kad.Found{Node: hostile, Source: source(0)})
			}
		}
	}
	for i := range 3 {
		found = append(found, kad.Found{Node: honest, Source: source(2000 + i)})
	}
	s.recordKadSources(t.Context(), w, found)
	st := s.Stats()
	if got, want := st.Emitted[observe.MethodKadSources], uint64(maxKadSourcesPerNode+3); got != want {
		t.Fatalf("%d kad_sources recorded, want %d (the cap of the flooding node, and the other node's 3)", got, want)
	}
	if got, want := st.Dropped["kad_sources_over_cap"], uint64(1000-maxKadSourcesPerNode); got != want {
		t.Fatalf("kad_sources_over_cap %d, want %d", got, want)
	}
	if n := len(s.queue); n > maxKadSourcesPerNode+3 {
		t.Fatalf("%d probes queued, want at most %d", n, maxKadSourcesPerNode+3)
	}
}

// A server that lists one source five times in one answer names it once:
// the code before this recorded it five times (each with the answer's
// transcript). Now it is recorded once.
func TestServerSourceListedTwiceIsRecordedOnce(t *testing.T) {
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
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	var found server.Found
	for range 5 {
		found.Sources = append(found.Sources, wire.Source{ID: ed2kID(netip.MustParseAddr("127.60.0.1")), Port: 4662})
	}
	found.Sources = append(found.Sources, wire.Source{ID: ed2kID(netip.MustParseAddr("127.60.0.2")), Port: 4662},
		wire.Source{ID: ed2kID(netip.MustParseAddr("127.60.0.1")), Port: 4663})
	found.Kept, found.At = true, time.Now()
	s.recordServer(t.Context(), nil, w, found)
	if got := s.Stats().Emitted[observe.MethodED2KServerSources]; got != 3 {
		t.Fatalf("%d sources recorded, want 3 (one of them listed five times)", got)
	}
}

// Six sources at one address with the default per-address budget (burst
// 4): the probes past it are not made. The code before this kept those
// sources marked probed, so later answers naming them were skipped for
// ReprobeAfter (an hour). Now a source refused by the budget is
// forgotten, and the next answer naming it queues it again.
func TestProbeRefusedByTheAddressBudgetIsQueuedAgain(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	frozen := time.Now() // no refill of the budget while the test runs
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	cfg.Budget, cfg.Clock, cfg.ProbeTimeout = netlimit.DefaultConfig(), func() time.Time { return frozen }, 300*time.Millisecond
	s, err := New(cfg, g, &collector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	var addrs []netip.AddrPort
	for i := range 6 {
		addrs = append(addrs, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(9+i))) // nobody listens
	}
	for _, a := range addrs {
		s.enqueue(a, w)
	}
	pc := s.probeConfig()
	for len(s.queue) > 0 {
		s.probe(t.Context(), pc, <-s.queue)
	}
	refused := s.Stats().Dropped["address_budget"]
	if refused == 0 || refused != s.lim.Stats().RefusedByAddr {
		t.Fatalf("address_budget drops %d, limiter refusals %d: want the same, not 0", refused, s.lim.Stats().RefusedByAddr)
	}
	for _, a := range addrs {
		s.enqueue(a, w)
	}
	if got := uint64(len(s.queue)); got != refused {
		t.Fatalf("%d sources queued again at once, want the %d the budget refused", got, refused)
	}
}
