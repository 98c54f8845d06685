package hashkind

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, s string, k Kind) Hash {
	t.Helper()
	h, err := Parse(s, k)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParseRefReadsLinks(t *testing.T) {
	btih := mustParse(t, hex20, BTIH)
	btih2 := mustParse(t, hex32, BTIH2)
	sha1 := mustParse(t, hex20, SHA1)
	tth := mustParse(t, hex24, TTH)
	ed2k := mustParse(t, hex16, ED2K)
	md5 := mustParse(t, hex16, MD5)
	tests := []struct {
		name     string
		in       string
		hashes   []Hash
		dn       string
		size     int64
		trackers []string
		aich     string
	}{
		{"magnet-v1", "magnet:?xt=urn:btih:" + hex20, []Hash{btih}, "", -1, nil, ""},
		{"magnet-v1-base32", "magnet:?xt=urn:btih:" + b3220 + "&dn=synthetic-001.bin", []Hash{btih}, "synthetic-001.bin", -1, nil, ""},
		{"magnet-v2", "magnet:?xt=urn:btmh:1220" + hex32 + "&dn=synthetic%20two.bin&xl=1234", []Hash{btih2}, "synthetic two.bin", 1234, nil, ""},
		{"magnet-hybrid", "magnet:?xt=urn:btih:" + hex20 + "&xt=urn:btmh:1220" + hex32 + "&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:6969",
			[]Hash{btih, btih2}, "", -1, []string{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"}, ""},
		{"magnet-numbered-xt", "magnet:?xt.1=urn:sha1:" + b3220 + "&xt.2=urn:tree:tiger:" + b3224 + "&dn=a+b.bin", []Hash{sha1, tth}, "a b.bin", -1, nil, ""},
		{"magnet-gnutella-bitprint", "magnet:?xt=urn:bitprint:" + b3220 + "." + b3224 + "&xt=urn:sha1:" + b3220, []Hash{sha1, tth}, "", -1, nil, ""},
		{"magnet-emule", "magnet:?xt=urn:ed2k:" + hex16 + "&xl=9728000&dn=synthetic-003.bin&xt=urn:aich:" + b3220, []Hash{ed2k}, "synthetic-003.bin", 9728000, nil, ""},
		{"magnet-shareaza-ed2khash-md5", "magnet:?xt=urn:ed2khash:" + hex16 + "&xt=urn:md5:" + hex16, []Hash{ed2k, md5}, "", -1, nil, ""},
		{"magnet-skips-unknown-urns", "magnet:?xt=urn:crc32:526506c9&xt=urn:sha256:" + hex32 + "&xt=urn:whirlpool:00", []Hash{mustParse(t, hex32, SHA256)}, "", -1, nil, ""},
		{"magnet-upper-scheme", "MAGNET:?XT=urn:btih:" + hex20, []Hash{btih}, "", -1, nil, ""},
		{"ed2k-link", "ed2k://|file|synthetic-001.bin|20000|" + hex16 + "|/", []Hash{ed2k}, "synthetic-001.bin", 20000, nil, ""},
		{"ed2k-link-upper-hash", "ed2k://|file|synthetic-001.bin|20000|" + strings.ToUpper(hex16) + "|/", []Hash{ed2k}, "synthetic-001.bin", 20000, nil, ""},
		{"ed2k-link-aich", "ed2k://|file|synthetic-001.bin|20000|" + hex16 + "|h=" + strings.ToLower(b3220) + "|/", []Hash{ed2k}, "synthetic-001.bin", 20000, nil, b3220},
		{"ed2k-link-parts", "ed2k://|file|synthetic-001.bin|20000|" + hex16 + "|p=" + hex16 + ":" + hex16 + "|h=" + b3220 + "|/", []Hash{ed2k}, "synthetic-001.bin", 20000, nil, b3220},
		{"ed2k-link-escaped-name", "ed2k://|file|synthetic%20file%5B1%5D.bin|5|" + hex16 + "|/", []Hash{ed2k}, "synthetic file[1].bin", 5, nil, ""},
		{"ed2k-link-sources", "ed2k://|file|synthetic-001.bin|20000|" + hex16 + "|/|sources,127.0.0.1:4662|/", []Hash{ed2k}, "synthetic-001.bin", 20000, nil, ""},
		{"bare-hash", hex20, []Hash{sha1}, "", -1, nil, ""},
		{"bitprint-urn", "urn:bitprint:" + b3220 + "." + b3224, []Hash{sha1, tth}, "", -1, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseRef(tt.in, Unknown)
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.in, err)
			}
			if !slices.Equal(ref.Hashes, tt.hashes) {
				t.Fatalf("hashes = %v, want %v", ref.Hashes, tt.hashes)
			}
			if ref.Name != tt.dn || ref.Size != tt.size || ref.AICH != tt.aich {
				t.Fatalf("name, size, aich = %q, %d, %q; want %q, %d, %q", ref.Name, ref.Size, ref.AICH, tt.dn, tt.size, tt.aich)
			}
			if !slices.Equal(ref.Trackers, tt.trackers) {
				t.Fatalf("trackers = %q, want %q", ref.Trackers, tt.trackers)
			}
		})
	}
}

