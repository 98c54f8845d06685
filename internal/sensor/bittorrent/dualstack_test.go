package bittorrent

// Issue 18: the sensor on IPv4 and IPv6 at once (BEP 32), on 127.0.0.1
// and ::1, which lab scope allows. Scripted DHT nodes check what goes on
// the wire of each family; the last test runs a lab of third-party
// (anacrolix) DHT nodes and seeders on both families.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
	"github.com/vigil-oss/vigil/internal/testenv"
)

var (
	v4Loopback = netip.MustParseAddr("127.0.0.1")
	v6Loopback = netip.MustParseAddr("::1")
)

// needIPv6 skips a test on a machine without an IPv6 loopback, or fails it
// when VIGIL_REQUIRE_IPV6=1 (CI).
func needIPv6(t testing.TB) {
	t.Helper()
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err == nil {
		c.Close()
		return
	}
	testenv.Missingf(t, "IPV6", "no IPv6 loopback (::1): %v", err)
}

// scriptedQuery is a query a scriptedNode received.
type scriptedQuery struct {
	method krpc.Method
	want   krpc.Want
	target krpc.ID // info-hash or target
	from   netip.AddrPort
}

// scriptedNode is a DHT node on a UDP socket that answers every query from
// a script: get_peers with the values (raw compact strings, so that a test
// can send the 18-byte IPv4-mapped form) and nodes the script gives, other
// queries with its id and the same nodes.
type scriptedNode struct {
	t    testing.TB
	conn *net.UDPConn
	id   krpc.ID
	addr netip.AddrPort

	mu      sync.Mutex
	queries []scriptedQuery
	// values for get_peers of any info-hash; nodes and nodes6 for every
	// answer.
	values        [][]byte
	nodes, nodes6 []krpc.NodeInfo
}

func startScriptedNode(t testing.TB, ip netip.Addr) *scriptedNode {
	t.Helper()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	n := &scriptedNode{t: t, conn: c, id: randomID(), addr: ap}
	go n.serve()
	return n
}

func (n *scriptedNode) set(f func(n *scriptedNode)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	f(n)
}

func (n *scriptedNode) received() []scriptedQuery {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.queries)
}

func (n *scriptedNode) serve() {
	buf := make([]byte, 4096)
	for {
		sz, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var q krpc.Msg
		if q.Decode(append([]byte(nil), buf[:sz]...)) != nil || q.Kind != krpc.KindQuery {
			continue
		}
		n.mu.Lock()
		target := q.A.Target
		if q.Method == krpc.MethodGetPeers {
			target = q.A.InfoHash
		}
		n.queries = append(n.queries, scriptedQuery{method: q.Method, want: q.A.Want, target: target, from: from})
		var values [][]byte
		if q.Method == krpc.MethodGetPeers {
			values = n.values
		}
		out := rawAnswer(q.T, n.id, n.nodes, n.nodes6, values)
		n.mu.Unlock()
		_, _ = n.conn.WriteToUDPAddrPort(out, from)
	}
}

// rawAnswer encodes a KRPC response by hand (keys in order), so that
// values may be of any compact form.
func rawAnswer(tid []byte, id krpc.ID, nodes, nodes6 []krpc.NodeInfo, values [][]byte) []byte {
	b := []byte("d1:rd2:id20:")
	b = append(b, id[:]...)
	if len(nodes) > 0 {
		b = fmt.Appendf(b, "5:nodes%d:", 26*len(nodes))
		for _, ni := range nodes {
			a := ni.Addr.Addr().As4()
			b = append(b, ni.ID[:]...)
			b = append(b, a[:]...)
			b = binary.BigEndian.AppendUint16(b, ni.Addr.Port())
		}
	}
	if len(nodes6) > 0 {
		b = fmt.Appendf(b, "6:nodes6%d:", 38*len(nodes6))
		for _, ni := range nodes6 {
			a := ni.Addr.Addr().As16()
			b = append(b, ni.ID[:]...)
			b = append(b, a[:]...)
			b = binary.BigEndian.AppendUint16(b, ni.Addr.Port())
		}
	}
	b = append(b, "5:token3:tok"...)
	if len(values) > 0 {
		b = append(b, "6:valuesl"...)
		for _, v := range values {
			b = fmt.Appendf(b, "%d:", len(v))
			b = append(b, v...)
		}
		b = append(b, 'e')
	}
	b = fmt.Appendf(b, "e1:t%d:", len(tid))
	b = append(b, tid...)
	return append(b, "1:y1:re"...)
}

