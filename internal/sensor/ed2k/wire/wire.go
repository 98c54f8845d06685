// Package wire is the eDonkey 2000 (eD2K) TCP protocol as eMule and aMule
// speak it, bytes in and values out: the packet frame (0xE3 eDonkey, 0xC5
// eMule extensions, 0xD4 zlib-packed), tags, the client-to-client messages
// a probe needs (hello, file request and status, hash sets, one part
// fetched), the client-to-server messages a source search needs (login,
// get sources, found sources, offered files) and server.met files. It also
// holds the part arithmetic and part hashes (MD4) of eD2K files.
//
// It must never do I/O, start goroutines, or trust a length: every count
// read from the wire is checked against the bytes actually present before
// anything is allocated, packets are bounded (Limits), and a packed packet
// is inflated only up to its bound, so that a compressed bomb costs at
// most that bound.
package wire

import (
	"encoding/binary"
	"errors"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/cursor"
)

// Sentinel errors; every decoding error wraps one of them.
var (
	// ErrMalformed: the bytes do not form the message they claim to be.
	ErrMalformed = errors.New("ed2k: malformed")
	// ErrTooLarge: a packet, or a packed packet once inflated, exceeds
	// its bound.
	ErrTooLarge = errors.New("ed2k: too large")
	// ErrProtocol: the frame's protocol byte is none of 0xE3, 0xC5, 0xD4.
	ErrProtocol = errors.New("ed2k: unknown protocol byte")
)

// reader is a cursor over a message's bytes (cursor.Cursor, failing
// with ErrMalformed), with the eD2K field types on top.
type reader struct{ cursor.Cursor }

func newReader(b []byte) *reader { return &reader{cursor.Cursor{B: b, Malformed: ErrMalformed}} }

func (r *reader) hash(what string) (h [16]byte) {
	copy(h[:], r.Take(16, what))
	return h
}

// str reads a string with a 16-bit length.
func (r *reader) str(what string) string { return string(r.Take(int(r.U16(what+" length")), what)) }

// end fails unless every byte was read: eD2K messages have exact lengths,
// and trailing bytes are a sign of a message that is not what it claims.
func (r *reader) end(what string) error {
	if r.Err == nil && r.Left() != 0 {
		r.Fail("%s: %d trailing bytes", what, r.Left())
	}
	return r.Err
}

func appendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// appendStr writes a string with a 16-bit length, cut to 65535 bytes.
func appendStr(b []byte, s string) []byte {
	if len(s) > 0xFFFF {
		s = s[:0xFFFF]
	}
	b = appendU16(b, uint16(len(s)))
	return append(b, s...)
}
