package bittorrent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// Peers that lie, each a listener on 127.0.0.1 speaking the peer wire
// from a script, and what the sensor must record of them: no more than
// the valid part of what they said, marked.

// hostilePeer accepts one connection, reads the sensor's handshake, writes
// what script returns (its own handshake included) and then reads until
// the sensor hangs up.
func hostilePeer(t *testing.T, script func(c net.Conn, theirs peerwire.Handshake) []byte) netip.AddrPort {
	t.Helper()
	return hostilePeerOn(t, "127.0.0.1:0", script)
}

// hostilePeerOn is hostilePeer listening on addr ("[::1]:0" for IPv6).
func hostilePeerOn(t *testing.T, addr string, script func(c net.Conn, theirs peerwire.Handshake) []byte) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
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
		dec := peerwire.NewDecoder(bufio.NewReader(c), 0)
		theirs, err := dec.ReadHandshake()
		if err != nil {
			return
		}
		if _, err := c.Write(script(c, theirs)); err != nil {
			return
		}
		var m peerwire.Message
		for dec.Decode(&m) == nil {
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// handshakeFor is a peer's handshake for infohash: extension protocol and
// BEP 6, and the DHT bit if dht.
func handshakeFor(infohash [20]byte, dht bool) []byte {
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	rsv.SetDHT(dht)
	var pid [20]byte
	copy(pid[:], "-TR3000-hostilepeer0")
	return (&peerwire.Handshake{Reserved: rsv, InfoHash: infohash, PeerID: pid}).AppendTo(nil)
}

func msg(m peerwire.Message) []byte { return m.AppendTo(nil) }

func haveMsg(i uint32) []byte { return msg(peerwire.Message{ID: peerwire.Have, Index: i}) }

// extHandshake offers ut_pex (under id 1) if pex.
func extHandshake(pex bool) []byte {
	eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: "Transmission 3.00", Port: 51413}
	if pex {
		eh.M["ut_pex"] = 1
	}
	return msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)})
}

// hostileSensor is a sensor that is not running (a probe needs none of its
// loops) and whose observations go to the returned collector.
func hostileSensor(t *testing.T) (*Sensor, *collector) {
	t.Helper()
	return hostileSensorOn(t)
}

// hostileSensorOn is hostileSensor on the given listen addresses (none:
// the default, 127.0.0.1).
func hostileSensorOn(t *testing.T, listen ...netip.Addr) (*Sensor, *collector) {
	t.Helper()
	return hostileSensorWith(t, func(c *Config) { c.ListenAddrs = listen })
}

// hostileSensorWith is hostileSensor with its configuration changed by
// set before the sensor is made.
func hostileSensorWith(t *testing.T, set func(*Config)) (*Sensor, *collector) {
	t.Helper()
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	cfg.ProbePortWait, cfg.ProbePEXWait, cfg.ProbeTimeout = 300*time.Millisecond, 300*time.Millisecond, 5*time.Second
	set(&cfg)
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := newCollector()
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, pub
}

// watchedTorrent is a torrent of n pieces of random bytes' hashes whose
// verified info dictionary the sensor holds, so that it knows the count.
func watchedTorrent(t *testing.T, s *Sensor, n int) Watched {
	t.Helper()
	pieces := make([]byte, 20*n)
	if _, err := rand.Read(pieces); err != nil {
		t.Fatal(err)
	}
	info := []byte(fmt.Sprintf("d6:lengthi%de4:name4:test12:piece lengthi16384e6:pieces%d:%se", n*16384, len(pieces), pieces))
	sum := sha1.Sum(info)
	w := Watched{Hash: hashkind.MustNew(hashkind.BTIH, sum[:]), Matched: []observe.Match{{List: "lab"}}}
	if s != nil {
		s.rememberInfo(Key(w.Hash), info)
		if got := s.pieceCount(Key(w.Hash)); got != n {
			t.Fatalf("piece count %d, want %d", got, n)
		}
	}
	return w
}

