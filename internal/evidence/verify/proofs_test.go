package verify

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/transparency-dev/merkle/rfc6962"
)

// readAll reads b with readProofs, from a reader that gives one byte at a
// time if oneByte (so that every token is cut by the window's end).
func readAll(b []byte, oneByte bool) (Proofs, error) {
	src := iotest.OneByteReader(bytes.NewReader(b))
	if !oneByte {
		src = bytes.NewReader(b)
	}
	var ps Proofs
	size, n, err := readProofs(src, func(i int, p *Proof) {
		q := Proof{ID: p.ID, LeafIndex: p.LeafIndex}
		for _, h := range p.Hashes {
			q.Hashes = append(q.Hashes, bytes.Clone(h))
		}
		ps.Entries = append(ps.Entries, q)
		if i != len(ps.Entries)-1 {
			panic("entries out of order")
		}
	})
	if err == nil && n != len(ps.Entries) {
		panic("entries miscounted")
	}
	ps.Size = size
	return ps, err
}

// sameProofs compares two Proofs, an empty hash and a nil one alike (the
// same to a proof), and an empty list of hashes and none.
func sameProofs(a, b Proofs) bool {
	if a.Size != b.Size || len(a.Entries) != len(b.Entries) {
		return false
	}
	for i := range a.Entries {
		p, q := a.Entries[i], b.Entries[i]
		if p.ID != q.ID || p.LeafIndex != q.LeafIndex || len(p.Hashes) != len(q.Hashes) {
			return false
		}
		for j := range p.Hashes {
			if !bytes.Equal(p.Hashes[j], q.Hashes[j]) {
				return false
			}
		}
	}
	return true
}

// FuzzReadProofs: whatever readProofs reads from any input, cut anywhere
// by its window, encoding/json reads the same (strictJSON, as the
// verifier read proofs.json before readProofs).
func FuzzReadProofs(f *testing.F) {
	fixture, err := os.ReadFile(filepath.Join("testdata", "bundle-v1", FileProofs))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture)
	for _, s := range []string{
		`{"size":1,"entries":[null,{},{"hashes":null},{"hashes":[null,""]}]}`,
		`{"entries":[{"id":"\u0041\ud800é\"","leaf_index":18446744073709551615,"hashes":["AAAA","\u0041AAA"]}],"size":0}`,
		`{"ID":"x"}`, `{"size":1}]`, `{"size":1} x`, `{"size":1,"size":2}`, `{"size":1.0}`, `{"size":-1}`, `{"size":01}`,
		`{"entries":[{"hashes":["AA=="]}]}`, `{"entries":[{"hashes":["A"]}]}`, `null`, ` {"size" : 2 , "entries" : [ ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := readAll(b, false)
		got1, err1 := readAll(b, true)
		if (err == nil) != (err1 == nil) || err == nil && !sameProofs(got, got1) {
			t.Fatalf("read whole: %v %+v; read a byte at a time: %v %+v", err, got, err1, got1)
		}
		if err != nil {
			return
		}
		var want Proofs
		if err := strictJSON(b, &want); err != nil {
			t.Fatalf("readProofs reads %+v, encoding/json refuses: %v", got, err)
		}
		if !sameProofs(got, want) {
			t.Fatalf("readProofs reads %+v, encoding/json %+v", got, want)
		}
	})
}

// TestReadProofsReadsWhatExportWrites: proofs.json as encoding/json
// writes it (export writes it indented), of every kind of id and hash,
// reads back the same, whole or a byte at a time, and with a string
// larger than the reader's window.
func TestReadProofsReadsWhatExportWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 9))
	ids := []string{"", "01a2089d-4083-774f-8821-7c61451b3e21", `"\<>&` + "\u2028\x01é😀\xff", strings.Repeat("x", 200<<10)}
	for round := range 200 {
		ps := Proofs{Size: r.Uint64()}
		for range r.IntN(5) {
			p := Proof{ID: ids[r.IntN(len(ids))], LeafIndex: r.Uint64() >> r.IntN(64)}
			for range r.IntN(20) {
				h := make([]byte, []int{0, 1, 32, 33}[r.IntN(4)])
				for i := range h {
					h[i] = byte(r.Uint32())
				}
				p.Hashes = append(p.Hashes, h)
			}
			ps.Entries = append(ps.Entries, p)
		}
		compact, _ := json.Marshal(ps)
		indented, _ := json.MarshalIndent(ps, "", "  ")
		for _, b := range [][]byte{compact, indented} {
			want := ps
			if err := strictJSON(b, &want); err != nil { // as the verifier read it before
				t.Fatal(err)
			}
			for _, oneByte := range []bool{false, true} {
				got, err := readAll(b, oneByte)
				if err != nil || !sameProofs(got, want) {
					t.Fatalf("round %d (one byte at a time %v): %v\n%.300s", round, oneByte, err, b)
				}
			}
		}
	}
}

// TestHasherIsRFC6962: the verifier's tree hasher gives the library's
// hashes, for children of any length (a forged proof's included).
func TestHasherIsRFC6962(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		l, rr := make([]byte, r.IntN(70)), make([]byte, r.IntN(70))
		for i := range l {
			l[i] = byte(r.Uint32())
		}
		for i := range rr {
			rr[i] = byte(r.Uint32())
		}
		if got, want := treeHasher.HashChildren(l, rr), rfc6962.DefaultHasher.HashChildren(l, rr); !bytes.Equal(got, want) {
			t.Fatalf("HashChildren(%x, %x) = %x, want %x", l, rr, got, want)
		}
	}
}
