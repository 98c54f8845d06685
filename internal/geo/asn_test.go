package geo

import (
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const sampleASNCSV = `1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."
1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd
192.0.2.0,192.0.2.127,64500,Synthetic A
192.0.2.128,192.0.2.255,64501,Synthetic B
255.255.255.0,255.255.255.255,64502,Top
2001:db8::,2001:db8:0:ffff:ffff:ffff:ffff:ffff,64503,Synthetic V6
2001:db8:1::,2001:db8:1::ff,64504,"Synthetic, V6 small"
`

func TestASNTableLookup(t *testing.T) {
	tab, err := ParseASNCSV(strings.NewReader(sampleASNCSV), "asn-ipv4.csv")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		asn  uint32
		org  string
		ok   bool
	}{
		{"0.0.0.0", 0, "", false},
		{"1.0.0.0", 13335, "Cloudflare, Inc.", true},
		{"1.0.0.255", 13335, "Cloudflare, Inc.", true},
		{"1.0.1.0", 0, "", false}, // the gap between two ranges
		{"1.0.4.0", 38803, "Gtelecom Pty Ltd", true},
		{"1.0.7.255", 38803, "Gtelecom Pty Ltd", true},
		{"1.0.8.0", 0, "", false},
		{"192.0.2.127", 64500, "Synthetic A", true},
		{"192.0.2.128", 64501, "Synthetic B", true},
		{"::ffff:192.0.2.200", 64501, "Synthetic B", true},
		{"255.255.255.255", 64502, "Top", true},
		{"2001:db8::", 64503, "Synthetic V6", true},
		{"2001:db8:0:ffff::1", 64503, "Synthetic V6", true},
		{"2001:db8:1::ff", 64504, "Synthetic, V6 small", true},
		{"2001:db8:1::100", 0, "", false},
		{"::1", 0, "", false},
		{"ffff::1", 0, "", false},
	}
	for _, tc := range tests {
		asn, org, ok := tab.LookupASN(netip.MustParseAddr(tc.addr))
		if asn != tc.asn || org != tc.org || ok != tc.ok {
			t.Errorf("LookupASN(%s) = %d, %q, %v; want %d, %q, %v", tc.addr, asn, org, ok, tc.asn, tc.org, tc.ok)
		}
	}
	if got, want := tab.Len(), 7; got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}
}

func TestParseASNCSVReadsNumericFiles(t *testing.T) {
	v4, err := ParseASNCSV(strings.NewReader("16777216,16777471,13335,\"Cloudflare, Inc.\"\n"), "asn-ipv4-num.csv")
	if err != nil {
		t.Fatal(err)
	}
	if asn, _, ok := v4.LookupASN(netip.MustParseAddr("1.0.0.7")); !ok || asn != 13335 {
		t.Errorf("numeric IPv4: AS%d, %v", asn, ok)
	}
	// 2001:db8:: and 2001:db8::ffff in decimal.
	lo := new(big.Int).SetBytes(netip.MustParseAddr("2001:db8::").AsSlice()).String()
	hi := new(big.Int).SetBytes(netip.MustParseAddr("2001:db8::ffff").AsSlice()).String()
	v6, err := ParseASNCSV(strings.NewReader(lo+","+hi+",64500,X\n"), "asn-ipv6-num.csv")
	if err != nil {
		t.Fatal(err)
	}
	if asn, _, ok := v6.LookupASN(netip.MustParseAddr("2001:db8::abc")); !ok || asn != 64500 {
		t.Errorf("numeric IPv6: AS%d, %v", asn, ok)
	}
	// In a file named ipv6, a small decimal is still IPv6 (::1).
	small, err := ParseASNCSV(strings.NewReader("1,1,64501,Y\n"), "asn-ipv6-num.csv")
	if err != nil {
		t.Fatal(err)
	}
	if asn, _, ok := small.LookupASN(netip.MustParseAddr("::1")); !ok || asn != 64501 {
		t.Errorf("small numeric IPv6: AS%d, %v", asn, ok)
	}
}

func TestParseASNCSVSortsUnsortedInput(t *testing.T) {
	tab, err := ParseASNCSV(strings.NewReader("192.0.2.128,192.0.2.255,2,B\n192.0.2.0,192.0.2.127,1,A\n"), "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	if asn, _, _ := tab.LookupASN(netip.MustParseAddr("192.0.2.5")); asn != 1 {
		t.Errorf("192.0.2.5: AS%d, want AS1", asn)
	}
	if asn, _, _ := tab.LookupASN(netip.MustParseAddr("192.0.2.200")); asn != 2 {
		t.Errorf("192.0.2.200: AS%d, want AS2", asn)
	}
}

