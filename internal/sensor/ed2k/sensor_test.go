package ed2k

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// collector is a bus.Publisher that keeps what it is given.
type collector struct {
	mu  sync.Mutex
	obs []observe.Observation
}

func (c *collector) Publish(_ context.Context, o observe.Observation) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.obs = append(c.obs, o)
	return nil
}

func (c *collector) all() []observe.Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]observe.Observation(nil), c.obs...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type pair struct {
	addr netip.AddrPort
	file [16]byte
}

func startSensor(t *testing.T, ctx context.Context, lab *labed2k.Net, watch []Watched) (*Sensor, *collector, func()) {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.97.255.1")
	cfg.SearchEvery = 300 * time.Millisecond
	cfg.ReprobeAfter = 200 * time.Millisecond
	cfg.KadBootstrap = lab.Bootstrap(3)
	if lab.Server != nil {
		cfg.Servers = []netip.AddrPort{lab.Server.Addr()}
	}
	col := &collector{}
	s, err := New(cfg, g, col, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(watch...); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	return s, col, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestSensorFindsProbesAndLinksEveryLabClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 11, Server: true, KadNodes: 30, Files: 3, Clients: 6,
		SharesPerClient: 2, Movers: 1, Hostile: []labed2k.Behaviour{labed2k.LiarSpareBits, labed2k.WrongFile},
		Base: netip.MustParseAddr("127.97.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	var watch []Watched
	for _, f := range lab.Files {
		watch = append(watch, Watched{Hash: hashkind.MustNew(hashkind.ED2K, f.Hash[:]), Size: f.Size,
			Matched: []observe.Match{{List: "lab", Category: "1"}}})
	}
	s, col, stop := startSensor(t, ctx, lab, watch)
	defer stop()

	probed := func(addrIndex int) map[pair]observe.Observation {
		out := map[pair]observe.Observation{}
		for _, o := range col.all() {
			if o.Method == observe.MethodPeerProbe {
				out[pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), [16]byte(o.Item.Hash.Bytes())}] = o
			}
		}
		return out
	}
	honest := func(addrIndex int) []labed2k.Truth {
		var out []labed2k.Truth
		for _, tr := range lab.Truth() {
			if tr.Behaviour == labed2k.Honest || tr.Behaviour == labed2k.LiarSpareBits {
				out = append(out, tr)
			}
		}
		return out
	}
	allProbed := func(idx int) bool {
		p := probed(idx)
		for _, tr := range honest(idx) {
			if len(tr.Addrs) <= idx {
				continue
			}
			if _, ok := p[pair{tr.Addrs[idx], tr.File}]; !ok {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "every lab client probed", func() bool { return allProbed(0) })
	waitFor(t, 30*time.Second, "a Kad source", func() bool {
		for _, o := range col.all() {
			if o.Method == observe.MethodKadSources {
				return true
			}
		}
		return false
	})

	got := probed(0)
	for _, tr := range honest(0) {
		o := got[pair{tr.Addrs[0], tr.File}]
		if o.Network != observe.NetED2K || string(o.Client.UserHash) != string(tr.UserHash[:]) || o.Client.Name != "aMule" || o.Client.Version != "2.3.3" {
			t.Fatalf("probe of %v: network %s user hash %x client %s %s", tr.Addrs[0], o.Network, o.Client.UserHash, o.Client.Name, o.Client.Version)
		}
		if !o.FirstHand() || o.Endpoint.Local.Addr() != netip.MustParseAddr("127.97.255.1") || len(o.Transcript.Bytes) == 0 {
			t.Fatalf("probe of %v: first-hand %v local %v transcript %d bytes", tr.Addrs[0], o.FirstHand(), o.Endpoint.Local, len(o.Transcript.Bytes))
		}
		switch {
		case tr.Behaviour == labed2k.LiarSpareBits:
			if o.Possession.Level == observe.Complete || !o.HasMark(observe.MarkMalformedBitfield) {
				t.Fatalf("liar recorded %s marks %v", o.Possession.Level, o.Marks)
			}
		case tr.Complete && o.Possession.Level != observe.Complete,
			!tr.Complete && (o.Possession.Level != observe.Partial || o.Possession.PiecesHave != tr.Parts):
			t.Fatalf("probe of %v: %s %d/%d, truth complete %v parts %d", tr.Addrs[0], o.Possession.Level,
				o.Possession.PiecesHave, o.Possession.PiecesTotal, tr.Complete, tr.Parts)
		}
	}
	var server, kad int
	for _, o := range col.all() {
		switch o.Method {
		case observe.MethodED2KServerSources, observe.MethodKadSources:
			if o.Method == observe.MethodKadSources {
				kad++
				if o.Network != observe.NetKad || !o.HasMark(observe.MarkSpoofableSource) {
					t.Fatalf("kad source %+v", o)
				}
			} else {
				server++
			}
			if o.FirstHand() || !o.HasMark(observe.MarkThirdParty) || len(o.Client.UserHash) != 0 || o.Possession.Level != observe.Announced || o.Endpoint.Local.IsValid() {
				t.Fatalf("third-party source recorded as %+v", o)
			}
		case observe.MethodPeerProbe:
			for _, tr := range lab.Truth() {
				if tr.Behaviour == labed2k.WrongFile && tr.Addrs[0] == netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) {
					t.Fatalf("a client answering for another file was recorded: %+v", o)
				}
			}
		}
		if o.Item.Hash.Kind() != hashkind.ED2K || len(o.Item.Matched) != 1 {
			t.Fatalf("item %v matched %v", o.Item.Hash, o.Item.Matched)
		}
	}
	if server == 0 || kad == 0 {
		t.Fatalf("server sources %d, kad sources %d", server, kad)
	}

	// A client that moves keeps its user hash: the probe of its new
	// address names the same user hash.
	if err := lab.MoveAll(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the mover probed at its new address", func() bool { return allProbed(1) })
	for _, tr := range honest(1) {
		if len(tr.Addrs) < 2 {
			continue
		}
		o := probed(1)[pair{tr.Addrs[1], tr.File}]
		if string(o.Client.UserHash) != string(tr.UserHash[:]) {
			t.Fatalf("mover at %v: user hash %x, want %x", tr.Addrs[1], o.Client.UserHash, tr.UserHash)
		}
	}
	st := s.Stats()
	if st.Dropped["wrong_file"] == 0 {
		t.Fatalf("stats %+v: the wrong-file client was not counted", st)
	}
}

// TestSensorFindsEveryPairByKadAlone: with no server, Kad searches alone
// lead to a probe of every (client, file) pair.
func TestSensorFindsEveryPairByKadAlone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 12, KadNodes: 50, Files: 4, Clients: 8, SharesPerClient: 2,
		Base: netip.MustParseAddr("127.98.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	var watch []Watched
	for _, f := range lab.Files {
		watch = append(watch, Watched{Hash: hashkind.MustNew(hashkind.ED2K, f.Hash[:]), Size: f.Size})
	}
	_, col, stop := startSensor(t, ctx, lab, watch)
	defer stop()
	waitFor(t, 60*time.Second, "every pair probed after Kad searches", func() bool {
		seen := map[pair]bool{}
		for _, o := range col.all() {
			if o.Method == observe.MethodPeerProbe {
				seen[pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), [16]byte(o.Item.Hash.Bytes())}] = true
			}
		}
		for _, tr := range lab.Truth() {
			if !seen[pair{tr.Addrs[0], tr.File}] {
				return false
			}
		}
		return true
	})
	for _, o := range col.all() {
		if o.Method == observe.MethodED2KServerSources {
			t.Fatal("a server source without a server")
		}
	}
}

