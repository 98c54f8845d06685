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

// A peer sends 40 KiB of small padding messages at once, then have_all
// in its own write. On the code before this, the read that held the
// padding was cut in the middle of it, so that the lengths of the
// messages in the cut were not in the transcript and no reader could
// tell where a later message began; the have_all, kept whole in its own
// record, could not be found by a reader, and the peer was recorded
// complete. Whatever is cut now, a complete claim must be one a reader
// of the transcript finds the have_all for.
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
	if !o.HasMark(observe.MarkTranscriptCut) {
		t.Fatalf("marks %v: nothing was cut, the test proves nothing", o.Marks)
	}
	if found := readerFinds(t, o, peerwire.HaveAll); o.Possession.Level >= observe.Complete && found == 0 {
		t.Fatalf("possession %v, but a reader of the transcript finds no have_all", o.Possession.Level)
	}
}

// readerFinds counts the messages of type id that a reader of o's
// transcript finds whole: the peer's stream as kept, cut records as
// holes of the length they count, each message found by the lengths of
// those before it (stopping at a length prefix not kept).
func readerFinds(t *testing.T, o observe.Observation, id peerwire.MsgID) int {
	t.Helper()
	ep := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port).String()
	kept := map[uint64]byte{}
	var end uint64
	for _, r := range decodeTranscript(t, o.Transcript) {
		switch {
		case r.Gap():
			end += r.ReceivedLeft
		case r.Type == tscript.Received && r.Peer == ep:
			for _, c := range r.Data {
				kept[end] = c
				end++
			}
		}
	}
	get := func(from, to uint64) ([]byte, bool) {
		var b []byte
		for i := from; i < to; i++ {
			c, ok := kept[i]
			if !ok {
				return nil, false
			}
			b = append(b, c)
		}
		return b, true
	}
	n := 0
	for pos := uint64(peerwire.HandshakeLen); pos+4 <= end; {
		hdr, ok := get(pos, pos+4)
		if !ok {
			break
		}
		l := uint64(hdr[0])<<24 | uint64(hdr[1])<<16 | uint64(hdr[2])<<8 | uint64(hdr[3])
		if body, ok := get(pos+4, pos+4+l); ok && l > 0 && peerwire.MsgID(body[0]) == id {
			n++
		}
		pos += 4 + l
	}
	return n
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

// A peer sends 40 KiB of padding (an extension message of an id the
// sensor never gave) and its bitfield in one write: the read that holds
// both was cut half-way through the padding, the bitfield with it, and
// the peer was recorded acknowledged. The padding's body is withheld
// (its length and type kept, its bytes counted in a cut record) and the
// bitfield kept whole: partial 3/10, shown by the transcript.
func TestProbeHostilePaddingDoesNotPushTheBitfieldOut(t *testing.T) {
	s, pub := hostileSensor(t)
	w := watchedTorrent(t, s, 10)
	bf := make([]byte, peerwire.BitfieldLen(10))
	for p := range 3 {
		peerwire.SetPiece(bf, p)
	}
	bitfield := msg(peerwire.Message{ID: peerwire.Bitfield, Payload: bf})
	junk := msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 40<<10)})
	peer := hostilePeer(t, func(_ net.Conn, h peerwire.Handshake) []byte {
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(false), junk, bitfield}, nil)
	})
	probes, _ := probeNow(t, s, pub, peer, w)
	o := oneProbe(t, probes)
	wantPossession(t, o, observe.Partial, 3, 10, observe.MarkTranscriptCut)
	if !bytes.Contains(o.Transcript.Bytes, bitfield) || !bytes.Contains(o.Transcript.Bytes, junk[:6]) {
		t.Fatal("the bitfield, or the padding's length and type, are not in the transcript")
	}
	if o.Client.ListenPort != 51413 {
		t.Fatalf("listen port %d, want the kept extension handshake's 51413", o.Client.ListenPort)
	}
}
