package hashkind

import (
	"errors"
	"strings"
	"testing"
)

// Digests of each size made of the byte pattern (i*37+11) mod 256, and their
// encodings as Python's hex() and base64.b32encode() print them: the
// expected values come from outside this package's code.
const (
	hex16 = "0b30557a9fc4e90e33587da2c7ec1136"
	b32p6 = "BMYFK6U7YTUQ4M2YPWRMP3ARGY======" // 16 bytes, padded
	hex20 = "0b30557a9fc4e90e33587da2c7ec11365b80a5ca"
	b3220 = "BMYFK6U7YTUQ4M2YPWRMP3ARGZNYBJOK"
	hex24 = "0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e"
	b3224 = "BMYFK6U7YTUQ4M2YPWRMP3ARGZNYBJOK54KDSXQ"
	hex32 = "0b30557a9fc4e90e33587da2c7ec11365b80a5caef14395e83a8cdf2173c6186"
	b3232 = "BMYFK6U7YTUQ4M2YPWRMP3ARGZNYBJOK54KDSXUDVDG7EFZ4MGDA"
)

func TestParseAcceptsEveryForm(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		hint    Kind
		kind    Kind
		wantHex string
	}{
		{"sha1-hex", hex20, Unknown, SHA1, hex20},
		{"sha1-hex-upper", strings.ToUpper(hex20), Unknown, SHA1, hex20},
		{"sha1-hex-spaces-around", "  " + hex20 + "\t\r\n", Unknown, SHA1, hex20},
		{"sha1-base32", b3220, Unknown, SHA1, hex20},
		{"sha1-base32-lower", strings.ToLower(b3220), Unknown, SHA1, hex20},
		{"sha256-hex", hex32, Unknown, SHA256, hex32},
		{"sha256-base32", b3232, Unknown, SHA256, hex32},
		{"sha256-base32-padded", b3232 + "====", Unknown, SHA256, hex32},
		{"tth-base32", b3224, Unknown, TTH, hex24},
		{"tth-base32-padded", b3224 + "=", Unknown, TTH, hex24},
		{"tth-base32-lower", strings.ToLower(b3224), Unknown, TTH, hex24},
		{"tth-hex", hex24, Unknown, TTH, hex24},
		{"md5-with-hint", hex16, MD5, MD5, hex16},
		{"ed2k-with-hint", hex16, ED2K, ED2K, hex16},
		{"md5-base32-padded-with-hint", b32p6, MD5, MD5, hex16},
		{"btih-hex-with-hint", hex20, BTIH, BTIH, hex20},
		{"btih-base32-with-hint", b3220, BTIH, BTIH, hex20},
		{"btih2-with-hint", hex32, BTIH2, BTIH2, hex32},
		{"btv2-with-hint", hex32, BTV2, BTV2, hex32},
		{"prefix-md5", "md5:" + hex16, Unknown, MD5, hex16},
		{"prefix-MD5-upper", "MD5:" + strings.ToUpper(hex16), Unknown, MD5, hex16},
		{"prefix-ed2k", "ed2k:" + hex16, Unknown, ED2K, hex16},
		{"prefix-sha1", "sha1:" + hex20, Unknown, SHA1, hex20},
		{"prefix-sha-1-alias", "sha-1:" + b3220, Unknown, SHA1, hex20},
		{"prefix-sha256", "sha256:" + hex32, Unknown, SHA256, hex32},
		{"prefix-tth", "tth:" + b3224, Unknown, TTH, hex24},
		{"prefix-btih", "btih:" + hex20, Unknown, BTIH, hex20},
		{"prefix-btih2", "btih2:" + hex32, Unknown, BTIH2, hex32},
		{"prefix-btih2-multihash", "btih2:1220" + hex32, Unknown, BTIH2, hex32},
		{"prefix-btv2", "btv2:" + hex32, Unknown, BTV2, hex32},
		{"prefix-matches-hint", "md5:" + hex16, MD5, MD5, hex16},
		{"urn-sha1-base32", "urn:sha1:" + b3220, Unknown, SHA1, hex20},
		{"urn-sha1-hex", "urn:sha1:" + hex20, Unknown, SHA1, hex20},
		{"urn-SHA1-upper", "URN:SHA1:" + b3220, Unknown, SHA1, hex20},
		{"urn-tree-tiger", "urn:tree:tiger:" + b3224, Unknown, TTH, hex24},
		{"urn-tree-tiger-slash", "urn:tree:tiger/:" + b3224, Unknown, TTH, hex24},
		{"urn-tree-tiger-1024", "urn:tree:tiger/1024:" + b3224, Unknown, TTH, hex24},
		{"urn-btih-hex", "urn:btih:" + hex20, Unknown, BTIH, hex20},
		{"urn-btih-base32", "urn:btih:" + b3220, Unknown, BTIH, hex20},
		{"urn-btmh", "urn:btmh:1220" + hex32, Unknown, BTIH2, hex32},
		{"urn-ed2k", "urn:ed2k:" + hex16, Unknown, ED2K, hex16},
		{"urn-ed2khash", "urn:ed2khash:" + hex16, Unknown, ED2K, hex16},
		{"urn-md5", "urn:md5:" + hex16, Unknown, MD5, hex16},
		{"urn-sha256", "urn:sha256:" + hex32, Unknown, SHA256, hex32},
		{"urn-bitprint-gives-sha1", "urn:bitprint:" + b3220 + "." + b3224, Unknown, SHA1, hex20},
		{"urn-bitprint-tth-hint", "urn:bitprint:" + b3220 + "." + b3224, TTH, TTH, hex24},
		{"magnet-btih", "magnet:?xt=urn:btih:" + hex20 + "&dn=synthetic-001.bin", Unknown, BTIH, hex20},
		{"magnet-hybrid-btih2-hint", "magnet:?xt=urn:btih:" + hex20 + "&xt=urn:btmh:1220" + hex32, BTIH2, BTIH2, hex32},
		{"ed2k-link", "ed2k://|file|synthetic-001.bin|1000|" + hex16 + "|/", Unknown, ED2K, hex16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.in, tt.hint)
			if err != nil {
				t.Fatalf("Parse(%q, %v): %v", tt.in, tt.hint, err)
			}
			if got, want := h.Kind(), tt.kind; got != want {
				t.Fatalf("kind = %v, want %v", got, want)
			}
			if got, want := h.Hex(), tt.wantHex; got != want {
				t.Fatalf("hex = %s, want %s", got, want)
			}
			hb, err := ParseBytes([]byte(tt.in), tt.hint)
			if err != nil {
				t.Fatalf("ParseBytes: %v", err)
			}
			if hb != h {
				t.Fatalf("ParseBytes = %v, Parse = %v", hb, h)
			}
		})
	}
}