// compact6 is a peer in the 18-byte form; an IPv4 address goes IPv4-mapped
// (NOTES.md: lab nodes answering want n6 send IPv4 peers so).
func compact6(ap netip.AddrPort) []byte {
	a := ap.Addr().As16()
	return binary.BigEndian.AppendUint16(a[:], ap.Port())
}

// compact4 is a peer in the 6-byte form.
func compact4(ap netip.AddrPort) []byte {
	a := ap.Addr().As4()
	return binary.BigEndian.AppendUint16(a[:], ap.Port())
}

// startDualSensor runs a sensor on 127.0.0.1 and ::1, two identities on
// each, probes and re-polls off unless mod turns them on.
func startDualSensor(t *testing.T, pub *collector, boot []netip.AddrPort, mod func(*Config), watched ...Watched) *Sensor {
	t.Helper()
	cfg := LabConfig()
	cfg.ListenAddrs = []netip.Addr{v4Loopback, v6Loopback}
	cfg.Identities, cfg.Probe, cfg.Repolls = 2, false, 0
	cfg.LookupEvery = 2 * time.Second
	cfg.Bootstrap = boot
	if mod != nil {
		mod(&cfg)
	}
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(watched...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("sensor Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("sensor did not start its identities")
	}
	return s
}

// waitUntil polls cond every 20 ms until it holds or d has passed.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A dual-stack sensor runs identities on both addresses, looks each
// watched info-hash up in both families' DHTs, asking for n4 and n6, each
// from its identity of the node's family; it records the values of both
// families, IPv4-mapped 18-byte peers as IPv4, each under the node that
// sent it, with the sensor's address of the peer's family as vantage; each
// family's answering nodes are in that family's routing tables only; and
// it answers find_node with nodes of the families wanted.
func TestDualStackLooksUpBothFamilies(t *testing.T) {
	needIPv6(t)
	n4 := startScriptedNode(t, v4Loopback)
	n6 := startScriptedNode(t, v6Loopback)
	mapped := netip.MustParseAddrPort("127.0.0.5:6881")
	plain := netip.MustParseAddrPort("127.0.0.6:6881")
	mappedBy6 := netip.MustParseAddrPort("127.0.0.7:6881")
	six := netip.MustParseAddrPort("[::1]:7001")
	n4.set(func(n *scriptedNode) {
		n.values = [][]byte{compact6(netip.AddrPortFrom(netip.AddrFrom16(mapped.Addr().As16()), mapped.Port())), compact4(plain)}
	})
	n6.set(func(n *scriptedNode) { n.values = [][]byte{compact6(six), compact6(mappedBy6)} })
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}
	pub := newCollector()
	s := startDualSensor(t, pub, []netip.AddrPort{n4.addr, n6.addr}, nil, w)

	var v4ids, v6ids int
	for _, a := range s.Addrs() {
		switch a.Addr() {
		case v4Loopback:
			v4ids++
		case v6Loopback:
			v6ids++
		default:
			t.Fatalf("identity on %v", a)
		}
	}
	if v4ids != 2 || v6ids != 2 {
		t.Fatalf("%d identities on 127.0.0.1 and %d on ::1, want 2 each", v4ids, v6ids)
	}

	want := map[netip.AddrPort]netip.AddrPort{mapped: n4.addr, plain: n4.addr, mappedBy6: n6.addr, six: n6.addr}
	byPeer := map[netip.AddrPort]observe.Observation{}
	waitUntil(t, 10*time.Second, "not every value of both families was recorded", func() bool {
		for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
			byPeer[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)] = o
		}
		for p := range want {
			if _, ok := byPeer[p]; !ok {
				return false
			}
		}
		return true
	})
	for p, node := range want {
		o := byPeer[p]
		if o.Endpoint.IP.Is4In6() || o.Endpoint.IP.Is4() != p.Addr().Is4() {
			t.Errorf("%v recorded as %v", p, o.Endpoint.IP)
		}
		recs := dhtRecords(t, o.Transcript.Bytes)
		if len(recs) != 2 || recs[0].peer != node.String() || recs[1].peer != node.String() {
			t.Errorf("%v: transcript records %+v, want the get_peers to and the answer from %v", p, recs, node)
		}
		wantVantage := "127.0.0.1"
		if p.Addr().Is6() {
			wantVantage = "::1"
		}
		if o.Sensor.Vantage != wantVantage || o.Endpoint.Local.IsValid() {
			t.Errorf("%v: vantage %q local %v, want %q and none (a third party named it)", p, o.Sensor.Vantage, o.Endpoint.Local, wantVantage)
		}
	}
	// The exported form carries the usual text of each address.
	var line bytes.Buffer
	enc := observe.NewEncoder(&line)
	o6 := byPeer[six]
	if err := enc.Encode(&o6); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(line.String(), `"ip":"::1"`) || !strings.Contains(line.String(), `"vantage":"::1"`) {
		t.Errorf("JSON line %s lacks the IPv6 address as text", line.String())
	}

	// Each node heard only from the sensor's identity of its family, and
	// lookups asked for both families.
	key := krpc.ID(Key(w.Hash))
	for _, n := range []*scriptedNode{n4, n6} {
		sawLookup := false
		for _, q := range n.received() {
			if q.from.Addr() != n.addr.Addr() {
				t.Errorf("node %v queried from %v: another family's socket", n.addr, q.from)
			}
			if q.method == krpc.MethodGetPeers && q.target == key {
				sawLookup = true
				if q.want != krpc.WantN4|krpc.WantN6 {
					t.Errorf("get_peers to %v wants %v, want n4 and n6", n.addr, q.want)
				}
			}
		}
		if !sawLookup {
			t.Errorf("no lookup reached %v", n.addr)
		}
	}
	// Each family's nodes are in its own identities' tables.
	st := s.Stats()
	if st.Families[familyIPv4].RoutingNodes == 0 || st.Families[familyIPv6].RoutingNodes == 0 {
		t.Fatalf("routing nodes by family %+v: want both filled", st.Families)
	}
	for _, n := range s.dht.Nodes() {
		for _, nd := range n.Closest(routing.ID{}, 1000, time.Now()) {
			if nd.Addr.Addr().Is6() != n.Is6() {
				t.Errorf("identity on %v holds %v in its table", n.Addr(), nd.Addr)
			}
		}
	}
	mv := metricValues(t, s)
	if mv["vigil_bittorrent_family_routing_nodes{ipv6}"] == 0 || mv["vigil_bittorrent_dht_family_packets_sent_total{ipv4}"] == 0 ||
		mv["vigil_bittorrent_family_identities{ipv6}"] != 2 || mv["vigil_bittorrent_dht_packets_sent_total"] == 0 {
		t.Errorf("metrics by family missing or zero: %v", mv)
	}

	// find_node answers give the families wanted, the querier's without a
	// want.
	for _, c := range []struct {
		client        netip.Addr
		want          krpc.Want
		nodes, nodes6 bool
	}{
		{v4Loopback, 0, true, false},
		{v4Loopback, krpc.WantN4 | krpc.WantN6, true, true},
		{v6Loopback, 0, false, true},
		{v6Loopback, krpc.WantN4, true, false},
	} {
		conn := udpSocket(t, c.client.String())
		var to netip.AddrPort
		for _, a := range s.Addrs() {
			if a.Addr() == c.client {
				to = a
			}
		}
		q := &krpc.Msg{T: []byte("fn"), Kind: krpc.KindQuery, Method: krpc.MethodFindNode}
		q.A.ID, q.A.Target, q.A.Want = randomID(), randomID(), c.want
		r := dhtClient(t, conn, to, q)
		if (len(r.R.Nodes) > 0) != c.nodes || (len(r.R.Nodes6) > 0) != c.nodes6 {
			t.Errorf("find_node from %v want %v: %d nodes, %d nodes6", c.client, c.want, len(r.R.Nodes), len(r.R.Nodes6))
		}
		for _, ni := range r.R.Nodes6 {
			if ni.Addr.Addr().Is4() {
				t.Errorf("an IPv4 node %v in nodes6", ni.Addr)
			}
		}
	}
}

