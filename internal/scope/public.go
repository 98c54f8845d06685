package scope

import "net/netip"

// Ranges that name no subscriber beyond those the guard refuses
// (scope.go): what a sensor must not record on a third party's word
// outside the lab (NonPublicClass).
var (
	ietf4 = netip.MustParsePrefix("192.0.0.0/24")
	doc   = []netip.Prefix{
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32"),
	}
	// IPv6 ranges: benchmarking (RFC 5180), discard-only (RFC 6666),
	// ORCHIDv2 (RFC 7343), documentation (RFC 9637).
	bench6   = netip.MustParsePrefix("2001:2::/48")
	discard6 = netip.MustParsePrefix("100::/64")
	orchid6  = netip.MustParsePrefix("2001:20::/28")
	doc6b    = netip.MustParsePrefix("3fff::/20")
)

// EmbeddedIPv4 returns the IPv4 address a NAT64 (64:ff9b::/96, RFC 6052)
// or 6to4 (2002::/16, RFC 3056) address carries: what it names.
func EmbeddedIPv4(a netip.Addr) (netip.Addr, bool) { return embeddedIPv4(a) }

// NonPublicClass says what kind of non-public address a is ("private",
// "loopback", "link_local", "cgnat", "ula", "documentation", "reserved",
// ...), or "" if a is a public unicast address that can name a
// subscriber. An IPv4-mapped address is judged as its IPv4 address, and a
// NAT64 or 6to4 address by the IPv4 address inside. The sensors drop a
// third party's claim of such an address outside the lab: two homes
// behind different routers both have 192.168.1.20.
func NonPublicClass(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.Unmap().WithZone("")
	if v4, ok := embeddedIPv4(a); ok {
		return NonPublicClass(v4)
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link_local"
	case a.Is4() && a.IsPrivate():
		return "private"
	case a.Is6() && a.IsPrivate():
		return "ula"
	case sharedCGNAT.Contains(a):
		return "cgnat"
	case benchmark4.Contains(a), bench6.Contains(a):
		return "benchmark"
	case discard6.Contains(a):
		return "discard"
	case orchid6.Contains(a):
		return "orchid"
	case nat64Local.Contains(a):
		return "nat64_local"
	case doc6b.Contains(a):
		return "documentation"
	case siteLocal6.Contains(a):
		return "site_local"
	case thisNet4.Contains(a), ietf4.Contains(a), reserved4.Contains(a), v4Compat6.Contains(a):
		return "reserved"
	}
	for _, p := range doc {
		if p.Contains(a) {
			return "documentation"
		}
	}
	if !a.IsGlobalUnicast() {
		return "reserved"
	}
	return ""
}
