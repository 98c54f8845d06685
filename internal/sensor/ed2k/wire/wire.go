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
	"fmt"
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

// reader is a cursor over a message's bytes. The first short read sets
// err; later reads return zeros, so that a decoder checks once at the end.
type reader struct {
	b   []byte
	off int
	err error
}

func newReader(b []byte) *reader { return &reader{b: b} }

func (r *reader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s at byte %d: %w", fmt.Sprintf(format, a...), r.off, ErrMalformed)
	}
}

// left is the number of unread bytes.
func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || r.left() < n {
		r.fail("%s: %d bytes wanted, %d left", what, n, r.left())
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8(what string) uint8 {
	if b := r.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) hash(what string) (h [16]byte) {
	copy(h[:], r.take(16, what))
	return h
}

// str reads a string with a 16-bit length.
func (r *reader) str(what string) string { return string(r.take(int(r.u16(what+" length")), what)) }

// end fails unless every byte was read: eD2K messages have exact lengths,
// and trailing bytes are a sign of a message that is not what it claims.
func (r *reader) end(what string) error {
	if r.err == nil && r.left() != 0 {
		r.fail("%s: %d trailing bytes", what, r.left())
	}
	return r.err
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