// Where only one family's bootstrap nodes answer, the other family's
// identities start from the nodes of their family named in the first
// family's answers (BEP 32 want): a node of IPv6 named in nodes6 over
// IPv4 is asked from the sensor's IPv6 address, goes into an IPv6 table
// once it answers, and its peers are recorded.
func TestDualStackJoinsIPv6ThroughNodesHeardOverIPv4(t *testing.T) {
	needIPv6(t)
	n4 := startScriptedNode(t, v4Loopback)
	n6 := startScriptedNode(t, v6Loopback)
	six := netip.MustParseAddrPort("[::1]:7002")
	n4.set(func(n *scriptedNode) { n.nodes6 = []krpc.NodeInfo{{ID: n6.id, Addr: n6.addr}} })
	n6.set(func(n *scriptedNode) { n.values = [][]byte{compact6(six)} })
	w := Watched{Hash: randomHash(t, hashkind.BTIH)}
	pub := newCollector()
	s := startDualSensor(t, pub, []netip.AddrPort{n4.addr}, nil, w)
	waitUntil(t, 10*time.Second, "the IPv6 node's peer was not recorded", func() bool {
		for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
			if netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == six {
				return true
			}
		}
		return false
	})
	for _, q := range n6.received() {
		if q.from.Addr() != v6Loopback {
			t.Fatalf("the IPv6 node was asked from %v", q.from)
		}
	}
	waitUntil(t, 5*time.Second, "the IPv6 node is in no IPv6 routing table", func() bool {
		return s.Stats().Families[familyIPv6].RoutingNodes > 0
	})
}

