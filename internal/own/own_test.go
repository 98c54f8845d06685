package own

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseMatchesExactlyWhatEachLineSays(t *testing.T) {
	file := `# the deployment's sensors
192.0.2.7            # sensor-paris: every port
198.51.100.9:6881    # a socket on a shared host
[2001:db8::7]:4662
2001:db8:1::/48      # a range the deployment holds
203.0.113.0/24
::ffff:192.0.2.99

`
	s, err := Parse("own.txt", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Len(), 6; got != want {
		t.Fatalf("Len %d, want %d", got, want)
	}
	for _, c := range []struct {
		ap   string
		want bool
	}{
		{"192.0.2.7:1", true},
		{"192.0.2.7:65535", true},
		{"[::ffff:192.0.2.7]:80", true}, // IPv4-mapped is the IPv4 address
		{"192.0.2.8:6881", false},
		{"198.51.100.9:6881", true},
		{"198.51.100.9:6882", false}, // another port of a shared host: someone else
		{"[2001:db8::7]:4662", true},
		{"[2001:db8::7]:4663", false},
		{"[2001:db8:1:ffff::1]:1", true},
		{"[2001:db8:2::1]:1", false},
		{"203.0.113.255:9", true},
		{"203.0.114.0:9", false},
		{"192.0.2.99:5", true},
	} {
		if got := s.Contains(netip.MustParseAddrPort(c.ap)); got != c.want {
			t.Errorf("Contains(%s) = %v, want %v", c.ap, got, c.want)
		}
	}
	var none *Set
	if none.Contains(netip.MustParseAddrPort("192.0.2.7:1")) || none.Len() != 0 {
		t.Fatal("the nil set holds something")
	}
}

func TestParseRefusesWhatWouldHideSubscribers(t *testing.T) {
	for _, c := range []struct {
		line string
		want error
	}{
		{"10.0.0.0/8", ErrTooBroad},
		{"0.0.0.0/0", ErrNotAHost},
		{"2001:db8::/31", ErrTooBroad},
		{"2001:db8::/47", ErrTooBroad}, // a /32 is a whole provider
		{"::ffff:10.0.0.0/100", ErrTooBroad},
		{"0.0.0.0", ErrNotAHost},
		{"::", ErrNotAHost},
		{"224.0.0.1", ErrNotAHost},
		{"192.0.2.7:0", ErrNotAHost},
		{"fe80::1%eth0", ErrNotAHost},
		{"sensor.example", ErrSyntax},
		{"192.0.2.7:http", ErrSyntax},
		{"192.0.2.7/33", ErrSyntax},
		{"2001:db8::7:6881:1:2:3:4:5", ErrSyntax},
	} {
		_, err := Parse("own.txt", []byte("192.0.2.1\n\n"+c.line+"\n"))
		if !errors.Is(err, c.want) {
			t.Errorf("%q: err %v, want %v", c.line, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), "own.txt line 3") {
			t.Errorf("%q: error %q does not name the file and line", c.line, err)
		}
	}
}

func TestParseBoundsTheEntries(t *testing.T) {
	var b strings.Builder
	for i := 0; i <= MaxEntries; i++ {
		b.WriteString(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
		b.WriteByte('\n')
	}
	if _, err := Parse("big.txt", []byte(b.String())); !errors.Is(err, ErrTooMany) {
		t.Fatalf("err %v, want ErrTooMany", err)
	}
}

// FuzzParse: whatever the file, Parse does not panic, and every entry of
// a file it accepts matches what the entry names.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"192.0.2.7\n", "198.51.100.9:6881 # comment\n", "[2001:db8::7]:4662\n", "2001:db8:1::/48\n",
		"203.0.113.0/24\r\n", "::ffff:192.0.2.99\n", "# only a comment", "10.0.0.0/8\n", "\x00\xff\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(data), "\n") {
			line, _, _ = strings.Cut(line, "#")
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			var ap netip.AddrPort
			if p, err := netip.ParsePrefix(line); err == nil {
				ap = netip.AddrPortFrom(p.Addr(), 1)
			} else if a, err := netip.ParseAddrPort(line); err == nil {
				ap = a
			} else if a, err := netip.ParseAddr(line); err == nil {
				ap = netip.AddrPortFrom(a, 1)
			} else {
				t.Fatalf("accepted %q", line)
			}
			if !s.Contains(ap) {
				t.Fatalf("%q accepted but %v not contained", line, ap)
			}
		}
	})
}
