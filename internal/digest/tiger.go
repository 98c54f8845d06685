package digest

import "encoding/binary"

// TigerSize is the length of a Tiger digest in bytes.
const TigerSize = 24

// TigerBlockSize is Tiger's block length in bytes.
const TigerBlockSize = 64

// The Tiger S-boxes: four tables of 256 words, filled once at start-up by
// the generation procedure published with Tiger (see tigerGenSboxes).
var tigerT [4][256]uint64

const (
	tigerInitA = 0x0123456789ABCDEF
	tigerInitB = 0xFEDCBA9876543210
	tigerInitC = 0xF096A5B4C3B2E187
)

// tigerRound5, 7 and 9 are one Tiger round of the portable code (amd64 runs
// tiger_amd64.s). The multiplier is a constant in each copy so that the
// compiler turns it into LEA arithmetic; uint8 indexes into [256] arrays need
// no bounds checks; each is small enough to be inlined.
func tigerRound5(t *[4][256]uint64, a, b, c, x uint64) (uint64, uint64, uint64) {
	c ^= x
	a -= t[0][uint8(c)] ^ t[1][uint8(c>>16)] ^ t[2][uint8(c>>32)] ^ t[3][uint8(c>>48)]
	b += t[3][uint8(c>>8)] ^ t[2][uint8(c>>24)] ^ t[1][uint8(c>>40)] ^ t[0][uint8(c>>56)]
	return a, b * 5, c
}

func tigerRound7(t *[4][256]uint64, a, b, c, x uint64) (uint64, uint64, uint64) {
	c ^= x
	a -= t[0][uint8(c)] ^ t[1][uint8(c>>16)] ^ t[2][uint8(c>>32)] ^ t[3][uint8(c>>48)]
	b += t[3][uint8(c>>8)] ^ t[2][uint8(c>>24)] ^ t[1][uint8(c>>40)] ^ t[0][uint8(c>>56)]
	return a, b * 7, c
}

func tigerRound9(t *[4][256]uint64, a, b, c, x uint64) (uint64, uint64, uint64) {
	c ^= x
	a -= t[0][uint8(c)] ^ t[1][uint8(c>>16)] ^ t[2][uint8(c>>32)] ^ t[3][uint8(c>>48)]
	b += t[3][uint8(c>>8)] ^ t[2][uint8(c>>24)] ^ t[1][uint8(c>>40)] ^ t[0][uint8(c>>56)]
	return a, b * 9, c
}

// tigerSchedule is Tiger's key schedule between passes.
func tigerSchedule(x0, x1, x2, x3, x4, x5, x6, x7 uint64) (uint64, uint64, uint64, uint64, uint64, uint64, uint64, uint64) {
	x0 -= x7 ^ 0xA5A5A5A5A5A5A5A5
	x1 ^= x0
	x2 += x1
	x3 -= x2 ^ (^x1 << 19)
	x4 ^= x3
	x5 += x4
	x6 -= x5 ^ (^x4 >> 23)
	x7 ^= x6
	x0 += x7
	x1 -= x0 ^ (^x7 << 19)
	x2 ^= x1
	x3 += x2
	x4 -= x3 ^ (^x2 >> 23)
	x5 ^= x4
	x6 += x5
	x7 -= x6 ^ 0x0123456789ABCDEF
	return x0, x1, x2, x3, x4, x5, x6, x7
}

// tigerCompress runs Tiger's compression function over one 64-byte block
// given as eight little-endian words, three passes unrolled.
func tigerCompress(s *[3]uint64, x0, x1, x2, x3, x4, x5, x6, x7 uint64) {
	a, b, c := s[0], s[1], s[2]
	aa, bb, cc := a, b, c
	t := &tigerT
	a, b, c = tigerRound5(t, a, b, c, x0)
	b, c, a = tigerRound5(t, b, c, a, x1)
	c, a, b = tigerRound5(t, c, a, b, x2)
	a, b, c = tigerRound5(t, a, b, c, x3)
	b, c, a = tigerRound5(t, b, c, a, x4)
	c, a, b = tigerRound5(t, c, a, b, x5)
	a, b, c = tigerRound5(t, a, b, c, x6)
	b, c, a = tigerRound5(t, b, c, a, x7)
	x0, x1, x2, x3, x4, x5, x6, x7 = tigerSchedule(x0, x1, x2, x3, x4, x5, x6, x7)
	c, a, b = tigerRound7(t, c, a, b, x0)
	a, b, c = tigerRound7(t, a, b, c, x1)
	b, c, a = tigerRound7(t, b, c, a, x2)
	c, a, b = tigerRound7(t, c, a, b, x3)
	a, b, c = tigerRound7(t, a, b, c, x4)
	b, c, a = tigerRound7(t, b, c, a, x5)
	c, a, b = tigerRound7(t, c, a, b, x6)
	a, b, c = tigerRound7(t, a, b, c, x7)
	x0, x1, x2, x3, x4, x5, x6, x7 = tigerSchedule(x0, x1, x2, x3, x4, x5, x6, x7)
	b, c, a = tigerRound9(t, b, c, a, x0)
	c, a, b = tigerRound9(t, c, a, b, x1)
	a, b, c = tigerRound9(t, a, b, c, x2)
	b, c, a = tigerRound9(t, b, c, a, x3)
	c, a, b = tigerRound9(t, c, a, b, x4)
	a, b, c = tigerRound9(t, a, b, c, x5)
	b, c, a = tigerRound9(t, b, c, a, x6)
	c, a, b = tigerRound9(t, c, a, b, x7)
	s[0] = a ^ aa
	s[1] = b - bb
	s[2] = c + cc
}