// A sensor of one family never dials a peer of the other: the peer is
// counted as dropped (no_listen_address_for_family) and nothing reaches
// it, while the claim that named it is still recorded.
func TestPeerOfAFamilyWithoutListenAddressIsNotDialled(t *testing.T) {
	needIPv6(t)
	for _, c := range []struct {
		listen netip.Addr
		peerAt string
	}{
		{v4Loopback, "[::1]:0"},
		{v6Loopback, "127.0.0.1:0"},
	} {
		t.Run(c.listen.String(), func(t *testing.T) {
			ln, err := net.Listen("tcp", c.peerAt)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			peer := netip.MustParseAddrPort(ln.Addr().String())
			s, pub := hostileSensorOn(t, c.listen)
			w := watchedTorrent(t, s, 4)
			s.recordPeers(t.Context(), w, map[netip.AddrPort]peerSource{peer: {Node: netip.MustParseAddrPort("127.0.0.9:6881")}})
			if got := pub.byMethod(observe.MethodDHTGetPeers); len(got) != 1 {
				t.Fatalf("%d dht_get_peers observations, want the claim recorded", len(got))
			}
			if got := s.Dropped()[dropNoListenFamily]; got != 1 {
				t.Fatalf("drops %v, want one %s", s.Dropped(), dropNoListenFamily)
			}
			if len(s.probeQ) != 0 {
				t.Fatal("a probe of the other family's peer was queued")
			}
			if _, err := s.prober.Dial(t.Context(), transportTCP, peer); err == nil || !strings.Contains(err.Error(), "no listen address") {
				t.Fatalf("Dial = %v, want a refusal", err)
			}
			if _, err := s.prober.Dial(t.Context(), transportUTP, peer); err == nil {
				t.Fatal("Dial over uTP dialled the other family")
			}
			_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
			if c, err := ln.Accept(); err == nil {
				c.Close()
				t.Fatal("the peer of the other family was dialled")
			}
		})
	}
}

