package bittorrent

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

// More lying peers (the attacks of the hostile review of 2026-12-06),
// with the sensor's default settings.

// handshakeNoFast is a peer's handshake for infohash with the extension
// protocol but without the BEP 6 fast extension bit.
func handshakeNoFast(infohash [20]byte) []byte {
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	var pid [20]byte
	copy(pid[:], "-TR2940-hostilepeer1")
	return (&peerwire.Handshake{Reserved: rsv, InfoHash: infohash, PeerID: pid}).AppendTo(nil)
}

// A have_all from a peer whose handshake did not set the fast extension
// bit: BEP 6 gives the message no meaning on that connection (a peer
// receiving it must close the connection), so it shows nothing. The
// code before this recorded the peer complete 10/10.
func TestProbeHostileHaveAllWithoutFastExtension(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeNoFast(h.InfoHash), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Acknowledged, -1, 10, observe.MarkMalformedHave)
}

// The same peer after a bitfield of one piece: the bitfield counts, the
// have_all does not.
func TestProbeHostileHaveAllWithoutFastAfterBitfield(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeNoFast(h.InfoHash), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x00}}),
			msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Partial, 1, 10, observe.MarkMalformedHave)
}

// A PEX message that comes a while after the handshake: the pex
// observation's time is when the message arrived (when Vigil heard the
// claim, as its transcript shows), never earlier. The code before this
// gave it the time of the handshake, before the peer had named anyone.
func TestProbePEXTimeIsWhenTheMessageCame(t *testing.T) {
	s, pub := hostileSensorWith(t, func(c *Config) { c.ProbePEXWait = 3 * time.Second })
	w := watchedTorrent(t, s, 10)
	other := netip.MustParseAddrPort("127.13.0.2:6881")
	sentAt := make(chan time.Time, 1)
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		first := bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
		if _, err := c.Write(first); err != nil {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
		x := peerwire.PEX{Added: []peerwire.PEXPeer{{Addr: other}}}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		sentAt <- time.Now()
		return msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})
	})
	probes, others := probeNow(t, s, pub, peer, w)
	p := oneProbe(t, probes)
	if len(others) != 1 || others[0].Method != observe.MethodPEX {
		t.Fatalf("observations %+v, want one pex", others)
	}
	at := <-sentAt
	if got := others[0].Time; got.Before(at) {
		t.Fatalf("pex observation at %v, %v before the peer sent the PEX message (the probe's handshake: %v)",
			got, at.Sub(got), p.Time)
	}
	if got := p.Time; !got.Before(at) {
		t.Fatalf("peer_probe at %v, want the handshake's time, before the PEX message (%v)", got, at)
	}
}

