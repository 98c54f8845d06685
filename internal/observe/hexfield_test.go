package observe

import (
	"bytes"
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