// An answer forged from another IPv6 address, with the right transaction
// id, is dropped and counted as over IPv4; the real answer from the node
// queried is taken.
func TestIPv6ForgedAnswerFromAnotherAddressIsDropped(t *testing.T) {
	needIPv6(t)
	silent := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9"), netip.MustParseAddrPort("[::1]:9")}
	s := startDualSensor(t, newCollector(), silent, nil)
	node := udpSocket(t, "::1")
	forger := udpSocket(t, "::1")
	n := s.dht.IdentityFor(v6Loopback, 0)
	type result struct {
		r   *krpc.Msg
		raw dhtnode.Reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		q := &krpc.Msg{Method: krpc.MethodGetPeers}
		q.A.InfoHash = randomID()
		r, raw, err := n.Query(context.Background(), udpAddrOf(node), q)
		done <- result{r, raw, err}
	}()
	q, from := readQuery(t, node, krpc.MethodGetPeers)
	if from != n.Addr() {
		t.Fatalf("query from %v, want the IPv6 identity %v", from, n.Addr())
	}
	sendAnswer(t, forger, from, q.T, randomID(), netip.MustParseAddrPort("[::1]:6666"))
	waitUntil(t, 5*time.Second, "the forged answer was not counted", func() bool {
		return metricValues(t, s)["vigil_bittorrent_dht_replies_dropped_total{wrong_source}"] == 1
	})
	real := netip.MustParseAddrPort("[::1]:7777")
	nodeID := randomID()
	sendAnswer(t, node, from, q.T, nodeID, real)
	res := <-done
	if res.err != nil {
		t.Fatalf("query: %v", res.err)
	}
	if res.raw.From != udpAddrOf(node) || res.r.R.ID != nodeID || len(res.r.R.Values) != 1 || res.r.R.Values[0] != real {
		t.Fatalf("answer from %v id %x values %v, want the node queried's", res.raw.From, res.r.R.ID, res.r.R.Values)
	}
	// A query to a node of the other family is never sent from this socket.
	if _, _, err := n.Query(context.Background(), netip.MustParseAddrPort("127.0.0.1:9"), &krpc.Msg{Method: krpc.MethodPing}); !errors.Is(err, dhtnode.ErrWrongFamily) {
		t.Fatalf("IPv6 identity querying an IPv4 node: %v, want errWrongFamily", err)
	}
}

// The liar of issue 10 over IPv6: bitfield 80 3F FF for a 10-piece
// torrent is still at most partial 1/10, marked; the probe went from the
// sensor's IPv6 address.
func TestIPv6BitfieldLiarIsCapped(t *testing.T) {
	needIPv6(t)
	s, pub := hostileSensorOn(t, v4Loopback, v6Loopback)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeerOn(t, "[::1]:0", func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x3f, 0xff}})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	wantPossession(t, o, observe.Partial, 1, 10, observe.MarkMalformedBitfield)
	if o.Endpoint.IP != v6Loopback || o.Endpoint.Local.Addr() != v6Loopback || o.Endpoint.Local.Port() == 0 || o.Sensor.Vantage != "::1" {
		t.Fatalf("endpoint %v, sensor address %v, vantage %q: want ::1 on both ends", o.Endpoint.IP, o.Endpoint.Local, o.Sensor.Vantage)
	}
}

