package digest

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	xmd4 "golang.org/x/crypto/md4"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// synthetic returns n seeded random bytes: test data is never real content.
func synthetic(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	return b
}

// tigerWords turns a digest as printed in the Tiger paper (three 64-bit
// words in hex, most significant nibble first) into digest bytes.
func tigerWords(t *testing.T, words string) []byte {
	t.Helper()
	w, err := hex.DecodeString(words)
	if err != nil || len(w) != TigerSize {
		t.Fatalf("bad test vector %q", words)
	}
	out := make([]byte, 0, TigerSize)
	for i := 0; i < TigerSize; i += 8 {
		for j := 7; j >= 0; j-- {
			out = append(out, w[i+j])
		}
	}
	return out
}

func TestTigerMatchesPublishedVectors(t *testing.T) {
	// Vectors from the Tiger authors' page, in their word notation.
	for _, tc := range []struct{ in, words string }{
		{"", "24F0130C63AC933216166E76B1BB925FF373DE2D49584E7A"},
		{"abc", "F258C1E88414AB2A527AB541FFC5B8BF935F7B951C132951"},
		{"Tiger", "9F00F599072300DD276ABB38C8EB6DEC37790C116F9D2BDF"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZ=abcdefghijklmnopqrstuvwxyz+0123456789", "467DB80863EBCE488DF1CD1261655DE957896565975F9197"},
		{"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-", "87FB2A9083851CF7470D2CF810E6DF9EB586445034A5A386"},
	} {
		t.Run(fmt.Sprintf("%q", tc.in), func(t *testing.T) {
			got := TigerSum([]byte(tc.in))
			if want := tigerWords(t, tc.words); !bytes.Equal(got[:], want) {
				t.Fatalf("Tiger(%q) = %x, want %x", tc.in, got, want)
			}
		})
	}
}

func TestTigerAssemblyMatchesPortableCode(t *testing.T) {
	for _, blocks := range []int{1, 2, 3, 17, 64} {
		p := synthetic(uint64(blocks), blocks*TigerBlockSize)
		got := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
		want := got
		tigerBlocks(&got, p)
		tigerBlocksGeneric(&want, p)
		if got != want {
			t.Fatalf("%d blocks: tigerBlocks = %x, portable = %x", blocks, got, want)
		}
	}
}

func TestMD4MatchesXCrypto(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 4096 + 7} {
		p := synthetic(uint64(n), n)
		got := md4Sum(p)
		ref := xmd4.New()
		ref.Write(p)
		if want := ref.Sum(nil); !bytes.Equal(got[:], want) {
			t.Fatalf("md4 of %d bytes = %x, x/crypto says %x", n, got, want)
		}
	}
}

// ed2kModel is eD2K written from its definition with x/crypto's MD4.
func ed2kModel(p []byte, emule bool) []byte {
	sum := func(b []byte) []byte { h := xmd4.New(); h.Write(b); return h.Sum(nil) }
	var chunks [][]byte
	for len(p) >= ED2KChunkSize {
		chunks = append(chunks, sum(p[:ED2KChunkSize]))
		p = p[ED2KChunkSize:]
	}
	if len(p) > 0 || emule || len(chunks) == 0 {
		chunks = append(chunks, sum(p))
	}
	if len(chunks) == 1 {
		return chunks[0]
	}
	return sum(bytes.Join(chunks, nil))
}

func TestED2KMatchesDefinitionAtChunkBoundaries(t *testing.T) {
	data := synthetic(7, 2*ED2KChunkSize+1)
	for _, n := range []int{0, 1, ED2KChunkSize - 1, ED2KChunkSize, ED2KChunkSize + 1, 2*ED2KChunkSize - 1, 2 * ED2KChunkSize, 2*ED2KChunkSize + 1} {
		for _, blue := range []bool{false, true} {
			h := NewED2K()
			if blue {
				h = NewED2KBlue()
			}
			h.Write(data[:n])
			if got, want := h.Sum(nil), ed2kModel(data[:n], !blue); !bytes.Equal(got, want) {
				t.Fatalf("ed2k(blue=%v) of %d bytes = %x, want %x", blue, n, got, want)
			}
		}
	}
}

func TestED2KConventionsDifferOnlyOnExactMultiples(t *testing.T) {
	data := synthetic(8, 2*ED2KChunkSize+1)
	for _, tc := range []struct {
		n        int
		wantSame bool
	}{
		{0, true}, {ED2KChunkSize - 1, true}, {ED2KChunkSize, false}, {ED2KChunkSize + 1, true}, {2 * ED2KChunkSize, false},
	} {
		red, blue := NewED2K(), NewED2KBlue()
		red.Write(data[:tc.n])
		blue.Write(data[:tc.n])
		if got := bytes.Equal(red.Sum(nil), blue.Sum(nil)); got != tc.wantSame {
			t.Fatalf("%d bytes: eMule and blue conventions agree = %v, want %v", tc.n, got, tc.wantSame)
		}
	}
}