// tigerBlocksGeneric compresses every whole 64-byte block of p into s; it is
// the portable version of the assembly in tiger_amd64.s and its test oracle.
func tigerBlocksGeneric(s *[3]uint64, p []byte) {
	for len(p) >= TigerBlockSize {
		q := p[:TigerBlockSize:TigerBlockSize]
		tigerCompress(s,
			binary.LittleEndian.Uint64(q[0:]), binary.LittleEndian.Uint64(q[8:]),
			binary.LittleEndian.Uint64(q[16:]), binary.LittleEndian.Uint64(q[24:]),
			binary.LittleEndian.Uint64(q[32:]), binary.LittleEndian.Uint64(q[40:]),
			binary.LittleEndian.Uint64(q[48:]), binary.LittleEndian.Uint64(q[56:]))
		p = p[TigerBlockSize:]
	}
}

// tigerGenSboxes fills the S-boxes by the procedure published with Tiger
// (Anderson and Biham, "Tiger: A Fast New Hash Function", 1996): start from
// the identity in every byte column, then for five passes swap bytes within
// each column as directed by the state of Tiger's own compression function
// (run with the tables built so far) over the 64-byte string below. This
// avoids 8 KiB of opaque constants; the known-answer tests check the result.
func tigerGenSboxes() {
	const seed = "Tiger - A Fast New Hash Function, by Ross Anderson and Eli Biham"
	var x [8]uint64
	for i := range x {
		x[i] = binary.LittleEndian.Uint64([]byte(seed)[8*i:])
	}
	tables := [4]*[256]uint64{&tigerT[0], &tigerT[1], &tigerT[2], &tigerT[3]}
	for _, t := range tables {
		for i := range t {
			t[i] = uint64(i) * 0x0101010101010101
		}
	}
	state := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
	abc := 2
	for pass := 0; pass < 5; pass++ {
		for i := 0; i < 256; i++ {
			for _, t := range tables {
				abc++
				if abc == 3 {
					abc = 0
					tigerCompress(&state, x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7])
				}
				for col := 0; col < 8; col++ {
					shift := uint(8 * col)
					j := uint8(state[abc] >> shift)
					mask := uint64(0xFF) << shift
					vi, vj := t[i]&mask, t[j]&mask
					t[i] = t[i]&^mask | vj
					t[j] = t[j]&^mask | vi
				}
			}
		}
	}
}

func init() { tigerGenSboxes() }

// Tiger is the Tiger/192 hash (the original, with 0x01 padding, as used by
// TTH; not Tiger2). The zero value is not ready: use NewTiger.
type Tiger struct {
	s   [3]uint64
	buf [TigerBlockSize]byte
	nb  int    // bytes in buf
	len uint64 // bytes written
}

// NewTiger returns a Tiger hash.
func NewTiger() *Tiger {
	t := new(Tiger)
	t.Reset()
	return t
}

// Reset implements hash.Hash.
func (t *Tiger) Reset() {
	t.s = [3]uint64{tigerInitA, tigerInitB, tigerInitC}
	t.nb = 0
	t.len = 0
}

// Size implements hash.Hash.
func (t *Tiger) Size() int { return TigerSize }

// BlockSize implements hash.Hash.
func (t *Tiger) BlockSize() int { return TigerBlockSize }

// Write implements hash.Hash; it never fails.
func (t *Tiger) Write(p []byte) (int, error) {
	n := len(p)
	t.len += uint64(n)
	if t.nb > 0 {
		k := copy(t.buf[t.nb:], p)
		t.nb += k
		p = p[k:]
		if t.nb < TigerBlockSize {
			return n, nil
		}
		tigerBlocks(&t.s, t.buf[:])
		t.nb = 0
	}
	if len(p) >= TigerBlockSize {
		m := len(p) &^ (TigerBlockSize - 1)
		tigerBlocks(&t.s, p[:m])
		p = p[m:]
	}
	t.nb = copy(t.buf[:], p)
	return n, nil
}

// Sum implements hash.Hash: it appends the digest and leaves t unchanged.
func (t *Tiger) Sum(in []byte) []byte {
	var d [TigerSize]byte
	t.sum(&d)
	return append(in, d[:]...)
}

func (t *Tiger) sum(d *[TigerSize]byte) {
	s := t.s
	var blk [2 * TigerBlockSize]byte
	n := copy(blk[:], t.buf[:t.nb])
	blk[n] = 0x01 // Tiger pads with 0x01, MD4-style otherwise.
	end := TigerBlockSize
	if n+1 > TigerBlockSize-8 {
		end = 2 * TigerBlockSize
	}
	binary.LittleEndian.PutUint64(blk[end-8:], t.len<<3)
	tigerBlocks(&s, blk[:end])
	tigerPut(d, &s)
}

func tigerPut(d *[TigerSize]byte, s *[3]uint64) {
	binary.LittleEndian.PutUint64(d[0:], s[0])
	binary.LittleEndian.PutUint64(d[8:], s[1])
	binary.LittleEndian.PutUint64(d[16:], s[2])
}

// TigerSum returns the Tiger digest of data.
func TigerSum(data []byte) [TigerSize]byte {
	var t Tiger
	t.Reset()
	t.Write(data)
	var d [TigerSize]byte
	t.sum(&d)
	return d
}
