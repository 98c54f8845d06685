package observe

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/evidence/canon"
)

// appendJSONStringRef is appendJSONString as it was before its eight-byte
// scan (7b439c7): one byte at a time. The scan must write the same bytes.
func appendJSONStringRef(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i++
			start = i
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
		default:
			i += size
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// randomText is mostly printable ASCII, with now and then a byte or
// character that JSON escapes or that is not UTF-8, at any place (the
// eight-byte scan's edges included).
func randomText(r *rand.Rand) string {
	odd := []string{"\"", "\\", "\x00", "\x1f", "\n", "\t", "\x7f", "\x80", "\xff", "é", "😀", "\u2028", "\u2029", "\xe2\x80", "<&>", " ", "~"}
	var b []byte
	n := r.IntN(48)
	for len(b) < n {
		if r.IntN(12) == 0 {
			b = append(b, odd[r.IntN(len(odd))]...)
		} else {
			b = append(b, byte(0x20+r.IntN(0x60)))
		}
	}
	return string(b)
}

// TestPlainASCII8: each byte value at each of the eight places, in
// words otherwise plain, and words of random bytes.
func TestPlainASCII8(t *testing.T) {
	plain := func(c byte) bool { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' }
	check := func(w []byte) {
		want := true
		for _, c := range w {
			want = want && plain(c)
		}
		if got := plainASCII8(string(w)); got != want {
			t.Fatalf("%q: %v, want %v", w, got, want)
		}
	}
	for c := range 256 {
		for at := range 8 {
			w := []byte("abcdefgh")
			w[at] = byte(c)
			check(w)
			w = []byte{0x20, 0x7f, 0x21, 0x5b, 0x5d, 0x23, 0x1f + 1, 0x7e}
			w[at] = byte(c)
			check(w)
		}
	}
	r := rand.New(rand.NewPCG(16, 16))
	for range 200000 {
		w := make([]byte, 8)
		for i := range w {
			if r.IntN(2) == 0 {
				w[i] = byte(r.Uint32())
			} else {
				w[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		check(w)
	}
}

// TestAppendJSONStringIsTheByteScan: the same bytes as the byte-at-a-time
// writer for 200,000 random strings.
func TestAppendJSONStringIsTheByteScan(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 17))
	for range 200000 {
		s := randomText(r)
		if got, want := appendJSONString([]byte("x"), s), appendJSONStringRef([]byte("x"), s); !bytes.Equal(got, want) {
			t.Fatalf("%q: %s, want %s", s, got, want)
		}
	}
}

// TestCanonicalFormOfRandomObservations: observations whose text fields
// are random (escapes and bytes not UTF-8 anywhere in them) have the
// canonical form canon.Form gives of their line, whole and as the
// sensor hashes it, in both evidence forms; and their sensor hash is the
// SHA-256 of that.
func TestCanonicalFormOfRandomObservations(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 18))
	base := samples()[0]
	checked := 0
	for n := range 3000 {
		o := base
		o.Client.Name, o.Client.Version = randomText(r), randomText(r)
		o.Sensor.ID, o.Sensor.Version = "s"+randomText(r), randomText(r)
		o.Sensor.Commit, o.Sensor.Vantage = randomText(r), randomText(r)
		o.ClockSource, o.Transcript.Ref = randomText(r), randomText(r)
		o.Marks = []string{randomText(r), randomText(r)}
		o.Item.Matched = []Match{{List: randomText(r), Category: randomText(r)}}
		o.Place.City, o.Place.Org, o.Place.Country = randomText(r), randomText(r), randomText(r)
		o.Place.Subdivisions = []string{randomText(r)}
		o.Jurisdiction.Agency, o.Jurisdiction.Rule = randomText(r), randomText(r)
		o.Chain.ID = randomText(r)
		if n%2 == 1 {
			o = asForm2(o)
		}
		line, err := o.Line()
		if err != nil {
			t.Logf("%v", err)
			continue // a field Validate refuses
		}
		checked++
		for _, sensor := range []bool{false, true} {
			var drop []string
			if sensor {
				drop = canon.SensorDrop(max(1, int(o.Chain.Form)))
			}
			want, err := canon.Form(line, drop...)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			if err := o.appendCanonical(sensor, func(b []byte) { got = bytes.Clone(b) }); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("observation %d (sensor form %v):\ngot  %s\nwant %s", n, sensor, got, want)
			}
			if sensor {
				if h, err := o.SensorHash(); err != nil || h != sha256.Sum256(want) {
					t.Fatalf("observation %d: sensor hash %x, %v; want %x", n, h, err, sha256.Sum256(want))
				}
			}
		}
	}
	if checked < 2000 {
		t.Fatalf("%d of 3,000 observations checked", checked)
	}
}
