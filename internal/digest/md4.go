package digest

import (
	"encoding/binary"
	"math/bits"
)

// md4Size and md4BlockSize are MD4's digest and block lengths.
const (
	md4Size      = 16
	md4BlockSize = 64
)

// md4 is MD4 (RFC 1320). golang.org/x/crypto/md4 is correct but loops over
// tables of shifts and indexes; eD2K hashes every byte of every file with
// MD4, so this one is unrolled (about twice as fast), and x/crypto stays as
// the test oracle. MD4 is broken as a cryptographic hash: it is here only
// because eD2K is defined with it.
type md4 struct {
	s   [4]uint32
	buf [md4BlockSize]byte
	nb  int
	len uint64
}

func (m *md4) Reset() {
	m.s = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
	m.nb = 0
	m.len = 0
}

func (m *md4) Write(p []byte) {
	m.len += uint64(len(p))
	if m.nb > 0 {
		k := copy(m.buf[m.nb:], p)
		m.nb += k
		p = p[k:]
		if m.nb < md4BlockSize {
			return
		}
		md4Blocks(&m.s, m.buf[:])
		m.nb = 0
	}
	if len(p) >= md4BlockSize {
		n := len(p) &^ (md4BlockSize - 1)
		md4Blocks(&m.s, p[:n])
		p = p[n:]
	}
	m.nb = copy(m.buf[:], p)
}

// sum writes the digest of everything written so far to d, leaving m as it was.
func (m *md4) sum(d *[md4Size]byte) {
	s := m.s
	var blk [2 * md4BlockSize]byte
	n := copy(blk[:], m.buf[:m.nb])
	blk[n] = 0x80
	end := md4BlockSize
	if n+1 > md4BlockSize-8 {
		end = 2 * md4BlockSize
	}
	binary.LittleEndian.PutUint64(blk[end-8:], m.len<<3)
	md4Blocks(&s, blk[:end])
	for i, v := range s {
		binary.LittleEndian.PutUint32(d[4*i:], v)
	}
}

// md4Sum returns the MD4 digest of p.
func md4Sum(p []byte) [md4Size]byte {
	var m md4
	m.Reset()
	m.Write(p)
	var d [md4Size]byte
	m.sum(&d)
	return d
}