// PEX added6 over IPv6 (BEP 11): a peer named with the uTP flag is
// recorded as a uTP endpoint and probed over uTP first, as for added; the
// sensor's own IPv6 source address and port, passed back, is neither
// recorded nor probed, and the drop is counted; dropped6 records nothing.
func TestIPv6PEXAdded6HonoursFlagsAndNeverTheSensor(t *testing.T) {
	needIPv6(t)
	s, pub := hostileSensorOn(t, v4Loopback, v6Loopback)
	w := watchedTorrent(t, s, 10)
	other := netip.MustParseAddrPort("[::1]:7003")
	plain := netip.MustParseAddrPort("[::1]:7005")
	gone := netip.MustParseAddrPort("[::1]:7004")
	seen := make(chan netip.AddrPort, 1)
	peer := hostilePeerOn(t, "[::1]:0", func(c net.Conn, h peerwire.Handshake) []byte {
		sensorAddr := netip.MustParseAddrPort(c.RemoteAddr().String())
		seen <- sensorAddr
		x := peerwire.PEX{
			Added6:   []peerwire.PEXPeer{{Addr: sensorAddr}, {Addr: other, Flags: peerwire.PEXUTP | peerwire.PEXSeed}, {Addr: plain}},
			Dropped6: []netip.AddrPort{gone},
		}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	probes, others := probeNow(t, s, pub, peer, w)
	sensorAddr := <-seen
	if p := oneProbe(t, probes); p.Endpoint.Local != sensorAddr {
		t.Fatalf("probe's sensor address %v, want %v", p.Endpoint.Local, sensorAddr)
	}
	got := map[netip.AddrPort]string{}
	for _, o := range others {
		if o.Method != observe.MethodPEX || !o.HasMark(observe.MarkThirdParty) {
			t.Fatalf("%s observation, marks %v", o.Method, o.Marks)
		}
		got[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)] = o.Endpoint.Transport
	}
	if len(got) != 2 || got[other] != transportUTP || got[plain] != transportTCP {
		t.Fatalf("pex observations %v, want %v over utp and %v over tcp only", got, other, plain)
	}
	if d := s.Dropped()[dropSelfConnection]; d < 1 {
		t.Fatalf("drops %v: the sensor's own IPv6 address is not counted", s.Dropped())
	}
	queued := map[netip.AddrPort]string{}
	for len(s.probeQ) > 0 {
		j := <-s.probeQ
		queued[j.peer] = j.transport
	}
	if _, ok := queued[sensorAddr]; ok {
		t.Fatal("the sensor queued a probe of itself")
	}
	if queued[other] != transportUTP || queued[plain] != transportTCP {
		t.Fatalf("probes queued %v, want %v over uTP first, %v over TCP", queued, other, plain)
	}
}

// A tracker reached over IPv6 lists the sensor at the address that
// reached it and the port it announced: that listing must name one of the
// sensor's identities, and is dropped. Issue 18 saw the sensor's own IPv6
// address come back 49 times in 90 s. Before the fix the sensor
// announced the port of its first identity, an IPv4 one, from its IPv6
// address, and recorded [::1]:that-port as a peer. The HTTP tracker also
// gives peers6 (BEP 7), an IPv4-mapped one recorded as IPv4.
func TestIPv6TrackerListingTheSensorIsDropped(t *testing.T) {
	needIPv6(t)
	listed := netip.MustParseAddrPort("[::1]:51413")
	mappedPeer := netip.MustParseAddrPort("127.0.0.8:6881")
	type announce struct {
		from netip.AddrPort
		port uint16
	}
	var mu sync.Mutex
	var announces []announce
	// A UDP tracker on ::1 (BEP 15: 18-byte peers over IPv6).
	pc := udpSocket(t, "::1")
	go serveUDPTracker(pc, 0, true, func(from netip.AddrPort, a tracker.AnnounceRequest) tracker.AnnounceResponse {
		mu.Lock()
		announces = append(announces, announce{from, a.Port})
		mu.Unlock()
		self := netip.AddrPortFrom(from.Addr(), a.Port)
		return tracker.AnnounceResponse{Interval: 1800, Peers: []netip.AddrPort{self, listed, mappedPeer}}
	})
	// An HTTP tracker on ::1 whose answer gives peers6 (BEP 7).
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	httpPeer := netip.MustParseAddrPort("[::1]:7006")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				from := netip.MustParseAddrPort(c.RemoteAddr().String())
				port, _ := strconv.Atoi(req.URL.Query().Get("port"))
				mu.Lock()
				announces = append(announces, announce{from, uint16(port)})
				mu.Unlock()
				self := netip.AddrPortFrom(from.Addr(), uint16(port))
				var p6 []byte
				for _, p := range []netip.AddrPort{self, httpPeer, mappedPeer} {
					p6 = append(p6, compact6(netip.AddrPortFrom(netip.AddrFrom16(p.Addr().As16()), p.Port()))...)
				}
				body := fmt.Sprintf("d8:intervali1800e5:peers0:6:peers6%d:%se", len(p6), p6)
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
			}()
		}
	}()
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}},
		Trackers: []string{"udp://" + udpAddrOf(pc).String(), "http://" + ln.Addr().String() + "/announce"}}
	silent := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9"), netip.MustParseAddrPort("[::1]:9")}
	s := startDualSensor(t, pub, silent, nil, w)
	want := map[netip.AddrPort]bool{listed: true, mappedPeer: true, httpPeer: true}
	got := map[netip.AddrPort]bool{}
	waitUntil(t, 10*time.Second, "the trackers' peers were not recorded", func() bool {
		for _, o := range pub.byMethod(observe.MethodTracker) {
			got[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)] = true
		}
		return len(got) >= len(want)
	})
	v6id := s.dht.IdentityFor(v6Loopback, 0).Addr()
	for p := range got {
		if !want[p] {
			t.Errorf("recorded %v; the sensor's IPv6 identity is %v", p, v6id)
		}
	}
	mu.Lock()
	for _, a := range announces {
		if a.from.Addr() != v6Loopback || a.port != v6id.Port() {
			t.Errorf("announce from %v with port %d, want from ::1 with the IPv6 identity's port %d", a.from, a.port, v6id.Port())
		}
	}
	mu.Unlock()
	if d := s.Dropped()[dropSelfListen]; d < 2 {
		t.Fatalf("drops %v: the two trackers' listings of the sensor are not counted", s.Dropped())
	}
}

