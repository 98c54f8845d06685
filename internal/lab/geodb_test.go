package lab

import (
	"net/netip"
	"testing"

	"github.com/vigil-oss/vigil/internal/geo"
)

// TestGeoPlacesBothFamilies reads the lab's geo files back through the
// geo package, as ingest does: an address of every place, over IPv4 and
// over IPv6 (a subscriber's /64 of the place's /48, with two interface
// identifiers), is placed where the place says, with its ASN from the
// .mmdb and from the CSV of its family; the infrastructure of both
// families is the lab's hosting provider; ::1 is the synthetic place of
// the IPv6 seeders (Lyon); addresses outside the lab's ranges are placed
// nowhere.
func TestGeoPlacesBothFamilies(t *testing.T) {
	files, err := WriteGeo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, err := geo.OpenDB(files.City, geo.DefaultDBConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !db.IPv6() {
		t.Fatalf("%s: an IPv4 tree; the lab's city file must hold IPv6 addresses too", files.City)
	}
	loc, err := geo.Open(geo.Config{PlaceFiles: []string{files.City}, ASNFiles: []string{files.ASN},
		ProviderFile: files.Providers, DB: geo.DefaultDBConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	csv4, err := geo.LoadASNCSV(files.ASNCSV)
	if err != nil {
		t.Fatal(err)
	}
	csv6, err := geo.LoadASNCSV(files.ASNCSV6)
	if err != nil {
		t.Fatal(err)
	}
	check := func(addr netip.Addr, want Place) {
		t.Helper()
		p, err := loc.Lookup(addr)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		sub := ""
		if n := len(p.Subdivisions); n > 0 {
			sub = p.Subdivisions[n-1]
		}
		if p.Country != want.Country || p.City != want.City || sub != want.Departement && want.Departement != "" ||
			p.ASN != want.ASN || p.VPN != want.VPN || p.Hosting != want.Hosting || p.DB != "lab-city.mmdb" {
			t.Errorf("%s: %s; want %s %s %s AS%d vpn=%v hosting=%v from lab-city.mmdb", addr, p.Summary(),
				want.Country, want.Departement, want.City, want.ASN, want.VPN, want.Hosting)
		}
		tab := csv4
		if addr.Unmap().Is6() {
			tab = csv6
		}
		if asn, _, ok := tab.LookupASN(addr); !ok || asn != want.ASN {
			t.Errorf("%s: the ASN CSV of its family gives AS%d (found %v), want AS%d", addr, asn, ok, want.ASN)
		}
		if got, ok := PlaceOf(addr); !ok || got.Prefix != want.Prefix {
			t.Errorf("PlaceOf(%s) = %s, %v; want %s", addr, got.Prefix, ok, want.Prefix)
		}
	}
	for _, pl := range Places {
		if !pl.Prefix6.IsValid() || pl.Prefix6.Bits() != 48 || !Infra.Prefix6.Contains(pl.Prefix6.Addr()) {
			t.Fatalf("place %s: IPv6 range %s, want a /48 of %s", pl.City, pl.Prefix6, Infra.Prefix6)
		}
		a4, err := hostIn(pl.Prefix, 3)
		if err != nil {
			t.Fatal(err)
		}
		check(a4, pl)
		check(netip.AddrFrom16(a4.As16()), pl) // IPv4-mapped
		for _, iid := range []uint64{1, 0x3c1a_92ff_fe00_4d21} {
			a6, err := hostIn6(pl.Prefix6, 3, iid)
			if err != nil {
				t.Fatal(err)
			}
			check(a6, pl)
		}
	}
	for _, s := range []string{"127.0.0.1", "127.0.1.7", "fd00:0:0:1::1", "fd00:0:99::5", "fd00:0:ffff:ffff::1"} {
		check(netip.MustParseAddr(s), Infra)
	}
	// ::1 is the synthetic Loopback6Place (Lyon), in the .mmdb files
	// only: the CSV of IPv6 ranges covers fd00::/32 alone.
	lo := netip.IPv6Loopback()
	if p, err := loc.Lookup(lo); err != nil || p.Country != "FR" || p.City != Seeders6Place.City || p.ASN != Seeders6Place.ASN ||
		len(p.Subdivisions) == 0 || p.Subdivisions[len(p.Subdivisions)-1] != "69" {
		t.Errorf("%s: placed %s (%v), want %s (69) AS%d", lo, p.Summary(), err, Seeders6Place.City, Seeders6Place.ASN)
	}
	if got, ok := PlaceOf(lo); !ok || got.Prefix6 != Loopback6Place.Prefix6 || got.City != Seeders6Place.City {
		t.Errorf("PlaceOf(%s) = %+v, %v; want Loopback6Place", lo, got, ok)
	}
	for _, s := range []string{"::2", "fd01::1", "fd00:250::2", "2001:db8::1", "10.0.0.1"} {
		if p, err := loc.Lookup(netip.MustParseAddr(s)); err == nil || p.Found() {
			t.Errorf("%s: placed %s, want nowhere (outside the lab's ranges)", s, p.Summary())
		}
		if _, ok := PlaceOf(netip.MustParseAddr(s)); ok {
			t.Errorf("PlaceOf(%s): a lab place, want none", s)
		}
	}
}

func TestHostIn6(t *testing.T) {
	p := netip.MustParsePrefix("fd00:0:7::/48")
	cases := []struct {
		n    int
		iid  uint64
		want string
	}{
		{0, 1, "fd00:0:7:1::1"},
		{0, 0x3c1a_92ff_fe00_4d21, "fd00:0:7:1:3c1a:92ff:fe00:4d21"},
		{299, 1, "fd00:0:7:12c::1"},
	}
	for _, c := range cases {
		a, err := hostIn6(p, c.n, c.iid)
		if err != nil || a.String() != c.want {
			t.Errorf("hostIn6(%s, %d, %#x) = %s, %v; want %s", p, c.n, c.iid, a, err, c.want)
		}
	}
	for _, bad := range []struct {
		p   string
		n   int
		iid uint64
	}{{"fd00:0:7::/64", 0, 1}, {"127.7.0.0/16", 0, 1}, {"fd00:0:7::/48", -1, 1}, {"fd00:0:7::/48", 0xffff, 1}, {"fd00:0:7::/48", 0, 0}} {
		if a, err := hostIn6(netip.MustParsePrefix(bad.p), bad.n, bad.iid); err == nil {
			t.Errorf("hostIn6(%s, %d, %#x) = %s, want an error", bad.p, bad.n, bad.iid, a)
		}
	}
}