// probeNow runs one probe to the end and returns the peer_probe
// observations and the others.
func probeNow(t *testing.T, s *Sensor, pub *collector, peer netip.AddrPort, w Watched) (probes, others []observe.Observation) {
	t.Helper()
	s.probe(context.Background(), probeJob{peer: peer, w: w, via: "test", transport: transportTCP})
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Method == observe.MethodPeerProbe {
			probes = append(probes, o)
		} else {
			others = append(others, o)
		}
	}
	return probes, others
}

func oneProbe(t *testing.T, probes []observe.Observation) observe.Observation {
	t.Helper()
	if len(probes) != 1 {
		t.Fatalf("%d peer_probe observations, want 1", len(probes))
	}
	return probes[0]
}

// wantPossession checks level, pieces and marks.
func wantPossession(t *testing.T, o observe.Observation, level observe.Level, have, total int, marks ...string) {
	t.Helper()
	if o.Possession.Level != level || o.Possession.PiecesHave != have || o.Possession.PiecesTotal != total {
		t.Errorf("possession %v %d/%d, want %v %d/%d", o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal, level, have, total)
	}
	for _, m := range marks {
		if !o.HasMark(m) {
			t.Errorf("marks %v lack %s", o.Marks, m)
		}
	}
}

// The liar of issue 10: a 10-piece torrent, bitfield 80 3F FF (piece 0,
// the six spare bits of the second byte, and a byte too many). On
// 8846f19 it was recorded complete 10/10.
func TestProbeHostileBitfieldSpareBitsAndExtraByte(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x3f, 0xff}})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	// The contract: one valid piece and out-of-range claims give at most
	// partial with pieces_have 1.
	wantPossession(t, oneProbe(t, probes), observe.Partial, 1, 10, observe.MarkMalformedBitfield)
}

// have for pieces past the end, and a have repeated: on 8846f19 every
// index counted (4 of 10 here).
func TestProbeHostileHavePastTheEnd(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x00}}),
			haveMsg(10), haveMsg(200), haveMsg(1 << 31), haveMsg(3), haveMsg(3)}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Partial, 2, 10, observe.MarkMalformedHave)
}

// have_all after a bitfield of one piece: a contradiction, not counted.
// On 8846f19 it was recorded complete.
func TestProbeHostileHaveAllAfterPartialBitfield(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x00}}),
			msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Partial, 1, 10, observe.MarkMalformedHave)
}

// With the piece count unknown nothing can be checked: a peer that
// advertises pieces is acknowledged, pieces unknown. On 8846f19 the liar
// became partial with pieces_have 15.
func TestProbeHostileUnknownPieceCountIsAcknowledged(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, nil, 10) // the sensor does not know it
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0x80, 0x3f, 0xff}}), haveMsg(500)}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Acknowledged, -1, -1)
}

// A handshake that echoes another info-hash says nothing of the watched
// one: no observation at all (a peer_probe reads as first-hand), and the
// refusal is counted. 8846f19 recorded nothing either but counted it
// nowhere; the metric is what fails there.
func TestProbeHostileHandshakeForAnotherInfohash(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		other := h.InfoHash
		other[0] ^= 0xff
		return bytes.Join([][]byte{handshakeFor(other, false), extHandshake(false), msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
	})
	probes, others := probeNow(t, s, pub, peer, w)
	if len(probes)+len(others) != 0 {
		t.Fatalf("observations %+v %+v of a peer that answered for another torrent", probes, others)
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", "infohash_mismatch"); got != 1 {
		t.Fatalf("vigil_bittorrent_dropped_total{infohash_mismatch} = %v, want 1", got)
	}
}