func TestED2KOfEmptyIsMD4OfEmpty(t *testing.T) {
	if got, want := hex.EncodeToString(NewED2K().Sum(nil)), "31d6cfe0d16ae931b73c59d7e0c089c0"; got != want {
		t.Fatalf("ed2k of empty = %s, want %s", got, want)
	}
}

// tthModel builds the THEX tree level by level, as the specification says.
func tthModel(p []byte) []byte {
	var level [][]byte
	for first := true; first || len(p) > 0; first = false {
		n := min(len(p), TTHLeafSize)
		s := TigerSum(append([]byte{0}, p[:n]...))
		level = append(level, s[:])
		p = p[n:]
	}
	for len(level) > 1 {
		var up [][]byte
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				up = append(up, level[i]) // promoted unchanged
				continue
			}
			s := TigerSum(append(append([]byte{1}, level[i]...), level[i+1]...))
			up = append(up, s[:])
		}
		level = up
	}
	return level[0]
}

func TestTTHOfEmptyIsPublishedValue(t *testing.T) {
	if got, want := TTHEncoding.EncodeToString(NewTTH().Sum(nil)), "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ"; got != want {
		t.Fatalf("TTH of empty = %s, want %s", got, want)
	}
}

func TestTTHMatchesLevelByLevelTree(t *testing.T) {
	data := synthetic(9, 9*TTHLeafSize+1)
	for _, n := range []int{0, 1, 62, 63, 64, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024, 3*1024 + 1, 5 * 1024, 6*1024 + 5, 7 * 1024, 8 * 1024, 8*1024 + 1, 9*1024 + 1} {
		h := NewTTH()
		h.Write(data[:n])
		if got, want := h.Sum(nil), tthModel(data[:n]); !bytes.Equal(got, want) {
			t.Fatalf("TTH of %d bytes = %x, want %x", n, got, want)
		}
	}
}

// btv2Model builds the BEP 52 tree level by level.
func btv2Model(p []byte) []byte {
	var level [][]byte
	for len(p) > 0 {
		n := min(len(p), BTV2BlockSize)
		s := sha256.Sum256(p[:n])
		level = append(level, s[:])
		p = p[n:]
	}
	for len(level)&(len(level)-1) != 0 {
		level = append(level, make([]byte, 32))
	}
	for len(level) > 1 {
		var up [][]byte
		for i := 0; i < len(level); i += 2 {
			s := sha256.Sum256(append(append([]byte{}, level[i]...), level[i+1]...))
			up = append(up, s[:])
		}
		level = up
	}
	return level[0]
}

func TestBTV2MatchesLevelByLevelTree(t *testing.T) {
	const B = BTV2BlockSize
	data := synthetic(10, 9*B+1)
	for _, n := range []int{1, B - 1, B, B + 1, 2*B - 1, 2 * B, 2*B + 1, 3 * B, 4*B - 1, 4 * B, 4*B + 1, 5 * B, 6*B + 3, 7 * B, 8 * B, 9*B + 1} {
		h := NewBTV2()
		h.Write(data[:n])
		got, err := h.Root()
		if err != nil {
			t.Fatalf("Root of %d bytes: %v", n, err)
		}
		if want := btv2Model(data[:n]); !bytes.Equal(got[:], want) {
			t.Fatalf("btv2 root of %d bytes = %x, want %x", n, got, want)
		}
	}
}

func TestBTV2EmptyFileHasNoRoot(t *testing.T) {
	h := NewBTV2()
	if _, err := h.Root(); !errors.Is(err, ErrEmptyFile) {
		t.Fatalf("Root of empty input: err = %v, want ErrEmptyFile", err)
	}
	h.Write([]byte{})
	if _, err := h.Root(); !errors.Is(err, ErrEmptyFile) {
		t.Fatalf("Root after empty Write: err = %v, want ErrEmptyFile", err)
	}
	h.Write([]byte{0})
	if _, err := h.Root(); err != nil {
		t.Fatalf("Root of one byte: %v", err)
	}
}

func TestNewRejectsTorrentInfoHashes(t *testing.T) {
	for _, k := range []hashkind.Kind{hashkind.BTIH, hashkind.BTIH2, hashkind.Unknown} {
		if _, err := New(k); !errors.Is(err, ErrNotFileDigest) {
			t.Fatalf("New(%s): err = %v, want ErrNotFileDigest", k, err)
		}
	}
	for _, k := range FileKinds() {
		h, err := New(k)
		if err != nil {
			t.Fatalf("New(%s): %v", k, err)
		}
		if got, want := h.Size(), k.Size(); got != want {
			t.Fatalf("New(%s).Size() = %d, want %d", k, got, want)
		}
	}
}

