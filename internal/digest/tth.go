package digest

import (
	"encoding/base32"
	"encoding/binary"
)

// TTHLeafSize is the THEX leaf length used by TTH: 1024 bytes.
const TTHLeafSize = 1024

// TTHSize is the length of a TTH digest in bytes.
const TTHSize = TigerSize

// TTHEncoding is how DC++, Gnutella (urn:tree:tiger:) and THEX print a TTH:
// RFC 4648 base32, upper case, no padding.
var TTHEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// tthMaxLevels bounds the tree's height: 2^64 leaves is more than any file.
const tthMaxLevels = 64

// TTH is the THEX Tiger Tree Hash over 1024-byte leaves: leaf =
// Tiger(0x00 || data), node = Tiger(0x01 || left || right), and a node
// without a sibling is promoted to the level above unchanged. The empty
// input has one empty leaf, Tiger(0x00).
//
// The tree is kept as a stack of completed subtree roots, one per level at
// most (the binary representation of the leaf count), so memory is bounded
// by the height, whatever the file's length.
type TTH struct {
	buf    [TTHLeafSize]byte
	nb     int
	leaves uint64
	stack  [tthMaxLevels][TigerSize]byte // stack[i] holds a subtree of 2^i leaves when bit i of leaves is set
}

// NewTTH returns a TTH hash.
func NewTTH() *TTH { return new(TTH) }

// Reset implements hash.Hash.
func (t *TTH) Reset() {
	t.nb = 0
	t.leaves = 0
}

// Size implements hash.Hash.
func (t *TTH) Size() int { return TTHSize }

// BlockSize implements hash.Hash.
func (t *TTH) BlockSize() int { return TTHLeafSize }

// Write implements hash.Hash; it never fails.
func (t *TTH) Write(p []byte) (int, error) {
	n := len(p)
	if t.nb > 0 {
		k := copy(t.buf[t.nb:], p)
		t.nb += k
		p = p[k:]
		if t.nb < TTHLeafSize || len(p) == 0 {
			// A full buffered leaf may be the last one: it is hashed when
			// more data or Sum arrives, never twice.
			return n, nil
		}
		t.push(tthLeaf(t.buf[:]))
		t.nb = 0
	}
	// Keep the last (possibly whole) leaf buffered so that Sum sees it.
	for len(p) > 2*TTHLeafSize {
		h0, h1 := tthLeaves2(p[:TTHLeafSize], p[TTHLeafSize:2*TTHLeafSize])
		t.push(h0)
		t.push(h1)
		p = p[2*TTHLeafSize:]
	}
	for len(p) > TTHLeafSize {
		t.push(tthLeaf(p[:TTHLeafSize]))
		p = p[TTHLeafSize:]
	}
	t.nb = copy(t.buf[:], p)
	return n, nil
}

// push adds a leaf (level 0 subtree) and merges equal-sized subtrees.
func (t *TTH) push(h [TigerSize]byte) {
	level := 0
	for t.leaves&(1<<level) != 0 {
		h = tthNode(&t.stack[level], &h)
		level++
	}
	t.stack[level] = h
	t.leaves++
}

// Sum implements hash.Hash: it appends the digest and leaves t unchanged.
func (t *TTH) Sum(in []byte) []byte {
	d := t.root()
	return append(in, d[:]...)
}

func (t *TTH) root() [TigerSize]byte {
	// The last leaf is always buffered (nb > 0) unless nothing was written:
	// then the one leaf is empty.
	last := tthLeaf(t.buf[:t.nb])
	if t.leaves == 0 {
		return last
	}
	// Fold the pending subtrees from the smallest up: each smaller one is
	// the right child, promoted unchanged until it meets its left sibling.
	// Both the leaf counter and the stack are copied, so t is unchanged.
	h := last
	level := 0
	leaves := t.leaves
	for leaves&(1<<level) != 0 {
		h = tthNode(&t.stack[level], &h)
		level++
	}
	leaves |= 1 << level // the merged subtree now sits at level
	for l := level + 1; l < tthMaxLevels && leaves>>l != 0; l++ {
		if leaves&(1<<l) != 0 {
			h = tthNode(&t.stack[l], &h)
		}
	}
	return h
}