// A peer that echoes the info-hash in its handshake and hangs up at once
// (what anacrolix/torrent 1.59 does for a torrent it does not serve) has
// acknowledged nothing: no observation, counted. The accuracy lab found
// every false "acknowledged" of the code before this came from such peers.
func TestProbeHostileEchoThenHangUp(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
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
		dec := peerwire.NewDecoder(bufio.NewReader(c), 0)
		if theirs, err := dec.ReadHandshake(); err == nil {
			_, _ = c.Write(handshakeFor(theirs.InfoHash, true))
		}
		c.Close()
	}()
	peer := netip.MustParseAddrPort(ln.Addr().String())
	probes, others := probeNow(t, s, pub, peer, w)
	if len(probes)+len(others) != 0 {
		t.Fatalf("observations %+v %+v of a peer that echoed and hung up", probes, others)
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", "handshake_only"); got != 1 {
		t.Fatalf("vigil_bittorrent_dropped_total{handshake_only} = %v, want 1", got)
	}
	// The same peer saying one thing more (an empty extension handshake)
	// has acknowledged.
	peer = hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false)}, nil)
	})
	probes, _ = probeNow(t, s, pub, peer, w)
	wantPossession(t, oneProbe(t, probes), observe.Acknowledged, -1, 10)
}

// A bitfield of 20,000 bytes (160,000 pieces, all set) does not fit the
// 16 KiB transcript. The cut is marked where it happens, the observation
// says transcript_cut, and the level does not rest on the bytes left out:
// acknowledged. On 8846f19 the record vanished (91 bytes left) and the
// observation said complete.
func TestProbeHostileBitfieldLargerThanTheTranscript(t *testing.T) {
	s, pub := hostileSensor(t)
	const n = 160_000
	w := watchedTorrent(t, s, n)
	bf := bytes.Repeat([]byte{0xff}, n/8)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
			msg(peerwire.Message{ID: peerwire.Bitfield, Payload: bf})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	wantPossession(t, o, observe.Acknowledged, -1, n, observe.MarkTranscriptCut)
	if len(o.Transcript.Bytes) > s.cfg.TranscriptLimit {
		t.Fatalf("transcript of %d bytes, bound %d", len(o.Transcript.Bytes), s.cfg.TranscriptLimit)
	}
	recs, err := tscript.Decode(o.Transcript.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var kept, left uint64
	cut := false
	for _, r := range recs {
		if r.Type == tscript.Received {
			kept += uint64(len(r.Data))
		}
		if r.Type == tscript.Cut {
			cut = true
			left += r.ReceivedLeft
		}
	}
	if !cut {
		t.Fatal("no cut record")
	}
	// Everything the peer sent is either kept or counted as cut.
	sent := uint64(peerwire.HandshakeLen + len(extHandshake(false)) + 5 + len(bf))
	if kept+left != sent {
		t.Fatalf("kept %d + cut %d bytes, the peer sent %d", kept, left, sent)
	}
	// The handshake is kept: the level (acknowledged) rests on it.
	if !bytes.Contains(o.Transcript.Bytes, handshakeFor([20]byte(Key(w.Hash)), false)[:48]) {
		t.Fatal("the peer's handshake is not in the transcript")
	}
}

// A peer passes the sensor's own outgoing address (the source address and
// port of the probe, which it sees as a peer) in PEX. The sensor must not
// record it nor probe it, and counts the drop; the other peer named is
// recorded as a third party's claim. The probe's own observation carries
// the sensor's end of the connection (Endpoint.Local). On 8846f19 the
// sensor's address became a pex observation and a probe target.
func TestProbeHostilePEXNamesTheSensor(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	other := netip.MustParseAddrPort("127.13.0.1:6881")
	seen := make(chan netip.AddrPort, 1)
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		sensorAddr := netip.MustParseAddrPort(c.RemoteAddr().String())
		seen <- sensorAddr
		x := peerwire.PEX{Added: []peerwire.PEXPeer{{Addr: sensorAddr}, {Addr: other}}}
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
	p := oneProbe(t, probes)
	if p.Endpoint.Local != sensorAddr {
		t.Errorf("probe's sensor address %v, want %v (the sensor's end of the connection)", p.Endpoint.Local, sensorAddr)
	}
	if len(others) != 1 {
		t.Fatalf("%d pex observations %+v, want 1 (the sensor itself is not a peer)", len(others), others)
	}
	x := others[0]
	if x.Method != observe.MethodPEX || netip.AddrPortFrom(x.Endpoint.IP, x.Endpoint.Port) != other || !x.HasMark(observe.MarkThirdParty) {
		t.Fatalf("pex observation %v:%d marks %v, want %v marked third_party", x.Endpoint.IP, x.Endpoint.Port, x.Marks, other)
	}
	if x.FirstHand() || x.Endpoint.Local.IsValid() {
		t.Fatal("a PEX claim reads as first-hand")
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", dropSelfConnection); got < 1 {
		t.Fatalf("self drops %v, want at least 1", got)
	}
	for len(s.probeQ) > 0 {
		if j := <-s.probeQ; j.peer == sensorAddr {
			t.Fatal("the sensor queued a probe of itself")
		}
	}
}

// A peer that sends PORT gets its DHT node pinged. A reply forged from
// another address is not taken (no node id); the ping is in the probe's
// transcript. A reply from the node pinged gives the id, marked
// node_id_unchecked (loopback ids cannot pass BEP 42). On 8846f19 the
// forged reply's id was attached and the ping was not in the transcript.
func TestProbePingNodeIDTakesOnlyTheNodePinged(t *testing.T) {
	for _, forged := range []bool{true, false} {
		t.Run(fmt.Sprintf("forged=%v", forged), func(t *testing.T) {
			pub := newCollector()
			w := watchedTorrent(t, nil, 10)
			s := startSensor(t, pub, w)
			dhtConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer dhtConn.Close()
			forger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer forger.Close()
			var nodeID krpc.ID
			_, _ = rand.Read(nodeID[:])
			go func() {
				buf := make([]byte, 2048)
				for {
					n, from, err := dhtConn.ReadFromUDPAddrPort(buf)
					if err != nil {
						return
					}
					var q krpc.Msg
					if q.Decode(append([]byte(nil), buf[:n]...)) != nil || q.Method != krpc.MethodPing {
						continue
					}
					r := krpc.Msg{T: q.T, Kind: krpc.KindResponse}
					r.R.ID = nodeID
					b, _ := r.AppendTo(nil)
					if forged {
						_, _ = forger.WriteToUDPAddrPort(b, from)
					} else {
						_, _ = dhtConn.WriteToUDPAddrPort(b, from)
					}
				}
			}()
			dhtPort := uint16(dhtConn.LocalAddr().(*net.UDPAddr).Port)
			peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
				return bytes.Join([][]byte{handshakeFor(h.InfoHash, true), extHandshake(false),
					msg(peerwire.Message{ID: peerwire.HaveAll}), msg(peerwire.Message{ID: peerwire.Port, Port: dhtPort})}, nil)
			})
			probes, _ := probeNow(t, s, pub, peer, w)
			o := oneProbe(t, probes)
			recs, err := tscript.Decode(o.Transcript.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			dhtAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dhtPort).String()
			var pinged, answered bool
			for _, r := range recs {
				if r.Peer == dhtAddr && r.Type == tscript.Sent && strings.Contains(string(r.Data), "4:ping") {
					pinged = true
				}
				if r.Peer == dhtAddr && r.Type == tscript.Received {
					answered = true
				}
			}
			if !pinged {
				t.Error("the ping is not in the probe's transcript")
			}
			if forged {
				if len(o.Client.NodeID) != 0 {
					t.Fatalf("node id %x taken from a reply forged from another address", o.Client.NodeID)
				}
				return
			}
			if !answered {
				t.Error("the node's reply is not in the transcript")
			}
			if !bytes.Equal(o.Client.NodeID, nodeID[:]) || !o.HasMark(observe.MarkNodeIDUnchecked) {
				t.Fatalf("node id %x marks %v, want %x marked node_id_unchecked", o.Client.NodeID, o.Marks, nodeID)
			}
			// Learnt by pinging the port the peer declared: behind
			// carrier-grade NAT another subscriber may have answered.
			if !o.HasMark("node_id_via_ping") {
				t.Fatalf("node id learnt by a ping: marks %v, want node_id_via_ping", o.Marks)
			}
		})
	}
}

