package lab

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// geoBuild is the build time written into the lab's databases: fixed, so
// that the same lab writes the same bytes.
var geoBuild = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// GeoFiles are the paths of the lab's geolocation files.
type GeoFiles struct {
	// City is a flat-record (@ip-location-db layout) .mmdb with an IPv6
	// tree, as MaxMind's own files have: it places every 127.0.0.0/8
	// address (under ::/96, as IPv4 lives in an IPv6 tree) and every
	// fd00::/32 address, so that one file places the lab's peers of both
	// families.
	City string `json:"city"`
	// ASN is a GeoLite2-ASN layout .mmdb of both families, as City.
	ASN string `json:"asn"`
	// ASNCSV holds the IPv4 ranges as @ip-location-db/asn CSV rows, and
	// ASNCSV6 the IPv6 ranges (that package ships one file per family, as
	// this does: a file of ranges never mixes the two).
	ASNCSV  string `json:"asn_csv"`
	ASNCSV6 string `json:"asn_csv6"`
	// Providers is a provider override list (asn,kind,organisation,source)
	// that marks the lab's VPN and hosting ASNs, in internal/geo's format.
	Providers string `json:"providers"`
}

// WriteGeo writes the lab's geolocation files into dir. Every address of
// 127.0.0.0/8 and of fd00::/32 is covered: the peers' /16s and /48s by
// their place, the rest by the infrastructure record; and ::1, by the
// synthetic Loopback6Place.
func WriteGeo(dir string) (GeoFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return GeoFiles{}, fmt.Errorf("lab geo dir %s: %w", dir, err)
	}
	files := GeoFiles{
		City:      filepath.Join(dir, "lab-city.mmdb"),
		ASN:       filepath.Join(dir, "lab-asn.mmdb"),
		ASNCSV:    filepath.Join(dir, "lab-asn-ipv4.csv"),
		ASNCSV6:   filepath.Join(dir, "lab-asn-ipv6.csv"),
		Providers: filepath.Join(dir, "lab-providers.csv"),
	}
	// Least specific first: later inserts override. ::1 is placed too
	// (Loopback6Place), in the .mmdb files only: the ASN CSV files cover
	// 127.0.0.0/8 and fd00::/32.
	all := append(append([]Place{Infra}, Places...), Loopback6Place)
	city := func(p Place) mmdbtype.DataType {
		return mmdbtype.Map{
			"country_code": mmdbtype.String(p.Country),
			"state1":       mmdbtype.String(p.Region),
			"state2":       mmdbtype.String(p.Departement),
			"city":         mmdbtype.String(p.City),
			"postcode":     mmdbtype.String(p.Postcode),
			"latitude":     mmdbtype.Float32(p.Lat),
			"longitude":    mmdbtype.Float32(p.Lon),
			"timezone":     mmdbtype.String(p.TimeZone),
		}
	}
	asn := func(p Place) mmdbtype.DataType {
		m := mmdbtype.Map{
			"autonomous_system_number":       mmdbtype.Uint32(p.ASN),
			"autonomous_system_organization": mmdbtype.String(p.Org),
		}
		if p.VPN {
			m["is_anonymous_vpn"] = mmdbtype.Bool(true)
		}
		if p.Hosting {
			m["is_hosting_provider"] = mmdbtype.Bool(true)
		}
		return m
	}
	if err := writeMMDB(files.City, "vigil-lab-city", all, city); err != nil {
		return files, err
	}
	if err := writeMMDB(files.ASN, "vigil-lab-asn", all, asn); err != nil {
		return files, err
	}
	if err := os.WriteFile(files.ASNCSV, asnCSV(Infra.Prefix, func(p Place) netip.Prefix { return p.Prefix }), 0o644); err != nil {
		return files, fmt.Errorf("lab ASN CSV %s: %w", files.ASNCSV, err)
	}
	if err := os.WriteFile(files.ASNCSV6, asnCSV(Infra.Prefix6, func(p Place) netip.Prefix { return p.Prefix6 }), 0o644); err != nil {
		return files, fmt.Errorf("lab ASN CSV %s: %w", files.ASNCSV6, err)
	}
	if err := os.WriteFile(files.Providers, providersCSV(), 0o644); err != nil {
		return files, fmt.Errorf("lab provider list %s: %w", files.Providers, err)
	}
	return files, nil
}

// writeMMDB writes an IPv6-tree .mmdb holding each place's IPv4 and IPv6
// ranges.
func writeMMDB(path, dbType string, places []Place, rec func(Place) mmdbtype.DataType) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "Vigil lab: synthetic places for 127.0.0.0/8, fd00::/32 and ::1, never real data"},
		IPVersion:               6,
		RecordSize:              24,
		IncludeReservedNetworks: true, // 127.0.0.0/8 and fd00::/8 are reserved; the lab lives there
		BuildEpoch:              geoBuild.Unix(),
	})
	if err != nil {
		return fmt.Errorf("lab geo database %s: %w", path, err)
	}
	for _, p := range places {
		for _, pfx := range []netip.Prefix{p.Prefix, p.Prefix6} {
			if !pfx.IsValid() {
				continue
			}
			ipnet := &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), pfx.Addr().BitLen())}
			if err := tree.Insert(ipnet, rec(p)); err != nil {
				return fmt.Errorf("lab geo database %s: inserting %s: %w", path, pfx, err)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return fmt.Errorf("lab geo database %s: %w", path, err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("lab geo database %s: %w", path, err)
	}
	return nil
}

// asnCSV writes non-overlapping ranges of one family (the places' ranges,
// as prefix gives them, cut out of the infrastructure range infra), as
// @ip-location-db/asn does: no header, inclusive start and end.
func asnCSV(infra netip.Prefix, prefix func(Place) netip.Prefix) []byte {
	ps := slices.Clone(Places)
	slices.SortFunc(ps, func(a, b Place) int { return prefix(a).Addr().Compare(prefix(b).Addr()) })
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	next := infra.Masked().Addr()
	last := lastAddr(infra)
	for _, p := range ps {
		start := prefix(p).Masked().Addr()
		if next.Less(start) {
			w.Write([]string{next.String(), start.Prev().String(), strconv.Itoa(int(Infra.ASN)), Infra.Org})
		}
		end := lastAddr(prefix(p))
		w.Write([]string{start.String(), end.String(), strconv.Itoa(int(p.ASN)), p.Org})
		next = end.Next()
	}
	if next.IsValid() && !last.Less(next) {
		w.Write([]string{next.String(), last.String(), strconv.Itoa(int(Infra.ASN)), Infra.Org})
	}
	w.Flush()
	return buf.Bytes()
}

// lastAddr is the last address of p, of either family.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func providersCSV() []byte {
	var buf bytes.Buffer
	buf.WriteString("# Vigil lab providers: synthetic documentation ASNs (RFC 5398).\n")
	w := csv.NewWriter(&buf)
	w.Write([]string{strconv.Itoa(ASNLabVPN), "vpn", VPNPlace.Org, "vigil lab"})
	w.Write([]string{strconv.Itoa(ASNLabHosting), "hosting", Infra.Org, "vigil lab"})
	w.Flush()
	return buf.Bytes()
}
