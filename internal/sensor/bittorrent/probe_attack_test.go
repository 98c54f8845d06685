package bittorrent

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
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
