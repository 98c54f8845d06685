package watchlist

import (
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

func TestMergeAcrossFiles(t *testing.T) {
	h := func(b byte) hashkind.Hash {
		s := make([]byte, 20)
		s[0] = b
		return hashkind.MustNew(hashkind.SHA1, s)
	}
	a := []Entry{
		{Hash: h(1), Category: "1", Pos: Pos{File: "a.txt", Line: 1}},
		{Hash: h(2), Category: "1", Pos: Pos{File: "a.txt", Line: 2}},
	}
	b := []Entry{
		{Hash: h(1), Category: "1", Pos: Pos{File: "b.txt", Line: 7}}, // duplicate
		{Hash: h(2), Category: "2", Pos: Pos{File: "b.txt", Line: 8}}, // dispute
		{Hash: h(3), Category: "2", Pos: Pos{File: "b.txt", Line: 9}},
	}
	got, dups, rej := Merge(a, b)
	if dups != 1 {
		t.Fatalf("duplicates = %d, want 1", dups)
	}
	if len(got) != 2 || got[0].Hash != h(1) || got[1].Hash != h(3) {
		t.Fatalf("entries = %v, want hashes 1 and 3", got)
	}
	if len(rej) != 2 {
		t.Fatalf("rejected = %v, want both places of the disputed hash", rej)
	}
	if rej[0].File != "b.txt" || rej[0].Line != 8 || !strings.Contains(rej[0].Reason, "a.txt line 2") {
		t.Fatalf("first rejection %+v does not name the other place", rej[0])
	}
	if rej[1].File != "a.txt" || rej[1].Line != 2 || !strings.Contains(rej[1].Reason, "b.txt line 8") {
		t.Fatalf("second rejection %+v does not name the other place", rej[1])
	}
}
