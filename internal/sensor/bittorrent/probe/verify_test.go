package probe

import (
	"crypto/rand"
	"crypto/sha1"
	"testing"
)

// A piece of two blocks whose second block is zeros (the tail of a file
// before BEP 47 padding, say). A peer that sends the first block twice
// has not sent the piece: the code before this counted the bytes copied,
// called the piece whole, and hashed the first block and the buffer's
// zeros into a match: "verified", with half the piece never sent.
func TestPieceFetchCountsEachBlockOnce(t *testing.T) {
	piece := make([]byte, 32<<10)
	if _, err := rand.Read(piece[:16<<10]); err != nil {
		t.Fatal(err)
	}
	f := newPieceFetch(3, len(piece))
	f.want = sha1.Sum(piece)
	if f.add(3, 0, piece[:16<<10]) {
		t.Fatal("whole after one block of two")
	}
	if f.add(3, 0, piece[:16<<10]) {
		t.Fatalf("whole after the same block twice (check: %v)", f.check())
	}
	// Blocks other than those asked for (an offset inside a block, a
	// short block) are not taken.
	if f.add(3, 8<<10, piece[8<<10:24<<10]) || f.add(3, 16<<10, piece[16<<10:24<<10]) {
		t.Fatal("whole after blocks that were not asked for")
	}
	if f.add(2, 16<<10, piece[16<<10:]) {
		t.Fatal("whole after a block of another piece")
	}
	if !f.add(3, 16<<10, piece[16<<10:]) || !f.check() {
		t.Fatal("not whole, or no match, after both blocks")
	}
}
