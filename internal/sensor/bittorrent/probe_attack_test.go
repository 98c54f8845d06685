package bittorrent

import (
	"bytes"
	"net"
	"testing"

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
