package bittorrent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/netns"
	"github.com/vigil-oss/vigil/internal/lab/torrentmake"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// TestSensorFindsTransmissionInANamespace runs Debian's transmission-daemon,
// a third-party client the sensor has never been tuned against, seeding a
// synthetic torrent inside a network namespace with no default route (DHT
// on, port mapping and local peer discovery off), over IPv4 and over IPv6.
// The sensor must find transmission through the DHT alone and probe it:
// client Transmission with its version, level complete; then probe it
// again over uTP. Transmission ignores DHT nodes on loopback (NOTES.md),
// so the test's DHT nodes and the sensor sit at the other end of a veth
// pair, and the scope guard allows exactly the two ends.
//
// IPv4: the other end is the root namespace, the pair 10.250.x.1/.2.
//
// IPv6: two namespaces of the test's own, neither with a default route,
// joined by a veth pair that carries only unique local addresses
// (fd00:0:ff:1::1 and ::2/64, no IPv4; outside every lab place). The test binary runs itself
// again in the first (internal/lab/netns), with the DHT nodes and the
// sensor on its address; transmission runs in the second. Transmission
// 3.00 opens its IPv6 UDP socket (so its IPv6 DHT and uTP) only when it
// has a "global" IPv6 address: the source address the kernel picks for
// 2001:1890:1112:1::20, a host hard-coded in libtransmission/net.c
// (tr_globalIPv6), must be in 2000::/3; with ULA addresses alone it
// listens on TCP over IPv6 but has no IPv6 DHT at all, and never
// announces (tr-udp.c, rebind_ipv6; seen here: no udp6 socket). So its
// namespace's loopback gets a documentation address (2001:db8:76:1::2,
// RFC 3849) and a /128 route to that host through lo: the lookup works,
// nothing is ever sent there, and no packet can leave the namespace.
// bind-address-ipv6 then binds its DHT, uTP and TCP to the ULA address.
//
// It needs root (namespaces, veth), ip(8) and transmission-daemon; .ci/run
// installs them. Elsewhere it skips, naming what is missing, unless
// VIGIL_REQUIRE_NETNS=1 or VIGIL_REQUIRE_TRANSMISSION=1.
func TestSensorFindsTransmissionInANamespace(t *testing.T) {
	t.Run("IPv4", func(t *testing.T) {
		needTransmission(t)
		ns := newTestNetns(t)
		findTransmission(t, trNet{ns: ns.name, host: ns.host, inside: ns.inside})
	})
	t.Run("IPv6", func(t *testing.T) {
		if netns.Child(t) {
			findTransmission(t, trNetFromEnv(t))
			return
		}
		needTransmission(t)
		pair := newTestNetnsPair6(t)
		netns.Run(t, []string{"ip", "netns", "exec", pair.a}, pair.env())
	})
}

// needTransmission skips without root, ip(8) or transmission-daemon (or
// fails: VIGIL_REQUIRE_NETNS=1, VIGIL_REQUIRE_TRANSMISSION=1).
func needTransmission(t *testing.T) {
	t.Helper()
	netns.Need(t, "ip")
	testenv.Need(t, "TRANSMISSION", "transmission-daemon")
}

// trNet is where findTransmission runs: transmission in namespace ns at
// inside; the DHT nodes and the sensor in this process, at host.
type trNet struct {
	ns           string
	host, inside netip.Addr
}

func (n trNet) v6() bool { return n.host.Is6() }