// tthLeaf returns Tiger(0x00 || p) for len(p) <= 1024, reading p in place:
// the 0x00 prefix shifts every block by one byte, so block k is
// 0x00||p[0:63] for k = 0 and p[64k-1:64k+63] after, read unaligned.
func tthLeaf(p []byte) [TigerSize]byte {
	s := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
	var blk [2 * TigerBlockSize]byte
	total := len(p) + 1
	if total >= TigerBlockSize {
		copy(blk[1:TigerBlockSize], p)
		tigerBlocks(&s, blk[:TigerBlockSize])
		whole := (total / TigerBlockSize) * TigerBlockSize
		if whole > TigerBlockSize {
			tigerBlocks(&s, p[TigerBlockSize-1:whole-1])
		}
		p = p[whole-1:]
		blk = [2 * TigerBlockSize]byte{}
		n := copy(blk[:], p)
		return tigerFinish(&s, blk, n, uint64(total))
	}
	n := 1 + copy(blk[1:], p)
	return tigerFinish(&s, blk, n, uint64(total))
}

// tthLeaves2 returns the leaf hashes of two whole 1024-byte leaves, run
// in lock step (tigerBlocks2): one Tiger is a chain of dependent table
// look-ups, and two chains keep the core busier than one.
func tthLeaves2(p0, p1 []byte) (h0, h1 [TigerSize]byte) {
	_, _ = p0[TTHLeafSize-1], p1[TTHLeafSize-1]
	s0 := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
	s1 := s0
	var b0, b1 [TigerBlockSize]byte
	// Block 0 is 0x00 || p[0:63]; blocks 1..15 are p[64k-1:64k+63] in place.
	copy(b0[1:], p0)
	copy(b1[1:], p1)
	tigerBlocks2(&s0, &s1, b0[:], b1[:])
	tigerBlocks2(&s0, &s1, p0[TigerBlockSize-1:TTHLeafSize-1], p1[TigerBlockSize-1:TTHLeafSize-1])
	// Block 16: the last data byte, the 0x01 pad, the length in bits.
	b0, b1 = [TigerBlockSize]byte{p0[TTHLeafSize-1], 0x01}, [TigerBlockSize]byte{p1[TTHLeafSize-1], 0x01}
	binary.LittleEndian.PutUint64(b0[TigerBlockSize-8:], (TTHLeafSize+1)<<3)
	binary.LittleEndian.PutUint64(b1[TigerBlockSize-8:], (TTHLeafSize+1)<<3)
	tigerBlocks2(&s0, &s1, b0[:], b1[:])
	tigerPut(&h0, &s0)
	tigerPut(&h1, &s1)
	return h0, h1
}

// tigerFinish pads the n < 64 bytes in blk and returns the digest.
func tigerFinish(s *[3]uint64, blk [2 * TigerBlockSize]byte, n int, length uint64) [TigerSize]byte {
	blk[n] = 0x01
	end := TigerBlockSize
	if n+1 > TigerBlockSize-8 {
		end = 2 * TigerBlockSize
	}
	binary.LittleEndian.PutUint64(blk[end-8:], length<<3)
	tigerBlocks(s, blk[:end])
	var d [TigerSize]byte
	tigerPut(&d, s)
	return d
}

// tthNode returns Tiger(0x01 || l || r): 49 bytes, one padded block.
func tthNode(l, r *[TigerSize]byte) [TigerSize]byte {
	s := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
	var blk [2 * TigerBlockSize]byte
	blk[0] = 0x01
	copy(blk[1:], l[:])
	copy(blk[1+TigerSize:], r[:])
	return tigerFinish(&s, blk, 1+2*TigerSize, 1+2*TigerSize)
}