// internetSensor is hostileSensor in internet scope, listening on
// 127.0.0.1 (the guard lets an internet sensor reach loopback).
func internetSensor(t *testing.T) (*Sensor, *collector) {
	t.Helper()
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	cfg.ProbePortWait, cfg.ProbePEXWait, cfg.ProbeTimeout = 300*time.Millisecond, 300*time.Millisecond, 5*time.Second
	g, err := scope.New(scope.Config{Mode: scope.ModeInternet,
		Deployment: &scope.Deployment{LegalAuthority: "test authority", Operator: "test operator", Retention: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := newCollector()
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.labScope() {
		t.Fatal("the sensor is in lab scope")
	}
	return s, pub
}

// In internet scope a peer names, in PEX, a loopback address other than
// the sensor's listen address: the sensor's own host (another sensor, the
// operator's tools). The third party's claim was already dropped
// (non_public_loopback), but the sensor still probed the address, and a
// client there that answered was recorded as a first-hand peer_probe of
// 127.0.0.2, which reads as an ISP row. Loopback is the sensor's own host
// in internet scope: never probed, never recorded.
func TestProbeInternetScopeLoopbackNamedByPEXIsNotProbed(t *testing.T) {
	s, pub := internetSensor(t)
	w := watchedTorrent(t, s, 10)
	local := hostilePeerOn(t, "127.0.0.2:0", func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
	})
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		x := peerwire.PEX{Added: []peerwire.PEXPeer{{Addr: local}, {Addr: netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.3"), 6881)}}}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	probeNow(t, s, pub, peer, w)
	for len(s.probeQ) > 0 {
		job := <-s.probeQ
		t.Errorf("internet scope: a probe of %v (loopback, named by PEX) was queued", job.peer)
		s.probe(t.Context(), job)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Endpoint.IP != peer.Addr() && o.Endpoint.IP.Unmap().IsLoopback() {
			t.Errorf("internet scope: %s observation of %v:%d (first-hand %v)", o.Method, o.Endpoint.IP, o.Endpoint.Port, o.FirstHand())
		}
	}
}

// In internet scope every loopback address is the sensor's own host,
// whatever the port and however written; in lab scope loopback is the
// lab.
func TestSelfInternetScopeLoopbackIsTheSensorsHost(t *testing.T) {
	s, _ := hostileSensor(t)
	now := s.cfg.Clock()
	for _, ap := range []string{"127.0.0.2:6881", "127.200.1.1:1", "[::1]:6881", "[::ffff:127.0.0.9]:51413"} {
		if r := s.selfReasonIn(netip.MustParseAddrPort(ap), now, false); r != dropSelfAddress {
			t.Errorf("internet scope, %s: %q, want %q", ap, r, dropSelfAddress)
		}
		if r := s.selfReasonIn(netip.MustParseAddrPort(ap), now, true); r != "" {
			t.Errorf("lab scope, %s: %q, want a lab peer", ap, r)
		}
	}
}

// A slow peer whose handshake comes just before the probe's deadline and
// says nothing more: the probe stops reading a moment later, and the code
// before this took that as "held the connection open" (acknowledged).
// An echo-then-hang-up peer (docs/traps.md) looks the same when its
// hang-up is still on the way. Holding counts only once the connection
// was held for a while after the handshake; a peer that answers at once
// and then holds silently until the deadline is still acknowledged.
func TestProbeHostileHandshakeAtTheDeadlineIsNotHolding(t *testing.T) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		want  int // peer_probe observations
	}{
		{"handshake-at-the-deadline", 1200 * time.Millisecond, 0},
		{"handshake-at-once-then-silence", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pub := hostileSensorWith(t, func(c *Config) { c.ProbeTimeout = 1500 * time.Millisecond })
			w := watchedTorrent(t, s, 10)
			peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
				time.Sleep(tc.delay)
				return handshakeFor(h.InfoHash, false)
			})
			probes, others := probeNow(t, s, pub, peer, w)
			if len(probes) != tc.want || len(others) != 0 {
				t.Fatalf("%d peer_probe observations and %d others, want %d", len(probes), len(others), tc.want)
			}
			if tc.want == 1 {
				wantPossession(t, probes[0], observe.Acknowledged, -1, 10)
				return
			}
			if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropHandshakeOnly); got != 1 {
				t.Fatalf("vigil_bittorrent_dropped_total{handshake_only} = %v, want 1", got)
			}
		})
	}
}

// Held (no change needed): the sensor's own probe address passed back in
// PEX added6 in IPv4-mapped form (::ffff:127.0.0.1) is still the sensor,
// never recorded nor probed; a pex observation of a mapped peer names
// the IPv4 address.
func TestProbeHostilePEXNamesTheSensorInMappedForm(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	other := netip.MustParseAddrPort("[::ffff:127.13.0.4]:6881")
	seen := make(chan netip.AddrPort, 1)
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		me := netip.MustParseAddrPort(c.RemoteAddr().String())
		seen <- me
		mapped := netip.AddrPortFrom(netip.AddrFrom16(me.Addr().As16()), me.Port())
		x := peerwire.PEX{Added6: []peerwire.PEXPeer{{Addr: mapped}, {Addr: other}}}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	_, others := probeNow(t, s, pub, peer, w)
	me := <-seen
	if len(others) != 1 || others[0].Endpoint.IP != other.Addr().Unmap() || others[0].Endpoint.Port != other.Port() {
		t.Fatalf("pex observations %+v, want one of %v as IPv4", others, other)
	}
	for len(s.probeQ) > 0 {
		if j := <-s.probeQ; j.peer.Addr().Unmap() == me.Addr() && j.peer.Port() == me.Port() {
			t.Fatal("the sensor queued a probe of itself (mapped form)")
		}
	}
}

