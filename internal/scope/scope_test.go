package scope

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakePacketConn records writes instead of sending them: no test here ever
// hands a foreign address to a real socket.
type fakePacketConn struct {
	mu     sync.Mutex
	writes []string
}

func (f *fakePacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, addr.String())
	return len(p), nil
}
func (f *fakePacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	return 0, nil, errors.New("fake: nothing to read")
}
func (f *fakePacketConn) Close() error { return nil }
func (f *fakePacketConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}
}
func (f *fakePacketConn) SetDeadline(t time.Time) error      { return nil }
func (f *fakePacketConn) SetReadDeadline(t time.Time) error  { return nil }
func (f *fakePacketConn) SetWriteDeadline(t time.Time) error { return nil }

// stringAddr is a net.Addr of an unknown kind, as a careless caller might
// pass: it may hold a host name.
type stringAddr string

func (s stringAddr) Network() string { return "udp" }
func (s stringAddr) String() string  { return string(s) }

func labGuard(t *testing.T, allow ...string) *Guard {
	t.Helper()
	cfg := DefaultConfig()
	for _, a := range allow {
		cfg.Allow = append(cfg.Allow, netip.MustParsePrefix(a))
	}
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheckInLabMode(t *testing.T) {
	g := labGuard(t, "10.250.0.0/24", "fd00:250::/64")
	tests := []struct {
		name   string
		addr   string
		reason Reason // -1: allowed
	}{
		{"loopback-v4", "127.0.0.1:6881", -1},
		{"loopback-v4-other", "127.3.4.5:6881", -1},
		{"loopback-v6", "[::1]:6881", -1},
		{"v4-mapped-loopback", "[::ffff:127.0.0.1]:6881", -1},
		{"allowed-namespace-v4", "10.250.0.2:51413", -1},
		{"allowed-namespace-v4-mapped", "[::ffff:10.250.0.2]:51413", -1},
		{"allowed-namespace-v6", "[fd00:250::2]:6881", -1},
		{"public-v4", "203.0.113.7:6881", ReasonPublic},
		{"public-v6", "[2001:db8::1]:6881", ReasonPublic},
		{"v4-mapped-public", "[::ffff:203.0.113.7]:6881", ReasonPublic},
		{"private-not-allowed", "10.251.0.2:6881", ReasonPrivate},
		{"private-192-168", "192.168.1.10:6881", ReasonPrivate},
		{"cgnat", "100.64.1.1:6881", ReasonPrivate},
		{"link-local-v6-with-zone", "[fe80::1%eth0]:6881", ReasonPrivate},
		{"ula-not-allowed", "[fd00:251::2]:6881", ReasonPrivate},
		{"unspecified-v4", "0.0.0.0:6881", ReasonSpecial},
		{"unspecified-v6", "[::]:6881", ReasonSpecial},
		{"broadcast", "255.255.255.255:6881", ReasonSpecial},
		{"multicast", "239.192.152.143:6771", ReasonSpecial},
		{"port-zero", "127.0.0.1:0", ReasonSpecial},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := g.Check(netip.MustParseAddrPort(tt.addr))
			if tt.reason < 0 {
				if err != nil {
					t.Fatalf("Check(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			if !errors.Is(err, ErrOutOfScope) {
				t.Fatalf("Check(%s) = %v, want ErrOutOfScope", tt.addr, err)
			}
			var re *RefusedError
			if !errors.As(err, &re) || re.Reason != tt.reason {
				t.Fatalf("Check(%s) = %v, want reason %v", tt.addr, err, tt.reason)
			}
			if !strings.Contains(err.Error(), re.Addr) || re.Addr == "" {
				t.Fatalf("error %q does not name the address", err)
			}
		})
	}
}

func TestCheckInInternetMode(t *testing.T) {
	g, err := New(Config{Mode: ModeInternet, Deployment: &Deployment{LegalAuthority: "test authority", Operator: "test operator", Retention: 24 * time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		ok   bool
	}{
		{"203.0.113.7:6881", true},
		{"[2001:db8::1]:6881", true},
		{"127.0.0.1:6881", true},
		{"192.168.1.10:6881", false}, // the operator's own networks stay out of reach
		{"[fe80::1]:6881", false},
		{"224.0.0.1:6881", false},
		{"203.0.113.7:0", false},
	}
	for _, tt := range tests {
		if err := g.Check(netip.MustParseAddrPort(tt.addr)); (err == nil) != tt.ok {
			t.Errorf("Check(%s) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	good := &Deployment{LegalAuthority: "test authority", Operator: "test operator", Retention: 90 * 24 * time.Hour}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default-lab", DefaultConfig(), true},
		{"empty-mode-is-lab", Config{}, true},
		{"internet-with-deployment", Config{Mode: ModeInternet, Deployment: good}, true},
		{"internet-requires-deployment", Config{Mode: ModeInternet}, false},
		{"internet-requires-authority", Config{Mode: ModeInternet, Deployment: &Deployment{Operator: "o", Retention: time.Hour}}, false},
		{"internet-requires-operator", Config{Mode: ModeInternet, Deployment: &Deployment{LegalAuthority: "a", Retention: time.Hour}}, false},
		{"internet-requires-retention", Config{Mode: ModeInternet, Deployment: &Deployment{LegalAuthority: "a", Operator: "o"}}, false},
		{"lab-with-deployment", Config{Mode: ModeLab, Deployment: good}, false},
		{"unknown-mode", Config{Mode: "everywhere"}, false},
		{"allow-everything-v4", Config{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, false},
		{"allow-invalid", Config{Allow: []netip.Prefix{{}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, nil)
			if tt.ok && err != nil {
				t.Fatalf("New = %v, want ok", err)
			}
			if !tt.ok && !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
		})
	}
}

func TestPacketConnRefusesBeforeWriting(t *testing.T) {
	g := labGuard(t, "10.250.0.0/24")
	fake := &fakePacketConn{}
	pc := g.PacketConn(fake)
	tests := []struct {
		name   string
		addr   net.Addr
		ok     bool
		reason Reason
	}{
		{"loopback-udp-addr", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}, true, 0},
		{"loopback-v6", &net.UDPAddr{IP: net.IPv6loopback, Port: 6881}, true, 0},
		{"namespace", &net.UDPAddr{IP: net.IPv4(10, 250, 0, 2), Port: 6881}, true, 0},
		{"literal-string-addr", stringAddr("127.0.0.1:6881"), true, 0},
		{"public-v4", &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 6881}, false, ReasonPublic},
		{"public-v6", &net.UDPAddr{IP: net.ParseIP("2001:db8::5"), Port: 6881}, false, ReasonPublic},
		{"private", &net.UDPAddr{IP: net.IPv4(192, 168, 0, 1), Port: 6881}, false, ReasonPrivate},
		{"hostname", stringAddr("router.example.invalid:6881"), false, ReasonNotIP},
		{"localhost-name", stringAddr("localhost:6881"), false, ReasonNotIP},
		{"nil-udp-addr", (*net.UDPAddr)(nil), false, ReasonNotIP},
		{"nil", nil, false, ReasonNotIP},
		{"ip-addr-without-port", &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}, false, ReasonNotIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fake.writes)
			n, err := pc.WriteTo([]byte("d1:t2:aae"), tt.addr)
			if tt.ok {
				if err != nil || n != 9 {
					t.Fatalf("WriteTo = %d, %v; want 9, nil", n, err)
				}
				if got, want := len(fake.writes), before+1; got != want {
					t.Fatalf("inner writes = %d, want %d", got, want)
				}
				return
			}
			var re *RefusedError
			if !errors.Is(err, ErrOutOfScope) || !errors.As(err, &re) || re.Reason != tt.reason {
				t.Fatalf("WriteTo = %v, want refusal for %v", err, tt.reason)
			}
			if got := len(fake.writes); got != before {
				t.Fatalf("refused write reached the inner conn (%v)", fake.writes[before:])
			}
		})
	}
	// The AddrPort path is guarded too.
	if _, err := pc.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("198.51.100.1:6881")); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("WriteToUDPAddrPort(public) = %v", err)
	}
	if _, err := pc.WriteToUDPAddrPort([]byte("x"), netip.MustParseAddrPort("127.0.0.9:6881")); err != nil {
		t.Fatalf("WriteToUDPAddrPort(loopback) = %v", err)
	}
	if got, want := fake.writes[len(fake.writes)-1], "127.0.0.9:6881"; got != want {
		t.Fatalf("last inner write to %s, want %s", got, want)
	}
}