// findTransmission is the test proper, on one network.
func findTransmission(t *testing.T, n trNet) {
	trVersion := transmissionVersion(t)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	hostAddr, nsAddr := n.host, n.inside

	// The synthetic torrent, its data already where transmission will look.
	dir := t.TempDir()
	tor, h, dl := syntheticDownload(t, dir)

	// The lab DHT on the host end. Transmission needs at least 4 good and
	// 9 known nodes before it announces (tr-dht.c, tr_dhtStatus).
	nodes, servers := startDHTNodes(t, hostAddr, 12)

	// Transmission in the namespace, told of the lab nodes through dht.dat,
	// the node list it saves on exit and pings first on start.
	trDir := filepath.Join(dir, "transmission")
	const peerPort, rpcPort = 51413, 9091
	tr := startTransmission(t, n, trDir, dl, nodes, peerPort, rpcPort)
	rpc := &trRPC{url: "http://" + netip.AddrPortFrom(nsAddr, rpcPort).String() + "/transmission/rpc",
		hc: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}}
	waitFor(t, ctx, "transmission's RPC", func() error {
		return rpc.call(ctx, "session-get", map[string]any{}, nil)
	}, tr.log)
	// Each lab node pings transmission's DHT port: a node that queried it
	// counts as known (not yet good) in its table, so it reaches the 9
	// known nodes it waits for sooner than by pinging dht.dat's nodes one
	// every 1 to 3 s. Only the replies to its own pings make nodes good.
	trDHT := net.UDPAddrFromAddrPort(netip.AddrPortFrom(nsAddr, peerPort))
	for _, srv := range servers {
		go srv.Ping(trDHT)
	}
	var added struct {
		Added     *struct{ HashString string } `json:"torrent-added"`
		Duplicate *struct{ HashString string } `json:"torrent-duplicate"`
	}
	if err := rpc.call(ctx, "torrent-add", map[string]any{
		"metainfo": base64.StdEncoding.EncodeToString(tor.MetaInfo), "download-dir": dl,
	}, &added); err != nil {
		t.Fatalf("adding the torrent: %v\n%s", err, tr.log())
	}
	waitFor(t, ctx, "transmission to verify and seed the torrent", func() error { return rpc.seeding(ctx, h) }, tr.log)

	t.Logf("%v: transmission seeds %s", time.Since(start).Round(time.Millisecond), h.Hex())

	// The sensor, on the host end, in scope for exactly the two addresses.
	w := Watched{Hash: h, Matched: []observe.Match{{List: "namespace-test", Category: "synthetic"}}}
	s, pub := startNamespaceSensor(t, ctx, n, nodes, w)

	trPeer := netip.AddrPortFrom(nsAddr, peerPort)
	var probe observe.Observation
	waitFor(t, ctx, "the sensor to find transmission in the DHT and probe it", func() error {
		for _, o := range pub.byMethod(observe.MethodPeerProbe) {
			if netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == trPeer {
				probe = o
				return nil
			}
		}
		var found []string
		for _, m := range []string{observe.MethodDHTGetPeers, observe.MethodDHTAnnounce} {
			for _, o := range pub.byMethod(m) {
				found = append(found, fmt.Sprintf("%s %v:%d", m, o.Endpoint.IP, o.Endpoint.Port))
			}
		}
		st := s.Stats()
		return fmt.Errorf("no probe of %v yet; DHT named %v; sensor: %d routing nodes, %d lookups, %d probes, %d probe failures",
			trPeer, found, st.RoutingNodes, st.Lookups, st.Probes, st.ProbeFailures)
	}, tr.log)

	t.Logf("%v: the sensor probed transmission (found by %s)", time.Since(start).Round(time.Millisecond), probeVia(pub, trPeer))
	check := func(o observe.Observation, transport string) {
		t.Helper()
		if o.Client.Name != "Transmission" || o.Client.Version != trVersion {
			t.Errorf("%s probe: client %q %q, want Transmission %q", transport, o.Client.Name, o.Client.Version, trVersion)
		}
		if o.Possession.Level != observe.Complete || o.Possession.PiecesHave != tor.NumPieces || o.Possession.PiecesTotal != tor.NumPieces {
			t.Errorf("%s probe: possession %v %d/%d, want complete %d/%d", transport, o.Possession.Level,
				o.Possession.PiecesHave, o.Possession.PiecesTotal, tor.NumPieces, tor.NumPieces)
		}
		if o.Endpoint.Transport != transport {
			t.Errorf("probe transport %q, want %q", o.Endpoint.Transport, transport)
		}
		if o.Item.Hash != h {
			t.Errorf("%s probe of %s, want %s", transport, o.Item.Hash.Hex(), h.Hex())
		}
	}
	// Transmission listens on TCP: the sensor tries TCP first.
	check(probe, transportTCP)
	// Transmission's uTP (libutp) with the sensor's pure-Go uTP.
	// Transmission takes one connection per IP address: it drops a new
	// one (EOF before its handshake) while it still counts an earlier one
	// from the same address, which it does for a moment after the close.
	// Wait until it lists no peer.
	waitFor(t, ctx, "transmission to drop the TCP probe's connection", func() error { return rpc.noPeers(ctx, h) }, tr.log)
	before := len(pub.byMethod(observe.MethodPeerProbe))
	s.probe(ctx, probeJob{peer: trPeer, w: w, via: "test", transport: transportUTP})
	var utpObs []observe.Observation
	for _, o := range pub.byMethod(observe.MethodPeerProbe)[before:] {
		if o.Endpoint.Transport == transportUTP {
			utpObs = append(utpObs, o)
		}
	}
	if len(utpObs) != 1 {
		t.Fatalf("uTP probe of transmission: %d observations over uTP, want 1\n%s", len(utpObs), tr.log())
	}
	check(utpObs[0], transportUTP)

	// Nothing outside the two addresses was observed.
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Endpoint.IP != nsAddr && o.Endpoint.IP != hostAddr {
			t.Errorf("%s observation of %v: outside the namespace pair", o.Method, o.Endpoint.IP)
		}
	}
	if t.Failed() {
		t.Logf("transmission's log:\n%s", tr.log())
	}
}