// metricValue reads one labelled counter from the sensor's collector.
func metricValue(t *testing.T, s *Sensor, name, label string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// A probe over uTP records the sensor's end of the conversation too (the
// UDP socket's address and port), and registers it as the sensor's own.
// On 8846f19 Endpoint.Local was empty.
func TestProbeRecordsTheSensorsEndOverUTP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a BitTorrent client; skipped in -short mode")
	}
	peer, h := startSeeder(t, false)
	s, pub := hostileSensor(t)
	w := Watched{Hash: h}
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if o.Endpoint.Transport != transportUTP {
		t.Fatalf("transport %q, want utp", o.Endpoint.Transport)
	}
	if l := o.Endpoint.Local; !l.IsValid() || l.Addr() != s.cfg.Listen || l.Port() == 0 || l == peer {
		t.Fatalf("sensor address %v, want %v and the socket's port", l, s.cfg.Listen)
	}
	if port, _ := s.self.has(o.Endpoint.Local, s.cfg.Clock()); !port {
		t.Fatal("the uTP socket's address is not registered as the sensor's own")
	}
}

// With --verify the piece fetched is hashed and never kept: the transcript
// holds a paused record where recording paused, counting the bytes not
// kept, then the note; the observation is marked transcript_paused. On
// 8846f19 the pause left no record and no mark.
func TestProbeVerifyPauseIsMarked(t *testing.T) {
	s, pub := hostileSensorWith(t, func(c *Config) { c.Verify = true })
	content := make([]byte, 16384)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	ph := sha1.Sum(content)
	info := []byte(fmt.Sprintf("d6:lengthi%de4:name4:test12:piece lengthi16384e6:pieces20:%se", len(content), ph[:]))
	sum := sha1.Sum(info)
	w := Watched{Hash: hashkind.MustNew(hashkind.BTIH, sum[:]), Matched: []observe.Match{{List: "lab"}}}
	s.rememberInfo(Key(w.Hash), info)

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
		dec := peerwire.NewDecoder(bufio.NewReader(c), 0)
		h, err := dec.ReadHandshake()
		if err != nil {
			return
		}
		out := bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false), msg(peerwire.Message{ID: peerwire.HaveAll})}, nil)
		if _, err := c.Write(out); err != nil {
			return
		}
		var m peerwire.Message
		for dec.Decode(&m) == nil {
			switch m.ID {
			case peerwire.Interested:
				_, _ = c.Write(msg(peerwire.Message{ID: peerwire.Unchoke}))
			case peerwire.Request:
				if m.Keepalive || int(m.Begin+m.Length) > len(content) {
					continue
				}
				_, _ = c.Write(msg(peerwire.Message{ID: peerwire.Piece, Index: m.Index, Begin: m.Begin,
					Payload: content[m.Begin : m.Begin+m.Length]}))
			}
		}
	}()
	probes, _ := probeNow(t, s, pub, netip.MustParseAddrPort(ln.Addr().String()), w)
	o := oneProbe(t, probes)
	if o.Possession.Level != observe.Verified || !o.HasMark(observe.MarkTranscriptPaused) {
		t.Fatalf("level %v marks %v, want verified and transcript_paused", o.Possession.Level, o.Marks)
	}
	if bytes.Contains(o.Transcript.Bytes, content[:64]) {
		t.Fatal("the piece's content is in the transcript")
	}
	recs, err := tscript.Decode(o.Transcript.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var types []byte
	var paused tscript.Record
	for _, r := range recs {
		types = append(types, r.Type)
		if r.Type == tscript.Paused {
			paused = r
		}
	}
	if !bytes.Contains(types, []byte{tscript.Paused, tscript.Note}) {
		t.Fatalf("record types %q: want a paused record followed by the note", types)
	}
	if paused.ReceivedLeft < uint64(len(content)) || paused.SentLeft == 0 {
		t.Fatalf("paused record counts %d received, %d sent; the piece alone is %d bytes", paused.ReceivedLeft, paused.SentLeft, len(content))
	}
}