func TestDialRefusesBeforeDialing(t *testing.T) {
	g := labGuard(t)
	var dialed []string
	fake := func(ctx context.Context, network, address string) (net.Conn, error) {
		dialed = append(dialed, address)
		return nil, errors.New("fake dial: not connected")
	}
	dial := g.Dial(fake)
	tests := []struct {
		network, address string
		reason           Reason // -1: reaches the fake dialer
	}{
		{"tcp", "127.0.0.1:51413", -1},
		{"tcp6", "[::1]:51413", -1},
		{"tcp", "203.0.113.9:51413", ReasonPublic},
		{"tcp", "[2001:db8::9]:51413", ReasonPublic},
		{"tcp", "172.16.0.9:51413", ReasonPrivate},
		{"tcp", "tracker.example.invalid:80", ReasonNotIP},
		{"tcp", "localhost:80", ReasonNotIP},
		{"unix", "/tmp/socket", ReasonNotIP},
	}
	for _, tt := range tests {
		before := len(dialed)
		_, err := dial(context.Background(), tt.network, tt.address)
		if tt.reason < 0 {
			if len(dialed) != before+1 {
				t.Errorf("Dial(%s %s) did not reach the dialer: %v", tt.network, tt.address, err)
			}
			continue
		}
		var re *RefusedError
		if !errors.As(err, &re) || re.Reason != tt.reason || !errors.Is(err, ErrOutOfScope) {
			t.Errorf("Dial(%s %s) = %v, want refusal %v", tt.network, tt.address, err, tt.reason)
		}
		if len(dialed) != before {
			t.Errorf("Dial(%s %s) reached the dialer", tt.network, tt.address)
		}
	}
}

