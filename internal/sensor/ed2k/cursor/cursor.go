// Package cursor reads the little-endian fields of eD2K and Kad packets:
// bytes in, values out, no I/O. The first short read sets Err, wrapping
// the package's own Malformed sentinel, and every later read returns
// zero, so that a decoder reads a whole message and checks Err once.
//
// It is shared by internal/sensor/ed2k/wire (TCP) and .../kadwire (UDP),
// which had the same cursor each.
package cursor

import (
	"encoding/binary"
	"fmt"
)

// Cursor is a position in B.
type Cursor struct {
	B   []byte
	Off int
	// Err is the first failure, naming what was read and where.
	Err error
	// Malformed is the sentinel Err wraps (the decoding package's).
	Malformed error
}

// Fail records a failure at the current offset, unless one is recorded.
func (r *Cursor) Fail(format string, a ...any) {
	if r.Err == nil {
		r.Err = fmt.Errorf("%s at byte %d: %w", fmt.Sprintf(format, a...), r.Off, r.Malformed)
	}
}

// Left is the number of unread bytes.
func (r *Cursor) Left() int { return len(r.B) - r.Off }

// Take returns the next n bytes (a slice of B), or nil and a failure
// naming what when fewer are left.
func (r *Cursor) Take(n int, what string) []byte {
	if r.Err != nil {
		return nil
	}
	if n < 0 || r.Left() < n {
		r.Fail("%s: %d bytes wanted, %d left", what, n, r.Left())
		return nil
	}
	s := r.B[r.Off : r.Off+n]
	r.Off += n
	return s
}

// U8 reads one byte.
func (r *Cursor) U8(what string) uint8 {
	if b := r.Take(1, what); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a little-endian 16-bit value.
func (r *Cursor) U16(what string) uint16 {
	if b := r.Take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

// U32 reads a little-endian 32-bit value.
func (r *Cursor) U32(what string) uint32 {
	if b := r.Take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// U64 reads a little-endian 64-bit value.
func (r *Cursor) U64(what string) uint64 {
	if b := r.Take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}