// md4BlocksGeneric runs MD4's compression over every whole 64-byte block
// of p; it is the portable version of md4_amd64.s and its test oracle.
func md4BlocksGeneric(s *[4]uint32, p []byte) {
	a, b, c, d := s[0], s[1], s[2], s[3]
	for len(p) >= md4BlockSize {
		q := p[:md4BlockSize:md4BlockSize]
		x0 := binary.LittleEndian.Uint32(q[0:])
		x1 := binary.LittleEndian.Uint32(q[4:])
		x2 := binary.LittleEndian.Uint32(q[8:])
		x3 := binary.LittleEndian.Uint32(q[12:])
		x4 := binary.LittleEndian.Uint32(q[16:])
		x5 := binary.LittleEndian.Uint32(q[20:])
		x6 := binary.LittleEndian.Uint32(q[24:])
		x7 := binary.LittleEndian.Uint32(q[28:])
		x8 := binary.LittleEndian.Uint32(q[32:])
		x9 := binary.LittleEndian.Uint32(q[36:])
		x10 := binary.LittleEndian.Uint32(q[40:])
		x11 := binary.LittleEndian.Uint32(q[44:])
		x12 := binary.LittleEndian.Uint32(q[48:])
		x13 := binary.LittleEndian.Uint32(q[52:])
		x14 := binary.LittleEndian.Uint32(q[56:])
		x15 := binary.LittleEndian.Uint32(q[60:])
		aa, bb, cc, dd := a, b, c, d

		a = bits.RotateLeft32(a+(d^(b&(c^d)))+x0, 3)
		d = bits.RotateLeft32(d+(c^(a&(b^c)))+x1, 7)
		c = bits.RotateLeft32(c+(b^(d&(a^b)))+x2, 11)
		b = bits.RotateLeft32(b+(a^(c&(d^a)))+x3, 19)
		a = bits.RotateLeft32(a+(d^(b&(c^d)))+x4, 3)
		d = bits.RotateLeft32(d+(c^(a&(b^c)))+x5, 7)
		c = bits.RotateLeft32(c+(b^(d&(a^b)))+x6, 11)
		b = bits.RotateLeft32(b+(a^(c&(d^a)))+x7, 19)
		a = bits.RotateLeft32(a+(d^(b&(c^d)))+x8, 3)
		d = bits.RotateLeft32(d+(c^(a&(b^c)))+x9, 7)
		c = bits.RotateLeft32(c+(b^(d&(a^b)))+x10, 11)
		b = bits.RotateLeft32(b+(a^(c&(d^a)))+x11, 19)
		a = bits.RotateLeft32(a+(d^(b&(c^d)))+x12, 3)
		d = bits.RotateLeft32(d+(c^(a&(b^c)))+x13, 7)
		c = bits.RotateLeft32(c+(b^(d&(a^b)))+x14, 11)
		b = bits.RotateLeft32(b+(a^(c&(d^a)))+x15, 19)
		a = bits.RotateLeft32(a+((b&c)|(d&(b|c)))+x0+0x5A827999, 3)
		d = bits.RotateLeft32(d+((a&b)|(c&(a|b)))+x4+0x5A827999, 5)
		c = bits.RotateLeft32(c+((d&a)|(b&(d|a)))+x8+0x5A827999, 9)
		b = bits.RotateLeft32(b+((c&d)|(a&(c|d)))+x12+0x5A827999, 13)
		a = bits.RotateLeft32(a+((b&c)|(d&(b|c)))+x1+0x5A827999, 3)
		d = bits.RotateLeft32(d+((a&b)|(c&(a|b)))+x5+0x5A827999, 5)
		c = bits.RotateLeft32(c+((d&a)|(b&(d|a)))+x9+0x5A827999, 9)
		b = bits.RotateLeft32(b+((c&d)|(a&(c|d)))+x13+0x5A827999, 13)
		a = bits.RotateLeft32(a+((b&c)|(d&(b|c)))+x2+0x5A827999, 3)
		d = bits.RotateLeft32(d+((a&b)|(c&(a|b)))+x6+0x5A827999, 5)
		c = bits.RotateLeft32(c+((d&a)|(b&(d|a)))+x10+0x5A827999, 9)
		b = bits.RotateLeft32(b+((c&d)|(a&(c|d)))+x14+0x5A827999, 13)
		a = bits.RotateLeft32(a+((b&c)|(d&(b|c)))+x3+0x5A827999, 3)
		d = bits.RotateLeft32(d+((a&b)|(c&(a|b)))+x7+0x5A827999, 5)
		c = bits.RotateLeft32(c+((d&a)|(b&(d|a)))+x11+0x5A827999, 9)
		b = bits.RotateLeft32(b+((c&d)|(a&(c|d)))+x15+0x5A827999, 13)
		a = bits.RotateLeft32(a+(b^c^d)+x0+0x6ED9EBA1, 3)
		d = bits.RotateLeft32(d+(a^b^c)+x8+0x6ED9EBA1, 9)
		c = bits.RotateLeft32(c+(d^a^b)+x4+0x6ED9EBA1, 11)
		b = bits.RotateLeft32(b+(c^d^a)+x12+0x6ED9EBA1, 15)
		a = bits.RotateLeft32(a+(b^c^d)+x2+0x6ED9EBA1, 3)
		d = bits.RotateLeft32(d+(a^b^c)+x10+0x6ED9EBA1, 9)
		c = bits.RotateLeft32(c+(d^a^b)+x6+0x6ED9EBA1, 11)
		b = bits.RotateLeft32(b+(c^d^a)+x14+0x6ED9EBA1, 15)
		a = bits.RotateLeft32(a+(b^c^d)+x1+0x6ED9EBA1, 3)
		d = bits.RotateLeft32(d+(a^b^c)+x9+0x6ED9EBA1, 9)
		c = bits.RotateLeft32(c+(d^a^b)+x5+0x6ED9EBA1, 11)
		b = bits.RotateLeft32(b+(c^d^a)+x13+0x6ED9EBA1, 15)
		a = bits.RotateLeft32(a+(b^c^d)+x3+0x6ED9EBA1, 3)
		d = bits.RotateLeft32(d+(a^b^c)+x11+0x6ED9EBA1, 9)
		c = bits.RotateLeft32(c+(d^a^b)+x7+0x6ED9EBA1, 11)
		b = bits.RotateLeft32(b+(c^d^a)+x15+0x6ED9EBA1, 15)

		a += aa
		b += bb
		c += cc
		d += dd
		p = p[md4BlockSize:]
	}
	s[0], s[1], s[2], s[3] = a, b, c, d
}
