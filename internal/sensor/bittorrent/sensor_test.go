package bittorrent

import (
	"bufio"
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

// collector is a bus.Publisher that keeps what it is given.
type collector struct {
	mu  sync.Mutex
	obs []observe.Observation
	got chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1024)} }

func (c *collector) Publish(_ context.Context, o observe.Observation) error {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
	c.got <- struct{}{}
	return nil
}

func (c *collector) byMethod(m string) []observe.Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []observe.Observation
	for _, o := range c.obs {
		if o.Method == m {
			out = append(out, o)
		}
	}
	return out
}

// waitFor waits until at least n observations of method m arrived.
func (c *collector) waitFor(t *testing.T, m string, n int) []observe.Observation {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if got := c.byMethod(m); len(got) >= n {
			return got
		}
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("timed out waiting for %d %s observations; have %d", n, m, len(c.byMethod(m)))
		}
	}
}

func randomHash(t *testing.T, k hashkind.Kind) hashkind.Hash {
	b := make([]byte, k.Size())
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hashkind.MustNew(k, b)
}

// startSensor runs a sensor on 127.0.0.1 whose bootstrap is a silent
// address, so it answers queries without a network to join.
func startSensor(t *testing.T, pub *collector, watched ...Watched) *Sensor {
	t.Helper()
	cfg := LabConfig()
	cfg.Identities = 2
	cfg.ProbeTimeout = 3 * time.Second
	// A bootstrap address nobody listens on: loopback, discard port.
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
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

// dhtClient sends one KRPC query and returns the decoded answer.
func dhtClient(t *testing.T, conn *net.UDPConn, to netip.AddrPort, q *krpc.Msg) *krpc.Msg {
	t.Helper()
	b, err := q.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no answer to %s: %v", q.Method, err)
		}
		var r krpc.Msg
		if err := r.Decode(append([]byte(nil), buf[:n]...)); err != nil {
			// Not KRPC: the sensor's probe of an announced port may reach
			// this socket over uTP (TCP refused first) before the answer.
			if n > 0 && buf[0]&0x0f == 1 && buf[0]>>4 <= 4 { // a uTP packet (BEP 29: type<<4 | version 1)
				continue
			}
			t.Fatal(err)
		}
		// The sensor, having seen us, may query us too: skip its queries.
		if r.Kind != krpc.KindQuery && string(r.T) == string(q.T) {
			return &r
		}
	}
}

// fakePeer accepts one BitTorrent connection and answers as a seeder of
// infohash whose client is Transmission 3.00: handshake, extension
// handshake, have-all.
func fakePeer(t *testing.T, infohash [20]byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		dec := peerwire.NewDecoder(bufio.NewReader(c), 0)
		theirs, err := dec.ReadHandshake()
		if err != nil || theirs.InfoHash != infohash {
			return
		}
		var rsv peerwire.Reserved
		rsv.SetExtended(true)
		rsv.SetFast(true)
		var pid [20]byte
		copy(pid[:], "-TR3000-abcdefghijkl")
		hs := peerwire.Handshake{Reserved: rsv, InfoHash: infohash, PeerID: pid}
		out := hs.AppendTo(nil)
		eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_pex": 1}, Client: "Transmission 3.00", Port: 51413}
		m := peerwire.Message{ID: peerwire.Extended, ExtendedID: 0, Payload: eh.AppendTo(nil)}
		out = m.AppendTo(out)
		all := peerwire.Message{ID: peerwire.HaveAll}
		out = all.AppendTo(out)
		_, _ = c.Write(out)
		// Read until the sensor hangs up.
		var msg peerwire.Message
		for dec.Decode(&msg) == nil {
		}
	}()
	ap, _ := netip.ParseAddrPort(ln.Addr().String())
	return ap
}

