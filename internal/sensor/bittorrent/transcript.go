package bittorrent

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// A transcript is the raw protocol exchange behind an observation, in the
// order it happened, so that a defence expert can decode it with any
// BitTorrent tool. Its encoding (docs/evidence.md) is a sequence of records:
//
//	direction  1 byte: '<' received by the sensor, '>' sent by it
//	offset     uvarint: nanoseconds since the first record
//	peer       1 byte length, then the peer's address as text ("127.0.0.1:6881")
//	length     uvarint, then that many raw bytes (one datagram, or a chunk of a stream)
//
// A transcript is bounded: records past the limit are left out and the
// last record says how many bytes were cut (direction '!').
type transcript struct {
	limit int
	start time.Time
	buf   []byte
	cut   int
}

func newTranscript(limit int) *transcript { return &transcript{limit: limit} }

func (t *transcript) add(dir byte, at time.Time, peer netip.AddrPort, b []byte) {
	if t == nil || t.limit <= 0 {
		return
	}
	if t.start.IsZero() {
		t.start = at
	}
	p := peer.String()
	need := 1 + binary.MaxVarintLen64 + 1 + len(p) + binary.MaxVarintLen64 + len(b)
	if len(t.buf)+need > t.limit {
		t.cut += len(b)
		return
	}
	t.buf = append(t.buf, dir)
	t.buf = binary.AppendUvarint(t.buf, uint64(at.Sub(t.start)))
	t.buf = append(t.buf, byte(len(p)))
	t.buf = append(t.buf, p...)
	t.buf = binary.AppendUvarint(t.buf, uint64(len(b)))
	t.buf = append(t.buf, b...)
}

// sent and received record one direction each.
func (t *transcript) sent(at time.Time, peer netip.AddrPort, b []byte) { t.add('>', at, peer, b) }
func (t *transcript) received(at time.Time, peer netip.AddrPort, b []byte) {
	t.add('<', at, peer, b)
}

// final returns the transcript for an Observation.
func (t *transcript) final() observe.Transcript {
	if t == nil || len(t.buf) == 0 {
		return observe.Transcript{}
	}
	out := append([]byte(nil), t.buf...)
	if t.cut > 0 {
		out = append(out, '!')
		out = binary.AppendUvarint(out, uint64(t.cut))
	}
	sum := sha256.Sum256(out)
	return observe.Transcript{Bytes: out, SHA256: sum[:]}
}

// oneDatagram is the transcript of a single received datagram.
func oneDatagram(limit int, at time.Time, from netip.AddrPort, b []byte) observe.Transcript {
	t := newTranscript(limit)
	t.received(at, from, b)
	return t.final()
}
