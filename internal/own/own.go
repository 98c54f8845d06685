// Package own is a deployment's own addresses: the hosts (and, where
// hosts are shared, the ports) of its sensors and of anything else of the
// deployment that talks on the P2P networks, written once in a file that
// every sensor and every process that runs the analysis is given.
//
// A sensor never records itself (its own sockets, self.go of each
// sensor); its fellows it cannot know by itself: sensor A sees sensor B
// named in DHT replies, tracker listings and PEX (B's probes connect to
// peers, who pass B's address on), and hears B's DHT lookups land on its
// own DHT identities. The file says who they are. A sensor records no
// observation of an address in it and probes none (counted, by reason
// deployment_address), and the analysis makes no endpoint, target or
// ISP row of a stored observation of one (counted likewise).
//
// The package must never take an address from anything but the file: not
// from an observation (a sensor_address, a vantage, a peer id, all of which
// a hostile peer or a hostile hub can write), nor from the network. It
// parses bytes and does no I/O. A line matches exactly what it says: an
// address (every port), an address and port, or a prefix no wider than
// MinPrefixBits4 / MinPrefixBits6, so that a slip cannot hide a whole
// provider's subscribers.
package own

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Widest prefixes a file may name: a /8 of the deployment's would hide
// millions of subscribers, whoever mistyped it; in IPv6 a /32 is a whole
// provider's allocation, a /48 one site's.
const (
	MinPrefixBits4 = 16
	MinPrefixBits6 = 48
)

// MaxEntries bounds the lines of a file that name something.
const MaxEntries = 1 << 16

// Errors a line can have (each wrapped with the file name and line).
var (
	// ErrSyntax: the line is not an address, address:port or prefix.
	ErrSyntax = errors.New("not an IP address, IP:port ([IPv6]:port) or CIDR prefix")
	// ErrTooBroad: a prefix wider than MinPrefixBits4 / MinPrefixBits6.
	ErrTooBroad = errors.New("prefix too broad")
	// ErrNotAHost: an unspecified or multicast address, a zone, or port 0.
	ErrNotAHost = errors.New("names no host")
	// ErrTooMany: more than MaxEntries entries.
	ErrTooMany = fmt.Errorf("more than %d entries", MaxEntries)
)

// Set is a deployment's own addresses. The nil *Set holds none; a Set is
// read-only once parsed, and safe to share between goroutines.
type Set struct {
	hosts    map[netip.Addr]struct{}     // every port of each
	ports    map[netip.AddrPort]struct{} // one port each
	prefixes map[netip.Prefix]struct{}   // masked
	bits     []int                       // the prefix lengths present, for Contains
	n        int
}

// Parse reads a file of a deployment's own addresses: one entry a line,
// an IPv4 or IPv6 address (every port: a sensor's own host), an
// address and port (192.0.2.7:6881, [2001:db8::7]:6881: one socket, where
// a host is shared, as on a lab's loopback), or a CIDR prefix (a range
// the deployment holds); '#' starts a comment, blank lines are skipped. An
// IPv4-mapped IPv6 address is its IPv4 address. name is the file's name,
// for errors, which name it and the line.
func Parse(name string, data []byte) (*Set, error) {
	s := &Set{hosts: map[netip.Addr]struct{}{}, ports: map[netip.AddrPort]struct{}{}, prefixes: map[netip.Prefix]struct{}{}}
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		entry := strings.TrimSpace(string(line))
		if entry == "" {
			continue
		}
		if s.n >= MaxEntries {
			return nil, fmt.Errorf("own addresses %s line %d: %w", name, n, ErrTooMany)
		}
		if err := s.add(entry); err != nil {
			return nil, fmt.Errorf("own addresses %s line %d: %q: %w", name, n, clip(entry), err)
		}
		s.n++
	}
	for p := range s.prefixes {
		if !slices.Contains(s.bits, p.Bits()) {
			s.bits = append(s.bits, p.Bits())
		}
	}
	slices.Sort(s.bits)
	return s, nil
}

// clip shortens a bad entry quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func (s *Set) add(entry string) error {
	switch {
	case strings.Contains(entry, "/"):
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return ErrSyntax
		}
		a := p.Addr()
		if a.Is4In6() {
			if p.Bits() < 96 {
				return fmt.Errorf("%w: an IPv4-mapped prefix shorter than /96", ErrSyntax)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			a = p.Addr()
		}
		if err := host(a); err != nil {
			return err
		}
		if min := minBits(a); p.Bits() < min {
			return fmt.Errorf("%w: /%d (at most /%d for %s)", ErrTooBroad, p.Bits(), min, family(a))
		}
		s.prefixes[p.Masked()] = struct{}{}
	case strings.HasPrefix(entry, "[") || strings.Count(entry, ":") == 1:
		ap, err := netip.ParseAddrPort(entry)
		if err != nil {
			return ErrSyntax
		}
		a := ap.Addr().Unmap()
		if err := host(a); err != nil {
			return err
		}
		if ap.Port() == 0 {
			return fmt.Errorf("%w: port 0", ErrNotAHost)
		}
		s.ports[netip.AddrPortFrom(a, ap.Port())] = struct{}{}
	default:
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return ErrSyntax
		}
		a = a.Unmap()
		if err := host(a); err != nil {
			return err
		}
		s.hosts[a] = struct{}{}
	}
	return nil
}

// host refuses what names no host of a deployment's.
func host(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%w: an address with a zone", ErrNotAHost)
	case a.IsUnspecified():
		return fmt.Errorf("%w: the unspecified address (every address)", ErrNotAHost)
	case a.IsMulticast():
		return fmt.Errorf("%w: a multicast address", ErrNotAHost)
	}
	return nil
}

func minBits(a netip.Addr) int {
	if a.Is4() {
		return MinPrefixBits4
	}
	return MinPrefixBits6
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// Contains reports whether ap is one of the deployment's own: its
// address is a host or in a prefix the file names, or it is an address
// and port the file names. An IPv4-mapped address is its IPv4 address;
// a zone is ignored.
func (s *Set) Contains(ap netip.AddrPort) bool {
	if s == nil || s.n == 0 {
		return false
	}
	a := ap.Addr().Unmap().WithZone("")
	if !a.IsValid() {
		return false
	}
	if _, ok := s.hosts[a]; ok {
		return true
	}
	if _, ok := s.ports[netip.AddrPortFrom(a, ap.Port())]; ok {
		return true
	}
	for _, b := range s.bits {
		if b > a.BitLen() {
			break
		}
		if p, err := a.Prefix(b); err == nil {
			if _, ok := s.prefixes[p]; ok {
				return true
			}
		}
	}
	return false
}

// Len is how many entries the file named (a repeated one counts each
// time).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
