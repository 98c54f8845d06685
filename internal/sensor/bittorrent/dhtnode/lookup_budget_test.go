package dhtnode

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// TestLookupWaitsForThePerAddressBudget: eight lookups of one key at once
// from one identity ask the same nodes, so the per-address budget (here
// one query at once, four a second) refuses most of their queries. A
// refused query sent nothing: the lookup must ask again when the budget
// allows, not take the node for failed and stop short of the nodes that
// hold the key. Before the fix most of the eight found nothing.
func TestLookupWaitsForThePerAddressBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.Seed, scfg.FirstAddr = 300, 5, netip.MustParseAddr("127.13.0.1")
	sim, err := simdht.Start(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	key := routing.ID{0x5a, 0x11, 0x0c}
	peer := netip.MustParseAddrPort("127.14.0.1:6881")
	sim.Preload([]simdht.ID{key}, func(int) []netip.AddrPort { return []netip.AddrPort{peer} }, 8)

	listen := netip.MustParseAddr("127.0.0.1")
	cfg := testConfig(listen)
	for i, n := range sim.Nodes() {
		if i%37 == 0 {
			cfg.Bootstrap = append(cfg.Bootstrap, n.Addr)
		}
	}
	limits := netlimit.DefaultConfig()
	limits.PerAddrPerSecond, limits.PerAddrBurst = 4, 1
	cfg.PerAddrPerSecond = limits.PerAddrPerSecond
	cfg.QueryTimeout = time.Second
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	lim := netlimit.New(limits)
	s, err := New(cfg, g, lim, quietHandler{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.newNode(ctx, 0, spreadIDs(listen, 1)[0], listen)
	if err != nil {
		t.Fatal(err)
	}
	s.nodes = append(s.nodes, n)
	close(s.ready)
	go func() { _ = n.readLoop(ctx) }()
	defer n.conn.Close()

	var wg sync.WaitGroup
	found := make([]bool, 8)
	queries := make([]int, 8)
	for i := range found {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := s.iterate(ctx, n, key, true)
			_, found[i] = res.Peers[peer]
			queries[i] = res.Queries
		}()
	}
	wg.Wait()
	missed := 0
	for _, f := range found {
		if !f {
			missed++
		}
	}
	t.Logf("datagrams a lookup: %v; refused by the per-address budget: %d", queries, lim.Stats().RefusedByAddr)
	if missed > 0 {
		t.Fatalf("%d of 8 concurrent lookups did not find the peer", missed)
	}
}