func TestParseRejectsBadInput(t *testing.T) {
	long := strings.Repeat("ab", 300)
	tests := []struct {
		name     string
		in       string
		hint     Kind
		sentinel error
		reason   string // a part of the message
	}{
		{"empty", "", Unknown, ErrSyntax, "empty"},
		{"blank", "   ", Unknown, ErrSyntax, "empty"},
		{"ambiguous-32-hex", hex16, Unknown, ErrAmbiguous, "32 hex digits are md5 or ed2k: give --kind"},
		{"ambiguous-26-base32", strings.TrimRight(b32p6, "="), Unknown, ErrAmbiguous, "md5 or ed2k"},
		{"hex-wrong-length", hex20[:38], Unknown, ErrSyntax, "38 hex digits fit no hash kind"},
		{"hex-odd-length", hex20[:39], Unknown, ErrSyntax, "39 hex digits"},
		{"base32-wrong-length", b3220[:30], Unknown, ErrSyntax, "30 characters fit no hash form"},
		{"non-hex-character", hex20[:10] + "x" + hex20[11:], Unknown, ErrSyntax, "invalid character 'x' at position 11"},
		{"embedded-space", hex20[:20] + " " + hex20[20:], Unknown, ErrSyntax, "contains a space at position 21"},
		{"embedded-tab", hex20[:20] + "\t" + hex20[20:], Unknown, ErrSyntax, "contains a space"},
		{"invalid-utf8", hex20[:5] + "\xff" + hex20[6:], Unknown, ErrSyntax, "invalid UTF-8 byte 0xff at position 6"},
		{"hint-wrong-length", hex20, MD5, ErrSyntax, "md5 wants 32 hex digits or 26 base32 characters, got 40"},
		{"hint-wrong-length-sha256", hex16, SHA256, ErrSyntax, "sha256 wants 64 hex digits"},
		{"prefix-conflicts-with-hint", "sha1:" + hex20, BTIH, ErrKindMismatch, "is a sha1 hash, not btih"},
		{"urn-conflicts-with-hint", "urn:sha1:" + b3220, BTIH, ErrKindMismatch, "names sha1, not btih"},
		{"unknown-prefix", "crc32:" + hex16, Unknown, ErrSyntax, `unknown prefix "crc32"`},
		{"prefix-without-value", "md5:", Unknown, ErrSyntax, "no md5 digest after the prefix"},
		{"prefix-wrong-length", "sha1:" + hex16, Unknown, ErrSyntax, "sha1 wants 40 hex digits"},
		{"unknown-urn", "urn:crc32:" + hex16, Unknown, ErrSyntax, `unsupported URN namespace "crc32"`},
		{"urn-no-value", "urn:sha1", Unknown, ErrSyntax, "URN without a value"},
		{"urn-tree-other", "urn:tree:sha1:" + b3224, Unknown, ErrSyntax, "unknown tree hash"},
		{"urn-btmh-not-sha256", "urn:btmh:1320" + hex32, Unknown, ErrSyntax, "is not sha2-256"},
		{"urn-btmh-short", "urn:btmh:1220" + hex20, Unknown, ErrSyntax, "btmh wants 1220 and 64 hex digits"},
		{"urn-btih-wrong-length", "urn:btih:" + hex16, Unknown, ErrSyntax, "btih wants 40 hex digits"},
		{"urn-bitprint-no-dot", "urn:bitprint:" + b3220, Unknown, ErrSyntax, "bitprint wants SHA1.TTH"},
		{"urn-bitprint-bad-tth", "urn:bitprint:" + b3220 + "." + b3220, Unknown, ErrSyntax, "tth wants"},
		{"bad-padding", b3224 + "==", Unknown, ErrSyntax, "bad base32 padding"},
		{"non-canonical-base32", b3224[:38] + "R", Unknown, ErrSyntax, "non-canonical base32"},
		{"long-input-quoted-short", long, Unknown, ErrSyntax, "… (600 bytes)"},
		{"magnet-without-hint-kind", "magnet:?xt=urn:btih:" + hex20, SHA1, ErrKindMismatch, "names btih, not sha1"},
		{"bad-hint", hex20, Kind(200), ErrUnknownKind, "hint is not a known kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Parse(tt.in, tt.hint)
			if err == nil {
				t.Fatalf("Parse(%q, %v) = %v, want an error", tt.in, tt.hint, h)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %q does not wrap %v", err, tt.sentinel)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not say %q", err, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), "hash \"") {
				t.Fatalf("error %q does not quote the input", err)
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error is %d bytes long: the input should be cut", len(err.Error()))
			}
			if _, err2 := ParseBytes([]byte(tt.in), tt.hint); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("ParseBytes error %v, Parse error %v", err2, err)
			}
		})
	}
}

