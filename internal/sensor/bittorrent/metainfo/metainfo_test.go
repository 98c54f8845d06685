package metainfo

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/torrentmake"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestSinglePieceFiles checks which files' SHA-1 the v1 piece hashes
// give exactly, on torrents built by the lab's torrent maker.
func TestSinglePieceFiles(t *testing.T) {
	const pl = 16 << 10
	small, exact, big := randomBytes(5000), randomBytes(pl), randomBytes(pl+1)
	mid := randomBytes(3000)
	tests := []struct {
		name  string
		v     torrentmake.Version
		multi bool
		files [][]byte
		want  [][]byte // files whose SHA-1 must be found, in order
	}{
		{"v1-single-small", torrentmake.V1, false, [][]byte{small}, [][]byte{small}},
		{"v1-single-exact", torrentmake.V1, false, [][]byte{exact}, [][]byte{exact}},
		{"v1-single-two-pieces", torrentmake.V1, false, [][]byte{big}, nil},
		// v1 multi-file: files are not padded. The first starts at 0 and
		// fills a piece exactly, so the second starts on a boundary and,
		// being the last, is its own piece too; after a 3000-byte file the
		// next starts mid-piece and neither is alone in a piece.
		{"v1-multi-first-exact", torrentmake.V1, true, [][]byte{exact, small}, [][]byte{exact, small}},
		{"v1-multi-unaligned", torrentmake.V1, true, [][]byte{mid, small}, nil},
		// hybrid: pad files align every file, so the last (small) one is
		// exactly its own piece; a small non-last file is padded and so
		// is not.
		{"hybrid-multi", torrentmake.Hybrid, true, [][]byte{mid, small}, [][]byte{small}},
		{"hybrid-single", torrentmake.Hybrid, false, [][]byte{small}, [][]byte{small}},
		{"v2-only", torrentmake.V2, false, [][]byte{small}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var files []torrentmake.File
			for i, d := range tc.files {
				files = append(files, torrentmake.File{Path: []string{string(rune('a' + i))}, Data: d})
			}
			tor, err := torrentmake.Build(torrentmake.Options{Name: tc.name, PieceLength: pl, Version: tc.v, MultiFile: tc.multi}, files)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SinglePieceFiles(tor.Info)
			if err != nil {
				t.Fatal(err)
			}
			var gotSums, wantSums []string
			for _, f := range got {
				gotSums = append(gotSums, hex.EncodeToString(f.SHA1[:]))
			}
			for _, d := range tc.want {
				s := sha1.Sum(d)
				wantSums = append(wantSums, hex.EncodeToString(s[:]))
			}
			if !slices.Equal(gotSums, wantSums) {
				t.Fatalf("single-piece file SHA-1s %v, want %v", gotSums, wantSums)
			}
		})
	}
}

func TestSinglePieceFilesRejectsInconsistentInfo(t *testing.T) {
	for name, info := range map[string]string{
		"not-a-dict":      "i1e",
		"no-piece-length": "d6:lengthi5e6:pieces20:aaaaaaaaaaaaaaaaaaaae",
		"pieces-ragged":   "d6:lengthi5e12:piece lengthi16384e6:pieces3:abce",
		"count-mismatch":  "d6:lengthi40000e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae",
		"negative-length": "d5:filesld6:lengthi-5e4:pathl1:aeee12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae",
	} {
		if _, err := SinglePieceFiles([]byte(info)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzSinglePieceFiles: any bytes, no panic; every file returned lies
// within the piece space and its hash is one of the pieces.
func FuzzSinglePieceFiles(f *testing.F) {
	tor, _ := torrentmake.Build(torrentmake.Options{Name: "x", PieceLength: 16 << 10, Version: torrentmake.Hybrid, MultiFile: true},
		[]torrentmake.File{{Path: []string{"a"}, Data: make([]byte, 3000)}, {Path: []string{"b"}, Data: make([]byte, 100)}})
	f.Add(tor.Info)
	f.Add([]byte("d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := SinglePieceFiles(b)
		if err != nil {
			return
		}
		for _, pf := range files {
			if pf.Length <= 0 {
				t.Fatalf("file %q of length %d", pf.Path, pf.Length)
			}
		}
	})
}

func TestVerifyInfo(t *testing.T) {
	info := []byte("d4:name1:xe")
	s1, s2 := sha1.Sum(info), sha256.Sum256(info)
	if h, ok := Verify(info, s1); !ok || h.Kind() != hashkind.BTIH || h.Hex() != hex.EncodeToString(s1[:]) {
		t.Fatalf("v1 key: %v %v", h, ok)
	}
	if h, ok := Verify(info, [20]byte(s2[:20])); !ok || h.Kind() != hashkind.BTIH2 || h.Hex() != hex.EncodeToString(s2[:]) {
		t.Fatalf("v2 short key: %v %v", h, ok)
	}
	var other [20]byte
	other[0] = 1
	if _, ok := Verify(info, other); ok {
		t.Fatal("an info dictionary verified against another key")
	}
}