func TestDialerConnectsToLoopbackAndKeepsBaseControl(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	var controlled string
	base := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, c syscall.RawConn) error {
		controlled = address
		return nil
	}}
	g := labGuard(t)
	conn, err := g.Dialer(base).DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("DialContext(loopback) = %v", err)
	}
	conn.Close()
	if got, want := controlled, ln.Addr().String(); got != want {
		t.Fatalf("base Control saw %q, want %q", got, want)
	}
	if _, err := g.Dialer(base).DialContext(context.Background(), "tcp", "192.0.2.1:80"); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("DialContext(public) = %v", err)
	}
}

func TestCheckListen(t *testing.T) {
	lab := labGuard(t, "10.250.0.0/24")
	internet, err := New(Config{Mode: ModeInternet, Deployment: &Deployment{LegalAuthority: "a", Operator: "o", Retention: time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		address       string
		lab, internet bool
	}{
		{"127.0.0.1:6881", true, true},
		{"[::1]:0", true, true},
		{"10.250.0.1:6881", true, true},
		{"10.251.0.1:6881", false, true},
		{"0.0.0.0:6881", false, true},
		{"[::]:6881", false, true},
		{":6881", false, true},
		{"192.0.2.10:6881", false, true},
		{"localhost:6881", false, false},
	}
	for _, tt := range tests {
		if _, err := lab.CheckListenString(tt.address); (err == nil) != tt.lab {
			t.Errorf("lab CheckListenString(%s) = %v, want ok=%v", tt.address, err, tt.lab)
		}
		if _, err := internet.CheckListenString(tt.address); (err == nil) != tt.internet {
			t.Errorf("internet CheckListenString(%s) = %v, want ok=%v", tt.address, err, tt.internet)
		}
	}
	if got := lab.Refused(ReasonListen); got != 5 {
		t.Errorf("lab listen refusals = %d, want 5", got)
	}
}

func TestListenPacketWrapsAndGuards(t *testing.T) {
	g := labGuard(t)
	if _, err := g.ListenPacket(context.Background(), nil, "udp", "0.0.0.0:0"); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("ListenPacket(0.0.0.0) = %v, want refusal", err)
	}
	pc, err := g.ListenPacket(context.Background(), nil, "udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 6881}); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("WriteTo(public) through a listened conn = %v", err)
	}
}

func TestRefusalsAreCountedByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	g, err := New(DefaultConfig(), reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second guard on the same registry shares the counter.
	g2, err := New(DefaultConfig(), reg)
	if err != nil {
		t.Fatalf("second guard on one registry: %v", err)
	}
	_ = g.Check(netip.MustParseAddrPort("203.0.113.1:1"))
	_ = g.Check(netip.MustParseAddrPort("[2001:db8::1]:1"))
	_ = g2.Check(netip.MustParseAddrPort("203.0.113.2:1"))
	_ = g.Check(netip.MustParseAddrPort("10.0.0.1:1"))
	_, _ = g.CheckString("example.invalid:1")
	_ = g.Check(netip.MustParseAddrPort("127.0.0.1:1"))

	if got, want := g.Refused(ReasonPublic), uint64(2); got != want {
		t.Errorf("Refused(public) = %d, want %d", got, want)
	}
	if got, want := g.RefusedCounts(), map[string]uint64{"public": 2, "private": 1, "not_ip": 1, "special": 0, "listen": 0}; !mapsEqual(got, want) {
		t.Errorf("RefusedCounts = %v, want %v", got, want)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "vigil_scope_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					got[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{"public": 3, "private": 1, "not_ip": 1, "special": 0, "listen": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("vigil_scope_refused_total{reason=%q} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// IPv6 in lab mode: ::1 is in scope to send to and listen on; a unique
// local prefix named with --scope-allow (a namespace the run created) is
// in scope, and nothing else of fc00::/7, fe80::/10 or the public IPv6
// space is.
func TestIPv6InLabMode(t *testing.T) {
	bare := labGuard(t)
	ns := labGuard(t, "fd00:0:0:1::/64")
	for _, tt := range []struct {
		addr       string
		bare, ns   Reason // -1: allowed
		listenBare bool
		listenNS   bool
	}{
		{"[::1]:6881", -1, -1, true, true},
		{"[fd00:0:0:1::2]:6881", ReasonPrivate, -1, false, true},
		{"[fd00:0:0:2::2]:6881", ReasonPrivate, ReasonPrivate, false, false},
		{"[fc00::1]:6881", ReasonPrivate, ReasonPrivate, false, false},
		{"[fe80::1]:6881", ReasonPrivate, ReasonPrivate, false, false},
		{"[2a01:e0a::1]:6881", ReasonPublic, ReasonPublic, false, false},
		{"[::ffff:127.0.0.1]:6881", -1, -1, true, true},
		{"[64:ff9b::7f00:1]:6881", ReasonPublic, ReasonPublic, false, false},
		{"[ff02::1]:6881", ReasonSpecial, ReasonSpecial, false, false},
	} {
		ap := netip.MustParseAddrPort(tt.addr)
		for _, c := range []struct {
			g      *Guard
			want   Reason
			listen bool
			name   string
		}{{bare, tt.bare, tt.listenBare, "no allow list"}, {ns, tt.ns, tt.listenNS, "fd00:0:0:1::/64 allowed"}} {
			err := c.g.Check(ap)
			var re *RefusedError
			switch {
			case c.want < 0 && err != nil:
				t.Errorf("%s: Check(%s) = %v, want allowed", c.name, tt.addr, err)
			case c.want >= 0 && (!errors.As(err, &re) || re.Reason != c.want):
				t.Errorf("%s: Check(%s) = %v, want reason %v", c.name, tt.addr, err, c.want)
			}
			if err := c.g.CheckListen(netip.AddrPortFrom(ap.Addr(), 0)); (err == nil) != c.listen {
				t.Errorf("%s: CheckListen(%s) = %v, want ok=%v", c.name, ap.Addr(), err, c.listen)
			}
		}
	}
}

// In internet mode an IPv6 address that carries an IPv4 one (NAT64
// 64:ff9b::/96, 6to4 2002::/16) is judged by the address inside, so that
// a peer list cannot steer the sensor through a translator into the
// operator's own networks; deprecated site-local (fec0::/10), local-use
// NAT64 (64:ff9b:1::/48) and IPv4-compatible (::/96) addresses are
// refused.
func TestIPv6EmbeddingIPv4InInternetMode(t *testing.T) {
	g, err := New(Config{Mode: ModeInternet, Deployment: &Deployment{LegalAuthority: "test authority", Operator: "test operator", Retention: 24 * time.Hour}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"[64:ff9b::cb00:7107]:6881", true}, // 203.0.113.7
		{"[2002:cb00:7107::1]:6881", true},  // 203.0.113.7
		{"[2a01:e0a::1]:6881", true},        // public IPv6
		{"[64:ff9b::c0a8:101]:6881", false}, // 192.168.1.1
		{"[64:ff9b::a00:1]:6881", false},    // 10.0.0.1
		{"[64:ff9b::6440:1]:6881", false},   // 100.64.0.1 (CGNAT)
		{"[64:ff9b::7f00:1]:6881", false},   // 127.0.0.1 through a translator
		{"[2002:c0a8:101::1]:6881", false},  // 192.168.1.1
		{"[2002:a9fe:101::1]:6881", false},  // 169.254.1.1
		{"[64:ff9b:1::a00:1]:6881", false},  // local-use NAT64
		{"[fec0::1]:6881", false},           // site-local
		{"[::c0a8:101]:6881", false},        // IPv4-compatible
		{"[fd00::1]:6881", false},           // ULA
	} {
		if err := g.Check(netip.MustParseAddrPort(tt.addr)); (err == nil) != tt.ok {
			t.Errorf("Check(%s) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

// NonPublicClass judges an address by what it names: an IPv4-mapped
// address as its IPv4 address, a NAT64 or 6to4 one by the IPv4 address
// inside (the sensors' own tests cover every class).
func TestNonPublicClassSeesThroughIPv6Forms(t *testing.T) {
	for addr, want := range map[string]string{
		"::ffff:10.0.0.1": "private", "64:ff9b::7f00:1": "loopback", "2002:c000:0207::1": "documentation",
		"::ffff:0.1.2.3": "reserved", "::ffff:2.3.4.5": "", "64:ff9b::203:405": "",
	} {
		if got := NonPublicClass(netip.MustParseAddr(addr)); got != want {
			t.Errorf("NonPublicClass(%s) = %q, want %q", addr, got, want)
		}
	}
}