func TestStringIsCustomaryForEachKind(t *testing.T) {
	tests := []struct {
		kind Kind
		in   string
		want string
		urn  string
	}{
		{MD5, hex16, hex16, "urn:md5:" + hex16},
		{ED2K, strings.ToUpper(hex16), hex16, "urn:ed2k:" + hex16},
		{SHA1, b3220, hex20, "urn:sha1:" + b3220},
		{BTIH, b3220, hex20, "urn:btih:" + hex20},
		{SHA256, hex32, hex32, "urn:sha256:" + hex32},
		{BTIH2, hex32, hex32, "urn:btmh:1220" + hex32},
		{BTV2, hex32, hex32, ""},
		{TTH, hex24, b3224, "urn:tree:tiger:" + b3224},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			h, err := Parse(tt.in, tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.String(); got != tt.want {
				t.Fatalf("String() = %s, want %s", got, tt.want)
			}
			if got := h.URN(); got != tt.urn {
				t.Fatalf("URN() = %s, want %s", got, tt.urn)
			}
			if tt.urn != "" {
				back, err := Parse(tt.urn, Unknown)
				if err != nil || back != h {
					t.Fatalf("Parse(URN()) = %v, %v; want %v", back, err, h)
				}
				if got, want := h.Magnet(), "magnet:?xt="+tt.urn; got != want {
					t.Fatalf("Magnet() = %s, want %s", got, want)
				}
			} else if h.Magnet() != "" {
				t.Fatalf("Magnet() = %s for a kind with no URN", h.Magnet())
			}
			text, err := h.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(text), tt.kind.String()+":"+tt.want; got != want {
				t.Fatalf("MarshalText = %s, want %s", got, want)
			}
			var back Hash
			if err := back.UnmarshalText(text); err != nil || back != h {
				t.Fatalf("UnmarshalText(%s) = %v, %v; want %v", text, back, err, h)
			}
		})
	}
}

func TestZeroHashPrintsEmpty(t *testing.T) {
	var h Hash
	if h.String() != "" || h.URN() != "" || h.Magnet() != "" {
		t.Fatalf("zero hash prints %q %q %q", h.String(), h.URN(), h.Magnet())
	}
	text, _ := h.MarshalText()
	if len(text) != 0 {
		t.Fatalf("MarshalText = %q", text)
	}
	back := MustNew(MD5, make([]byte, 16))
	if err := back.UnmarshalText(nil); err != nil || !back.IsZero() {
		t.Fatalf("UnmarshalText(nil) = %v, %v", back, err)
	}
}

func TestUnmarshalTextRejectsAmbiguous(t *testing.T) {
	var h Hash
	if err := h.UnmarshalText([]byte(hex16)); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("UnmarshalText(32 hex) = %v, want ErrAmbiguous", err)
	}
}
