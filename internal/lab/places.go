package lab

import (
	"fmt"
	"net/netip"
)

// Place is one synthetic location of the lab's geo database: a /16 of
// 127.0.0.0/8 and a /48 of unique local IPv6 addresses (fd00::/32) placed
// in a French département or another country, served by a synthetic
// autonomous system.
type Place struct {
	// Prefix is the lab's IPv4 range, e.g. 127.1.0.0/16.
	Prefix netip.Prefix `json:"prefix"`
	// Prefix6 is the lab's IPv6 range, a /48 of fd00::/32 whose third
	// group repeats the second byte of Prefix (127.1.0.0/16: fd00:0:1::/48,
	// 127.20.0.0/16: fd00:0:20::/48), in which each subscriber gets a /64
	// (hostIn6). Unique local addresses (RFC 4193) route nowhere outside
	// the network namespace a run creates.
	Prefix6 netip.Prefix `json:"prefix6"`
	// Country is the ISO 3166-1 alpha-2 code.
	Country string `json:"country"`
	// Region is the first-level subdivision (state1).
	Region string `json:"region,omitempty"`
	// Departement is the French département code (state2: "75", "2A"),
	// empty outside France.
	Departement string  `json:"departement,omitempty"`
	City        string  `json:"city"`
	Postcode    string  `json:"postcode,omitempty"`
	Lat         float64 `json:"latitude"`
	Lon         float64 `json:"longitude"`
	TimeZone    string  `json:"timezone"`
	// ASN and Org: documentation ASNs (RFC 5398), never real networks.
	ASN uint32 `json:"asn"`
	Org string `json:"org"`
	// VPN marks the range as a VPN provider's exits; Hosting as a hosting
	// provider's servers (the lab's own infrastructure).
	VPN     bool `json:"vpn,omitempty"`
	Hosting bool `json:"hosting,omitempty"`
}

// Synthetic autonomous systems of the lab, from the RFC 5398 documentation
// range so that they can never be confused with a real network.
const (
	ASNLabHosting = 64500
	ASNLabVPN     = 64511
)

// Infra is the place of 127.0.0.0/8 and fd00::/32 as a whole: the lab's
// DHT nodes, tracker and the sensors under test (127.0.0.1) live in
// 127.0.0.0/16, and in fd00::/48 over IPv6 (fd00:0:0:1::1, say), and are
// placed in a hosting provider's network, as real DHT routers are.
var Infra = Place{
	Prefix: netip.MustParsePrefix("127.0.0.0/8"), Prefix6: netip.MustParsePrefix("fd00::/32"), Country: "NL", Region: "North Holland",
	City: "Amsterdam", Postcode: "1012", Lat: 52.3676, Lon: 4.9041, TimeZone: "Europe/Amsterdam",
	ASN: ASNLabHosting, Org: "Vigil Lab Hosting", Hosting: true,
}