// A DHT node naming the sensor's own IPv6 identity as a peer is not
// recorded (self_listen), as over IPv4.
func TestIPv6DHTValueNamingTheSensorIsDropped(t *testing.T) {
	needIPv6(t)
	n6 := startScriptedNode(t, v6Loopback)
	w := Watched{Hash: randomHash(t, hashkind.BTIH)}
	pub := newCollector()
	other := netip.MustParseAddrPort("[::1]:7008")
	s := startDualSensor(t, pub, []netip.AddrPort{n6.addr}, func(c *Config) { c.LookupEvery = time.Hour }, w)
	own := s.dht.IdentityFor(v6Loopback, 1).Addr()
	n6.set(func(n *scriptedNode) { n.values = [][]byte{compact6(own), compact6(other)} })
	s.lookupPeers(t.Context(), Key(w.Hash))
	obs := pub.byMethod(observe.MethodDHTGetPeers)
	for _, o := range obs {
		if netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == own {
			t.Fatalf("the sensor's own identity %v recorded as a peer", own)
		}
	}
	if len(obs) == 0 || s.Dropped()[dropSelfListen] == 0 {
		t.Fatalf("%d observations, drops %v: want %v recorded and the sensor's own dropped", len(obs), s.Dropped(), other)
	}
}

// startLabNodes starts n anacrolix/dht nodes on ip (one family), each
// told of the first three, and bootstraps them: one family's DHT of a
// third-party library, in-process.
func startLabNodes(t *testing.T, ctx context.Context, ip netip.Addr, n int) []netip.AddrPort {
	t.Helper()
	network := "udp4"
	if ip.Is6() {
		network = "udp6"
	}
	var conns []*net.UDPConn
	var addrs []netip.AddrPort
	for range n {
		c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
		addrs = append(addrs, ap)
	}
	var servers []*adht.Server
	for _, c := range conns {
		srv, err := adht.NewServer(anacrolixConfig(c, randomID(), addrs[:3]))
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, srv)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			s.Close()
		}
	})
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.BootstrapContext(ctx)
		}()
	}
	wg.Wait()
	return addrs
}

// The sensor on 127.0.0.1 and ::1 at once finds, through a DHT of
// anacrolix nodes on each family, the anacrolix seeders of each family
// (one torrent seeded on both), and probes each from its own address of
// the seeder's family: every seeder is named by the DHT and found
// complete, first-hand, with the sensor's end of the connection of that
// family.
func TestDualStackSensorFindsSeedersOfBothFamiliesInALab(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	needIPv6(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes4 := startLabNodes(t, ctx, v4Loopback, 12)
	nodes6 := startLabNodes(t, ctx, v6Loopback, 12)
	seeders := []seeder{
		startSeederOn(t, seederOpts{host: v4Loopback, tcp: true, dht: nodes4[:3]}),
		startSeederOn(t, seederOpts{host: v6Loopback, tcp: true, dht: nodes6[:3]}),
	}
	// The first torrent seeded over IPv6 too, by a third client.
	seeders = append(seeders, startSeederOn(t, seederOpts{host: v6Loopback, tcp: true, dht: nodes6[:3], data: seeders[0].data}))
	if seeders[2].hash != seeders[0].hash {
		t.Fatal("the same data made another torrent")
	}
	var ws []Watched
	for _, sd := range seeders[:2] {
		ws = append(ws, Watched{Hash: sd.hash, Matched: []observe.Match{{List: "lab"}}})
	}
	pub := newCollector()
	s := startDualSensor(t, pub, []netip.AddrPort{nodes4[0], nodes4[1], nodes6[0], nodes6[1]}, func(c *Config) {
		c.Probe, c.LookupEvery = true, 3*time.Second
	}, ws...)
	type pair struct {
		addr netip.AddrPort
		h    hashkind.Hash
	}
	want := map[pair]bool{}
	for _, sd := range seeders {
		want[pair{sd.addr, sd.hash}] = true
	}
	missing := func(method string, ok func(observe.Observation) bool) []pair {
		left := maps.Clone(want)
		for _, o := range pub.byMethod(method) {
			p := pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), o.Item.Hash}
			if left[p] && ok(o) {
				delete(left, p)
			}
		}
		return slices.Collect(maps.Keys(left))
	}
	anyObs := func(observe.Observation) bool { return true }
	complete := func(o observe.Observation) bool {
		return o.Possession.Level == observe.Complete && o.Possession.PiecesTotal > 0 &&
			o.Client.Name == "anacrolix/torrent" && o.Endpoint.Local.IsValid() &&
			o.Endpoint.Local.Addr().Is6() == o.Endpoint.IP.Is6() && o.Sensor.Vantage == o.Endpoint.Local.Addr().String()
	}
	for {
		a, b := missing(observe.MethodDHTGetPeers, anyObs), missing(observe.MethodPeerProbe, complete)
		if len(a) == 0 && len(b) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for _, o := range pub.byMethod(observe.MethodPeerProbe) {
				t.Logf("probe %v:%d local %v level %v %d/%d client %q", o.Endpoint.IP, o.Endpoint.Port, o.Endpoint.Local,
					o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal, o.Client.Name)
			}
			t.Fatalf("%d of %d (seeder, torrent) pairs not named by the DHT: %v; %d not probed complete from the right family: %v; stats %+v",
				len(a), len(want), a, len(b), b, s.Stats().Families)
		case <-time.After(300 * time.Millisecond):
		}
	}
	for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
		if o.Endpoint.IP.Is4In6() {
			t.Fatalf("a peer recorded IPv4-mapped: %v", o.Endpoint.IP)
		}
	}
}

