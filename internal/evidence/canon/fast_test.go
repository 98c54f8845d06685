package canon

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// randValue writes a random JSON value: every kind, empty ones, nesting
// of objects and arrays in both orders, repeated keys, escapes, bytes
// that are not UTF-8, lone surrogates, white space.
func randValue(r *rand.Rand, b *bytes.Buffer, depth int) {
	ws := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\t", "\n", "\r\n "}[r.IntN(4)])
		}
	}
	ws()
	k := r.IntN(10)
	if depth > 4 && k < 4 {
		k += 4
	}
	switch k {
	case 0, 1:
		b.WriteByte('{')
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			ws()
			randString(r, b, true)
			ws()
			b.WriteByte(':')
			randValue(r, b, depth+1)
		}
		ws()
		b.WriteByte('}')
	case 2, 3:
		b.WriteByte('[')
		n := r.IntN(4)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			randValue(r, b, depth+1)
		}
		ws()
		b.WriteByte(']')
	case 4, 5:
		randString(r, b, false)
	case 6:
		b.WriteString([]string{"0", "-0", "1.50", "1e3", "-2E-7", "123456789012345678901234567890", "0.0"}[r.IntN(7)])
	case 7:
		b.WriteString([]string{"true", "false"}[r.IntN(2)])
	default:
		b.WriteString("null")
	}
	ws()
}

func randString(r *rand.Rand, b *bytes.Buffer, key bool) {
	b.WriteByte('"')
	n := r.IntN(6)
	if key {
		n = r.IntN(3) // short keys repeat
	}
	for range n {
		switch r.IntN(12) {
		case 0:
			b.WriteString([]string{`\"`, `\\`, `\/`, `\b`, `\f`, `\n`, `\r`, `\t`}[r.IntN(8)])
		case 1:
			b.WriteString(`\u` + []string{"0001", "001f", "007F", "00e9", "2028", "2029", "fffd", "D83D", "dc00", "d83d\\ude00", "D800\\u0041", "d800\\uZZ", "0000", "003c"}[r.IntN(14)])
		case 2:
			b.WriteString([]string{"é", "\u2028", "\ufffd", "😀", "<&>"}[r.IntN(5)])
		case 3:
			b.WriteByte([]byte{0xff, 0xc3, 0x80, 0xed}[r.IntN(4)]) // not UTF-8 alone
		default:
			b.WriteByte("abcxyz_ "[r.IntN(8)])
		}
	}
	b.WriteByte('"')
}

// TestFastIsForm: Forms (one pass, no maps) gives exactly Form's bytes
// (decode into maps, prune, encode with encoding/json) on random objects
// of every shape, and on the lines of the checked-in bundle.
func TestFastIsForm(t *testing.T) {
	var lines [][]byte
	r := rand.New(rand.NewPCG(14, 14))
	for range 20000 {
		var b bytes.Buffer
		b.WriteByte('{')
		for i := range r.IntN(6) {
			if i > 0 {
				b.WriteByte(',')
			}
			if r.IntN(3) == 0 {
				b.WriteString(`"` + IngestKeys[r.IntN(len(IngestKeys))] + `"`)
			} else {
				randString(r, &b, true)
			}
			b.WriteByte(':')
			randValue(r, &b, 1)
		}
		b.WriteByte('}')
		lines = append(lines, b.Bytes())
	}
	if data, err := os.ReadFile(filepath.Join("..", "verify", "testdata", "bundle-v1", "observations.jsonl")); err == nil {
		lines = append(lines, bytes.Split(bytes.TrimSpace(data), []byte("\n"))...)
	} else {
		t.Fatal(err)
	}
	for i, line := range lines {
		wantFull, err1 := Form(line)
		wantWithout, _ := Form(line, IngestKeys...)
		full, without, err2 := Forms(line, IngestKeys)
		if (err1 != nil) != (err2 != nil) {
			// Forms may refuse more on malformed input, never less.
			if err1 != nil {
				t.Fatalf("line %d %q: Form refuses (%v), Forms takes it", i, line, err1)
			}
			t.Fatalf("line %d %q: Forms refuses (%v), Form takes it", i, line, err2)
		}
		if err1 != nil {
			continue
		}
		if !bytes.Equal(full, wantFull) || !bytes.Equal(without, wantWithout) {
			t.Fatalf("line %d %s:\nForms %s\n      %s\nForm  %s\n      %s", i, strconv.Quote(string(line)), full, without, wantFull, wantWithout)
		}
	}
}

func BenchmarkForms(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "verify", "testdata", "bundle-v1", "observations.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			for _, l := range lines {
				Forms(l, IngestKeys)
			}
		}
	})
	b.Run("maps", func(b *testing.B) {
		for range b.N {
			for _, l := range lines {
				Form(l)
				Form(l, IngestKeys...)
			}
		}
	})
}

// BenchmarkParser is the verifier's use: one Parser and one buffer for
// every line, both forms written.
func BenchmarkParser(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "verify", "testdata", "bundle-v1", "observations.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	var p Parser
	var buf []byte
	b.ReportAllocs()
	for range b.N {
		for _, l := range lines {
			o, err := p.Parse(l)
			if err != nil {
				b.Fatal(err)
			}
			buf = o.AppendForm(buf[:0], nil)
			buf = o.AppendForm(buf[:0], IngestKeys)
		}
	}
}
