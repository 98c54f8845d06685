package observe

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestHexFieldInIsHexField: the chain fields decoded into one array read
// what hexField reads (the same bytes, the same refusals, nil for none),
// each field its own (an append to one never writes in the next).
func TestHexFieldInIsHexField(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 14))
	const digits = "0123456789abcdefABCDEFgG x-"
	for n := 0; n < 20000; n++ {
		var s [3]string
		for k := range s {
			b := make([]byte, r.IntN(5)*r.IntN(40))
			for i := range b {
				if r.IntN(50) == 0 {
					b[i] = digits[r.IntN(len(digits))] // sometimes not hex
				} else {
					b[i] = digits[r.IntN(22)]
				}
			}
			s[k] = string(b)
		}
		buf := make([]byte, 0, (len(s[0])+len(s[1])+len(s[2]))/2)
		var got [3][]byte
		for k := range s {
			want, werr := hexField("f", s[k])
			var err error
			got[k], buf, err = hexFieldIn("f", s[k], buf)
			if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
				t.Fatalf("%q: error %v; hexField's %v", s[k], err, werr)
			}
			if err != nil {
				break
			}
			if !bytes.Equal(got[k], want) || (got[k] == nil) != (want == nil) {
				t.Fatalf("%q: %x (nil %v); hexField's %x (nil %v)", s[k], got[k], got[k] == nil, want, want == nil)
			}
		}
		if got[0] != nil && got[1] != nil {
			next := bytes.Clone(got[1])
			_ = append(got[0], 0xff, 0xff)
			if !bytes.Equal(got[1], next) {
				t.Fatalf("an append to the first field wrote in the second")
			}
		}
	}
}

// TestChainHexFromTheLine: the chain fields decoded from the line's bytes
// (fastRecord, rawHex) are what the strings json.Unmarshal reads decode
// to: each field its own value, the same refusals with the same errors,
// and nothing left pointing into the line (the caller reuses it).
func TestChainHexFromTheLine(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	base := samples()[0]
	const digits = "0123456789abcdefABCDEFgG x-"
	field := func() string {
		b := make([]byte, r.IntN(3)*r.IntN(70))
		for i := range b {
			if r.IntN(200) == 0 {
				b[i] = digits[r.IntN(len(digits))]
			} else {
				b[i] = digits[r.IntN(22)]
			}
		}
		return string(b)
	}
	fast := 0
	for n := 0; n < 5000; n++ {
		rec := toRecord(&base)
		rec.SensorKey, rec.ChainPrev, rec.BatchSig = field(), field(), field()
		seq := uint64(n + 1)
		rec.Chain, rec.ChainSeq = "c1", &seq
		line, err := json.Marshal(&rec)
		if err != nil {
			t.Fatal(err)
		}
		var viaJSON record
		if err := json.Unmarshal(line, &viaJSON); err != nil {
			t.Fatal(err)
		}
		var want Observation
		werr := viaJSON.observation(&want)
		var viaFast record
		if !fastRecord(line, &viaFast) {
			t.Fatalf("the fast path declined %s", line)
		}
		if !viaFast.raw.set {
			t.Fatalf("the fast path did not keep the chain fields' bytes")
		}
		fast++
		var got Observation
		gerr := viaFast.observation(&got)
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q %q %q: error %v; from the strings %v", rec.SensorKey, rec.ChainPrev, rec.BatchSig, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		for i := range line { // the caller's next message
			line[i] = 'f'
		}
		for _, c := range [][2][]byte{{got.Chain.Key, want.Chain.Key}, {got.Chain.Prev, want.Chain.Prev}, {got.Chain.BatchSig, want.Chain.BatchSig}} {
			if !bytes.Equal(c[0], c[1]) || (c[0] == nil) != (c[1] == nil) {
				t.Fatalf("%q %q %q: decoded %x (nil %v), from the strings %x (nil %v)", rec.SensorKey, rec.ChainPrev, rec.BatchSig, c[0], c[0] == nil, c[1], c[1] == nil)
			}
		}
	}
	if fast == 0 {
		t.Fatal("nothing went through the fast path")
	}
}
