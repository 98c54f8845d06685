package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
)

// An acceptance run of `vigil sensor bittorrent` as a user starts it,
// with its default flags (lab scope, --listen 127.0.0.1, 8 identities,
// default timings), against hostile parties on loopback only:
//
//   - a DHT node on 127.0.0.3 whose "v" is "VG" with a version Vigil
//     never sent (Vagaa's client code), that answers every get_peers
//     with values naming the hostile peer, an innocent address where
//     nothing listens, and the sensor's own identities (every address
//     that asked it); it also takes a write token from one of the
//     sensor's identities and announces the info-hash twice, declaring
//     the hostile peer's TCP port rather than its own UDP port;
//   - a hostile peer on 127.0.0.3 that answers the handshake with
//     have_all, then withdraws it with have_none.
//
// What the user reads afterwards must not overstate: no target at the
// sensor's own endpoints; no observation naming the node's client Vigil;
// 127.0.0.3 at acknowledged, never complete; the innocent address at
// announced at most, with no ISP row; the ISP rows of 127.0.0.3 the
// probe's port for the probe, and the UDP source port of the datagrams
// for the announces, never the port declared (docs/evidence.md, ISP
// requests); the evidence bundle of each target verifies.
func TestAcceptSensorBitTorrentDefaultsAgainstHostileParties(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var ih [20]byte
	rand.Read(ih[:])
	peer := startWithdrawingPeer(t, ih)
	innocent := netip.MustParseAddrPort("127.0.0.2:7") // nothing listens
	named := netip.MustParseAddrPort("127.0.0.7:9")    // named by PEX only; nothing listens
	var node *hostileNode
	gossip := startGossipPeer(t, ih, func() []netip.AddrPort { return slices.Collect(maps.Keys(node.querySources())) }, named, peer)
	node = startHostileNode(t, ctx, ih, peer.Port(), []netip.AddrPort{peer, innocent, gossip})

	dir := t.TempDir()
	db := filepath.Join(dir, "v.db")
	env := map[string]string{"VIGIL_DB": db, "VIGIL_KEY_DIR": filepath.Join(dir, "keys")}
	list := writeFile(t, dir, "w.magnet", "magnet:?xt=urn:btih:"+hex.EncodeToString(ih[:])+"\n")
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "accept", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	code, summary, errOut := vigilRun(t, env, "", "sensor", "bittorrent", "--bootstrap", node.addr.String(), "--duration", "12s")
	if code != exitOK {
		t.Fatalf("sensor: exit %d\n%s%s", code, summary, errOut)
	}
	t.Logf("sensor summary:\n%s", summary)
	_, exported, _ := vigilRun(t, env, "", "observations", "export", "--case", "2026/0042", "--format", "jsonl")
	for _, o := range decodeJSONL(t, exported) {
		t.Logf("observation %s %s %v:%d/%s %s pieces %d client %q marks %v", o.Time.Format("15:04:05.000"), o.Method,
			o.Endpoint.IP, o.Endpoint.Port, o.Endpoint.Transport, o.Possession.Level, o.Possession.PiecesHave, o.Client.Name, o.Marks)
		// Nothing here but the sensor is on 127.0.0.1: the node named its
		// identities as peers, the gossiping peer its probe's source.
		if o.Endpoint.IP == netip.MustParseAddr("127.0.0.1") {
			t.Errorf("%s observation of the sensor itself, %v:%d", o.Method, o.Endpoint.IP, o.Endpoint.Port)
		}
		// The node's "v" is "VG" with a version Vigil never sent
		// (Vagaa's code): never named Vigil.
		if strings.Contains(o.Client.Name, "Vigil") {
			t.Errorf("%s of %v: client %q: a third party named as Vigil", o.Method, o.Endpoint.IP, o.Client.Name)
		}
	}
	self := node.querySources()
	if len(self) == 0 {
		t.Fatalf("the sensor never queried the hostile node\n%s", summary)
	}
	if node.announced() < 2 {
		t.Fatalf("the hostile node announced %d times (token from the sensor: %v)\n%s", node.announced(), node.tokenErr(), summary)
	}

	code, out, errOut := vigilRun(t, env, "", "targets", "--json", "--limit", "1000")
	if code != exitOK {
		t.Fatalf("targets: exit %d %s", code, errOut)
	}
	var targets []struct {
		ID        string `json:"id"`
		Endpoints []struct {
			IP   string `json:"ip"`
			Port uint16 `json:"port"`
		} `json:"endpoints"`
		Files []struct {
			Hash     string `json:"hash"`
			MaxLevel string `json:"max_level"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &targets); err != nil {
		t.Fatalf("targets --json: %v\n%s", err, out)
	}
	targetsOf := map[string][]string{} // by IP
	levelOf := map[string]string{}     // the watched file's highest level, by IP
	for _, tg := range targets {
		for _, e := range tg.Endpoints {
			ap := netip.AddrPortFrom(netip.MustParseAddr(e.IP), e.Port)
			if self[ap] {
				t.Errorf("target %s has the sensor's own endpoint %v (a hostile node named it)", tg.ID, ap)
			}
			if e.IP == "127.0.0.1" {
				t.Errorf("target %s at the sensor's own address %v", tg.ID, ap)
			}
			targetsOf[e.IP] = append(targetsOf[e.IP], tg.ID)
		}
		for _, f := range tg.Files {
			if strings.EqualFold(f.Hash, hex.EncodeToString(ih[:])) {
				for _, e := range tg.Endpoints {
					if rank(f.MaxLevel) > rank(levelOf[e.IP]) {
						levelOf[e.IP] = f.MaxLevel
					}
				}
			}
		}
	}
	// It said have_all, then have_none: acknowledged, never complete.
	if got := levelOf["127.0.0.3"]; got != "acknowledged" {
		t.Errorf("127.0.0.3: max level %q, want acknowledged (levels by address: %v)", got, levelOf)
	}
	// It said have_none: acknowledged, whatever its PEX flags said.
	if got := levelOf["127.0.0.4"]; got != "acknowledged" {
		t.Errorf("127.0.0.4: max level %q, want acknowledged (levels by address: %v)", got, levelOf)
	}
	// Only a DHT node's or a peer's word: announced at most, whether a
	// target or not.
	for _, ip := range []string{"127.0.0.2", "127.0.0.7"} {
		if got := levelOf[ip]; got != "" && got != "announced" {
			t.Errorf("%s, named by a third party only: max level %q, want announced at most", ip, got)
		}
	}
	if !strings.Contains(exported, `"method":"pex"`) || !strings.Contains(exported, "127.0.0.7") {
		t.Errorf("no PEX observation of 127.0.0.7: the gossiping peer's message was not read")
	}

	rows := func(ip string) []ispRowAccept {
		t.Helper()
		var all []ispRowAccept
		for _, target := range targetsOf[ip] {
			code, out, errOut := vigilRun(t, env, "", "isp-request", "--target", target, "--format", "json", "--case", "2026/0042")
			if code != exitOK {
				t.Fatalf("isp-request %s: exit %d %s", target, code, errOut)
			}
			var req struct {
				Groups []struct {
					Rows []ispRowAccept `json:"rows"`
				} `json:"groups"`
			}
			if err := json.Unmarshal([]byte(out), &req); err != nil {
				t.Fatalf("isp-request %s: %v\n%s", target, err, out)
			}
			for _, g := range req.Groups {
				all = append(all, g.Rows...)
			}
		}
		return all
	}
	for _, ip := range []string{"127.0.0.2", "127.0.0.7"} {
		if r := rows(ip); len(r) != 0 {
			t.Errorf("%s, named by a third party only, has ISP rows: %+v", ip, r)
		}
	}
	for _, r := range rows("127.0.0.4") {
		if r.Method != "peer_probe" || r.SourcePort != gossip.Port() {
			t.Errorf("gossiping peer's ISP row %+v: want the probe of 127.0.0.4:%d only", r, gossip.Port())
		}
	}
	probes, announces := 0, 0
	for _, r := range rows("127.0.0.3") {
		switch {
		case r.IP != "127.0.0.3":
			t.Errorf("row %+v: another address", r)
		case r.Method == "peer_probe":
			probes++
			if r.SourcePort != peer.Port() || r.Direction != "sensor_to_peer" {
				t.Errorf("probe row %+v: want the port the sensor connected to, %d", r, peer.Port())
			}
		case r.Method == "dht_announce":
			announces++
			if r.SourcePort != node.addr.Port() || r.Transport != "udp" || r.Direction != "peer_to_sensor" {
				t.Errorf("announce row %+v: want the datagram's UDP source port %d, never the port it declared (%d)", r, node.addr.Port(), peer.Port())
			}
		default:
			t.Errorf("row %+v: not a first-hand method", r)
		}
	}
	if probes == 0 || announces == 0 {
		t.Errorf("rows of 127.0.0.3: %d probes, %d announces; want both (first-hand, seen at several instants)", probes, announces)
	}
	for _, id := range append(targetsOf["127.0.0.3"], targetsOf["127.0.0.4"]...) {
		// The target in full, as an investigator reads it: no level above
		// what the peer left standing, anywhere in it.
		code, out, errOut := vigilRun(t, env, "", "target", "show", id)
		if code != exitOK {
			t.Fatalf("target show %s: exit %d %s", id, code, errOut)
		}
		t.Logf("target show %s:\n%s", id, out)
		for _, over := range []string{"complete", "partial", "verified"} {
			if strings.Contains(out, over) {
				t.Errorf("target show %s says %q of a peer that withdrew its have_all or held nothing:\n%s", id, over, out)
			}
		}
		checkLabBundle(t, db, id, env["VIGIL_KEY_DIR"])
	}
}

// rank orders possession levels, weakest first ("" lowest).
func rank(level string) int {
	return slices.Index([]string{"", "announced", "acknowledged", "partial", "complete", "verified"}, level)
}

type ispRowAccept struct {
	IP         string `json:"ip"`
	SourcePort uint16 `json:"source_port"`
	Transport  string `json:"transport"`
	Direction  string `json:"direction"`
	Method     string `json:"method"`
	Level      string `json:"level"`
}

// startWithdrawingPeer listens on 127.0.0.3 and answers a handshake for
// ih with the fast extension bit, have_all, then have_none, and holds the
// connection two seconds: it said "all", then "none".
func startWithdrawingPeer(t *testing.T, ih [20]byte) netip.AddrPort {
	return startScriptedPeer(t, "127.0.0.3:0", ih, func(c net.Conn) []byte {
		out := append([]byte{19}, "BitTorrent protocol"...)
		out = append(out, 0, 0, 0, 0, 0, 0, 0, 0x04) // fast extension only
		out = append(out, ih[:]...)
		out = append(out, "-LT2000-withdraw0001"...)
		out = append(out, 0, 0, 0, 1, 0x0e)  // have_all
		return append(out, 0, 0, 0, 1, 0x0f) // have_none: withdrawn
	})
}

// startGossipPeer listens on 127.0.0.4, holds nothing (have_none), and
// sends a PEX message naming what others are: the sensor's own probe
// connection (as IPv4, and IPv4-mapped in added6), the endpoints
// self() returns (the sensor's DHT identities), and others.
func startGossipPeer(t *testing.T, ih [20]byte, self func() []netip.AddrPort, others ...netip.AddrPort) netip.AddrPort {
	return startScriptedPeer(t, "127.0.0.4:0", ih, func(c net.Conn) []byte {
		out := append([]byte{19}, "BitTorrent protocol"...)
		out = append(out, 0, 0, 0, 0, 0, 0x10, 0, 0x04) // extension protocol and fast extension
		out = append(out, ih[:]...)
		out = append(out, "-TR3000-gossip000001"...)
		local := netip.MustParseAddrPort(c.LocalAddr().String())
		eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_pex": 1}, Port: local.Port(), Client: "Transmission 3.00"}
		out = appendExt(out, peerwire.ExtHandshakeID, eh.AppendTo(nil))
		out = append(out, 0, 0, 0, 1, 0x0f) // have_none
		sensor := netip.MustParseAddrPort(c.RemoteAddr().String())
		var x peerwire.PEX
		x.Added = append(x.Added, peerwire.PEXPeer{Addr: sensor})
		x.Added6 = append(x.Added6, peerwire.PEXPeer{Addr: netip.AddrPortFrom(netip.AddrFrom16(sensor.Addr().As16()), sensor.Port())})
		for _, a := range append(self(), others...) {
			x.Added = append(x.Added, peerwire.PEXPeer{Addr: a, Flags: peerwire.PEXSeed})
		}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		// The id the sensor's extension handshake gives ut_pex.
		return appendExt(out, probe.ExtPEXID, b)
	})
}

// appendExt appends a BEP 10 extended message.
func appendExt(dst []byte, id uint8, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(2+len(payload)))
	dst = append(dst, 20, id)
	return append(dst, payload...)
}

// startScriptedPeer listens on addr and answers each handshake for ih
// with what say returns, then holds the connection two seconds.
func startScriptedPeer(t *testing.T, addr string, ih [20]byte, say func(net.Conn) []byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var hs [68]byte
				if _, err := io.ReadFull(c, hs[:]); err != nil || string(hs[28:48]) != string(ih[:]) {
					return
				}
				if _, err := c.Write(say(c)); err != nil {
					return
				}
				time.Sleep(2 * time.Second)
			}()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// hostileNode is a DHT node on 127.0.0.3 (the hostile peer's host) that
// names values for every get_peers and announces ih itself with the
// peer's TCP port, not its own UDP port.
type hostileNode struct {
	addr netip.AddrPort
	pc   *net.UDPConn
	id   krpc.ID
	ih   [20]byte
	port uint16 // the port it declares in its announces

	mu       sync.Mutex
	sources  map[netip.AddrPort]bool
	pending  map[string]netip.AddrPort // transaction id of our get_peers → identity asked
	announce int
	lastErr  string
	started  bool
}

func startHostileNode(t *testing.T, ctx context.Context, ih [20]byte, declare uint16, values []netip.AddrPort) *hostileNode {
	t.Helper()
	pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.3:0")))
	if err != nil {
		t.Fatal(err)
	}
	n := &hostileNode{addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), pc: pc, ih: ih, port: declare,
		sources: map[netip.AddrPort]bool{}, pending: map[string]netip.AddrPort{}}
	rand.Read(n.id[:])
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		n.serve(ctx, values)
	}()
	return n
}

func (n *hostileNode) querySources() map[netip.AddrPort]bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[netip.AddrPort]bool{}
	for a := range n.sources {
		out[a] = true
	}
	return out
}

func (n *hostileNode) announced() int   { n.mu.Lock(); defer n.mu.Unlock(); return n.announce }
func (n *hostileNode) tokenErr() string { n.mu.Lock(); defer n.mu.Unlock(); return n.lastErr }

func (n *hostileNode) send(to netip.AddrPort, m *krpc.Msg) {
	b, err := m.AppendTo(nil)
	if err != nil {
		n.mu.Lock()
		n.lastErr = err.Error()
		n.mu.Unlock()
		return
	}
	n.pc.WriteToUDPAddrPort(b, to)
}

func (n *hostileNode) serve(ctx context.Context, values []netip.AddrPort) {
	buf := make([]byte, 4096)
	var m krpc.Msg
	for {
		k, from, err := n.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		m.Reset()
		if m.Decode(buf[:k]) != nil {
			continue
		}
		switch m.Kind {
		case krpc.KindQuery:
			n.mu.Lock()
			n.sources[from] = true
			first := !n.started
			n.started = true
			self := make([]netip.AddrPort, 0, len(n.sources))
			for a := range n.sources {
				self = append(self, a)
			}
			n.mu.Unlock()
			// "VG" and a version Vigil never sent: Vagaa's code.
			r := krpc.Msg{T: append([]byte(nil), m.T...), Kind: krpc.KindResponse, V: []byte("VG\x02\x05")}
			r.R.ID = n.id
			if m.Method == krpc.MethodGetPeers {
				r.R.Token = []byte("hostile-token")
				// The peers, and every address that asked: the sensor's
				// own identities, echoed back as peers.
				r.R.Values = append(append([]netip.AddrPort(nil), values...), self...)
			}
			n.send(from, &r)
			if first {
				go n.announceTo(ctx, from)
			}
		case krpc.KindResponse:
			n.mu.Lock()
			to, ok := n.pending[string(m.T)]
			delete(n.pending, string(m.T))
			n.mu.Unlock()
			if !ok || to != from || len(m.R.Token) == 0 {
				continue
			}
			// Announce with the token, declaring a port that is not its
			// own (the hostile peer's), twice, a second apart.
			go n.announceWith(ctx, from, append([]byte(nil), m.R.Token...))
		}
	}
}

// announceTo asks identity for a write token (a get_peers of ih).
func (n *hostileNode) announceTo(ctx context.Context, identity netip.AddrPort) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(500 * time.Millisecond):
	}
	q := krpc.Msg{T: []byte("gp"), Kind: krpc.KindQuery, Method: krpc.MethodGetPeers, V: []byte("VG\x02\x05")}
	q.A.ID, q.A.InfoHash = n.id, n.ih
	n.mu.Lock()
	n.pending["gp"] = identity
	n.mu.Unlock()
	n.send(identity, &q)
}

func (n *hostileNode) announceWith(ctx context.Context, to netip.AddrPort, token []byte) {
	for i := range 2 {
		a := krpc.Msg{T: []byte{'a', byte(i)}, Kind: krpc.KindQuery, Method: krpc.MethodAnnouncePeer, V: []byte("VG\x02\x05")}
		a.A.ID, a.A.InfoHash, a.A.Token, a.A.Port = n.id, n.ih, token, n.port
		n.send(to, &a)
		n.mu.Lock()
		n.announce++
		n.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
