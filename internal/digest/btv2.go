package digest

import (
	"crypto/sha256"
	"errors"
)

// BTV2BlockSize is BEP 52's merkle leaf length: 16 KiB.
const BTV2BlockSize = 16 << 10

// BTV2Size is the length of a BitTorrent v2 pieces root in bytes.
const BTV2Size = sha256.Size

// ErrEmptyFile is returned by BTV2.Root for a zero-length input: BEP 52
// gives an empty file no "pieces root" at all.
var ErrEmptyFile = errors.New("empty file has no BitTorrent v2 pieces root")

// btv2MaxLevels bounds the tree's height.
const btv2MaxLevels = 64

// btv2Pad[i] is the root of a subtree of 2^i padding leaves (leaves of 32
// zero bytes, not hashes of zero blocks).
var btv2Pad [btv2MaxLevels][BTV2Size]byte

func init() {
	for i := 1; i < btv2MaxLevels; i++ {
		btv2Pad[i] = btv2Node(&btv2Pad[i-1], &btv2Pad[i-1])
	}
}

// BTV2 is the BitTorrent v2 per-file merkle root (BEP 52 "pieces root"):
// SHA-256 of each 16 KiB block (the last one may be shorter), the leaf
// layer padded with all-zero 32-byte hashes to the next power of two, and
// node = SHA-256(left || right). A file of one block has that block's hash
// as its root.
//
// A zero-length file has no root: Root returns ErrEmptyFile and Sum
// appends 32 zero bytes, which no real root equals. Callers that print a
// root should ask Root (the reference hasher leaves the column empty).
type BTV2 struct {
	blk    [BTV2BlockSize]byte
	nb     int
	leaves uint64
	stack  [btv2MaxLevels][BTV2Size]byte
}

// NewBTV2 returns a BitTorrent v2 pieces-root hash.
func NewBTV2() *BTV2 { return new(BTV2) }

// Reset implements hash.Hash.
func (t *BTV2) Reset() {
	t.nb = 0
	t.leaves = 0
}

// Size implements hash.Hash.
func (t *BTV2) Size() int { return BTV2Size }

// BlockSize implements hash.Hash.
func (t *BTV2) BlockSize() int { return BTV2BlockSize }

// Write implements hash.Hash; it never fails.
func (t *BTV2) Write(p []byte) (int, error) {
	n := len(p)
	if t.nb > 0 {
		k := copy(t.blk[t.nb:], p)
		t.nb += k
		p = p[k:]
		if t.nb < BTV2BlockSize || len(p) == 0 {
			return n, nil
		}
		t.push(sha256.Sum256(t.blk[:]))
		t.nb = 0
	}
	for len(p) > BTV2BlockSize {
		t.push(sha256.Sum256(p[:BTV2BlockSize]))
		p = p[BTV2BlockSize:]
	}
	t.nb = copy(t.blk[:], p)
	return n, nil
}

func (t *BTV2) push(h [BTV2Size]byte) {
	level := 0
	for t.leaves&(1<<level) != 0 {
		h = btv2Node(&t.stack[level], &h)
		level++
	}
	t.stack[level] = h
	t.leaves++
}

// Root returns the pieces root, or ErrEmptyFile if nothing was written.
func (t *BTV2) Root() ([BTV2Size]byte, error) {
	if t.nb == 0 && t.leaves == 0 {
		return [BTV2Size]byte{}, ErrEmptyFile
	}
	// The last block is always buffered; merge it as push would, then pad
	// each smaller pending subtree with zero subtrees up to the next bigger
	// one, and finally to a whole power of two.
	h := sha256.Sum256(t.blk[:t.nb])
	level := 0
	leaves := t.leaves
	for leaves&(1<<level) != 0 {
		h = btv2Node(&t.stack[level], &h)
		level++
	}
	for b := level + 1; b < btv2MaxLevels && leaves>>b != 0; b++ {
		if leaves&(1<<b) == 0 {
			continue
		}
		for ; level < b; level++ {
			h = btv2Node(&h, &btv2Pad[level])
		}
		h = btv2Node(&t.stack[b], &h)
		level = b + 1
	}
	return h, nil
}

// Sum implements hash.Hash: it appends the root (32 zero bytes for an empty
// input, see Root) and leaves t unchanged.
func (t *BTV2) Sum(in []byte) []byte {
	d, _ := t.Root()
	return append(in, d[:]...)
}

func btv2Node(l, r *[BTV2Size]byte) [BTV2Size]byte {
	var b [2 * BTV2Size]byte
	copy(b[:], l[:])
	copy(b[BTV2Size:], r[:])
	return sha256.Sum256(b[:])
}