// Places are the ranges peers live in. The order is fixed: the lab's PRNG
// picks from it by index, so changing it changes every manifest.
var Places = []Place{
	{Prefix: pfx("127.1.0.0/16"), Prefix6: pfx("fd00:0:1::/48"), Country: "FR", Region: "Ile-de-France", Departement: "75", City: "Paris", Postcode: "75001", Lat: 48.8566, Lon: 2.3522, TimeZone: "Europe/Paris", ASN: 64496, Org: "Vigil Lab Telecom A"},
	{Prefix: pfx("127.2.0.0/16"), Prefix6: pfx("fd00:0:2::/48"), Country: "FR", Region: "Auvergne-Rhone-Alpes", Departement: "69", City: "Lyon", Postcode: "69001", Lat: 45.764, Lon: 4.8357, TimeZone: "Europe/Paris", ASN: 64497, Org: "Vigil Lab Telecom B"},
	{Prefix: pfx("127.3.0.0/16"), Prefix6: pfx("fd00:0:3::/48"), Country: "FR", Region: "Provence-Alpes-Cote d'Azur", Departement: "13", City: "Marseille", Postcode: "13001", Lat: 43.2965, Lon: 5.3698, TimeZone: "Europe/Paris", ASN: 64496, Org: "Vigil Lab Telecom A"},
	{Prefix: pfx("127.4.0.0/16"), Prefix6: pfx("fd00:0:4::/48"), Country: "FR", Region: "Corsica", Departement: "2A", City: "Ajaccio", Postcode: "20000", Lat: 41.9192, Lon: 8.7386, TimeZone: "Europe/Paris", ASN: 64498, Org: "Vigil Lab Telecom C"},
	{Prefix: pfx("127.5.0.0/16"), Prefix6: pfx("fd00:0:5::/48"), Country: "FR", Region: "Hauts-de-France", Departement: "59", City: "Lille", Postcode: "59000", Lat: 50.6292, Lon: 3.0573, TimeZone: "Europe/Paris", ASN: 64497, Org: "Vigil Lab Telecom B"},
	{Prefix: pfx("127.6.0.0/16"), Prefix6: pfx("fd00:0:6::/48"), Country: "FR", Region: "Nouvelle-Aquitaine", Departement: "33", City: "Bordeaux", Postcode: "33000", Lat: 44.8378, Lon: -0.5792, TimeZone: "Europe/Paris", ASN: 64498, Org: "Vigil Lab Telecom C"},
	{Prefix: pfx("127.7.0.0/16"), Prefix6: pfx("fd00:0:7::/48"), Country: "FR", Region: "Occitanie", Departement: "31", City: "Toulouse", Postcode: "31000", Lat: 43.6047, Lon: 1.4442, TimeZone: "Europe/Paris", ASN: 64496, Org: "Vigil Lab Telecom A"},
	{Prefix: pfx("127.8.0.0/16"), Prefix6: pfx("fd00:0:8::/48"), Country: "FR", Region: "Ile-de-France", Departement: "78", City: "Versailles", Postcode: "78000", Lat: 48.8049, Lon: 2.1204, TimeZone: "Europe/Paris", ASN: 64497, Org: "Vigil Lab Telecom B"},
	{Prefix: pfx("127.20.0.0/16"), Prefix6: pfx("fd00:0:20::/48"), Country: "BE", Region: "Brussels Capital", City: "Brussels", Postcode: "1000", Lat: 50.8503, Lon: 4.3517, TimeZone: "Europe/Brussels", ASN: 64499, Org: "Vigil Lab Telecom BE"},
	{Prefix: pfx("127.21.0.0/16"), Prefix6: pfx("fd00:0:21::/48"), Country: "DE", Region: "Land Berlin", City: "Berlin", Postcode: "10115", Lat: 52.52, Lon: 13.405, TimeZone: "Europe/Berlin", ASN: 64501, Org: "Vigil Lab Telecom DE"},
	{Prefix: pfx("127.22.0.0/16"), Prefix6: pfx("fd00:0:22::/48"), Country: "CA", Region: "Quebec", City: "Montreal", Postcode: "H2Y", Lat: 45.5017, Lon: -73.5673, TimeZone: "America/Toronto", ASN: 64502, Org: "Vigil Lab Telecom CA"},
	VPNPlace,
}

// VPNPlace is the range of the lab's VPN provider: the place of its exits
// says nothing about where the person is.
var VPNPlace = Place{
	Prefix: pfx("127.30.0.0/16"), Prefix6: pfx("fd00:0:30::/48"), Country: "NL", Region: "North Holland", City: "Amsterdam", Postcode: "1012",
	Lat: 52.3676, Lon: 4.9041, TimeZone: "Europe/Amsterdam", ASN: ASNLabVPN, Org: "Vigil Lab VPN", VPN: true,
}

// Seeders6Place is where the lab's IPv6-only seeders live (Config.Seeders6):
// Lyon (69), a place of none of the demo story's seeders, which the French
// example rules route to a service of its own (the south-east zone's PJ),
// so that they add to the story and change nothing in it.
var Seeders6Place = placeIn("69")

// Loopback6Place is the synthetic place of ::1 in the lab's geo database:
// Seeders6Place's, with ::1/128 as its only range. On IPv6Loopback every
// IPv6 part of the lab shares ::1 (DHT nodes, tracker, sensor and the
// IPv6 seeders, told apart by port), so ::1 cannot say where one of them
// is: this place is a convention of the lab, as the 127.B.0.0/16 ones
// are, so that the IPv6 seeders of a lab without a namespace (the demo's)
// are placed and routed like IPv4 peers. On IPv6ULA they have addresses
// of their own in Seeders6Place's /48 instead. The IPv4 tree of the
// database lives under ::/96, so its 0.0.0.1 is placed there too; no lab
// part ever has that address.
var Loopback6Place = func() Place {
	p := Seeders6Place
	p.Prefix, p.Prefix6 = netip.Prefix{}, netip.PrefixFrom(netip.IPv6Loopback(), 128)
	return p
}()

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// PlaceOf returns the most specific lab place of addr, of either family.
func PlaceOf(addr netip.Addr) (Place, bool) {
	addr = addr.Unmap().WithZone("")
	for _, p := range Places {
		if p.Prefix.Contains(addr) || p.Prefix6.Contains(addr) {
			return p, true
		}
	}
	if Loopback6Place.Prefix6.Contains(addr) {
		return Loopback6Place, true
	}
	if Infra.Prefix.Contains(addr) || Infra.Prefix6.Contains(addr) {
		return Infra, true
	}
	return Place{}, false
}

