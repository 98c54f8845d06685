package bittorrent

import (
	"bytes"
	"crypto/rand"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// Peers that pad the conversation so that what raised a level falls out
// of the bounded transcript, with the default transcript bound (16 KiB):
// what the observation claims must be what the kept transcript shows.

// A peer that answers the handshake at once and then holds the
// connection, silent, is acknowledged (it held the connection at least a
// second after its handshake). Nothing in the transcript showed that:
// it held the two handshakes only, exactly what an echo-then-hang-up
// peer (not recorded at all) leaves. The holding is now a note in the
// transcript, timed when the probe stopped reading.
func TestProbeHostileHoldingIsInTheTranscript(t *testing.T) {
	s, pub := hostileSensorWith(t, func(c *Config) { c.ProbeTimeout = 1500 * time.Millisecond })
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return handshakeFor(h.InfoHash, false)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	wantPossession(t, o, observe.Acknowledged, -1, 10)
	recs := decodeTranscript(t, o.Transcript)
	var hsAt time.Duration = -1
	for _, r := range recs {
		switch {
		case r.Type == tscript.Received && hsAt < 0:
			hsAt = r.Offset
		case r.Type == tscript.Note && hsAt >= 0 && strings.Contains(string(r.Data), "held the connection"):
			if r.Offset-hsAt < time.Second {
				t.Fatalf("hold note %v after the handshake, want at least 1 s: %q", r.Offset-hsAt, r.Data)
			}
			return
		}
	}
	t.Fatalf("acknowledged from holding the connection, but no note in the transcript says so: %+v", recs)
}

// smallJunk is n extension messages of an id the sensor never gave, of
// 100 bytes each: padding whose message boundaries fall inside a cut.
func smallJunk(n int) []byte {
	one := msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 94)})
	return bytes.Repeat(one, n)
}

// A peer sends 40 KiB of small padding messages at once: the read that
// holds them is cut, and the cut falls in the middle of the padding, so
// that the lengths of the messages in it are not in the transcript. A
// reader of the transcript cannot tell where any later message begins;
// the have_all the peer sends next, kept whole in its own record, cannot
// be found by a reader. It was recorded complete; it is acknowledged,
// marked transcript_cut.
func TestProbeHostileFramingLostInACut(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		first := bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false), smallJunk(400)}, nil)
		if _, err := c.Write(first); err != nil {
			return nil
		}
		time.Sleep(300 * time.Millisecond) // its own read, after the cut
		return msg(peerwire.Message{ID: peerwire.HaveAll})
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if !bytes.Contains(o.Transcript.Bytes, msg(peerwire.Message{ID: peerwire.HaveAll})) {
		t.Fatal("the have_all's bytes are not in the transcript: the test proves nothing")
	}
	wantPossession(t, o, observe.Acknowledged, -1, 10, observe.MarkTranscriptCut)
}

// A peer fills the transcript with padding, then sends have_all and PORT
// for its DHT node: the PORT message, and the node's reply to the
// sensor's ping, are cut from the transcript, yet the node id that reply
// gave went into the observation's client, resting on bytes nobody can
// read. No node id is taken from bytes the transcript does not keep.
func TestProbeHostileNodeIDFromACutPing(t *testing.T) {
	pub := newCollector()
	w := watchedTorrent(t, nil, 10)
	s := startSensor(t, pub, w)
	dhtConn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dhtConn.Close()
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
			_, _ = dhtConn.WriteToUDPAddrPort(b, from)
		}
	}()
	dhtPort := uint16(dhtConn.LocalAddr().(*net.UDPAddr).Port)
	junk := msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 40<<10)})
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		if _, err := c.Write(bytes.Join([][]byte{handshakeFor(h.InfoHash, true), extHandshake(false)}, nil)); err != nil {
			return nil
		}
		for range 20 {
			time.Sleep(10 * time.Millisecond)
			if _, err := c.Write(junk); err != nil {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
		return bytes.Join([][]byte{msg(peerwire.Message{ID: peerwire.HaveAll}), msg(peerwire.Message{ID: peerwire.Port, Port: dhtPort})}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	if !o.HasMark(observe.MarkTranscriptCut) {
		t.Fatalf("marks %v: nothing was cut, the test proves nothing", o.Marks)
	}
	dhtAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), dhtPort).String()
	replyKept := false
	for _, r := range decodeTranscript(t, o.Transcript) {
		if r.Type == tscript.Received && r.Peer == dhtAddr && bytes.Contains(r.Data, nodeID[:]) {
			replyKept = true
		}
	}
	if len(o.Client.NodeID) != 0 && !replyKept {
		t.Fatalf("node id %x taken from a ping reply cut from the transcript", o.Client.NodeID)
	}
}