func TestSensorRecordsGetPeersAndNeverReturnsPeers(t *testing.T) {
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab", Category: "1"}}}
	s := startSensor(t, pub, w)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var me krpc.ID
	_, _ = rand.Read(me[:])
	q := &krpc.Msg{T: []byte("aa"), Kind: krpc.KindQuery, Method: krpc.MethodGetPeers}
	q.A.ID, q.A.InfoHash = me, krpc.ID(Key(w.Hash))
	r := dhtClient(t, conn, s.Addrs()[0], q)
	if r.Kind != krpc.KindResponse {
		t.Fatalf("answer kind %v", r.Kind)
	}
	if len(r.R.Values) != 0 {
		t.Fatalf("sensor returned %d peers; it must never return any", len(r.R.Values))
	}
	if len(r.R.Token) == 0 {
		t.Fatal("get_peers answer has no token")
	}
	obs := pub.waitFor(t, observe.MethodDHTGetPeers, 1)
	o := obs[0]
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	if o.Endpoint.IP != local.Addr() || o.Endpoint.Port != local.Port() || o.Endpoint.Transport != "udp" {
		t.Fatalf("endpoint %+v, want %v udp", o.Endpoint, local)
	}
	if o.Possession.Level != observe.Announced || o.Item.Hash != w.Hash || string(o.Client.NodeID) != string(me[:]) {
		t.Fatalf("observation %+v", o)
	}
	if len(o.Transcript.Bytes) == 0 || len(o.Transcript.SHA256) != 32 {
		t.Fatal("observation has no transcript")
	}

	// An unwatched info-hash is answered but never observed.
	q2 := &krpc.Msg{T: []byte("ab"), Kind: krpc.KindQuery, Method: krpc.MethodGetPeers}
	q2.A.ID = me
	_, _ = rand.Read(q2.A.InfoHash[:])
	dhtClient(t, conn, s.Addrs()[0], q2)
	// A later query for the watched one is observed after anything the
	// unwatched one could have made: once it is in, there is nothing
	// more to wait for.
	q3 := &krpc.Msg{T: []byte("ac"), Kind: krpc.KindQuery, Method: krpc.MethodGetPeers}
	q3.A.ID, q3.A.InfoHash = me, krpc.ID(Key(w.Hash))
	dhtClient(t, conn, s.Addrs()[0], q3)
	pub.waitFor(t, observe.MethodDHTGetPeers, 2)
	for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
		if o.Item.Hash != w.Hash {
			t.Fatalf("get_peers observation of %v; an unwatched query must not be observed", o.Item.Hash)
		}
	}

	// The metrics say the same, per stage.
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			values[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	if got := values["vigil_bittorrent_observations_total{dht_get_peers}"]; got != 2 {
		t.Fatalf("observations metric %v, want 2 (metrics: %v)", got, values)
	}
	if got := values["vigil_bittorrent_dht_queries_answered_total{get_peers}"]; got != 3 {
		t.Fatalf("get_peers answered metric %v, want 3", got)
	}
	if values["vigil_bittorrent_watched_infohashes"] != 1 || values["vigil_bittorrent_dht_packets_received_total"] < 3 {
		t.Fatalf("metrics %v", values)
	}
}

