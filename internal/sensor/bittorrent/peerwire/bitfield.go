package peerwire

import (
	"fmt"
	"math/bits"
)

// BitfieldLen is the length in bytes of the bitfield of a torrent of
// numPieces pieces.
func BitfieldLen(numPieces int) int { return (numPieces + 7) / 8 }

// CheckBitfield checks that bf is the bitfield of a torrent of numPieces
// pieces: the right length, and the spare bits after the last piece clear
// (BEP 3 says a peer that sets them should be dropped).
func CheckBitfield(bf []byte, numPieces int) error {
	if numPieces < 0 {
		return fmt.Errorf("peerwire: %d pieces: %w", numPieces, ErrBadBitfield)
	}
	if got, want := len(bf), BitfieldLen(numPieces); got != want {
		return fmt.Errorf("peerwire: bitfield of %d bytes for %d pieces, want %d: %w", got, numPieces, want, ErrBadBitfield)
	}
	if spare := len(bf)*8 - numPieces; spare > 0 {
		if bf[len(bf)-1]&(1<<spare-1) != 0 {
			return fmt.Errorf("peerwire: bitfield for %d pieces sets spare bits: %w", numPieces, ErrBadBitfield)
		}
	}
	return nil
}

// CountPieces is the number of pieces a bitfield says the peer has.
func CountPieces(bf []byte) int {
	n := 0
	for _, b := range bf {
		n += bits.OnesCount8(b)
	}
	return n
}

// HasPiece reports whether bf sets piece i (the high bit of the first byte
// is piece 0). Out-of-range pieces are not had.
func HasPiece(bf []byte, i int) bool {
	if i < 0 || i/8 >= len(bf) {
		return false
	}
	return bf[i/8]&(0x80>>(i%8)) != 0
}

// SetPiece sets piece i in bf; out-of-range pieces are ignored.
func SetPiece(bf []byte, i int) {
	if i < 0 || i/8 >= len(bf) {
		return
	}
	bf[i/8] |= 0x80 >> (i % 8)
}

// ClearPiece clears piece i in bf; out-of-range pieces are ignored.
func ClearPiece(bf []byte, i int) {
	if i < 0 || i/8 >= len(bf) {
		return
	}
	bf[i/8] &^= 0x80 >> (i % 8)
}

// Complete reports whether bf is a valid bitfield of numPieces pieces with
// every piece set.
func Complete(bf []byte, numPieces int) bool {
	return CheckBitfield(bf, numPieces) == nil && CountPieces(bf) == numPieces
}
