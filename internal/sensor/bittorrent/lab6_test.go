package bittorrent

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// TestSensorFindsWatchedSeedersInAnIPv6Lab runs the sensor against a lab
// on IPv6 only and against one on both families, every IPv6 part on ::1
// (the lab's in-process IPv6 mode, no namespace needed): every seeder of
// every watched torrent is named by a get_peers reply at each of its
// addresses, over that address's family, and probed complete there under
// its v1 info-hash (under a v2 one anacrolix answers nothing a probe can
// record, as TestSensorFindsEveryWatchedSeederInTheLab says). On both
// families the sensor listens on 127.0.0.1 and ::1 at once.
func TestSensorFindsWatchedSeedersInAnIPv6Lab(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	for _, family := range []lab.Family{lab.Family6, lab.FamilyBoth} {
		t.Run("family-"+string(family), func(t *testing.T) { findSeedersOn(t, family) })
	}
}

func findSeedersOn(t *testing.T, family lab.Family) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lcfg := lab.DefaultConfig()
	lcfg.DHTNodes, lcfg.Seeders, lcfg.Leechers, lcfg.Torrents, lcfg.Watched = 24, 5, 0, 8, 4
	lcfg.MovePeers = 0
	lcfg.Family, lcfg.IPv6 = family, lab.IPv6Loopback
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Manifest()

	f, err := os.Open(m.Watchlist)
	if err != nil {
		t.Fatal(err)
	}
	res, err := watchlist.Parse(f, watchlist.ParseOptions{File: m.Watchlist})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ws []Watched
	watched := map[[20]byte]bool{}
	for _, e := range res.Entries {
		ws = append(ws, Watched{Hash: e.Hash, Matched: []observe.Match{{List: "lab6", Category: e.Category}}})
		watched[Key(e.Hash)] = true
	}
	type pair struct {
		addr netip.AddrPort
		h    hashkind.Hash
	}
	named, probed := map[pair]bool{}, map[pair]bool{}
	for _, p := range m.Peers {
		addrs := []string{p.Addr}
		if family == lab.FamilyBoth {
			addrs = append(addrs, p.Addr6)
		}
		for _, a := range addrs {
			ap := netip.MustParseAddrPort(a)
			if family == lab.Family6 && !ap.Addr().Is6() {
				t.Fatalf("peer %s of an IPv6 lab", ap)
			}
			for _, ih := range p.Infohashes {
				kind := hashkind.BTIH
				if len(ih) == 64 {
					kind = hashkind.BTIH2
				}
				h, err := hashkind.Parse(ih, kind)
				if err != nil {
					t.Fatal(err)
				}
				if watched[Key(h)] {
					named[pair{ap, h}] = true
					if kind == hashkind.BTIH {
						probed[pair{ap, h}] = true
					}
				}
			}
		}
	}
	if len(probed) == 0 {
		t.Fatal("the lab has no seeder of a watched v1 torrent")
	}

	cfg := LabConfig()
	setListen(&cfg, netip.IPv6Loopback())
	if family == lab.FamilyBoth {
		cfg.ListenAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	cfg.Identities = 4
	cfg.LookupEvery = 3 * time.Second
	cfg.Bootstrap = l.Bootstrap()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := newCollector()
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
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sensor: %v", err)
		}
	}()
	left := func(want map[pair]bool, method string, ok func(observe.Observation) bool) int {
		n := len(want)
		seen := map[pair]bool{}
		for _, o := range pub.byMethod(method) {
			p := pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), o.Item.Hash}
			if want[p] && !seen[p] && ok(o) {
				seen[p] = true
				n--
			}
		}
		return n
	}
	getPeers := func(o observe.Observation) bool { return o.Endpoint.Transport == "tcp" }
	complete := func(o observe.Observation) bool {
		return o.Possession.Level == observe.Complete && o.Possession.PiecesTotal > 0 &&
			o.Possession.PiecesHave == o.Possession.PiecesTotal && o.Client.Name == "anacrolix/torrent"
	}
	for {
		a, b := left(named, observe.MethodDHTGetPeers, getPeers), left(probed, observe.MethodPeerProbe, complete)
		if a == 0 && b == 0 {
			break
		}
		select {
		case <-ctx.Done():
			st := s.Stats()
			t.Fatalf("%d of %d (seeder, watched hash) pairs not named by get_peers, %d of %d not probed complete; sensor: %d routing nodes, %d lookups, %d probes",
				a, len(named), b, len(probed), st.RoutingNodes, st.Lookups, st.Probes)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