// BEP 42 over IPv6 (the first 64 bits of the address, masked): the ids
// the sensor accepts as checked agree with a third party's implementation
// (anacrolix/dht) on random addresses (the ids its identities take for a
// public IPv6 listen address are checked in package dhtnode); an id of another /64 fails, one
// of the same /64 passes, and a node id failing for its IPv6 source is
// marked node_id_unchecked.
func TestBEP42IPv6IdsAgreeWithAnacrolix(t *testing.T) {
	r := mrand.New(mrand.NewPCG(42, 6))
	for range 500 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f // 2000::/3, global unicast
		ip := netip.AddrFrom16(b)
		var theirs akrpc.ID
		for i := range theirs {
			theirs[i] = byte(r.Uint32())
		}
		adht.SecureNodeId(&theirs, ip.AsSlice())
		if !krpc.BEP42Valid(ip, krpc.ID(theirs)) || !nodeIDChecked(krpc.ID(theirs), ip) {
			t.Fatalf("anacrolix's secure id %x for %v fails our check", theirs, ip)
		}
		same := b
		same[15] ^= 0xff // another host of the /64
		if !krpc.BEP42Valid(netip.AddrFrom16(same), krpc.ID(theirs)) {
			t.Fatalf("%x fails for another host of %v's /64", theirs, ip)
		}
		other := b
		other[7] ^= 0x01 // another /64 (the mask keeps the last bit of byte 7)
		if krpc.BEP42Valid(netip.AddrFrom16(other), krpc.ID(theirs)) {
			t.Fatalf("%x passes for %v, another /64", theirs, netip.AddrFrom16(other))
		}
		var o observe.Observation
		markNodeID(&o, netip.AddrFrom16(other), krpc.ID(theirs))
		if !o.HasMark(observe.MarkNodeIDUnchecked) {
			t.Fatal("an IPv6 node id failing BEP 42 is not marked")
		}
	}
}

// A probe over uTP to an IPv6 peer goes from the sensor's IPv6 address,
// records its end of the conversation and registers it as its own.
func TestIPv6ProbeOverUTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a BitTorrent client; skipped in -short mode")
	}
	needIPv6(t)
	sd := startSeederOn(t, seederOpts{host: v6Loopback, tcp: false})
	s, pub := hostileSensorOn(t, v4Loopback, v6Loopback)
	probes, _ := probeNow(t, s, pub, sd.addr, Watched{Hash: sd.hash})
	o := oneProbe(t, probes)
	if o.Endpoint.Transport != transportUTP || o.Possession.Level < observe.Acknowledged {
		t.Fatalf("transport %q level %v, want utp and at least acknowledged", o.Endpoint.Transport, o.Possession.Level)
	}
	if l := o.Endpoint.Local; l.Addr() != v6Loopback || l.Port() == 0 || o.Sensor.Vantage != "::1" {
		t.Fatalf("sensor address %v vantage %q, want ::1 and the socket's port", l, o.Sensor.Vantage)
	}
	if port, _ := s.self.has(o.Endpoint.Local, s.cfg.Clock()); !port {
		t.Fatal("the IPv6 uTP socket's address is not registered as the sensor's own")
	}
}
