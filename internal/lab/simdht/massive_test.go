package simdht

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// massiveClient sends one query and waits for its answer.
func massiveQuery(t *testing.T, c *net.UDPConn, to netip.AddrPort, q string, a krpc.MsgArgs) (*krpc.Msg, bool) {
	t.Helper()
	b, err := bencode.Marshal(krpc.Msg{T: "aa", Y: krpc.YQuery, Q: q, A: &a})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, false
	}
	if from != to {
		t.Fatalf("reply to a query to %v came from %v", to, from)
	}
	var m krpc.Msg
	if err := bencode.Unmarshal(buf[:n], &m); err != nil {
		t.Fatal(err)
	}
	return &m, true
}

// TestMassiveNodesRouteToTheClosest: a greedy find_node walk through the
// implicit tables of 300,000 nodes ends on the node closest to the
// target, each node answers from its own address, and an announced peer
// is returned by the node that stored it.
func TestMassiveNodesRouteToTheClosest(t *testing.T) {
	if err := LoopbackOnly(); err != nil {
		testenv.Missing(t, "LOOPBACKNS", err.Error())
	}
	ctx := context.Background()
	m, err := StartMassive(ctx, MassiveConfig{Nodes: 300_000, Seed: 3, Port: 16881})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for trial := range 5 {
		var target ID
		target[0], target[1], target[7] = byte(trial*53), byte(trial*7+1), 0x42
		// The exact closest: a linear scan.
		best := 0
		for j := range m.Len() {
			if cmpDist(target, m.ids[j], m.ids[best]) < 0 {
				best = j
			}
		}
		at := m.Node(trial * 1000)
		hops := 0
		for ; hops < 40; hops++ {
			r, ok := massiveQuery(t, c, at.Addr, "find_node", krpc.MsgArgs{ID: krpc.ID{1}, Target: target})
			if !ok {
				t.Fatalf("node %v did not answer", at.Addr)
			}
			if len(r.R.Nodes) == 0 {
				t.Fatalf("node %v named no nodes", at.Addr)
			}
			n0 := r.R.Nodes[0]
			if cmpDist(target, n0.ID, at.ID) >= 0 {
				break
			}
			ip, _ := netip.AddrFromSlice(n0.Addr.IP)
			at = NodeInfo{ID: n0.ID, Addr: netip.AddrPortFrom(ip.Unmap(), uint16(n0.Addr.Port))}
		}
		if !bytes.Equal(at.ID[:], m.ids[best][:]) {
			t.Fatalf("trial %d: walk ended on %x after %d hops, closest is %x", trial, at.ID[:4], hops, m.ids[best][:4])
		}
		t.Logf("trial %d: closest reached in %d hops", trial, hops)
	}
	// announce_peer with the token, then get_peers returns the peer.
	n := m.Node(12345)
	r, ok := massiveQuery(t, c, n.Addr, "get_peers", krpc.MsgArgs{ID: krpc.ID{1}, InfoHash: krpc.ID{9}})
	if !ok || r.R.Token == nil {
		t.Fatal("get_peers: no token")
	}
	port := 7000
	if _, ok := massiveQuery(t, c, n.Addr, "announce_peer", krpc.MsgArgs{ID: krpc.ID{1}, InfoHash: krpc.ID{9}, Token: *r.R.Token, Port: &port}); !ok {
		t.Fatal("announce_peer: no answer")
	}
	r, _ = massiveQuery(t, c, n.Addr, "get_peers", krpc.MsgArgs{ID: krpc.ID{1}, InfoHash: krpc.ID{9}})
	if r == nil || len(r.R.Values) != 1 || r.R.Values[0].Port != 7000 {
		t.Fatalf("get_peers after announce: %+v", r)
	}
}

// TestMassiveRefusesANamespaceWithOtherInterfaces: outside a loopback-only
// namespace the wildcard bind is refused.
func TestMassiveRefusesANamespaceWithOtherInterfaces(t *testing.T) {
	if LoopbackOnly() == nil {
		t.Skip("this namespace is loopback only")
	}
	if _, err := StartMassive(context.Background(), MassiveConfig{Nodes: 10}); err == nil {
		t.Fatal("started on a namespace with a non-loopback interface")
	}
}
