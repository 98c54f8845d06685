package ed2k

import (
	"bytes"
	"testing"

	"github.com/vigil-oss/vigil/internal/digest"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

func TestFileBytesAreSeekableAndHashAsED2K(t *testing.T) {
	f := NewFile(7, wire.PartSize+1000)
	all := make([]byte, f.Size)
	f.ReadAt(all, 0)
	mid := make([]byte, 77)
	f.ReadAt(mid, wire.PartSize-33)
	if !bytes.Equal(mid, all[wire.PartSize-33:wire.PartSize+44]) {
		t.Fatal("a range read differs from the whole")
	}
	d := digest.NewED2K()
	d.Write(all)
	if got := d.Sum(nil); !bytes.Equal(got, f.Hash[:]) {
		t.Fatalf("hash %x, digest says %x", f.Hash, got)
	}
	if !wire.CheckHashSet(f.Hash, f.HashSet()) || len(f.Parts) != 2 {
		t.Fatalf("hash set of %d not accepted", len(f.Parts))
	}
	if NewFile(8, 1000).Hash == NewFile(7, 1000).Hash {
		t.Fatal("two seeds gave one file")
	}
}
