package krpc

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that decoding never panics and that whatever decodes
// encodes to a message that decodes to the same value and encodes to the
// same bytes again.
func FuzzDecode(f *testing.F) {
	for _, p := range specPackets {
		f.Add([]byte(p.pkt))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var m1 Msg
		if err := m1.Decode(in); err != nil {
			return
		}
		out1, err := m1.AppendTo(nil)
		if err != nil {
			t.Fatalf("AppendTo after Decode(%q): %v", in, err)
		}
		var m2 Msg
		if err := m2.Decode(out1); err != nil {
			t.Fatalf("Decode(AppendTo(Decode(%q))) = %v; encoded %q", in, err, out1)
		}
		if diff := msgDiff(&m2, &m1); diff != "" {
			t.Fatalf("round trip of %q changed the message: %s", in, diff)
		}
		out2, err := m2.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out1, out2) {
			t.Fatalf("encoding is not stable: %q then %q", out1, out2)
		}
	})
}