func TestParseRefRejectsBadLinks(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		hint   Kind
		reason string
	}{
		{"magnet-no-question-mark", "magnet:xt=urn:btih:" + hex20, Unknown, "without '?'"},
		{"magnet-no-xt", "magnet:?dn=synthetic-001.bin", Unknown, "magnet link has no xt"},
		{"magnet-only-unknown-xt", "magnet:?xt=urn:crc32:526506c9", Unknown, "no xt with a hash Vigil reads"},
		{"magnet-bad-btih", "magnet:?xt=urn:btih:" + hex16, Unknown, "xt btih wants 40 hex digits"},
		{"magnet-xt-not-urn", "magnet:?xt=http://127.0.0.1/x", Unknown, "is not a URN"},
		{"magnet-param-no-equals", "magnet:?xt=urn:btih:" + hex20 + "&dn", Unknown, `parameter "dn" has no '='`},
		{"magnet-bad-escape", "magnet:?xt=urn:btih:" + hex20 + "&dn=%zz", Unknown, "bad %-escape"},
		{"magnet-bad-xl", "magnet:?xt=urn:btih:" + hex20 + "&xl=-5", Unknown, `xl "-5" is not a size`},
		{"ed2k-server-link", "ed2k://|server|127.0.0.1|4661|/", Unknown, `type "server" names no file`},
		{"ed2k-short", "ed2k://|file|synthetic-001.bin|20000|/", Unknown, "has 4 of its 5 fields"},
		{"ed2k-no-leading-bar", "ed2k://file|a|1|" + hex16 + "|/", Unknown, "want ed2k://|file|NAME|SIZE|HASH|/"},
		{"ed2k-empty-name", "ed2k://|file||1|" + hex16 + "|/", Unknown, "empty name"},
		{"ed2k-bad-size", "ed2k://|file|a|12x|" + hex16 + "|/", Unknown, `size "12x"`},
		{"ed2k-bad-hash", "ed2k://|file|a|1|" + hex20 + "|/", Unknown, "is not 32 hex digits"},
		{"ed2k-bad-aich", "ed2k://|file|a|1|" + hex16 + "|h=abc|/", Unknown, "AICH hash"},
		{"ed2k-not-closed", "ed2k://|file|a|1|" + hex16 + "|", Unknown, "does not end with |/"},
		{"ed2k-junk-part", "ed2k://|file|a|1|" + hex16 + "|junk|/", Unknown, `unexpected ed2k link part "junk"`},
		{"ed2k-bad-escape", "ed2k://|file|a%g|1|" + hex16 + "|/", Unknown, "bad %-escape"},
		{"urn-hint-mismatch", "urn:ed2k:" + hex16, MD5, "is a ed2k hash, not md5"},
		{"bare-ambiguous", hex16, Unknown, "32 hex digits are md5 or ed2k: give --kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref, err := ParseRef(tt.in, tt.hint)
			if err == nil {
				t.Fatalf("ParseRef(%q) = %+v, want an error", tt.in, ref)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %q does not say %q", err, tt.reason)
			}
		})
	}
}