// A have whose bytes were cut from the transcript was ignored, not
// counted as unknown: a liar that fills the transcript with a large
// extended message, sends have(0) at its end (cut), then have_all alone
// (kept), was recorded complete 10/10, while the same stream uncut is
// partial 1/10 with malformed_have. Cutting bytes must never raise a
// level (docs/evidence.md: a later have_all that cannot be checked
// against a cut possession message is not counted). Padding is withheld
// now and the have kept; what is cut is a possession message too large
// for the transcript (a bitfield of 20,000 bytes).
func TestProbeHostileCutHaveThenHaveAll(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	big := msg(peerwire.Message{ID: peerwire.Bitfield, Payload: bytes.Repeat([]byte{0x80}, 20_000)})
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		first := bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false), big}, nil)
		if _, err := c.Write(first); err != nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond) // its own read, after the cut
		return msg(peerwire.Message{ID: peerwire.HaveAll})
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if o.Possession.Level >= observe.Partial {
		t.Fatalf("possession %v %d/%d with the bitfield cut: a cut raised the level", o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal)
	}
	wantPossession(t, o, observe.Acknowledged, -1, 10, observe.MarkTranscriptCut)
}

// The extension handshake's listen port and client name go into the
// observation (and the listen port into the listen_port_client link): not
// when its bytes were cut from the transcript, where no reader can see
// them. Padding before it is withheld now, so the cut one is an extension
// handshake too large for the transcript itself.
func TestProbeHostileCutExtensionHandshakeIsNotUsed(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: strings.Repeat("x", 40<<10), Port: 51413}
	ext := msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)})
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		first := bytes.Join([][]byte{handshakeFor(h.InfoHash, false), ext}, nil)
		if _, err := c.Write(first); err != nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
		return msg(peerwire.Message{ID: peerwire.HaveAll})
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if !o.HasMark(observe.MarkTranscriptCut) {
		t.Fatalf("marks %v: the extension handshake was not cut, the test proves nothing", o.Marks)
	}
	if o.Client.ListenPort != 0 {
		t.Fatalf("listen port %d taken from an extension handshake cut from the transcript", o.Client.ListenPort)
	}
}

// A bitfield that sets every piece but breaks the format (spare bits set,
// or a byte too many) is malformed: BEP 3 tells a client to drop such a
// peer, and the eD2K sensor never takes a malformed part map as complete.
// Its in-range pieces are counted, but a peer that breaks the protocol is
// not taken at its highest word: partial with every piece, marked, never
// complete. Before the fix both were recorded complete 10/10.
func TestProbeHostileMalformedFullBitfieldIsNeverComplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		bf   []byte
	}{
		{"spare-bits", []byte{0xff, 0xff}},
		{"extra-byte", []byte{0xff, 0xc0, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pub := hostileSensor(t)
			w := watchedTorrent(t, s, 10)
			peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
				return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false),
					msg(peerwire.Message{ID: peerwire.Bitfield, Payload: tc.bf})}, nil)
			})
			probes, _ := probeNow(t, s, pub, peer, w)
			wantPossession(t, oneProbe(t, probes), observe.Partial, 10, 10, observe.MarkMalformedBitfield)
		})
	}
}
