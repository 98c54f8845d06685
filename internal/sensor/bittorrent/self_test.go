package bittorrent

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

// The registry remembers a connection's source port for selfTTL, at most
// selfMax of them, and in internet scope the whole address.
func TestSelfSetRemembersBoundedAndForgets(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var m selfSet
	a := netip.MustParseAddrPort("127.0.0.1:40001")
	m.add(a, t0, false)
	if port, _ := m.has(a, t0.Add(time.Minute)); !port {
		t.Fatal("a fresh source port is not the sensor's")
	}
	if port, ip := m.has(netip.MustParseAddrPort("127.0.0.1:40002"), t0); port || ip {
		t.Fatal("another port of a lab address counts as the sensor's")
	}
	if port, _ := m.has(a, t0.Add(selfTTL+time.Second)); port {
		t.Fatal("a source port is remembered past selfTTL")
	}
	for i := range selfMax + 10 {
		ip := netip.AddrFrom4([4]byte{127, 0, 1, byte(i >> 16)})
		m.add(netip.AddrPortFrom(ip, uint16(i)), t0.Add(2*selfTTL), false)
	}
	if n := m.ports.Len(); n > selfMax {
		t.Fatalf("%d ports held; bound %d", n, selfMax)
	}
	if port, _ := m.has(netip.AddrPortFrom(netip.MustParseAddr("127.0.1.0"), 0), t0.Add(2*selfTTL)); port {
		t.Fatal("the oldest port was kept past the bound")
	}
	var w selfSet
	w.add(netip.MustParseAddrPort("198.51.100.7:51000"), t0, true)
	if _, ip := w.has(netip.MustParseAddrPort("[::ffff:198.51.100.7]:6881"), t0); !ip {
		t.Fatal("internet scope: another port of the sensor's address is not the sensor's")
	}
}

func TestNonPublicClass(t *testing.T) {
	for addr, want := range map[string]string{
		"192.168.1.20": "private", "10.1.2.3": "private", "172.16.0.1": "private",
		"127.0.0.1": "loopback", "::1": "loopback", "169.254.1.1": "link_local", "fe80::1": "link_local",
		"100.64.0.1": "cgnat", "100.127.255.254": "cgnat", "fd00::1": "ula", "0.0.0.0": "unspecified",
		"224.0.0.1": "multicast", "255.255.255.255": "reserved", "240.0.0.1": "reserved", "0.1.2.3": "reserved",
		"192.0.2.1": "documentation", "2001:db8::1": "documentation", "198.18.0.1": "benchmark",
		"::ffff:192.168.1.1": "private",
		// IPv6 forms that embed or stand for no subscriber's address.
		"64:ff9b::c0a8:114": "private", "64:ff9b::a01:203": "private", "64:ff9b::7f00:1": "loopback",
		"64:ff9b:1::1": "nat64_local", "2002:c0a8:114::1": "private", "2002:6440:1::1": "cgnat",
		"2001:2::1": "benchmark", "100::1": "discard", "2001:20::1": "orchid", "3fff::1": "documentation",
		"64:ff9b::808:808": "", "2002:808:808::1": "",
		"fc00::1": "ula", "fdff:ffff::1": "ula", "febf::1": "link_local", "fec0::1": "site_local",
		"ff02::1": "multicast", "::": "unspecified", "::c0a8:101": "reserved", "::7f00:1": "reserved",
		"fe80::1%eth0": "link_local", "::ffff:10.0.0.1": "private", "::ffff:127.0.0.1": "loopback",
		"8.8.8.8": "", "2a01:e0a::1": "", "100.128.0.1": "", "::ffff:81.2.69.160": "",
	} {
		if got := nonPublicClass(netip.MustParseAddr(addr)); got != want {
			t.Errorf("nonPublicClass(%s) = %q, want %q", addr, got, want)
		}
	}
}