// A peer that reflects the sensor's own handshake, peer id included (a
// mirror), and then what the sensor sends: nothing it said is its own.
// The code before this recorded it acknowledged, with the sensor's own
// peer id as the peer's identity: the sensor sends one peer id for the
// whole run, so every mirror it probes would carry it, and the peer_id
// rule would link them into one device. Now: no observation, counted.
func TestProbeHostileMirrorOfTheSensorsPeerID(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		mirror := h // the sensor's own handshake, reserved bits and peer id
		return bytes.Join([][]byte{mirror.AppendTo(nil), extHandshake(false), msg(peerwire.Message{ID: peerwire.HaveNone})}, nil)
	})
	probes, others := probeNow(t, s, pub, peer, w)
	for _, o := range append(probes, others...) {
		t.Errorf("%s observation of a mirror: %v, peer id %q", o.Method, o.Possession.Level, o.Client.PeerID)
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropMirror); got != 1 {
		t.Fatalf("vigil_bittorrent_dropped_total{mirror} = %v, want 1", got)
	}
}

// Possession messages past the eight a probe keeps were dropped unread,
// and with them a later have_none: a full bitfield, seven have_all (each
// consistent with it) and then have_none was recorded complete 10/10,
// though the peer's last word was that it holds nothing (a peer that
// says "all" then "none" is never complete, docs/evidence.md). A peer
// that sends more possession messages than can be kept is counted
// nothing.
func TestProbeHostileHaveNonePastThePossessionCap(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		parts := [][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xff, 0xc0}})}
		for range 7 {
			parts = append(parts, msg(peerwire.Message{ID: peerwire.HaveAll}))
		}
		parts = append(parts, msg(peerwire.Message{ID: peerwire.HaveNone}))
		return bytes.Join(parts, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if o.Possession.Level >= observe.Partial {
		t.Fatalf("possession %v %d/%d after the peer's have_none", o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal)
	}
	wantPossession(t, o, observe.Acknowledged, o.Possession.PiecesHave, 10, observe.MarkMalformedHave)
}