// hostIn returns the n-th host address (n from 0) of a /16 place, skipping
// .0 and .255 in the last octet so that every address looks ordinary.
func hostIn(p netip.Prefix, n int) (netip.Addr, error) {
	if p.Bits() != 16 || !p.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("place %s: not an IPv4 /16", p)
	}
	hi, lo := n/254, n%254+1
	if hi > 255 {
		return netip.Addr{}, fmt.Errorf("place %s: host %d out of range", p, n)
	}
	b := p.Addr().As4()
	b[2], b[3] = byte(hi), byte(lo)
	return netip.AddrFrom4(b), nil
}

// hostIn6 returns the address with interface identifier iid in the n-th
// subscriber /64 (n from 0) of an IPv6 /48 place: fd00:0:1::/48, n 0 and
// iid 0x1 is fd00:0:1:1::1 (the fourth group is n+1, so that the place's
// first /64 stays unused, as 127.N.0.0 does). One /64 per subscriber is
// what most ISPs delegate at the least: a peer that draws a new interface
// identifier (an RFC 8981 temporary address) stays in its /64, which is
// how the analysis groups it (analysis.IPv6Config). iid 0 is refused (the
// subnet-router anycast address).
func hostIn6(p netip.Prefix, n int, iid uint64) (netip.Addr, error) {
	if p.Bits() != 48 || !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Addr{}, fmt.Errorf("place %s: not an IPv6 /48", p)
	}
	if n < 0 || n >= 0xffff || iid == 0 {
		return netip.Addr{}, fmt.Errorf("place %s: host %d, interface id %#x out of range", p, n, iid)
	}
	b := p.Masked().Addr().As16()
	b[6], b[7] = byte((n+1)>>8), byte(n+1)
	for i := range 8 {
		b[8+i] = byte(iid >> (56 - 8*i))
	}
	return netip.AddrFrom16(b), nil
}

// infraAddr is the n-th infrastructure address: 127.0.1.1 onwards (DHT
// nodes), never 127.0.0.x, which belongs to the sensors and the tracker.
func infraAddr(n int) (netip.Addr, error) {
	hi, lo := 1+n/254, n%254+1
	if hi > 255 {
		return netip.Addr{}, fmt.Errorf("infrastructure address %d out of range", n)
	}
	return netip.AddrFrom4([4]byte{127, 0, byte(hi), byte(lo)}), nil
}

// trackerAddr is where the lab's HTTP tracker listens.
var trackerAddr = netip.AddrFrom4([4]byte{127, 0, 0, 2})

// StoryRole is one seeder of the demo's story (Config.Story): where it
// lives, which watched torrent it shares, and where it moves to, if it is
// the one that moves.
type StoryRole struct {
	// Departement is the French département the seeder starts in.
	Departement string
	// Watched is the index of the watched torrent it shares (modulo
	// Config.Watched).
	Watched int
	// MovesTo is the département it moves to when it is the first mover;
	// empty: it stays.
	MovesTo string
	// What the role shows, for the manifest's readers and the demo.
	What string
}

// Story is the demo's cast, seeder by seeder, so that each demo service
// has peers in its jurisdiction under the French example rules: Paris (75)
// goes to the Préfecture de police's PJ, Marseille (13), Ajaccio (2A) and
// Toulouse (31) to the southern zone's PJ. The third seeder is the first
// to move, from Paris to Toulouse: one device handed from one service to
// the other.
var Story = []StoryRole{
	{Departement: "75", Watched: 0, What: "stays in Paris"},
	{Departement: "13", Watched: 1, What: "stays in Marseille; the demo flags it as a known offender"},
	{Departement: "75", Watched: 0, MovesTo: "31", What: "moves from Paris to Toulouse: a hand-off between two services"},
	{Departement: "2A", Watched: 1, What: "stays in Ajaccio"},
	{Departement: "31", Watched: 0, What: "stays in Toulouse"},
}

// StoryMover is the index in Story of the seeder that moves first.
const StoryMover = 2

// placeIn returns the lab place of a French département; it panics on one
// the lab does not have (Story names only lab places: a test checks).
func placeIn(dep string) Place {
	for _, p := range Places {
		if p.Country == "FR" && p.Departement == dep {
			return p
		}
	}
	panic("lab: no place in département " + dep)
}

// AnnouncerPlace is where the demo's announce-only client lives (Toulouse,
// 31), and AnnouncerHost its host number there: far above the hosts the
// lab's peers take, so that the two never meet.
var (
	AnnouncerPlace = placeIn("31")
	AnnouncerHost  = 200 * 254
)

// AnnouncerAddr is the address of the demo's announce-only client.
func AnnouncerAddr() netip.Addr {
	a, err := hostIn(AnnouncerPlace.Prefix, AnnouncerHost)
	if err != nil {
		panic(err)
	}
	return a
}
