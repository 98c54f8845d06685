package bittorrent

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// Two sensors of one deployment, each on its own loopback address (as
// each has its own host on the internet), beside the lab's peers on
// 127.0.0.1.
var (
	fellowA = netip.MustParseAddr("127.250.0.2")
	fellowB = netip.MustParseAddr("127.250.0.3")
)

// sink keeps every observation, never blocking a sensor.
type sink struct {
	mu  sync.Mutex
	obs []observe.Observation
}

func (s *sink) Publish(_ context.Context, o observe.Observation) error {
	s.mu.Lock()
	s.obs = append(s.obs, o)
	s.mu.Unlock()
	return nil
}

// of returns the observations of an endpoint at addr, and how many
// observations there are in all.
func (s *sink) of(addr netip.Addr) ([]observe.Observation, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []observe.Observation
	for _, o := range s.obs {
		if o.Endpoint.IP.Unmap() == addr {
			out = append(out, o)
		}
	}
	return out, len(s.obs)
}

// fellowLab starts a lab and returns its bootstrap nodes and watched
// torrents (with the lab's tracker).
func fellowLab(t *testing.T, ctx context.Context) ([]netip.AddrPort, []Watched) {
	t.Helper()
	lcfg := lab.DefaultConfig()
	lcfg.DHTNodes, lcfg.Seeders, lcfg.Leechers, lcfg.Torrents, lcfg.Watched, lcfg.MovePeers = 16, 3, 0, 3, 3, 0
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	m := l.Manifest()
	f, err := os.Open(m.Watchlist)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := watchlist.Parse(f, watchlist.ParseOptions{File: m.Watchlist})
	if err != nil {
		t.Fatal(err)
	}
	var ws []Watched
	for _, e := range res.Entries {
		w := Watched{Hash: e.Hash, Matched: []observe.Match{{List: "lab", Category: e.Category}}}
		if m.Tracker != "" {
			w.Trackers = []string{m.Tracker}
		}
		ws = append(ws, w)
	}
	return l.Bootstrap(), ws
}

// startFellow runs a sensor on addr until the test ends.
func startFellow(t *testing.T, ctx context.Context, addr netip.Addr, bootstrap []netip.AddrPort, ws []Watched, set *own.Set) (*Sensor, *sink) {
	t.Helper()
	cfg := LabConfig()
	cfg.ID = "sensor-" + addr.String()
	cfg.Listen, cfg.Identities, cfg.LookupEvery, cfg.ProbeEvery = addr, 4, 2*time.Second, 5*time.Second
	cfg.Bootstrap, cfg.Own = bootstrap, set
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &sink{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(ws...); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sensor %s: %v", addr, err)
		}
	})
	select {
	case <-s.Ready():
	case <-ctx.Done():
		t.Fatal("sensor not ready")
	}
	return s, pub
}