// An extension handshake (BEP 10) from a peer whose handshake did not set
// the extension bit: BEP 10 gives it no meaning there. Its listen port
// feeds the listen_port_client link and its "v" the client name; the
// code before this took both. Now it is read and ignored, as are the
// PEX and metadata messages of such a peer.
func TestProbeHostileExtensionHandshakeWithoutTheBit(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		var rsv peerwire.Reserved
		rsv.SetFast(true)
		var pid [20]byte
		copy(pid[:], "XX0000-hostilepeer02") // a peer id that names no client
		hs := (&peerwire.Handshake{Reserved: rsv, InfoHash: h.InfoHash, PeerID: pid}).AppendTo(nil)
		x := peerwire.PEX{Added: []peerwire.PEXPeer{{Addr: netip.MustParseAddrPort("127.13.0.5:6881")}}}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{hs, extHandshake(true), msg(peerwire.Message{ID: peerwire.HaveNone}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	probes, others := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if o.Client.ListenPort != 0 || o.Client.Name != "" {
		t.Errorf("listen port %d and client %q taken from an extension handshake the peer did not negotiate", o.Client.ListenPort, o.Client.Name)
	}
	if len(others) != 0 {
		t.Errorf("%d pex observations from a peer that did not negotiate extensions", len(others))
	}
}

// mirrorPeer answers the sensor's handshake with it, its peer id changed
// by change, and then reflects every byte the sensor sends (have-none,
// its extension handshake): a reflector that does not echo the peer id.
func mirrorPeer(t *testing.T, change func(id *[20]byte)) netip.AddrPort {
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
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		hs := make([]byte, peerwire.HandshakeLen)
		if _, err := io.ReadFull(c, hs); err != nil {
			return
		}
		var id [20]byte
		copy(id[:], hs[48:])
		change(&id)
		copy(hs[48:], id[:])
		if _, err := c.Write(hs); err != nil {
			return
		}
		_, _ = io.Copy(c, c)
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// A mirror that changes the peer id it reflects (here its random part,
// or the whole of it) and then reflects what the sensor sends. The code
// before this recorded it acknowledged, named "Vigil" or "Vigil sensor":
// the have-none it showed was the sensor's own, and so was the extension
// handshake. It accepts any info-hash and holds nothing of its own. Now:
// no observation, counted as a mirror.
func TestProbeHostileMirrorThatChangesThePeerID(t *testing.T) {
	for name, change := range map[string]func(*[20]byte){
		"random part": func(id *[20]byte) { id[19] ^= 0xff },
		"whole id":    func(id *[20]byte) { copy(id[:], "-TR3000-reflector001") },
	} {
		t.Run(name, func(t *testing.T) {
			s, pub := hostileSensor(t)
			w := watchedTorrent(t, s, 10)
			probes, others := probeNow(t, s, pub, mirrorPeer(t, change), w)
			for _, o := range append(probes, others...) {
				t.Errorf("%s observation of a mirror: %v, peer id %q, client %q", o.Method, o.Possession.Level, o.Client.PeerID, o.Client.Name)
			}
			if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropMirror); got != 1 {
				t.Fatalf("vigil_bittorrent_dropped_total{mirror} = %v, want 1", got)
			}
		})
	}
}

// A peer that names itself as the sensor (a Vigil peer id, Vigil's "v")
// but advertises pieces said what no mirror of the sensor's messages can
// say (the sensor never sends a bitfield): it is recorded for what it
// advertised, and cannot escape the record by calling itself Vigil.
func TestProbeHostilePeerCallingItselfVigilIsRecordedForItsPieces(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		var rsv peerwire.Reserved
		rsv.SetExtended(true)
		rsv.SetFast(true)
		var pid [20]byte
		copy(pid[:], "-VG0001-notasensor01")
		hs := (&peerwire.Handshake{Reserved: rsv, InfoHash: h.InfoHash, PeerID: pid}).AppendTo(nil)
		eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: sensorClientName}
		return bytes.Join([][]byte{hs,
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xf0, 0x00}})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Partial, 4, 10)
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropMirror); got != 0 {
		t.Fatalf("vigil_bittorrent_dropped_total{mirror} = %v, want 0", got)
	}
}

// A peer whose PEX message names 1,000 peers, one of them eleven times
// (clients send at most 50 added peers a message, at most one message a
// minute). The code before this recorded 1,010 pex observations of one
// probe, each carrying the probe's whole transcript: one hostile peer
// could make the sensor publish megabytes an hour and crowd out others'
// observations. Now a probe records each peer once, at most
// maxPEXPerProbe of them; the rest are counted (pex_excess).
func TestProbeHostilePEXFloodIsBounded(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	var added []peerwire.PEXPeer
	for i := range 1000 {
		added = append(added, peerwire.PEXPeer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 20, byte(i >> 8), byte(i)}), 6881)})
	}
	for range 10 {
		added = append(added, added[0])
	}
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		b, err := (&peerwire.PEX{Added: added}).AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	probes, others := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Complete, 10, 10)
	seen := map[netip.AddrPort]bool{}
	for _, o := range others {
		ap := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
		if seen[ap] {
			t.Fatalf("%v recorded twice from one probe", ap)
		}
		seen[ap] = true
	}
	if len(others) == 0 || len(others) > maxPEXPerProbe {
		t.Fatalf("%d pex observations from one probe, want 1 to %d", len(others), maxPEXPerProbe)
	}
	if got, want := metricValue(t, s, "vigil_bittorrent_dropped_total", dropPEXExcess), float64(1000-len(others)); got != want {
		t.Fatalf("vigil_bittorrent_dropped_total{pex_excess} = %v, want %v", got, want)
	}
	if n := len(s.probeQ); n > maxPEXPerProbe {
		t.Fatalf("%d probes queued from one PEX flood, want at most %d", n, maxPEXPerProbe)
	}
}

