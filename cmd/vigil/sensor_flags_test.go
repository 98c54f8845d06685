package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// --listen takes one IPv4 and one IPv6 address at most, refuses the
// unspecified addresses and duplicates, and names the item at fault.
func TestSensorListenFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string // addresses, or nil for an error
		err  string
	}{
		{in: "127.0.0.1", want: []string{"127.0.0.1"}},
		{in: "::1", want: []string{"::1"}},
		{in: "127.0.0.1,::1", want: []string{"127.0.0.1", "::1"}},
		{in: " fd00:0:0:1::1 , 10.250.0.1 ", want: []string{"fd00:0:0:1::1", "10.250.0.1"}},
		{in: "::ffff:127.0.0.1", want: []string{"127.0.0.1"}},
		{in: "127.0.0.1,0.0.0.0", err: `"0.0.0.0" listens on every address`},
		{in: "::,127.0.0.1", err: `"::" listens on every address`},
		{in: "127.0.0.1,::1,127.0.0.1", err: `"127.0.0.1" is given twice`},
		{in: "127.0.0.1,::ffff:127.0.0.1", err: `"::ffff:127.0.0.1" is given twice`},
		{in: "::1,fd00::1", err: `"fd00::1": ::1 is already the IPv6 address`},
		{in: "127.0.0.1,127.0.0.2", err: `"127.0.0.2": 127.0.0.1 is already the IPv4 address`},
		{in: "127.0.0.1,localhost", err: `"localhost" is not an IP address`},
		{in: "[::1]", err: `"[::1]" is not an IP address`},
		{in: "fe80::1%eth0", err: `"fe80::1%eth0": an address with a zone`},
		{in: " , ", err: "no address given"},
	} {
		got, err := parseListen(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseListen(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		var want []netip.Addr
		for _, a := range c.want {
			want = append(want, netip.MustParseAddr(a))
		}
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseListen(%q) = %v, %v; want %v", c.in, got, err, want)
		}
	}
}

// --bootstrap takes [IPv6]:port, and --scope-allow IPv6 prefixes.
func TestSensorBootstrapAndScopeAllowTakeIPv6(t *testing.T) {
	aps, err := parseAddrPorts("127.0.0.1:40001, [::1]:40101,[fd00:0:0:1::2]:6881,[::ffff:10.250.0.2]:6881")
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:40001"), netip.MustParseAddrPort("[::1]:40101"),
		netip.MustParseAddrPort("[fd00:0:0:1::2]:6881"), netip.MustParseAddrPort("10.250.0.2:6881")}
	if err != nil || !slices.Equal(aps, want) {
		t.Fatalf("parseAddrPorts = %v, %v; want %v", aps, err, want)
	}
	for _, bad := range []string{"::1:40101", "[::1]", "router.example.invalid:6881"} {
		if _, err := parseAddrPorts("127.0.0.1:1," + bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("parseAddrPorts(%q) = %v, want an error naming it", bad, err)
		}
	}
	ps, err := parsePrefixes("fd00:0:0:1::/64,10.250.0.0/24,::1/128")
	if err != nil || len(ps) != 3 || !slices.Contains(ps, netip.MustParsePrefix("fd00:0:0:1::/64")) {
		t.Fatalf("parsePrefixes = %v, %v", ps, err)
	}
	for _, bad := range []string{"fd00::/129", "::ffff:10.0.0.0/104", "fd00::"} {
		if _, err := parsePrefixes(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("parsePrefixes(%q) = %v, want an error naming it", bad, err)
		}
	}
}

// A bad --listen is a usage error that names the item, before any store
// is opened or socket touched.
func TestSensorListenFlagIsAUsageError(t *testing.T) {
	for _, bad := range []string{"127.0.0.1,::", "::1,::1"} {
		code, _, errOut := vigilRun(t, nil, "", "--db", "/nonexistent/vigil.db", "sensor", "bittorrent",
			"--bootstrap", "127.0.0.1:9", "--listen", bad)
		if code != exitUsage || !strings.Contains(errOut, "--listen") {
			t.Errorf("--listen %s: exit %d, stderr %q; want a usage error", bad, code, errOut)
		}
	}
}

// FuzzParseListen: whatever --listen (a flag, VIGIL_SENSOR_BITTORRENT_LISTEN
// or the config file) holds, an accepted value is one or two addresses,
// none unspecified, mapped or zoned, at most one of each family.
func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1,::1", "::1,::1", "0.0.0.0", "::ffff:127.0.0.1,127.0.0.1", "fe80::1%eth0", " , ::1 ,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseListen(s)
		if err != nil {
			return
		}
		if len(got) < 1 || len(got) > 2 || (len(got) == 2 && got[0].Is6() == got[1].Is6()) {
			t.Fatalf("parseListen(%q) = %v", s, got)
		}
		for _, a := range got {
			if !a.IsValid() || a.IsUnspecified() || a.Is4In6() || a.Zone() != "" {
				t.Fatalf("parseListen(%q) accepted %v", s, a)
			}
		}
	})
}
