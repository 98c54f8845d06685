package observe

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The rule of docs/evidence.md, "Peer text", case by case: what a peer
// may send in a client name or a file name, and the text Vigil makes of
// it.
func TestEscapeTextWritesWhatPostgreSQLAndAPageCannotTake(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"Transmission", "Transmission"},
		{"dir/a b.bin", "dir/a b.bin"},
		{"Île-de-France é «»", "Île-de-France é «»"},
		{"a\x00b", `a\u0000b`},
		{"\xff\xfe", `\xff\xfe`},
		{"ok\xe2\x82", `ok\xe2\x82`}, // a character cut short
		{`back\slash`, `back\\slash`},
		{`\x00`, `\\x00`}, // text that looks escaped is escaped again
		{"tab\tnl\nesc\x1bdel\x7f", `tab\u0009nl\u000aesc\u001bdel\u007f`},
		{"c1\u0085", `c1\u0085`},
		{"rtl\u202egnp.exe", `rtl\u202egnp.exe`},
		{"nbsp\u00a0zw\u200b", `nbsp\u00a0zw\u200b`},
		{"tag\U000e0041", `tag\U000e0041`},
		{"\uFFFD", "\uFFFD"}, // the character itself, sent as UTF-8
		{"emoji \U0001F600", "emoji \U0001F600"},
	} {
		got := EscapeText(tt.in)
		if got != tt.want {
			t.Errorf("EscapeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := UnescapeText(got); err != nil || back != tt.in {
			t.Errorf("UnescapeText(%q) = %q, %v; want %q", got, back, err, tt.in)
		}
	}
}

// Attack (review of h-nul): the decoder took escapes EscapeText never
// writes (a printable character or a valid UTF-8 sequence escaped, \U
// below U+10000, a raw control), so that two texts read back to one
// string ("A" and "\x41"): a text is peer text only in the one form
// EscapeText writes.
func TestUnescapeTextRefusesAnotherFormOfTheSameText(t *testing.T) {
	for _, in := range []string{`\x41`, `\u0041`, `\xe2\x82\xac`, `\U0000202e`, `\u00e9`, "raw\x00nul", "raw\u202e", "bad\xff", `\xed\x9f\xbf`} {
		if got, err := UnescapeText(in); !errors.Is(err, ErrBadEscape) {
			t.Errorf("UnescapeText(%q) = %q, %v; want ErrBadEscape", in, got, err)
		}
	}
}

func TestUnescapeTextRefusesWhatEscapeTextNeverWrites(t *testing.T) {
	for _, in := range []string{`a\`, `\n`, `\"`, `\x0`, `\xFF`, `\u00e`, `\ud800`, `\U00110000`, `\x-1`, `\u+123`} {
		if got, err := UnescapeText(in); !errors.Is(err, ErrBadEscape) {
			t.Errorf("UnescapeText(%q) = %q, %v; want ErrBadEscape", in, got, err)
		}
	}
}

// checkPeerText fails t unless e is s written by the rule: nothing in it
// that PostgreSQL's text or a page cannot take, and s read back from it.
func checkPeerText(t *testing.T, s, e string) {
	t.Helper()
	if !utf8.ValidString(e) {
		t.Fatalf("EscapeText(%q) = %q: not UTF-8", s, e)
	}
	for _, r := range e {
		if r != ' ' && !unicode.IsPrint(r) {
			t.Fatalf("EscapeText(%q) = %q holds %U", s, e, r)
		}
	}
	back, err := UnescapeText(e)
	if err != nil || back != s {
		t.Fatalf("UnescapeText(EscapeText(%q)) = %q, %v", s, back, err)
	}
	if !strings.ContainsRune(e, '\\') && e != s {
		t.Fatalf("EscapeText(%q) = %q changed text with nothing to escape", s, e)
	}
}