// Outside lab scope, a third party's word about a non-public address is
// not recorded (two homes' 192.168.1.20:51413 are not one endpoint); in
// lab scope it is kept and marked. First-hand observations are never
// dropped for their address.
func TestAdmitNonPublicThirdParty(t *testing.T) {
	home := netip.MustParseAddr("192.168.1.20")
	for _, tc := range []struct {
		name   string
		o      observe.Observation
		lab    bool
		reason string
		mark   bool
	}{
		{"pex-internet", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: home, Port: 51413}}, false, "non_public_private", false},
		{"tracker-internet", observe.Observation{Method: observe.MethodTracker, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("100.64.3.4"), Port: 1}}, false, "non_public_cgnat", false},
		{"lookup-internet", observe.Observation{Method: observe.MethodDHTGetPeers, Endpoint: observe.Endpoint{IP: home, Port: 1, Transport: "tcp"}}, false, "non_public_private", false},
		{"marked-internet", observe.Observation{Method: observe.MethodDHTGetPeers, Marks: []string{observe.MarkThirdParty}, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("fd00::5"), Port: 1, Transport: "udp"}}, false, "non_public_ula", false},
		{"get-peers-query-internet", observe.Observation{Method: observe.MethodDHTGetPeers, Endpoint: observe.Endpoint{IP: home, Port: 1, Transport: "udp"}}, false, "", false},
		{"probe-internet", observe.Observation{Method: observe.MethodPeerProbe, Endpoint: observe.Endpoint{IP: home, Port: 1, Transport: "tcp"}}, false, "", false},
		{"pex-public-internet", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("81.2.69.160"), Port: 1}}, false, "", false},
		{"pex-lab", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: home, Port: 51413}}, true, "", true},
		// IPv6: unique local, link-local, loopback, documentation, a mapped
		// private IPv4, on a third party's word, outside lab scope.
		{"pex-ula-internet", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("fc00::7"), Port: 1}}, false, "non_public_ula", false},
		{"pex-link-local-internet", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("fe80::7"), Port: 1}}, false, "non_public_link_local", false},
		{"tracker-loopback6-internet", observe.Observation{Method: observe.MethodTracker, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("::1"), Port: 1}}, false, "non_public_loopback", false},
		{"tracker-doc6-internet", observe.Observation{Method: observe.MethodTracker, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("2001:db8::7"), Port: 1}}, false, "non_public_documentation", false},
		{"lookup-mapped-private-internet", observe.Observation{Method: observe.MethodDHTGetPeers, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("::ffff:10.0.0.7"), Port: 1, Transport: "tcp"}}, false, "non_public_private", false},
		{"lookup-v4-compatible-internet", observe.Observation{Method: observe.MethodDHTGetPeers, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("::a00:7"), Port: 1, Transport: "tcp"}}, false, "non_public_reserved", false},
		{"pex-public6-internet", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("2a01:e0a::7"), Port: 1}}, false, "", false},
		{"pex-loopback6-lab", observe.Observation{Method: observe.MethodPEX, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("::1"), Port: 1}}, true, "", true},
		{"probe-ula-internet", observe.Observation{Method: observe.MethodPeerProbe, Endpoint: observe.Endpoint{IP: netip.MustParseAddr("fd00::7"), Port: 1, Transport: "tcp"}}, false, "", false},
		{"probe-lab", observe.Observation{Method: observe.MethodPeerProbe, Endpoint: observe.Endpoint{IP: home, Port: 1}}, true, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			if got := admitIn(&o, tc.lab, ""); got != tc.reason {
				t.Fatalf("admit = %q, want %q", got, tc.reason)
			}
			if o.HasMark(observe.MarkNonPublicAddress) != tc.mark {
				t.Fatalf("marks %v, want non_public_address %v", o.Marks, tc.mark)
			}
		})
	}
}