// TestFellowSensorsNeverRecordEachOther runs two sensors of one
// deployment in one lab, watching the same torrents. Each looks every
// watched info-hash up, so each one's get_peers lands on the other's DHT
// identities, and the lab's seeders pass on in PEX the source ports of
// the other's probes: without the deployment's addresses each records
// the other (a police sensor as a suspect). With them (--own-addresses,
// one line per sensor host) neither records nor probes the other, and
// says how many it left out (deployment_address), while both still find
// the lab's seeders.
func TestFellowSensorsNeverRecordEachOther(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bootstrap, ws := fellowLab(t, ctx)
	set, err := own.Parse("own.txt", []byte("# the deployment's sensors\n"+fellowA.String()+"\n"+fellowB.String()+" # sensor B\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, pubA := startFellow(t, ctx, fellowA, bootstrap, ws, set)
	b, pubB := startFellow(t, ctx, fellowB, bootstrap, ws, set)
	// Long enough for the fellows to meet: without the file, the first
	// PEX naming the other comes within seconds (the test below).
	minRun := time.Now().Add(15 * time.Second)
	for {
		_, na := pubA.of(fellowB)
		_, nb := pubB.of(fellowA)
		if na > 0 && nb > 0 && time.Now().After(minRun) {
			break // each recorded the lab
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the sensors did not record the lab: %d and %d observations", na, nb)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if da, db := a.Dropped()[dropDeployment], b.Dropped()[dropDeployment]; da == 0 || db == 0 {
		t.Errorf("deployment_address drops %d and %d: each sensor met the other and should say how often it left it out", da, db)
	}
	// Sensor A probes sensor B's DHT sockets itself, over TCP and uTP, as
	// it would a peer a tracker listed there: the probe is refused
	// before it is made.
	for _, ap := range b.Addrs() {
		a.enqueueProbeOver(ap, ws[0], "tracker", transportTCP)
		a.enqueueProbeOver(ap, ws[1], "pex", transportUTP)
	}
	a.probedMu.Lock()
	for k := range a.probed {
		if k.peer.Addr() == fellowB {
			t.Errorf("sensor A queued a probe of sensor B at %v", k.peer)
		}
	}
	a.probedMu.Unlock()
	for _, c := range []struct {
		name   string
		pub    *sink
		fellow netip.Addr
	}{{"A", pubA, fellowB}, {"B", pubB, fellowA}} {
		got, _ := c.pub.of(c.fellow)
		for _, o := range got {
			t.Errorf("sensor %s recorded its fellow %s:%d (%s, %s)", c.name, o.Endpoint.IP, o.Endpoint.Port, o.Method, o.Possession.Level)
		}
	}
}

// TestFellowSensorsWithoutTheFileAreOnlyEverAnnounced is the same lab
// without the deployment's addresses: the sensors do record each other
// (what --own-addresses is for), but never above announced. Neither has a
// listener that answers a handshake: a BitTorrent sensor's DHT sockets
// take no TCP and answer no uTP (not KRPC), and its probes' uTP sockets
// never accept. So a probe of a fellow never raises its level.
func TestFellowSensorsWithoutTheFileAreOnlyEverAnnounced(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bootstrap, ws := fellowLab(t, ctx)
	a, pubA := startFellow(t, ctx, fellowA, bootstrap, ws, nil)
	b, pubB := startFellow(t, ctx, fellowB, bootstrap, ws, nil)
	for {
		oa, _ := pubA.of(fellowB)
		ob, _ := pubB.of(fellowA)
		if len(oa)+len(ob) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("without the deployment's addresses the sensors did not record each other (%d and %d observations): the lab no longer shows what --own-addresses is for", len(oa), len(ob))
		case <-time.After(250 * time.Millisecond):
		}
	}
	// A probes B's DHT sockets over TCP and uTP: they answer no handshake.
	before := a.Stats().Probes
	for _, ap := range b.Addrs() {
		a.enqueueProbeOver(ap, ws[0], "tracker", transportTCP)
		a.enqueueProbeOver(ap, ws[1], "pex", transportUTP)
	}
	for a.Stats().Probes-before < uint64(2*len(b.Addrs())) {
		select {
		case <-ctx.Done():
			t.Fatalf("probes of B not run: %d", a.Stats().Probes-before)
		case <-time.After(100 * time.Millisecond):
		}
	}
	time.Sleep(LabConfig().ProbeTimeout + time.Second) // the uTP probes wait for a SYN's answer that never comes
	for _, c := range []struct {
		name   string
		pub    *sink
		fellow netip.Addr
	}{{"A", pubA, fellowB}, {"B", pubB, fellowA}} {
		got, _ := c.pub.of(c.fellow)
		for _, o := range got {
			if o.Possession.Level > observe.Announced || o.FirstHand() && o.Method == observe.MethodPeerProbe {
				t.Errorf("sensor %s recorded its fellow %s:%d at %s (%s): a sensor's listener raised a fellow's level", c.name, o.Endpoint.IP, o.Endpoint.Port, o.Possession.Level, o.Method)
			}
		}
		t.Logf("sensor %s recorded its fellow %d times without the deployment's addresses", c.name, len(got))
	}
}

// A fellow in the file is dropped whoever names it and in every scope
// (also as the IPv4 address inside a NAT64 or 6to4 address), never
// probed; a peer that claims to be a sensor (a Vigil peer id, a
// sensor_address of the deployment's) is recorded as any other: only the
// file names a fellow.
func TestFellowIsDroppedByAddressNeverByClaim(t *testing.T) {
	s, pub := hostileSensor(t)
	set, err := own.Parse("own.txt", []byte("198.51.100.60\n203.0.113.7:6881\n127.0.0.9:6881\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.Own = set
	now := s.cfg.Clock()
	w := watchedTorrent(t, nil, 1)
	for _, ap := range []string{"198.51.100.60:1", "198.51.100.60:6881", "203.0.113.7:6881", "[::ffff:203.0.113.7]:6881"} {
		for _, lab := range []bool{true, false} {
			if r := s.selfReasonIn(netip.MustParseAddrPort(ap), now, lab); r != dropDeployment {
				t.Errorf("%s (lab scope %v): %q, want %q", ap, lab, r, dropDeployment)
			}
		}
	}
	for _, ap := range []string{"[64:ff9b::c633:643c]:6881", "[2002:c633:643c::1]:6881"} {
		if r := s.selfReasonIn(netip.MustParseAddrPort(ap), now, false); r != dropDeployment {
			t.Errorf("%s (198.51.100.60 embedded): %q, want %q", ap, r, dropDeployment)
		}
	}
	if r := s.selfReasonIn(netip.MustParseAddrPort("203.0.113.7:6882"), now, false); r != "" {
		t.Errorf("another port of a shared host: %q", r)
	}
	for _, m := range []string{observe.MethodPEX, observe.MethodTracker, observe.MethodDHTGetPeers, observe.MethodPeerProbe} {
		s.emit(t.Context(), observe.Observation{Method: m, Item: observe.Item{Hash: w.Hash},
			Endpoint: observe.Endpoint{IP: netip.MustParseAddr("198.51.100.60"), Port: 51413, Transport: "tcp"}})
	}
	probes := len(s.probeQ)
	s.enqueueProbe(netip.MustParseAddrPort("127.0.0.9:6881"), w, "pex") // in lab scope: the guard lets it through
	if len(s.probeQ) != probes {
		t.Error("a fellow was queued for a probe")
	}
	// The hostile peer: every claim a peer or an observation can make.
	s.emit(t.Context(), observe.Observation{Method: observe.MethodPeerProbe, Item: observe.Item{Hash: w.Hash},
		Endpoint: observe.Endpoint{IP: netip.MustParseAddr("192.0.2.99"), Port: 51413, Transport: "tcp",
			Local: netip.MustParseAddrPort("198.51.100.60:40000")},
		Client: observe.Client{PeerID: []byte("-VG0001-abcdefghijkl")}})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	if len(pub.obs) != 1 || pub.obs[0].Endpoint.IP != netip.MustParseAddr("192.0.2.99") {
		t.Fatalf("recorded %d observations, want only the peer that claims to be a sensor", len(pub.obs))
	}
	if got := s.Dropped()[dropDeployment]; got != 5 {
		t.Fatalf("%d deployment_address drops, want 5 (4 observations, 1 probe)", got)
	}
}