// writeSplit feeds p to h in pieces whose lengths come from cuts.
func writeSplit(h interface{ Write([]byte) (int, error) }, p []byte, cuts []byte) {
	for i := 0; len(p) > 0; i++ {
		n := len(p)
		if len(cuts) > 0 {
			c := max(int(cuts[i%len(cuts)]), 1) // a zero cut would never end
			// Mix small and large writes: a cut of 255 means "many leaves".
			if c == 255 {
				c = 3*BTV2BlockSize + 17
			} else if c > 200 {
				c = c * 97
			}
			n = min(n, c)
		}
		h.Write(p[:n])
		p = p[n:]
	}
}

func TestStreamingEqualsOneShotForEveryKind(t *testing.T) {
	data := synthetic(11, 5*BTV2BlockSize+333)
	for _, k := range FileKinds() {
		for _, cuts := range [][]byte{{1}, {7, 64, 200}, {255, 3}, {63, 65, 250}} {
			one, _ := New(k)
			one.Write(data)
			split, _ := New(k)
			writeSplit(split, data, cuts)
			if got, want := split.Sum(nil), one.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("%s with cuts %v: streaming %x, one-shot %x", k, cuts, got, want)
			}
		}
	}
}

func TestSumLeavesStateUnchangedAndResetRestarts(t *testing.T) {
	data := synthetic(12, 3*BTV2BlockSize+5)
	for _, k := range FileKinds() {
		h, _ := New(k)
		h.Write(data[:1000])
		_ = h.Sum(nil)
		h.Write(data[1000:])
		whole, _ := New(k)
		whole.Write(data)
		if got, want := h.Sum(nil), whole.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: Sum in the middle changed the state: %x, want %x", k, got, want)
		}
		h.Reset()
		h.Write(data)
		if got, want := h.Sum(nil), whole.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: after Reset %x, want %x", k, got, want)
		}
	}
}

func FuzzStreamingMatchesOneShot(f *testing.F) {
	f.Add([]byte("abc"), []byte{1})
	f.Add(bytes.Repeat([]byte{0xA5}, 2050), []byte{63, 64, 65})
	f.Add(synthetic(13, 40000), []byte{255, 7})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		// Past a few BitTorrent v2 blocks, longer inputs only cost time.
		data = data[:min(len(data), 5*BTV2BlockSize+1)]
		for _, k := range FileKinds() {
			one, _ := New(k)
			one.Write(data)
			split, _ := New(k)
			writeSplit(split, data, cuts)
			if got, want := split.Sum(nil), one.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("%s of %d bytes, cuts %v: streaming %x, one-shot %x", k, len(data), cuts, got, want)
			}
		}
		// The trees also against their level-by-level models.
		tth := NewTTH()
		tth.Write(data)
		if got, want := tth.Sum(nil), tthModel(data); !bytes.Equal(got, want) {
			t.Fatalf("TTH of %d bytes = %x, model %x", len(data), got, want)
		}
		if len(data) > 0 {
			bt := NewBTV2()
			bt.Write(data)
			if got, want := bt.Sum(nil), btv2Model(data); !bytes.Equal(got, want) {
				t.Fatalf("btv2 of %d bytes = %x, model %x", len(data), got, want)
			}
		}
	})
}

func TestMD4AssemblyMatchesPortableCode(t *testing.T) {
	for _, blocks := range []int{1, 2, 5, 64} {
		p := synthetic(uint64(100+blocks), blocks*md4BlockSize)
		got := [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}
		want := got
		md4Blocks(&got, p)
		md4BlocksGeneric(&want, p)
		if got != want {
			t.Fatalf("%d blocks: md4Blocks = %x, portable = %x", blocks, got, want)
		}
	}
}

func TestTigerTwoLanesMatchOneLane(t *testing.T) {
	for _, blocks := range []int{0, 1, 2, 15, 33} {
		p0 := synthetic(uint64(200+blocks), blocks*TigerBlockSize+5)
		p1 := synthetic(uint64(300+blocks), blocks*TigerBlockSize+5)
		init := [3]uint64{tigerInitA, tigerInitB, tigerInitC}
		g0, g1, w0, w1 := init, init, init, init
		g1[2] ^= 0x55 // different starting states too
		w1 = g1
		tigerBlocks2(&g0, &g1, p0, p1)
		tigerBlocksGeneric(&w0, p0)
		tigerBlocksGeneric(&w1, p1)
		if g0 != w0 || g1 != w1 {
			t.Fatalf("%d blocks: two lanes gave %x %x, one lane %x %x", blocks, g0, g1, w0, w1)
		}
	}
}

func TestTTHTwoLeafPathMatchesOneLeafPath(t *testing.T) {
	p := synthetic(400, 2*TTHLeafSize)
	h0, h1 := tthLeaves2(p[:TTHLeafSize], p[TTHLeafSize:])
	if w0, w1 := tthLeaf(p[:TTHLeafSize]), tthLeaf(p[TTHLeafSize:]); h0 != w0 || h1 != w1 {
		t.Fatalf("tthLeaves2 = %x %x, tthLeaf = %x %x", h0, h1, w0, w1)
	}
}