// emit drops what the sensor itself is, whatever the method, and counts
// it; in internet scope its listen address is its own on every port.
func TestEmitDropsTheSensorItself(t *testing.T) {
	s, pub := hostileSensor(t)
	now := s.cfg.Clock()
	own := netip.MustParseAddrPort("127.0.0.1:45678")
	s.self.add(own, now, false)
	w := watchedTorrent(t, nil, 1)
	for _, m := range []string{observe.MethodPEX, observe.MethodTracker, observe.MethodDHTGetPeers, observe.MethodPeerProbe} {
		s.emit(t.Context(), observe.Observation{Method: m, Item: observe.Item{Hash: w.Hash},
			Endpoint: observe.Endpoint{IP: own.Addr(), Port: own.Port(), Transport: "tcp"}})
	}
	if len(pub.obs) != 0 {
		t.Fatalf("%d observations of the sensor itself", len(pub.obs))
	}
	if got := s.Dropped()[dropSelfConnection]; got != 4 {
		t.Fatalf("%d self drops counted, want 4", got)
	}
	s.emit(t.Context(), observe.Observation{Method: observe.MethodPEX, Item: observe.Item{Hash: w.Hash},
		Endpoint: observe.Endpoint{IP: own.Addr(), Port: own.Port() + 1, Transport: "tcp"}})
	if len(pub.obs) != 1 {
		t.Fatal("lab scope: another port of 127.0.0.1 (a lab peer) was dropped")
	}
	s.cfg.Listen = netip.MustParseAddr("198.51.100.7")
	s.cfg.ListenAddrs = []netip.Addr{s.cfg.Listen, netip.MustParseAddr("2001:db8::7")}
	if r := s.selfReasonIn(netip.MustParseAddrPort("198.51.100.7:6881"), now, false); r != dropSelfAddress {
		t.Fatalf("internet scope, the listen address on another port: %q, want %q", r, dropSelfAddress)
	}
	if r := s.selfReasonIn(netip.MustParseAddrPort("[2001:db8::7]:6881"), now, false); r != dropSelfAddress {
		t.Fatalf("internet scope, the IPv6 listen address on another port: %q, want %q", r, dropSelfAddress)
	}
	if r := s.selfReasonIn(netip.MustParseAddrPort("198.51.100.8:6881"), now, false); r != "" {
		t.Fatalf("internet scope, another address: %q", r)
	}
	// Its IPv4 address as a NAT64 or 6to4 peer names it (found in review).
	for _, ap := range []string{"[64:ff9b::c633:6407]:6881", "[2002:c633:6407::1]:6881"} {
		if r := s.selfReasonIn(netip.MustParseAddrPort(ap), now, false); r != dropSelfAddress {
			t.Errorf("internet scope, %s (198.51.100.7 embedded): %q, want %q", ap, r, dropSelfAddress)
		}
	}
}

