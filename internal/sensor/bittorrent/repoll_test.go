package bittorrent

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/announcer"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// TestRepollSeesAnAnnounceBeforeTheNextLookup: on a simulated DHT of 300
// nodes, a peer announces a watched info-hash just after the sensor's
// first lookup of it. With the next lookup 12 s away and re-polls every
// 3 s, the peer must be recorded by a re-poll (one lookup so far) as a
// lookup records it, once, and not again by the following re-polls.
func TestRepollSeesAnAnnounceBeforeTheNextLookup(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.FirstAddr, scfg.Seed = 300, netip.MustParseAddr("127.66.0.1"), 11
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	var boot []netip.AddrPort
	for _, n := range nw.Nodes()[:4] {
		boot = append(boot, n.Addr)
	}

	pub := &lookupStamps{collector: newCollector(), at: map[string]uint64{}}
	cfg := LabConfig()
	cfg.Identities, cfg.Probe, cfg.Bootstrap = 2, false, boot
	cfg.LookupEvery, cfg.Repolls, cfg.RepollNodes = 12*time.Second, 3, 3
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub.s.Store(s)
	var ih [20]byte
	copy(ih[:], randomHash(t, hashkind.BTIH).Bytes())
	if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.BTIH, ih[:])}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sensor Run: %v", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Lookups < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no lookup in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	acfg := announcer.DefaultConfig()
	acfg.Bootstrap = boot
	peerAddr := netip.MustParseAddrPort("127.9.250.1:6881")
	c, err := announcer.Listen(peerAddr, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Announce(ctx, ih, peerAddr.Port())
	if err != nil || res.AnnouncedTo == 0 {
		t.Fatalf("announce: %v (%d nodes took it)", err, res.AnnouncedTo)
	}
	named := func() []observe.Observation {
		var out []observe.Observation
		for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
			if o.Endpoint.Transport == "tcp" && o.Endpoint.IP == peerAddr.Addr() {
				out = append(out, o)
			}
		}
		return out
	}
	for len(named()) == 0 {
		if st := s.Stats(); st.Lookups > 1 {
			t.Fatalf("the peer was not named before the next lookup (%d re-polls sent)", st.Repolls)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A lookup counts itself before it records what it found: one named
	// by the second lookup is seen here with two lookups counted.
	if st := s.Stats(); st.Lookups > 1 || st.RepollPeers != 1 {
		t.Fatalf("the peer was named with %d lookups counted and %d peers from re-polls; want 1 and 1", st.Lookups, st.RepollPeers)
	}
	// The later re-polls run before the next lookup starts: wait for it,
	// and count what was recorded while one lookup was counted.
	for deadline := time.Now().Add(2 * cfg.LookupEvery); s.Stats().Lookups < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no second lookup within %v", 2*cfg.LookupEvery)
		}
	}
	var obs []observe.Observation
	for _, o := range named() {
		if pub.lookupsAt(o.ID) == 1 {
			obs = append(obs, o)
		}
	}
	if st := s.Stats(); st.RepollPeers != 1 || st.Repolls < uint64(cfg.Repolls) {
		t.Errorf("%d re-polls sent, %d new peers from them; want %d or more and 1", st.Repolls, st.RepollPeers, cfg.Repolls)
	}
	if len(obs) != 1 {
		t.Fatalf("%d observations of the peer between two lookups, want 1", len(obs))
	}
	o := obs[0]
	if o.Endpoint.Port != peerAddr.Port() || o.Possession.Level != observe.Announced || Key(o.Item.Hash) != ih || len(o.Transcript.Bytes) == 0 {
		t.Errorf("re-poll observation %+v: want the peer's port, level announced, the watched hash and a transcript", o)
	}
}

// lookupStamps is a publisher that notes, for each observation, how many
// lookups the sensor had counted when it was published (a lookup counts
// itself before it records anything).
type lookupStamps struct {
	*collector
	s  atomic.Pointer[Sensor]
	mu sync.Mutex
	at map[string]uint64 // by observation id
}

func (p *lookupStamps) Publish(ctx context.Context, o observe.Observation) error {
	if s := p.s.Load(); s != nil {
		n := s.Stats().Lookups
		p.mu.Lock()
		p.at[o.ID] = n
		p.mu.Unlock()
	}
	return p.collector.Publish(ctx, o)
}

func (p *lookupStamps) lookupsAt(id string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.at[id]
}

func TestConfigRejectsBadRepolls(t *testing.T) {
	for _, c := range []struct{ repolls, nodes int }{{-1, 3}, {2, 0}, {2, K + 1}, {101, 3}} {
		cfg := LabConfig()
		cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
		cfg.Repolls, cfg.RepollNodes = c.repolls, c.nodes
		if err := cfg.Validate(); err == nil {
			t.Errorf("Repolls %d RepollNodes %d validated", c.repolls, c.nodes)
		}
	}
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	cfg.Repolls, cfg.RepollNodes = 0, 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("re-polls off: %v", err)
	}
}