// Outside lab scope, a server or Kad node that names the sensor's own
// address, with any port, names the sensor: never recorded, never probed
// (found in review: only the Kad node's exact address and port were
// recognised). In lab scope, clients share loopback: only the Kad node's
// own address and port is the sensor.
func TestSelfIsAnyPortOfTheListenAddressOutsideTheLab(t *testing.T) {
	listen := netip.MustParseAddr("192.0.2.10")
	internet, err := scope.New(scope.Config{Mode: scope.ModeInternet,
		Deployment: &scope.Deployment{LegalAuthority: "test", Operator: "test", Retention: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sensor{cfg: Config{Listen: listen}, guard: internet}
	for _, ep := range []string{"192.0.2.10:4662", "192.0.2.10:1", "[::ffff:192.0.2.10]:4662"} {
		if !s.self(netip.MustParseAddrPort(ep)) {
			t.Errorf("%s: not recognised as the sensor", ep)
		}
	}
	if s.self(netip.MustParseAddrPort("192.0.2.11:4662")) {
		t.Error("another address taken for the sensor")
	}
	lab, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s = &Sensor{cfg: Config{Listen: netip.MustParseAddr("127.0.0.1")}, guard: lab}
	if s.self(netip.MustParseAddrPort("127.0.0.1:4662")) {
		t.Error("lab scope: a lab client on loopback taken for the sensor")
	}
}

// A hostile server's huge answer is capped (the rest counted, never
// recorded), and the table of recently probed pairs is bounded: past
// MaxProbed, new pairs are counted, not remembered (found in review: the
// table grew without bound, with a scan per source once large).
func TestSourcesPerAnswerAndProbedPairsAreBounded(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	cfg.MaxSourcesPerAnswer, cfg.MaxProbed, cfg.ProbeQueue = 5, 3, 100
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	var found server.Found
	for i := range 40 {
		found.Sources = append(found.Sources, wire.Source{ID: uint32(127) | uint32(i+1)<<24, Port: 4662})
	}
	found.Kept, found.At = true, time.Now()
	s.recordServer(context.Background(), nil, w, found)
	st := s.Stats()
	if got := st.Emitted[observe.MethodED2KServerSources]; got != 5 {
		t.Fatalf("%d sources recorded from one answer, want the cap of 5", got)
	}
	if st.Dropped["sources_over_cap"] != 35 {
		t.Fatalf("dropped %v, want 35 sources_over_cap", st.Dropped)
	}
	if st.Dropped["probe_table_full"] != 2 || len(s.probed) != 3 {
		t.Fatalf("dropped %v, %d pairs remembered; want 2 probe_table_full and 3 remembered", st.Dropped, len(s.probed))
	}
}