func TestParseASNCSVRejectsBadLines(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"three-fields", "1.0.0.0,1.0.0.255,13335\n", "line 1: bad ASN range CSV: want 4 fields"},
		{"bad-start", "ok,1.0.0.255,1,A\n", `line 1: bad ASN range CSV: ip_range_start "ok"`},
		{"bad-end", "1.0.0.0,1.0.0.256,1,A\n", "line 1: bad ASN range CSV: ip_range_end"},
		{"bad-asn-second-line", "1.0.0.0,1.0.0.255,1,A\n1.0.1.0,1.0.1.255,AS2,B\n", `line 2: bad ASN range CSV: autonomous_system_number "AS2"`},
		{"asn-overflow", "1.0.0.0,1.0.0.255,4294967296,A\n", "autonomous_system_number"},
		{"reversed", "1.0.0.255,1.0.0.0,1,A\n", "line 1: bad ASN range CSV: range end 1.0.0.0 is before its start"},
		{"mixed", "1.0.0.0,2001:db8::,1,A\n", "mixes IPv4 and IPv6"},
		{"unterminated-quote", "1.0.0.0,1.0.0.255,1,\"A\n", "line 1"},
		{"zone", "fe80::1%eth0,fe80::2,1,A\n", "zone"},
		{"huge-number", "1,340282366920938463463374607431768211456,1,A\n", "ip_range_end"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseASNCSV(strings.NewReader(tc.text), "asn.csv")
			if err == nil {
				t.Fatal("accepted a bad file")
			}
			if !errors.Is(err, ErrBadCSV) {
				t.Errorf("err = %v, want ErrBadCSV", err)
			}
			if !strings.Contains(err.Error(), "asn.csv") {
				t.Errorf("err = %v, want it to name asn.csv", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseASNCSVSkipsHeader(t *testing.T) {
	tab, err := ParseASNCSV(strings.NewReader("ip_range_start,ip_range_end,autonomous_system_number,autonomous_system_organization\n1.0.0.0,1.0.0.255,1,A\n"), "h.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tab.Len(), 1; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
}

func TestParseUint128(t *testing.T) {
	max := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	tests := []struct {
		in string
		ok bool
	}{
		{"0", true}, {"1", true}, {"4294967295", true}, {"18446744073709551615", true},
		{"18446744073709551616", true}, {"42540766411282592856903984951653826560", true},
		{max.String(), true}, {new(big.Int).Add(max, big.NewInt(1)).String(), false},
		{"-1", false}, {"1e5", false}, {"", true}, {"99999999999999999999999999999999999999999", false},
	}
	for _, tc := range tests {
		hi, lo, err := parseUint128(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseUint128(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok || tc.in == "" {
			continue
		}
		got := new(big.Int).Lsh(new(big.Int).SetUint64(hi), 64)
		got.Or(got, new(big.Int).SetUint64(lo))
		if got.String() != tc.in {
			t.Errorf("parseUint128(%q) = %s", tc.in, got)
		}
	}
}

// bruteASN is the specification resolveOverlaps implements: of the input
// ranges holding a, the one that starts last wins, ties going to the
// shorter range, then to the earlier line.
func bruteASN(in []span, a u128) (uint32, bool) {
	w := -1
	for i, s := range in {
		if s.start.cmp(a) > 0 || s.end.cmp(a) < 0 {
			continue
		}
		if w < 0 || s.start.cmp(in[w].start) > 0 ||
			(s.start == in[w].start && (s.end.cmp(in[w].end) < 0 || (s.end == in[w].end && s.line < in[w].line))) {
			w = i
		}
	}
	if w < 0 {
		return 0, false
	}
	return in[w].asn, true
}

func TestParseASNCSVResolvesOverlaps(t *testing.T) {
	// As in @ip-location-db/asn: a range that runs into the next one.
	text := `214.95.0.0,215.0.255.255,749,DoD
215.0.0.0,215.1.3.255,721,DoD NIC
10.0.0.0,10.255.255.255,1,Outer
10.1.0.0,10.1.255.255,2,Inner
10.1.2.0,10.1.2.255,3,Innermost
10.1.2.0,10.1.2.255,4,Duplicate of innermost
2001:db8::,2001:db8::ffff,5,V6 outer
2001:db8::100,2001:db8::1ff,6,V6 inner
`
	tab, err := ParseASNCSV(strings.NewReader(text), "overlap.csv")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tab.Overlaps(), 8; got != want {
		t.Errorf("Overlaps = %d, want %d", got, want)
	}
	tests := []struct {
		addr string
		asn  uint32
	}{
		{"214.95.0.0", 749}, {"214.255.255.255", 749}, {"215.0.0.0", 721}, {"215.1.3.255", 721},
		{"10.0.0.1", 1}, {"10.1.0.0", 2}, {"10.1.1.255", 2}, {"10.1.2.0", 3}, {"10.1.2.255", 3},
		{"10.1.3.0", 2}, {"10.2.0.0", 1}, {"10.255.255.255", 1},
		{"2001:db8::ff", 5}, {"2001:db8::100", 6}, {"2001:db8::1ff", 6}, {"2001:db8::200", 5}, {"2001:db8::ffff", 5},
	}
	for _, tc := range tests {
		if asn, _, ok := tab.LookupASN(netip.MustParseAddr(tc.addr)); !ok || asn != tc.asn {
			t.Errorf("%s: AS%d, %v; want AS%d", tc.addr, asn, ok, tc.asn)
		}
	}
}

func TestParseASNCSVRejectsDeepNesting(t *testing.T) {
	var b strings.Builder
	for i := range maxCluster + 1 {
		fmt.Fprintf(&b, "%d,%d,1,X\n", i, 1<<30-i)
	}
	_, err := ParseASNCSV(strings.NewReader(b.String()), "nest-ipv4-num.csv")
	if !errors.Is(err, ErrBadCSV) || !strings.Contains(err.Error(), "line 1:") {
		t.Fatalf("err = %v, want ErrBadCSV at line 1", err)
	}
}

// FuzzParseASNCSV checks that any input either fails with ErrBadCSV or
// yields sorted, disjoint ranges that answer, at every input range's
// edges, what the brute-force specification answers.
func FuzzParseASNCSV(f *testing.F) {
	f.Add(sampleASNCSV, "asn-ipv4.csv")
	f.Add("16777216,16777471,13335,\"Cloudflare, Inc.\"\n", "asn-ipv4-num.csv")
	f.Add("1,2,3,x\n", "asn-ipv6-num.csv")
	f.Add("1.0.0.0,1.0.0.255,1,A\n1.0.0.0,1.0.0.255,2,B\n1.0.0.7,1.0.0.9,3,C\n", "dup.csv")
	f.Add("0,4294967295,1,A\n5,6,2,B\n", "edge-ipv4-num.csv")
	f.Fuzz(func(t *testing.T, text, name string) {
		tab, err := ParseASNCSV(strings.NewReader(text), name)
		if err != nil {
			if !errors.Is(err, ErrBadCSV) {
				t.Fatalf("error does not wrap ErrBadCSV: %v", err)
			}
			return
		}
		for i, r := range tab.v4 {
			if r.end < r.start || (i > 0 && r.start <= tab.v4[i-1].end) {
				t.Fatalf("IPv4 ranges not sorted and disjoint at %d", i)
			}
		}
		for i, r := range tab.v6 {
			if cmp128(r.endHi, r.endLo, r.startHi, r.startLo) < 0 ||
				(i > 0 && cmp128(r.startHi, r.startLo, tab.v6[i-1].endHi, tab.v6[i-1].endLo) <= 0) {
				t.Fatalf("IPv6 ranges not sorted and disjoint at %d", i)
			}
		}
		// Parse again into spans to compare with the specification.
		in := inputSpans(t, text, name)
		for _, s := range in {
			for _, p := range []u128{s.start, s.end} {
				var a netip.Addr
				if s.v4 {
					a = netip.AddrFrom4([4]byte{byte(p.lo >> 24), byte(p.lo >> 16), byte(p.lo >> 8), byte(p.lo)})
				} else {
					var b [16]byte
					binary.BigEndian.PutUint64(b[:8], p.hi)
					binary.BigEndian.PutUint64(b[8:], p.lo)
					a = netip.AddrFrom16(b)
				}
				var family []span
				for _, o := range in {
					if o.v4 == s.v4 {
						family = append(family, o.span)
					}
				}
				want, _ := bruteASN(family, p)
				if got, _, ok := tab.LookupASN(a); !ok || got != want {
					t.Fatalf("%s: AS%d %v, specification says AS%d", a, got, ok, want)
				}
			}
		}
	})
}

type familySpan struct {
	span
	v4 bool
}

// inputSpans re-reads the ranges of a file that ParseASNCSV accepted.
func inputSpans(t *testing.T, text, name string) []familySpan {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	v6 := strings.Contains(strings.ToLower(filepath.Base(name)), "ipv6")
	var out []familySpan
	for {
		rec, err := cr.Read()
		if err != nil {
			break
		}
		if strings.TrimSpace(rec[0]) == "ip_range_start" {
			continue
		}
		line, _ := cr.FieldPos(0)
		s, err1 := parseRangeAddr(rec[0], v6)
		e, err2 := parseRangeAddr(rec[1], v6)
		asn, err3 := strconv.ParseUint(strings.TrimSpace(rec[2]), 10, 32)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("accepted file has a bad line %d", line)
		}
		out = append(out, familySpan{span{start: toU128(s), end: toU128(e), asn: uint32(asn), line: line}, s.Is4()})
	}
	return out
}

func FuzzParseProviders(f *testing.F) {
	f.Add(string(shippedProviders))
	f.Add("1,vpn,X,s\n2,none,,s\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParseProviders(strings.NewReader(text), "fuzz.csv", nil)
		if err != nil {
			if !errors.Is(err, ErrBadProviders) {
				t.Fatalf("error does not wrap ErrBadProviders: %v", err)
			}
			return
		}
		for _, e := range p.All() {
			if e.Kind == NotProvider || e.Source == "" || p.Kind(e.ASN) != e.Kind {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}