// nodeIDChecked on BEP 42's published examples: each id passes for its
// address and fails for another; an exempt (loopback) address never
// passes.
func TestNodeIDCheckedOnBEP42Vectors(t *testing.T) {
	for _, v := range []struct{ ip, id string }{
		{"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
		{"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
		{"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
		{"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
		{"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
	} {
		b, err := hex.DecodeString(v.id)
		if err != nil {
			t.Fatal(err)
		}
		id := krpc.ID(b)
		if !nodeIDChecked(id, netip.MustParseAddr(v.ip)) {
			t.Errorf("BEP 42 example %s %s does not pass", v.ip, v.id)
		}
		if nodeIDChecked(id, netip.MustParseAddr("::ffff:"+v.ip)) != true {
			t.Errorf("%s as an IPv4-mapped address does not pass", v.ip)
		}
		if nodeIDChecked(id, netip.MustParseAddr("81.2.69.160")) {
			t.Errorf("%s passes for another address", v.id)
		}
		if nodeIDChecked(id, netip.MustParseAddr("127.0.0.1")) {
			t.Errorf("%s passes for loopback, which BEP 42 cannot check", v.id)
		}
	}
}

// Bound to 0.0.0.0 the sensor's identities have no address it could
// recognise as its own in a peer list: such a configuration is refused.
func TestListenOnEveryAddressIsRefused(t *testing.T) {
	for _, a := range []string{"0.0.0.0", "::"} {
		cfg := LabConfig()
		cfg.Listen = netip.MustParseAddr(a)
		cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "name the one address") {
			t.Errorf("--listen %s: Validate() = %v, want a refusal", a, err)
		}
	}
}

// Config.ListenAddrs: one address of each family at most, none
// unspecified, no duplicate (an IPv4-mapped address is its IPv4 one),
// and the error names the address at fault. Listen is the compatible path
// for one address, and Validate sets it to the first of ListenAddrs.
func TestListenAddrsValidation(t *testing.T) {
	boot := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	for _, c := range []struct {
		addrs []string
		want  string // part of the error, "" for none
	}{
		{[]string{"127.0.0.1", "::1"}, ""},
		{[]string{"::1", "127.0.0.1"}, ""},
		{[]string{"::1"}, ""},
		{[]string{"fd00:0:0:1::1", "10.250.0.1"}, ""},
		{[]string{"127.0.0.1", "::"}, "listen address :: is unspecified"},
		{[]string{"0.0.0.0", "::1"}, "listen address 0.0.0.0"},
		{[]string{"127.0.0.1", "127.0.0.1"}, "127.0.0.1 is given twice"},
		{[]string{"127.0.0.1", "::ffff:127.0.0.1"}, "127.0.0.1 is given twice"},
		{[]string{"::1", "::1"}, "::1 is given twice"},
		{[]string{"127.0.0.1", "127.0.0.2"}, "listen address 127.0.0.2: 127.0.0.1 is already"},
		{[]string{"::1", "127.0.0.1", "fd00::1"}, "listen address fd00::1: ::1 is already"},
		{[]string{"fe80::1%lo"}, "fe80::1%lo: an address with a zone"},
	} {
		cfg := LabConfig()
		cfg.Bootstrap = boot
		for _, a := range c.addrs {
			cfg.ListenAddrs = append(cfg.ListenAddrs, netip.MustParseAddr(a))
		}
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.addrs, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: Validate() = %v, want an error with %q", c.addrs, err, c.want)
		case c.want == "" && cfg.Listen != cfg.ListenAddrs[0]:
			t.Errorf("%v: Listen %v, want the first address %v", c.addrs, cfg.Listen, cfg.ListenAddrs[0])
		}
	}
	cfg := LabConfig()
	cfg.Bootstrap = boot
	cfg.Listen = netip.MustParseAddr("::1")
	if err := cfg.Validate(); err != nil || len(cfg.ListenAddrs) != 1 || cfg.ListenAddrs[0] != cfg.Listen {
		t.Fatalf("one Listen address: %v, ListenAddrs %v", err, cfg.ListenAddrs)
	}
}

// A socket bound to a loopback address cannot send off the host (Linux
// refuses it: EINVAL), so a sensor on the default --listen 127.0.0.1
// given a bootstrap node elsewhere (README's `--bootstrap 10.250.0.2:6881
// --scope-allow 10.250.0.0/24` without --listen) sent nothing at all and
// said only that "the bootstrap nodes did not answer". Validate names
// the listen address and the node it cannot reach. A node on one of the
// host's own addresses (here 10.250.0.1 and fd00:0:0:1::1, as a lab in
// the sensor's namespace) is reachable from loopback.
func TestLoopbackListenCannotReachABootstrapElsewhere(t *testing.T) {
	was := hostAddrs
	defer func() { hostAddrs = was }()
	hostAddrs = func() map[netip.Addr]bool {
		return map[netip.Addr]bool{netip.MustParseAddr("10.250.0.1"): true, netip.MustParseAddr("fd00:0:0:1::1"): true}
	}
	for _, c := range []struct {
		listen []string
		boot   []string
		want   string // part of the error, "" for none
	}{
		{[]string{"127.0.0.1"}, []string{"10.250.0.2:6881"}, "listen address 127.0.0.1 is loopback: it cannot reach bootstrap node 10.250.0.2:6881"},
		{[]string{"127.0.0.1"}, []string{"127.0.0.1:40001", "10.250.0.2:6881"}, "cannot reach bootstrap node 10.250.0.2:6881"},
		{[]string{"127.0.0.1", "::1"}, []string{"[fd00:0:0:1::2]:6881"}, "listen address ::1 is loopback: it cannot reach bootstrap node [fd00:0:0:1::2]:6881"},
		{[]string{"127.0.0.1", "fd00:0:0:1::1"}, []string{"127.0.0.2:1", "[fd00:0:0:1::2]:6881"}, ""},
		{[]string{"10.250.0.1"}, []string{"10.250.0.2:6881", "127.0.0.1:40001"}, ""}, // from a namespace's address to loopback works
		{[]string{"127.0.0.1"}, []string{"127.0.0.1:40001"}, ""},
		{[]string{"127.0.0.1"}, []string{"[::ffff:127.0.0.1]:40001"}, ""},
		{[]string{"127.0.0.1"}, []string{"[::1]:40001"}, ""}, // no IPv6 listen address: that family is not run
		{[]string{"127.0.0.1", "::1"}, []string{"10.250.0.1:6881", "[fd00:0:0:1::1]:6881"}, ""},
		{[]string{"::1"}, []string{"[fd00:0:0:1::2]:6881"}, "listen address ::1 is loopback: it cannot reach bootstrap node [fd00:0:0:1::2]:6881"},
	} {
		cfg := LabConfig()
		for _, a := range c.listen {
			cfg.ListenAddrs = append(cfg.ListenAddrs, netip.MustParseAddr(a))
		}
		for _, b := range c.boot {
			cfg.Bootstrap = append(cfg.Bootstrap, netip.MustParseAddrPort(b))
		}
		err := cfg.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("listen %v, bootstrap %v: %v", c.listen, c.boot, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("listen %v, bootstrap %v: Validate() = %v, want an error with %q", c.listen, c.boot, err, c.want)
		}
	}
}
