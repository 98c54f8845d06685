package bittorrent

import (
	"net/netip"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// A DHT node answers the sensor's get_peers with 512 values (the most a
// reply may carry), all made up; another node names 3. Clients answer
// with at most 100 (libtorrent's dht_max_peers_reply). The code before
// this recorded all 515, each carrying the hostile reply as its
// transcript, and queued a probe of each: one node could flood the
// sensor's output every lookup. Now at most maxValuesPerNode peers a
// node named are recorded and probed; the rest are counted
// (values_excess), and the other node's peers are all recorded.
func TestDHTValuesFloodFromOneNodeIsBounded(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, nil, 1)
	hostile := netip.MustParseAddrPort("127.0.0.9:6881")
	honest := netip.MustParseAddrPort("127.0.0.10:6881")
	peers := map[netip.AddrPort]peerSource{}
	for i := range 512 {
		peers[netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 30, byte(i >> 8), byte(i)}), 6881)] = peerSource{Node: hostile}
	}
	for i := range 3 {
		peers[netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 31, 0, byte(i)}), 6881)] = peerSource{Node: honest}
	}
	s.recordPeers(t.Context(), w, peers)
	byNode := map[netip.AddrPort]int{}
	pub.mu.Lock()
	for _, o := range pub.obs {
		if o.Method != observe.MethodDHTGetPeers {
			continue
		}
		byNode[peers[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)].Node]++
	}
	pub.mu.Unlock()
	if byNode[hostile] == 0 || byNode[hostile] > maxValuesPerNode {
		t.Errorf("%d peers recorded from the node that named 512, want 1 to %d", byNode[hostile], maxValuesPerNode)
	}
	if byNode[honest] != 3 {
		t.Errorf("%d peers recorded from the node that named 3, want 3", byNode[honest])
	}
	if got, want := metricValue(t, s, "vigil_bittorrent_dropped_total", dropValuesExcess), float64(512-byNode[hostile]); got != want {
		t.Errorf("vigil_bittorrent_dropped_total{values_excess} = %v, want %v", got, want)
	}
	if n := len(s.probeQ); n > maxValuesPerNode+3 {
		t.Errorf("%d probes queued, want at most %d", n, maxValuesPerNode+3)
	}
}
