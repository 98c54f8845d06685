package lab

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestDHTNodesBeyondTheRealCapAreSimulated(t *testing.T) {
	for _, tc := range []struct {
		nodes, sim, wantReal, wantSim int
	}{
		{50, 0, 50, 0},
		{MaxRealDHTNodes, 0, MaxRealDHTNodes, 0},
		{10_000, 0, MaxRealDHTNodes, 10_000 - MaxRealDHTNodes},
		{4, 100, 4, 100},
	} {
		c := DefaultConfig()
		c.DHTNodes, c.SimDHTNodes = tc.nodes, tc.sim
		if err := c.Validate(); err != nil {
			t.Fatalf("DHTNodes %d SimDHTNodes %d: %v", tc.nodes, tc.sim, err)
		}
		if r, s := c.realAndSimNodes(); r != tc.wantReal || s != tc.wantSim {
			t.Fatalf("DHTNodes %d SimDHTNodes %d: %d real, %d simulated; want %d and %d", tc.nodes, tc.sim, r, s, tc.wantReal, tc.wantSim)
		}
	}
	c := DefaultConfig()
	c.SimDHTNodes = -1
	if err := c.Validate(); err == nil {
		t.Fatal("negative SimDHTNodes validated")
	}
}

// TestSimulatedNodesJoinTheLabDHT: the anacrolix nodes learn the simulated
// ones, and the manifest lists every node.
func TestSimulatedNodesJoinTheLabDHT(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	cfg.DHTNodes, cfg.SimDHTNodes, cfg.Seeders, cfg.Leechers, cfg.Torrents, cfg.Watched, cfg.MovePeers = 4, 200, 1, 0, 1, 0, 0
	cfg.Tracker = false
	l, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Manifest()
	if len(m.DHTNodes) != 204 {
		t.Fatalf("manifest lists %d DHT nodes, want 204", len(m.DHTNodes))
	}
	sim := map[netip.AddrPort]bool{}
	for _, n := range l.SimDHT().Nodes() {
		sim[n.Addr] = true
	}
	for _, n := range l.nodes {
		known := 0
		for _, ni := range n.s.Nodes() {
			if ap := ni.Addr.UDP().AddrPort(); sim[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] {
				known++
			}
		}
		if known < 8 {
			t.Fatalf("anacrolix node %v knows %d simulated nodes, want at least 8", n.addr, known)
		}
	}
	// The seeder's announce reached simulated nodes (they hold its hash).
	if st := l.SimDHT().Stats(); st.Announces == 0 || st.Hashes == 0 {
		t.Fatalf("no announce reached the simulated nodes: %+v", st)
	}
}