// Six peers behind one address (a carrier-grade NAT, or a hostile that
// names made-up ports of it by PEX) with the default per-address budget
// (burst 4): the probes past the budget are not made. The code before
// this still marked those peers probed, so the next lookups skipped
// them for ProbeEvery (an hour by default): peers named past the budget
// went unprobed for an hour. Now a peer refused by the budget is counted
// (address_budget) and may be queued again at once.
func TestProbeRefusedByTheAddressBudgetIsQueuedAgain(t *testing.T) {
	frozen := time.Now() // no refill of the budget while the test runs
	s, _ := hostileSensorWith(t, func(c *Config) {
		c.Limits, c.Clock, c.ProbeTimeout = netlimit.DefaultConfig(), func() time.Time { return frozen }, 300*time.Millisecond
	})
	w := watchedTorrent(t, s, 1)
	var peers []netip.AddrPort
	for i := range 6 {
		peers = append(peers, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(9+i))) // nobody listens: refused at once
	}
	for _, p := range peers {
		s.enqueueProbe(p, w, "pex")
	}
	for len(s.probeQ) > 0 {
		s.probe(t.Context(), <-s.probeQ)
	}
	refused := s.lim.Stats().RefusedByAddr
	if refused == 0 {
		t.Fatal("no probe refused by the address budget: the test proves nothing")
	}
	if got := s.Dropped()[dropAddressBudget]; got != refused {
		t.Errorf("address_budget drops %d, want %d", got, refused)
	}
	for _, p := range peers {
		s.enqueueProbe(p, w, "pex")
	}
	if got := uint64(len(s.probeQ)); got != refused {
		t.Fatalf("%d peers queued again at once, want the %d the budget refused", got, refused)
	}
}

// The pairs remembered as probed are bounded. The code before this never
// forgot one: every peer a DHT node, a tracker or a PEX message ever
// named (made-up ones too) stayed in memory for the sensor's life. Now,
// past MaxProbed, pairs older than ProbeEvery are swept, and while the
// table is full of recent ones a new peer is counted
// (probe_table_full), not queued.
func TestProbedPairsAreBounded(t *testing.T) {
	now := time.Now()
	s, _ := hostileSensorWith(t, func(c *Config) {
		c.MaxProbed, c.ProbeEvery, c.Clock = 3, time.Minute, func() time.Time { return now }
	})
	w := watchedTorrent(t, s, 1)
	peer := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 70, 0, byte(i)}), 6881)
	}
	for i := range 5 {
		s.enqueueProbe(peer(i), w, "pex")
	}
	if got := len(s.probeQ); got != 3 {
		t.Fatalf("%d probes queued with room for 3 pairs, want 3", got)
	}
	if got := s.Dropped()[dropProbeTableFull]; got != 2 {
		t.Fatalf("probe_table_full %d, want 2", got)
	}
	now = now.Add(2 * time.Minute) // the three pairs are past ProbeEvery
	s.enqueueProbe(peer(3), w, "pex")
	if got := len(s.probeQ); got != 4 {
		t.Fatalf("%d probes queued after the old pairs expired, want 4", got)
	}
	s.probedMu.Lock()
	n := len(s.probed)
	s.probedMu.Unlock()
	if n > 3 {
		t.Fatalf("%d pairs remembered, want at most 3", n)
	}
}

// "VG" is Vagaa's client code as well as the sensor's (peer id
// "-VG2390-...": libtorrent, Transmission and others decode it as
// Vagaa). A Vagaa peer that acknowledges the torrent and says it holds
// nothing yet (an extension handshake, have_none: what the sensor sends
// too) is a real peer, not a mirror: the rule keyed on "-VG" alone
// dropped it. Only the sensor's own client code and version
// ("-VG0001-") names a mirror.
func TestProbeHostileVagaaPeerIsNoMirror(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		var rsv peerwire.Reserved
		rsv.SetExtended(true)
		rsv.SetFast(true)
		var pid [20]byte
		copy(pid[:], "-VG2390-vagaapeer001")
		hs := (&peerwire.Handshake{Reserved: rsv, InfoHash: h.InfoHash, PeerID: pid}).AppendTo(nil)
		eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: "Vagaa 2.6.4.6"}
		return bytes.Join([][]byte{hs,
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}),
			msg(peerwire.Message{ID: peerwire.HaveNone})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Acknowledged, 0, 10)
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropMirror); got != 0 {
		t.Fatalf("vigil_bittorrent_dropped_total{mirror} = %v, want 0", got)
	}
}
