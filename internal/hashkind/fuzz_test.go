package hashkind

import (
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// prints in a form it reads back as the same hash: String with the kind as
// hint, MarshalText without one, and the URN where the kind has one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		hex20, b3220, hex32, b3224, "md5:" + hex16, "urn:btmh:1220" + hex32,
		"urn:bitprint:" + b3220 + "." + b3224, "magnet:?xt=urn:btih:" + hex20,
		"ed2k://|file|a|1|" + hex16 + "|/",
	} {
		f.Add(s, uint8(Unknown))
	}
	f.Fuzz(func(t *testing.T, s string, hint uint8) {
		h, err := Parse(s, Kind(hint))
		hb, errb := ParseBytes([]byte(s), Kind(hint))
		if (err == nil) != (errb == nil) || h != hb {
			t.Fatalf("Parse = %v, %v; ParseBytes = %v, %v", h, err, hb, errb)
		}
		if err != nil {
			if h != (Hash{}) {
				t.Fatalf("error %v with a non-zero hash %v", err, h)
			}
			return
		}
		if !h.Kind().Valid() {
			t.Fatalf("Parse(%q) gave kind %v", s, h.Kind())
		}
		back, err := Parse(h.String(), h.Kind())
		if err != nil || back != h {
			t.Fatalf("Parse(String() %q) = %v, %v; want %v", h.String(), back, err, h)
		}
		text, _ := h.MarshalText()
		var u Hash
		if err := u.UnmarshalText(text); err != nil || u != h {
			t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", text, u, err, h)
		}
		if urn := h.URN(); urn != "" {
			back, err := Parse(urn, Unknown)
			if err != nil || back != h {
				t.Fatalf("Parse(URN() %q) = %v, %v; want %v", urn, back, err, h)
			}
		}
	})
}

// FuzzParseRef checks that ParseRef never panics and that each hash it
// gives survives its own text form.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{
		"magnet:?xt=urn:btih:" + hex20 + "&xt=urn:btmh:1220" + hex32 + "&dn=x&xl=1&tr=udp://127.0.0.1:1",
		"ed2k://|file|synthetic%20001.bin|20000|" + hex16 + "|h=" + b3220 + "|/",
		"urn:bitprint:" + b3220 + "." + b3224,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseRef(s, Unknown)
		if err != nil {
			return
		}
		if len(ref.Hashes) == 0 {
			t.Fatalf("ParseRef(%q) gave no hash and no error", s)
		}
		if ref.Size < -1 {
			t.Fatalf("size %d", ref.Size)
		}
		for _, h := range ref.Hashes {
			text, _ := h.MarshalText()
			var u Hash
			if err := u.UnmarshalText(text); err != nil || u != h {
				t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", text, u, err, h)
			}
		}
	})
}
