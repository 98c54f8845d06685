package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Family is the address families a lab runs on.
type Family string

// The lab's address families.
const (
	// Family4 runs everything on 127.0.0.0/8 (the default; "" means it).
	Family4 Family = "4"
	// Family6 runs everything on IPv6 (see IPv6Net for where).
	Family6 Family = "6"
	// FamilyBoth runs every DHT node, the tracker and every peer on both
	// families at once: one DHT per family (BEP 32), peers reachable at
	// an IPv4 and an IPv6 address.
	FamilyBoth Family = "both"
)

// ParseFamily reads "4", "6" or "both".
func ParseFamily(s string) (Family, error) {
	switch f := Family(s); f {
	case Family4, Family6, FamilyBoth:
		return f, nil
	}
	return "", fmt.Errorf("%w: family %q: want 4, 6 or both", ErrConfig, s)
}

// Has4 and Has6 say whether the lab runs on each family.
func (f Family) Has4() bool { return f == "" || f == Family4 || f == FamilyBoth }
func (f Family) Has6() bool { return f == Family6 || f == FamilyBoth }

// IPv6Net is where the lab's IPv6 parts live.
type IPv6Net string

const (
	// IPv6Loopback puts every IPv6 part on ::1, told apart by port: it
	// runs anywhere, without root or a namespace, for in-process tests.
	// Every part shares one address, so per-address budgets (a sensor's)
	// apply to the lab as a whole, and places mean nothing.
	IPv6Loopback IPv6Net = "loopback"
	// IPv6ULA gives every part its own address in LabULA, as 127.0.0.0/8
	// does for IPv4 (IPv6Twin), in the IPv6 range of the same place. It
	// needs a network namespace with loopback interfaces only, in which
	// PrepareULA made LabULA local.
	IPv6ULA IPv6Net = "ula"
)

// ParseIPv6Net reads "loopback" or "ula".
func ParseIPv6Net(s string) (IPv6Net, error) {
	switch n := IPv6Net(s); n {
	case IPv6Loopback, IPv6ULA:
		return n, nil
	}
	return "", fmt.Errorf("%w: IPv6 network %q: want loopback or ula", ErrConfig, s)
}

// LabULA is the lab's unique local prefix (RFC 4193): Infra's IPv6 range,
// which holds every place's /48. Nothing outside a namespace the run
// created ever uses it: on a machine whose own network is in fd00::/64
// the lab still never takes an address there (IPv6Twin's fourth group is
// never 0).
var LabULA = Infra.Prefix6

// IPv6Twin returns the IPv6 address of the part planned at the lab IPv4
// address 127.B.C.D: in the /48 of 127.B.0.0/16 (fd00:0:B::/48, B's
// decimal digits read as hexadecimal, as the places' Prefix6 are; the
// infrastructure's is fd00:0:0::/48), the address ::1 of the subscriber
// /64 of host number C*254+D-1 (hostIn6, the inverse of hostIn). So
// 127.0.0.1 (a sensor) is fd00:0:0:1::1, 127.0.1.1 (the first DHT node)
// fd00:0:0:ff::1, 127.1.0.1 (the first peer in Paris) fd00:0:1:1::1, and
// the geo database places a twin where it places the IPv4 address. ok is
// false outside 127.0.0.0/8 and for C.D ending in 0 or 255, which the
// lab never uses.
func IPv6Twin(a netip.Addr) (_ netip.Addr, ok bool) {
	a = a.Unmap()
	if !a.Is4() || a.As4()[0] != 127 {
		return netip.Addr{}, false
	}
	b := a.As4()
	if b[3] == 0 || b[3] == 255 {
		return netip.Addr{}, false
	}
	p6, err := netip.ParsePrefix(fmt.Sprintf("fd00:0:%d::/48", b[1]))
	if err != nil {
		return netip.Addr{}, false
	}
	t, err := hostIn6(p6, int(b[2])*254+int(b[3])-1, 1)
	if err != nil {
		return netip.Addr{}, false
	}
	return t, true
}

// ipv6Of returns where the part planned at the IPv4 address a listens on
// IPv6: its twin in LabULA, or ::1.
func ipv6Of(a netip.Addr, n IPv6Net) netip.Addr {
	if n == IPv6ULA {
		if t, ok := IPv6Twin(a); ok {
			return t
		}
	}
	return netip.IPv6Loopback()
}

// ErrNoULA: LabULA is not usable in this network namespace.
var ErrNoULA = errors.New("the lab's IPv6 prefix " + LabULA.String() + " is not usable here")

// ULAHelp says how to run an IPv6 lab on LabULA.
const ULAHelp = "run it in a network namespace of its own with loopback only, as root: unshare -n (the lab then makes the prefix local itself)"

// loopbackOnly reports an error unless every interface of this network
// namespace is a loopback one: then nothing the lab sends can leave it.
func loopbackOnly() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("%w: listing interfaces: %v", ErrNoULA, err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("%w: interface %s is not loopback; %s", ErrNoULA, i.Name, ULAHelp)
		}
	}
	return nil
}

// PrepareULA makes every address of LabULA local in this network
// namespace, so that each lab part can listen on its own: it brings lo up,
// routes LabULA to it as local ("AnyIP"), and lets sockets bind to those
// addresses (net.ipv6.ip_nonlocal_bind, a sysctl of the namespace). It
// refuses unless every interface of the namespace is a loopback one: it
// never touches a namespace with a way out (the host's). It needs root
// and ip(8). Doing it twice is harmless.
func PrepareULA() error {
	if err := loopbackOnly(); err != nil {
		return err
	}
	run := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: ip %s: %v: %s", ErrNoULA, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := run("-6", "route", "replace", "local", LabULA.String(), "dev", "lo"); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/ip_nonlocal_bind", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("%w: net.ipv6.ip_nonlocal_bind: %v", ErrNoULA, err)
	}
	return ULAReady()
}

// ULAReady reports an error unless the lab can run on LabULA here: every
// interface is a loopback one, and a socket binds to a LabULA address and
// receives what another LabULA address sends it.
func ULAReady() error {
	if err := loopbackOnly(); err != nil {
		return err
	}
	a, _ := IPv6Twin(netip.AddrFrom4([4]byte{127, 0, 0, 9}))
	b, _ := IPv6Twin(netip.AddrFrom4([4]byte{127, 1, 0, 9}))
	ca, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
	if err != nil {
		return fmt.Errorf("%w: binding %s: %v; %s", ErrNoULA, a, err, ULAHelp)
	}
	defer ca.Close()
	cb, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b, 0)))
	if err != nil {
		return fmt.Errorf("%w: binding %s: %v; %s", ErrNoULA, b, err, ULAHelp)
	}
	defer cb.Close()
	if _, err := cb.WriteToUDPAddrPort([]byte("vigil"), ca.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
		return fmt.Errorf("%w: sending from %s to %s: %v", ErrNoULA, b, a, err)
	}
	_ = ca.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	if n, _, err := ca.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "vigil" {
		return fmt.Errorf("%w: %s received nothing from %s (%v)", ErrNoULA, a, b, err)
	}
	return nil
}