// FuzzEscapeText: any bytes are written as text PostgreSQL and a page
// take, and read back exactly; any text the decoder accepts is the text
// EscapeText writes of what it reads (one text for each string).
func FuzzEscapeText(f *testing.F) {
	for _, s := range []string{"", "Transmission 3.00", "a\x00b", "\xff", `\\x00`, "rtl\u202e", "\U000e0041", `\u0000`, `\U0001f600`, `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkPeerText(t, s, EscapeText(s))
		if u, err := UnescapeText(s); err == nil && EscapeText(u) != s {
			t.Fatalf("UnescapeText(%q) = %q, which EscapeText writes %q: two texts read back to one string", s, u, EscapeText(u))
		}
	})
}

// The wire (a JSON line, on NATS or in a file) carries a peer's client
// name and version as JSON text: a NUL byte, a control, a bidi override
// and a backslash come back exactly, so the analysis writes the same
// peer text of them whether the observation came over the bus or not; a
// byte that is not UTF-8 comes back as U+FFFD (JSON is text: the
// canonical form, and so the sensor's signature, treat it so too), and
// the transcript keeps the byte. The line holds no raw control byte.
func TestALineCarriesAPeersClientNameAsText(t *testing.T) {
	for _, name := range []string{"ev\x00il", "tab\tnl\n\x1b[2J", "rtl\u202egnp", `back\slash`, "\u2028\u2029", "bad\xff\xfe", "cut\xe2\x82"} {
		o := samples()[0]
		o.Client.Name, o.Client.Version = name, "1\x00"+name
		b, err := MarshalLine(&o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range b[:len(b)-1] {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("the line of client %q holds the byte %#x: %s", name, c, b)
			}
		}
		var got Observation
		if err := DecodeLine(b, &got); err != nil {
			t.Fatal(err)
		}
		want := ""
		for i := 0; i < len(name); {
			r, size := utf8.DecodeRuneInString(name[i:])
			want += string(r) // U+FFFD for each byte that is not UTF-8
			i += size
		}
		if got.Client.Name != want || got.Client.Version != "1\x00"+want {
			t.Errorf("client %q, %q came back as %q, %q; want %q", name, o.Client.Version, got.Client.Name, got.Client.Version, want)
		}
		if utf8.ValidString(name) && EscapeText(got.Client.Name) != EscapeText(name) {
			t.Errorf("client %q: peer text %q after the wire, %q before", name, EscapeText(got.Client.Name), EscapeText(name))
		}
	}
}

// A geo database's string is written as a stored place keeps it (U+FFFD
// for each byte that is not UTF-8), then by EscapeText: never \xHH, so
// the text is the same before and after a store.
func TestPlaceTextIsTheStoredPlacesTextEscaped(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"FR", "FR"},
		{"Île-de-France", "Île-de-France"},
		{"F\x00R", `F\u0000R`},
		{"Ly\xff\xfeon", "Ly\uFFFD\uFFFDon"},
		{"cut\xe2\x82", "cut\uFFFD\uFFFD"},
		{`a\b` + "\u202e", `a\\b\u202e`},
	} {
		if got := PlaceText(tt.in); got != tt.want {
			t.Errorf("PlaceText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzPlaceText(f *testing.F) {
	for _, s := range []string{"", "FR", "F\x00R", "\xff", `\x00`, "rtl\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := PlaceText(s)
		if utf8.ValidString(s) {
			checkPeerText(t, s, p)
		}
		if strings.Contains(p, `\x`) && !strings.Contains(s, `\x`) {
			t.Fatalf("PlaceText(%q) = %q writes a byte escape", s, p)
		}
		if PlaceText(string([]rune(s))) != p {
			t.Fatalf("PlaceText(%q) = %q differs from the text of its runes", s, p)
		}
	})
}

// BenchmarkPlaceText: what the analysis pays for a typical place (a
// country, two subdivisions, a city and an organisation: nothing to
// escape) at each observation it folds, against copying the same place.
func BenchmarkPlaceText(b *testing.B) {
	p := Place{Country: "FR", Subdivisions: []string{"Île-de-France", "78"}, City: "Versailles", Org: "Lab Télécom"}
	b.Run("place-text", func(b *testing.B) {
		for b.Loop() {
			q := p
			q.Country, q.City, q.Org = PlaceText(p.Country), PlaceText(p.City), PlaceText(p.Org)
			for _, s := range p.Subdivisions {
				_ = PlaceText(s)
			}
			_ = q
		}
	})
	b.Run("baseline-copy", func(b *testing.B) {
		for b.Loop() {
			q := p
			_ = q
		}
	})
}
