package discover

import (
	"context"
	"crypto/rand"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// fakeSensor is the sensor's side of discovery: a watch set, and the
// peers discovery hands it, by key.
type fakeSensor struct {
	mu      sync.Mutex
	watched map[routing.ID]bool
	peers   map[routing.ID][]netip.AddrPort
	told    chan struct{}
}

func newFakeSensor(watched ...routing.ID) *fakeSensor {
	f := &fakeSensor{watched: map[routing.ID]bool{}, peers: map[routing.ID][]netip.AddrPort{}, told: make(chan struct{}, 16)}
	for _, k := range watched {
		f.watched[k] = true
	}
	return f
}

func (f *fakeSensor) Watched(key routing.ID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watched[key]
}

func (f *fakeSensor) Peers(_ context.Context, key routing.ID, peers map[netip.AddrPort]dhtnode.PeerSource) {
	f.mu.Lock()
	for p := range peers {
		f.peers[key] = append(f.peers[key], p)
	}
	f.mu.Unlock()
	f.told <- struct{}{}
}

func (f *fakeSensor) Watch(hashkind.Hash, []observe.Match, string, []byte) error { return nil }
func (f *fakeSensor) IsSelf(netip.AddrPort) bool                                 { return false }

func (f *fakeSensor) named(key routing.ID) []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]netip.AddrPort(nil), f.peers[key]...)
}

// dhtEvents is a DHT handler that watches nothing: the identities here
// only send discovery's queries.
type dhtEvents struct{}

func (dhtEvents) Watched(krpc.ID) bool                                                           { return false }
func (dhtEvents) GetPeers(context.Context, dhtnode.Query)                                        {}
func (dhtEvents) Announce(context.Context, dhtnode.Announce)                                     {}
func (dhtEvents) RepollPeers(context.Context, routing.ID, map[netip.AddrPort]dhtnode.PeerSource) {}

// startDiscoverer runs lab-timed DHT identities against bootstrap and a
// Discoverer over them (not running: the test drives it), with sensor as
// its sensor.
func startDiscoverer(t *testing.T, ctx context.Context, bootstrap []netip.AddrPort, sensor Sensor) (*Discoverer, *dhtnode.DHT) {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	listen := netip.MustParseAddr("127.0.0.1")
	lim := netlimit.New(netlimit.Unlimited())
	dht, err := dhtnode.New(dhtnode.Config{Listen: []netip.Addr{listen}, Identities: 2, Bootstrap: bootstrap,
		Alpha: 3, QueryTimeout: time.Second, RefreshEvery: 30 * time.Second, LookupConcurrency: 4,
		LookupEvery: 2 * time.Second}, g, lim, dhtEvents{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := dht.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- dht.Run(dctx, make(chan struct{})) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("dht: %v", err)
		}
	})
	pr, err := probe.New(probe.Config{Listen: []netip.Addr{listen}}, g)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Concurrency: 32, FetchWorkers: 32, Queue: 1 << 16, MinInterval: 200 * time.Millisecond,
		MaxNodes: 100_000, SeenCapacity: 4_000_000, FetchTimeout: 5 * time.Second, Bootstrap: bootstrap,
		Match: func(hashkind.Hash) []observe.Match { return nil }},
		Parts{DHT: dht, Prober: pr, Guard: g, Limits: lim, Sensor: sensor})
	if err != nil {
		t.Fatal(err)
	}
	return d, dht
}

func randomKey(t *testing.T) routing.ID {
	var k routing.ID
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSampledWatchedHashBypassesSeenSet: a sampled info-hash that is
// watched is never looked up in the seen-set, so a filter that (falsely
// or not) says "seen" cannot drop it: the node is asked for its peers and
// each is handed to the sensor. An unwatched one the filter holds is
// skipped.
func TestSampledWatchedHashBypassesSeenSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	scfg := simdht.DefaultConfig()
	scfg.Nodes = 4
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	watched, unwatched := randomKey(t), randomKey(t)
	peer := netip.MustParseAddrPort("127.250.0.7:6881")
	nw.Preload([]simdht.ID{simdht.ID(watched), simdht.ID(unwatched)},
		func(int) []netip.AddrPort { return []netip.AddrPort{peer} }, 4)
	sensor := newFakeSensor(watched)
	d, dht := startDiscoverer(t, ctx, []netip.AddrPort{nw.Nodes()[0].Addr}, sensor)
	// Both keys are already in the filter, as after a false positive.
	d.seen.testAndAdd(watched)
	d.seen.testAndAdd(unwatched)
	node := nw.Nodes()[1].Addr
	d.consider(ctx, dht.Nodes()[0], watched, node)
	d.consider(ctx, dht.Nodes()[0], unwatched, node)
	select {
	case <-sensor.told:
	case <-ctx.Done():
		t.Fatal("the watched key's peers were not handed to the sensor")
	}
	if got := sensor.named(watched); len(got) != 1 || got[0] != peer {
		t.Fatalf("peers of the watched key %v, want %v", got, peer)
	}
	st := d.Stats()
	if st.SampledWatched != 1 || st.SeenBefore != 1 {
		t.Fatalf("stats: %d sampled watched, %d seen before; want 1 and 1", st.SampledWatched, st.SeenBefore)
	}
	// consider decides in the caller's goroutine: once both calls have
	// returned, anything the unwatched key could have made is told.
	if got := sensor.named(unwatched); len(got) != 0 {
		t.Fatalf("peers of an unwatched key handed to the sensor: %v", got)
	}
}