// trRPC is a client of transmission's JSON RPC (docs/rpc-spec.md in its
// source), used by the test to add the torrent and read its state.
// syntheticDownload makes a synthetic v1 torrent of 300 KiB of random
// bytes and writes its data under dir/downloads, where transmission will
// look; it returns the torrent, its info-hash and the download dir.
func syntheticDownload(t *testing.T, dir string) (*torrentmake.Torrent, hashkind.Hash, string) {
	t.Helper()
	data := make([]byte, 300<<10)
	_, _ = rand.Read(data)
	const name = "vigil-synthetic.bin"
	tor, err := torrentmake.Build(torrentmake.Options{Name: name, PieceLength: 64 << 10, Version: torrentmake.V1, CreatedBy: "vigil test"},
		[]torrentmake.File{{Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	h := hashkind.MustNew(hashkind.BTIH, tor.InfoHashV1[:])
	dl := filepath.Join(dir, "downloads")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dl, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return tor, h, dl
}

// startNamespaceSensor runs a sensor on the host end of n, in scope for
// exactly the two ends, bootstrapped from nodes and watching w, until the
// test ends.
func startNamespaceSensor(t *testing.T, ctx context.Context, n trNet, nodes []netip.AddrPort, w Watched) (*Sensor, *collector) {
	t.Helper()
	gcfg := scope.DefaultConfig()
	gcfg.Allow = []netip.Prefix{netip.PrefixFrom(n.host, n.host.BitLen()), netip.PrefixFrom(n.inside, n.inside.BitLen())}
	guard, err := scope.New(gcfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	setListen(&cfg, n.host)
	cfg.Identities = 4
	cfg.LookupEvery = 3 * time.Second
	cfg.Bootstrap = nodes
	pub := newCollector()
	s, err := New(cfg, guard, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(w); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sensor: %v", err)
		}
	})
	return s, pub
}

type trRPC struct {
	url     string
	hc      *http.Client
	session string // X-Transmission-Session-Id, learnt from a 409
}

func (r *trRPC) call(ctx context.Context, method string, args any, out any) error {
	body, err := json.Marshal(map[string]any{"method": method, "arguments": args})
	if err != nil {
		return err
	}
	for range 2 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("X-Transmission-Session-Id", r.session)
		resp, err := r.hc.Do(req)
		if err != nil {
			return fmt.Errorf("rpc %s: %w", method, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("rpc %s: %w", method, err)
		}
		if resp.StatusCode == http.StatusConflict {
			r.session = resp.Header.Get("X-Transmission-Session-Id")
			continue
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("rpc %s: %s: %s", method, resp.Status, b)
		}
		var res struct {
			Result    string          `json:"result"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("rpc %s: %w: %s", method, err, b)
		}
		if res.Result != "success" {
			return fmt.Errorf("rpc %s: %s", method, res.Result)
		}
		if out != nil {
			return json.Unmarshal(res.Arguments, out)
		}
		return nil
	}
	return fmt.Errorf("rpc %s: no session id after a 409", method)
}

// probeVia says which DHT methods named peer before it was probed.
func probeVia(pub *collector, peer netip.AddrPort) string {
	var via []string
	for _, m := range []string{observe.MethodDHTAnnounce, observe.MethodDHTGetPeers} {
		for _, o := range pub.byMethod(m) {
			port := o.Endpoint.Port
			if m == observe.MethodDHTAnnounce {
				port = o.Client.ListenPort // the endpoint is the announce's UDP source
			}
			if netip.AddrPortFrom(o.Endpoint.IP, port) == peer {
				via = append(via, m)
				break
			}
		}
	}
	return strings.Join(via, ", ")
}

// transmissionVersion returns the installed daemon's version ("3.00").
func transmissionVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("transmission-daemon", "-V").CombinedOutput()
	if err != nil {
		t.Fatalf("transmission-daemon -V: %v: %s", err, out)
	}
	f := strings.Fields(string(out)) // "transmission-daemon 3.00 (bb6b5a062e)"
	if len(f) < 2 {
		t.Fatalf("transmission-daemon -V: unexpected %q", out)
	}
	return f[1]
}

// seeding is nil once transmission seeds the torrent h.
func (r *trRPC) seeding(ctx context.Context, h hashkind.Hash) error {
	var got struct {
		Torrents []struct {
			HashString  string  `json:"hashString"`
			PercentDone float64 `json:"percentDone"`
			Status      int     `json:"status"`
			ErrorString string  `json:"errorString"`
		} `json:"torrents"`
	}
	if err := r.call(ctx, "torrent-get", map[string]any{
		"ids": []string{h.Hex()}, "fields": []string{"hashString", "percentDone", "status", "errorString"},
	}, &got); err != nil {
		return err
	}
	// Status 6 is "seeding" (RPC spec, tr_torrent_activity).
	if len(got.Torrents) != 1 || got.Torrents[0].PercentDone != 1 || got.Torrents[0].Status != 6 {
		return fmt.Errorf("not seeding yet: %+v", got.Torrents)
	}
	return nil
}

// noPeers is nil once transmission lists no peer of the torrent h.
func (r *trRPC) noPeers(ctx context.Context, h hashkind.Hash) error {
	var got struct {
		Torrents []struct {
			PeersConnected int `json:"peersConnected"`
		} `json:"torrents"`
	}
	if err := r.call(ctx, "torrent-get", map[string]any{"ids": []string{h.Hex()}, "fields": []string{"peersConnected"}}, &got); err != nil {
		return err
	}
	if len(got.Torrents) != 1 || got.Torrents[0].PeersConnected != 0 {
		return fmt.Errorf("transmission still lists peers: %+v", got.Torrents)
	}
	return nil
}

// waitFor polls cond every half second until it returns nil, or fails the
// test with cond's last error and logs when ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() error, logs func() string) {
	t.Helper()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v\n--- transmission's log:\n%s", what, err, logs())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// testNetns is a network namespace joined to the root one by a veth pair.
type testNetns struct {
	name         string
	host, inside netip.Addr
}

// newTestNetns creates a namespace with only lo and one end of a veth
// pair, no default route; the other end, in the root namespace, gets the
// host address. The /24 is picked among 10.250.x.0/24 so that no address
// or route of the machine is in it. Everything is removed in Cleanup.
// It skips the test if namespaces cannot be created here (fails it under
// VIGIL_REQUIRE_NETNS=1).
func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	pid := os.Getpid()
	n := &testNetns{name: fmt.Sprintf("vigil-t-%d", pid)}
	hostIf, nsIf := fmt.Sprintf("vgt%dh", pid%1000000), fmt.Sprintf("vgt%dn", pid%1000000)
	used, err := exec.Command("sh", "-c", "ip -o addr; ip -o route; cat /etc/resolv.conf").CombinedOutput()
	if err != nil {
		testenv.Missingf(t, "NETNS", "cannot list addresses with ip(8): %v: %s", err, used)
	}
	for i := range 200 {
		x := 20 + (pid+i)%200
		if !strings.Contains(string(used), fmt.Sprintf("10.250.%d.", x)) {
			n.host = netip.AddrFrom4([4]byte{10, 250, byte(x), 1})
			n.inside = netip.AddrFrom4([4]byte{10, 250, byte(x), 2})
			break
		}
	}
	if !n.host.IsValid() {
		testenv.Missing(t, "NETNS", "no free 10.250.x.0/24 for the namespace pair")
	}
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := run("netns", "add", n.name); err != nil {
		testenv.Missingf(t, "NETNS", "cannot create a network namespace here: %v", err)
	}
	// Names are looked up in the namespace's own loopback, where nothing
	// answers: transmission's fallback bootstrap (a host name) resolves to
	// nothing, and no query can leave, even through a resolver on a
	// private address. ip netns exec bind-mounts /etc/netns/NAME/ files.
	etc := filepath.Join("/etc/netns", n.name)
	t.Cleanup(func() {
		_ = run("link", "del", hostIf) // removes both ends
		_ = run("netns", "del", n.name)
		_ = os.RemoveAll(etc)
	})
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"link", "add", hostIf, "type", "veth", "peer", "name", nsIf},
		{"link", "set", nsIf, "netns", n.name},
		{"addr", "add", n.host.String() + "/24", "dev", hostIf},
		{"link", "set", hostIf, "up"},
		{"-n", n.name, "addr", "add", n.inside.String() + "/24", "dev", nsIf},
		{"-n", n.name, "link", "set", nsIf, "up"},
		{"-n", n.name, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("ip", "-n", n.name, "route", "show", "default").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("namespace %s has a default route or cannot be read: %v %q", n.name, err, out)
	}
	// The veth link takes a moment to come up; wait until the ends reach
	// each other (a UDP round trip from the host end into the namespace).
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := exec.Command("ip", "netns", "exec", n.name, "ip", "-o", "link", "show", nsIf, "up").Run()
		if err == nil {
			if o, _ := exec.Command("ip", "-o", "link", "show", hostIf).Output(); bytes.Contains(o, []byte("LOWER_UP")) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth %s did not come up", hostIf)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

// nodeStore is a peer store for the test's DHT nodes (the library's
// InMemory returns broken addresses, NOTES.md).
type nodeStore struct {
	mu sync.Mutex
	m  map[[20]byte][]krpc.NodeAddr
}

func (s *nodeStore) AddPeer(ih metainfo.Hash, a krpc.NodeAddr) {
	if ip4 := a.IP.To4(); ip4 != nil {
		a.IP = ip4
	}
	a.IP = append(net.IP(nil), a.IP...)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.m[ih] {
		if p.IP.Equal(a.IP) && p.Port == a.Port {
			return
		}
	}
	s.m[ih] = append(s.m[ih], a)
}

func (s *nodeStore) GetPeers(ih metainfo.Hash) []krpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]krpc.NodeAddr(nil), s.m[ih]...)
}

// startDHTNodes runs n anacrolix DHT nodes on addr, joined into one
// network of addr's family (asking for n6 on IPv6), and returns their
// addresses and servers.
func startDHTNodes(t *testing.T, addr netip.Addr, n int) ([]netip.AddrPort, []*dht.Server) {
	t.Helper()
	type node struct {
		s    *dht.Server
		addr netip.AddrPort
		id   [20]byte
	}
	var nodes []node
	var addrs []netip.AddrPort
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.s.Close()
		}
	})
	network, want := "udp4", krpc.WantNodes
	if addr.Is6() {
		network, want = "udp6", krpc.WantNodes6
	}
	for i := range n {
		conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatalf("DHT node %d on %s: %v", i, addr, err)
		}
		var id [20]byte
		_, _ = rand.Read(id[:])
		sc := dht.NewDefaultServerConfig()
		sc.Conn = conn
		sc.NodeId = krpc.ID(id)
		sc.NoSecurity = true
		sc.SendLimiter = rate.NewLimiter(rate.Inf, 0)
		sc.PeerStore = &nodeStore{m: map[[20]byte][]krpc.NodeAddr{}}
		sc.DefaultWant = []krpc.Want{want}
		sc.QueryResendDelay = func() time.Duration { return time.Second }
		sc.StartingNodes = func() ([]dht.Addr, error) {
			var out []dht.Addr
			for _, a := range addrs {
				out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
			}
			return out, nil
		}
		s, err := dht.NewServer(sc)
		if err != nil {
			conn.Close()
			t.Fatalf("DHT node %d: %v", i, err)
		}
		ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		nodes = append(nodes, node{s, ap, id})
		addrs = append(addrs, ap)
	}
	for i, nd := range nodes {
		for _, o := range nodes[i+1:] {
			nd.s.AddNode(krpc.NodeInfo{ID: o.id, Addr: krpc.NodeAddr{IP: o.addr.Addr().AsSlice(), Port: int(o.addr.Port())}})
			o.s.AddNode(krpc.NodeInfo{ID: nd.id, Addr: krpc.NodeAddr{IP: nd.addr.Addr().AsSlice(), Port: int(nd.addr.Port())}})
		}
	}
	servers := make([]*dht.Server, len(nodes))
	for i, nd := range nodes {
		servers[i] = nd.s
	}
	return addrs, servers
}

// transmission is a running transmission-daemon.
type transmission struct {
	cmd     *exec.Cmd
	logFile string
}

// log returns the daemon's log (its last 200 lines).
func (tr *transmission) log() string {
	b, err := os.ReadFile(tr.logFile)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	return strings.Join(lines, "\n")
}

// startTransmission writes settings.json and dht.dat into cfgDir and runs
// transmission-daemon in the namespace, in the foreground, until Cleanup.
// On IPv6 its IPv4 stays on the namespace's loopback (127.0.0.1, which
// its DHT ignores), and the lab nodes go in dht.dat's nodes6.
func startTransmission(t *testing.T, ns trNet, cfgDir, downloads string, dhtNodes []netip.AddrPort, peerPort, rpcPort int) *transmission {
	t.Helper()
	if err := os.MkdirAll(cfgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	bind4, bind6 := ns.inside.String(), "::"
	if ns.v6() {
		bind4, bind6 = "127.0.0.1", ns.inside.String()
	}
	settings := fmt.Sprintf(`{
	"bind-address-ipv4": %q,
	"bind-address-ipv6": %q,
	"peer-port": %d,
	"peer-port-random-on-start": false,
	"dht-enabled": true,
	"lpd-enabled": false,
	"pex-enabled": true,
	"utp-enabled": true,
	"port-forwarding-enabled": false,
	"blocklist-enabled": false,
	"encryption": 1,
	"download-dir": %q,
	"incomplete-dir-enabled": false,
	"watch-dir-enabled": false,
	"start-added-torrents": true,
	"ratio-limit-enabled": false,
	"idle-seeding-limit-enabled": false,
	"rpc-enabled": true,
	"rpc-bind-address": %q,
	"rpc-port": %d,
	"rpc-authentication-required": false,
	"rpc-whitelist-enabled": true,
	"rpc-whitelist": "127.0.0.1,%s",
	"rpc-host-whitelist-enabled": false,
	"message-level": 3
}
`, bind4, bind6, peerPort, downloads, ns.inside, rpcPort, ns.host)
	if err := os.WriteFile(filepath.Join(cfgDir, "settings.json"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	var compact []byte
	key := "nodes"
	for _, a := range dhtNodes {
		if a.Addr().Is6() {
			ip := a.Addr().As16()
			compact, key = append(compact, ip[:]...), "nodes6"
		} else {
			ip := a.Addr().As4()
			compact = append(compact, ip[:]...)
		}
		compact = append(compact, byte(a.Port()>>8), byte(a.Port()))
	}
	var id [20]byte
	_, _ = rand.Read(id[:])
	dat, err := bencode.Marshal(map[string]string{"id": string(id[:]), key: string(compact)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfgDir, "dht.dat"), dat, 0o600); err != nil {
		t.Fatal(err)
	}
	tr := &transmission{logFile: filepath.Join(cfgDir, "transmission.log")}
	tr.cmd = exec.Command("ip", "netns", "exec", ns.ns,
		"transmission-daemon", "-f", "-g", cfgDir, "-e", tr.logFile, "--log-debug", "-M", "-Y", "-o", "--utp")
	if err := tr.cmd.Start(); err != nil {
		t.Fatalf("starting transmission-daemon in %s: %v", ns.ns, err)
	}
	exited := make(chan struct{})
	go func() { _ = tr.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = tr.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = tr.cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-exited:
		t.Fatalf("transmission-daemon exited at once (%s):\n%s", tr.cmd.ProcessState, tr.log())
	case <-time.After(300 * time.Millisecond):
	}
	return tr
}

// setListen gives the sensor its one address.
func setListen(cfg *Config, a netip.Addr) { cfg.Listen = a }

// netnsPair6 is two namespaces of the test's own joined by a veth pair
// that carries only IPv6 unique local addresses (see
// TestSensorFindsTransmissionInANamespace).
type netnsPair6 struct {
	a, b         string     // the test's namespace, transmission's
	host, inside netip.Addr // a's and b's ends of the veth pair
}

// trEnv passes the pair to the test binary run again inside a.
const trEnv = "VIGIL_TEST_TRANSMISSION6"

func (p *netnsPair6) env() string {
	return trEnv + "=" + strings.Join([]string{p.b, p.host.String(), p.inside.String()}, ",")
}

// trNetFromEnv is the child's side of env.
func trNetFromEnv(t *testing.T) trNet {
	t.Helper()
	f := strings.Split(os.Getenv(trEnv), ",")
	if len(f) != 3 {
		t.Fatalf("%s=%q: want NAMESPACE,HOST,INSIDE", trEnv, os.Getenv(trEnv))
	}
	return trNet{ns: f[0], host: netip.MustParseAddr(f[1]), inside: netip.MustParseAddr(f[2])}
}

// newTestNetnsPair6 creates the pair, checks that neither namespace has a
// default route or an IPv4 address on the veth, and removes everything in
// Cleanup. Both ends get nodad: an address still in duplicate address
// detection is "tentative" and cannot be bound.
func newTestNetnsPair6(t *testing.T) *netnsPair6 {
	t.Helper()
	pid := os.Getpid()
	p := &netnsPair6{
		a: fmt.Sprintf("vigil-t6a-%d", pid), b: fmt.Sprintf("vigil-t6b-%d", pid),
		host: netip.MustParseAddr("fd00:0:ff:1::1"), inside: netip.MustParseAddr("fd00:0:ff:1::2"),
	}
	aIf, bIf := fmt.Sprintf("vg6%da", pid%1000000), fmt.Sprintf("vg6%db", pid%1000000)
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := run("netns", "add", p.a); err != nil {
		testenv.Missingf(t, "NETNS", "cannot create a network namespace here: %v", err)
	}
	etc := filepath.Join("/etc/netns", p.b)
	t.Cleanup(func() {
		_ = run("netns", "del", p.a) // the veth pair goes with it
		_ = run("netns", "del", p.b)
		_ = os.RemoveAll(etc)
	})
	if err := run("netns", "add", p.b); err != nil {
		t.Fatal(err)
	}
	// Transmission resolves its fallback bootstrap host in b: nothing
	// answers on b's loopback (newTestNetns says why).
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"link", "add", aIf, "netns", p.a, "type", "veth", "peer", "name", bIf, "netns", p.b},
		{"-n", p.a, "-6", "addr", "add", p.host.String() + "/64", "dev", aIf, "nodad"},
		{"-n", p.b, "-6", "addr", "add", p.inside.String() + "/64", "dev", bIf, "nodad"},
		{"-n", p.a, "link", "set", "lo", "up"},
		{"-n", p.b, "link", "set", "lo", "up"},
		{"-n", p.a, "link", "set", aIf, "up"},
		{"-n", p.b, "link", "set", bIf, "up"},
		// Transmission's "global IPv6 address" (the test's comment): on
		// b's loopback, never on the veth.
		{"-n", p.b, "-6", "addr", "add", "2001:db8:76:1::2/128", "dev", "lo", "nodad"},
		{"-n", p.b, "-6", "route", "add", "2001:1890:1112:1::20/128", "dev", "lo"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ ns, dev string }{{p.a, aIf}, {p.b, bIf}} {
		for _, q := range [][]string{{"-n", c.ns, "-4", "route", "show", "default"}, {"-n", c.ns, "-6", "route", "show", "default"}, {"-n", c.ns, "-4", "addr", "show", "dev", c.dev}} {
			out, err := exec.Command("ip", q...).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Fatalf("ip %s: %v %q: want nothing (no default route, no IPv4 on the veth)", strings.Join(q, " "), err, out)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		oa, _ := exec.Command("ip", "-n", p.a, "-o", "link", "show", aIf).Output()
		ob, _ := exec.Command("ip", "-n", p.b, "-o", "link", "show", bIf).Output()
		if bytes.Contains(oa, []byte("LOWER_UP")) && bytes.Contains(ob, []byte("LOWER_UP")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth %s-%s did not come up", aIf, bIf)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p
}