func TestSensorRecordsAnnounceOnlyWithValidTokenAndProbesThePeer(t *testing.T) {
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab", Category: "1"}}}
	s := startSensor(t, pub, w)
	key := [20]byte(Key(w.Hash))
	peer := fakePeer(t, key)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var me krpc.ID
	_, _ = rand.Read(me[:])

	bad := &krpc.Msg{T: []byte("x1"), Kind: krpc.KindQuery, Method: krpc.MethodAnnouncePeer}
	bad.A.ID, bad.A.InfoHash, bad.A.Token, bad.A.Port = me, krpc.ID(key), []byte("forged"), peer.Port()
	if r := dhtClient(t, conn, s.Addrs()[0], bad); r.Kind != krpc.KindError || r.E.Code != krpc.ErrorProtocol {
		t.Fatalf("announce with a forged token: kind %v code %d, want error 203", r.Kind, r.E.Code)
	}

	gp := &krpc.Msg{T: []byte("x2"), Kind: krpc.KindQuery, Method: krpc.MethodGetPeers}
	gp.A.ID, gp.A.InfoHash = me, krpc.ID(key)
	tok := dhtClient(t, conn, s.Addrs()[0], gp).R.Token
	ann := &krpc.Msg{T: []byte("x3"), Kind: krpc.KindQuery, Method: krpc.MethodAnnouncePeer}
	ann.A.ID, ann.A.InfoHash, ann.A.Token, ann.A.Port = me, krpc.ID(key), tok, peer.Port()
	if r := dhtClient(t, conn, s.Addrs()[0], ann); r.Kind != krpc.KindResponse {
		t.Fatalf("announce with a valid token: kind %v (%s)", r.Kind, r.E.Msg)
	}
	anns := pub.waitFor(t, observe.MethodDHTAnnounce, 1)
	if got := len(anns); got != 1 {
		t.Fatalf("%d announce observations, want 1 (the forged one must not count)", got)
	}
	// The endpoint is the announce's UDP source; the declared port is the
	// client's listen port (TestDHTAnnounceRecordsSourceAndListenPortApart).
	if a := anns[0]; a.Client.ListenPort != peer.Port() || a.Endpoint.Transport != "udp" || a.Possession.Level != observe.Announced {
		t.Fatalf("announce observation %+v", a)
	}

	probes := pub.waitFor(t, observe.MethodPeerProbe, 1)
	p := probes[0]
	if p.Possession.Level != observe.Complete {
		t.Fatalf("probe level %v, want complete (the peer sent have-all)", p.Possession.Level)
	}
	if p.Client.Name != "Transmission" || p.Client.Version != "3.00" || p.Client.ListenPort != 51413 {
		t.Fatalf("probe client %+v", p.Client)
	}
	if string(p.Client.PeerID[:8]) != "-TR3000-" {
		t.Fatalf("peer id %q", p.Client.PeerID)
	}
	if p.Endpoint.IP != peer.Addr() || p.Endpoint.Port != peer.Port() {
		t.Fatalf("probe endpoint %+v, want %v", p.Endpoint, peer)
	}
	if len(p.Transcript.Bytes) < peerwire.HandshakeLen*2 {
		t.Fatalf("probe transcript of %d bytes lacks the two handshakes", len(p.Transcript.Bytes))
	}
}

func TestSensorRefusesBootstrapOutOfScope(t *testing.T) {
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:6881")}
	g, _ := scope.New(scope.DefaultConfig(), nil)
	if _, err := New(cfg, g, newCollector(), nil); err == nil {
		t.Fatal("a bootstrap node outside lab scope was accepted")
	}
	cfg.Bootstrap = nil
	if _, err := New(cfg, g, newCollector(), nil); err == nil {
		t.Fatal("no bootstrap nodes accepted: the sensor would have nowhere to go but public routers")
	}
}

// Lookups are bounded by their concurrency, not by a fixed number a tick:
// the old loop started at most LookupConcurrency×4 lookups a second, so
// 100,000 watched info-hashes were looked up every two hours instead of
// every LookupEvery. Here no node answers, so each lookup ends after one
// short query timeout.
func TestLookupsKeepUpWithManyWatched(t *testing.T) {
	// Counted in rounds of the loop, not seconds: the loop's tick is a
	// channel the test feeds. A loop that starts a new lookup as soon as a
	// slot frees has started every due lookup before it first waits for a
	// tick; one that starts a batch a tick (LookupConcurrency×4) had
	// started 256 of 3,000, and its next tick lets in 256 more at most.
	cfg := LabConfig()
	cfg.Identities = 2
	cfg.LookupConcurrency = 64
	cfg.QueryTimeout = 100 * time.Millisecond
	// None falls due again while the test runs, however slow the machine.
	cfg.LookupEvery = time.Hour
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, newCollector(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tick := make(chan time.Time) // unbuffered: a send ends when the loop waits
	s.lookupTick = tick
	const n = 3000
	for range n {
		if err := s.Watch(Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// The loop takes this tick only once it waits for one: after the
	// first round, which started every lookup it was going to start
	// without a tick.
	select {
	case tick <- time.Now():
	case err := <-done:
		cancel()
		t.Fatalf("sensor stopped before its lookup loop waited for a tick: %v", err)
	}
	// That tick lets a tick-bound loop start one more batch at most; then
	// the sensor stops, once every lookup it started has ended (Run
	// waits for them, and a lookup ended by the cancel still counts).
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Lookups; got != n {
		t.Fatalf("%d lookups started before the loop's second tick for %d watched info-hashes due at once, want %d", got, n, n)
	}
}
