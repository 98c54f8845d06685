package canon

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// TestParserReusedIsForm: one Parser reading object after object (as the
// verifier reads a file's lines) gives Form's bytes for each, whether its
// keys come in the order of the object before (the order it tries first)
// or in another, with the same number of members or not, repeated keys
// and nested objects of as many members included.
func TestParserReusedIsForm(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	keys := []string{"id", "country", "batch_sig", "a", "b", "c", "d", "e"}
	var p Parser
	var buf []byte
	for i := range 20000 {
		ks := slices.Clone(keys[:1+r.IntN(len(keys))])
		if r.IntN(2) == 0 {
			r.Shuffle(len(ks), func(i, j int) { ks[i], ks[j] = ks[j], ks[i] })
		}
		if r.IntN(8) == 0 {
			ks = append(ks, ks[r.IntN(len(ks))]) // a repeated key
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for j, k := range ks {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(k) + ":")
			if r.IntN(4) == 0 { // an object of as many members as the line
				b.WriteByte('{')
				for m := range len(ks) {
					if m > 0 {
						b.WriteByte(',')
					}
					b.WriteString(strconv.Quote(ks[len(ks)-1-m]) + ":" + strconv.Itoa(m))
				}
				b.WriteByte('}')
			} else {
				randValue(r, &b, 2)
			}
		}
		b.WriteByte('}')
		line := b.Bytes()
		want, err := Form(line)
		wantWithout, _ := Form(line, IngestKeys...)
		o, err2 := p.Parse(line)
		if (err != nil) != (err2 != nil) {
			t.Fatalf("object %d %s: Form %v, Parse %v", i, line, err, err2)
		}
		if err != nil { // a string randValue made that is not JSON
			continue
		}
		if buf = o.AppendForm(buf[:0], nil); !bytes.Equal(buf, want) {
			t.Fatalf("object %d %s:\nParser %s\nForm   %s", i, line, buf, want)
		}
		if buf = o.AppendForm(buf[:0], IngestKeys); !bytes.Equal(buf, wantWithout) {
			t.Fatalf("object %d %s without the ingest keys:\nParser %s\nForm   %s", i, line, buf, wantWithout)
		}
	}
}

// TestValueIsTheMembersCanonicalValue: Value gives each top-level member's
// value in canonical form, empty ones included, by its exact key.
func TestValueIsTheMembersCanonicalValue(t *testing.T) {
	o, err := Parse([]byte(`{"b" : "x\u0041", "a":null, "e":"", "l":[ 1, {"z":"","y":2} ], "a":[], "B":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"b": `"xA"`, "a": `[]`, "e": `""`, "l": `[1,{"y":2}]`, "B": `1`} {
		if got, ok := o.Value(k); !ok || string(got) != want {
			t.Errorf("Value(%q) = %s, %v; want %s", k, got, ok, want)
		}
	}
	if v, ok := o.Value("c"); ok {
		t.Errorf("Value(c) = %s", v)
	}
}

var fuzzParser Parser

// FuzzForms: on any input, Forms and a Parser used before give Form's
// bytes, or refuse it; they refuse only what is not one JSON value
// (Form's decoder may take an object followed by more).
func mustForm(t *testing.T, line []byte, drop []string) []byte {
	t.Helper()
	b, err := Form(line, drop...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzForms(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("..", "verify", "testdata", "bundle-v1", "observations.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, l := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		f.Add(l)
	}
	f.Add([]byte(`{"s":"<&> \u2028 é \ufffd \u0001 \ud800","n":-0.5e+3,"o":{"x":"","y":[{}]},"o":1}`))
	f.Add([]byte(`{"a":1}]`))
	f.Add([]byte(`{"evidence_form":2,"marks":["a","time_implausible","z"],"agency":"a","sensor":"s"}`))
	f.Add([]byte(`{"marks":["time_implausible"],"id":"x"}`))
	f.Add([]byte(`{"marks":["time_implausible",1],"id":"x"}`))
	f.Add([]byte(`{"marks":["tim\u0065_implausible","time_implausible"],"id":"x"}`))
	f.Add([]byte(`{"evidence_form":2,"sensor_sha256":"x","agency":"a","vpn":false,"subdivisions":[],"transcript":"AAAA","zz":1}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		want, err1 := Form(line)
		wantWithout, _ := Form(line, IngestKeys...)
		full, without, err2 := Forms(line, IngestKeys)
		o, err3 := fuzzParser.Parse(line)
		if (err2 != nil) != (err3 != nil) {
			t.Fatalf("Forms: %v, Parser: %v", err2, err3)
		}
		switch {
		case err1 != nil && err2 == nil:
			t.Fatalf("Form refuses (%v), Forms takes it", err1)
		case err1 == nil && err2 != nil && json.Valid(line):
			t.Fatalf("Forms refuses (%v) one JSON object Form takes", err2)
		case err2 != nil:
			return
		}
		if !bytes.Equal(full, want) || !bytes.Equal(without, wantWithout) {
			t.Fatalf("Forms %s\n      %s\nForm  %s\n      %s", full, without, want, wantWithout)
		}
		if got := o.AppendForm(nil, nil); !bytes.Equal(got, want) {
			t.Fatalf("Parser %s\nForm   %s", got, want)
		}
		if got := o.AppendForm(nil, IngestKeys); !bytes.Equal(got, wantWithout) {
			t.Fatalf("Parser %s\nForm   %s", got, wantWithout)
		}
		// Form 2's leaf form: the ingest keys and sensor_sha256, as Form
		// writes an object of those members.
		m, err := decode(line)
		if err != nil {
			return
		}
		keep := map[string]any{SensorHashKey: "00ff" + strings.Repeat("ab", 30)}
		for _, k := range IngestKeys {
			if v, ok := m[k]; ok {
				keep[k] = v
			}
		}
		sensorMarks, ingestMarks, split := splitMarksRef(m)
		if split {
			keep[IngestMarksKey] = ingestMarks
		}
		want2, err := encode(keep)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.AppendLeaf2(nil, append([]byte{0, 0xff}, bytes.Repeat([]byte{0xab}, 30)...)); !bytes.Equal(got, want2) {
			t.Fatalf("AppendLeaf2 %s\nForm        %s", got, want2)
		}
		if got, want := o.AppendForm(nil, SensorDrop(2)), mustForm(t, line, SensorDrop(2)); !bytes.Equal(got, want) {
			t.Fatalf("Parser %s\nForm   %s", got, want)
		}
		// A sensor's form: SensorDrop, and marks without IngestMarks.
		for _, form := range []int{1, 2} {
			ref, err := decode(line)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range SensorDrop(form) {
				delete(ref, k)
			}
			if split {
				ref["marks"] = sensorMarks
			}
			want, err := encode(ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := o.AppendSensorForm(nil, form); !bytes.Equal(got, want) {
				t.Fatalf("AppendSensorForm(%d) %s\nForm                %s", form, got, want)
			}
		}
	})
}

// splitMarksRef is Object.splitMarks on a decoded object: when "marks" is
// an array of strings holding one of IngestMarks, the marks without them
// and them alone, and true.
func splitMarksRef(m map[string]any) (sensor, ingest []any, ok bool) {
	a, isArray := m["marks"].([]any)
	if !isArray {
		return nil, nil, false
	}
	for _, v := range a {
		s, isString := v.(string)
		if !isString {
			return nil, nil, false
		}
		if slices.Contains(IngestMarks, s) {
			ingest = append(ingest, s)
		} else {
			sensor = append(sensor, s)
		}
	}
	return sensor, ingest, len(ingest) > 0
}
