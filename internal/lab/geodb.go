package lab

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// geoBuild is the build time written into the lab's databases: fixed, so
// that the same lab writes the same bytes.
var geoBuild = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// GeoFiles are the paths of the lab's loopback geolocation files.
type GeoFiles struct {
	// City is a flat-record (@ip-location-db layout) IPv4 .mmdb placing
	// every 127.0.0.0/8 address.
	City string `json:"city"`
	// ASN is a GeoLite2-ASN layout IPv4 .mmdb.
	ASN string `json:"asn"`
	// ASNCSV holds the same ranges as @ip-location-db/asn CSV rows.
	ASNCSV string `json:"asn_csv"`
	// Providers is a provider override list (asn,kind,organisation,source)
	// that marks the lab's VPN and hosting ASNs, in internal/geo's format.
	Providers string `json:"providers"`
}

// WriteGeo writes the lab's geolocation files into dir. Every address of
// 127.0.0.0/8 is covered: the peers' /16s by their place, the rest by the
// infrastructure record.
func WriteGeo(dir string) (GeoFiles, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return GeoFiles{}, fmt.Errorf("lab geo dir %s: %w", dir, err)
	}
	files := GeoFiles{
		City:      filepath.Join(dir, "lab-city-ipv4.mmdb"),
		ASN:       filepath.Join(dir, "lab-asn-ipv4.mmdb"),
		ASNCSV:    filepath.Join(dir, "lab-asn-ipv4.csv"),
		Providers: filepath.Join(dir, "lab-providers.csv"),
	}
	all := append([]Place{Infra}, Places...) // least specific first: later inserts override
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
	if err := writeMMDB(files.City, "vigil-lab-city-ipv4", all, city); err != nil {
		return files, err
	}
	if err := writeMMDB(files.ASN, "vigil-lab-asn-ipv4", all, asn); err != nil {
		return files, err
	}
	if err := os.WriteFile(files.ASNCSV, asnCSV(), 0o644); err != nil {
		return files, fmt.Errorf("lab ASN CSV %s: %w", files.ASNCSV, err)
	}
	if err := os.WriteFile(files.Providers, providersCSV(), 0o644); err != nil {
		return files, fmt.Errorf("lab provider list %s: %w", files.Providers, err)
	}
	return files, nil
}

func writeMMDB(path, dbType string, places []Place, rec func(Place) mmdbtype.DataType) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "Vigil lab: synthetic places for 127.0.0.0/8, never real data"},
		IPVersion:               4,
		RecordSize:              24,
		IncludeReservedNetworks: true, // 127.0.0.0/8 is reserved; the lab lives there
		BuildEpoch:              geoBuild.Unix(),
	})
	if err != nil {
		return fmt.Errorf("lab geo database %s: %w", path, err)
	}
	for _, p := range places {
		ipnet := &net.IPNet{IP: p.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(p.Prefix.Bits(), 32)}
		if err := tree.Insert(ipnet, rec(p)); err != nil {
			return fmt.Errorf("lab geo database %s: inserting %s: %w", path, p.Prefix, err)
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

// asnCSV writes non-overlapping ranges (the /16s cut out of the
// infrastructure /8), as @ip-location-db/asn does: no header, inclusive
// start and end.
func asnCSV() []byte {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	next := Infra.Prefix.Addr()
	last := lastAddr(Infra.Prefix)
	for _, p := range Places { // Places are in address order
		start := p.Prefix.Addr()
		if next.Less(start) {
			w.Write([]string{next.String(), start.Prev().String(), strconv.Itoa(int(Infra.ASN)), Infra.Org})
		}
		end := lastAddr(p.Prefix)
		w.Write([]string{start.String(), end.String(), strconv.Itoa(int(p.ASN)), p.Org})
		next = end.Next()
	}
	if !last.Less(next) {
		w.Write([]string{next.String(), last.String(), strconv.Itoa(int(Infra.ASN)), Infra.Org})
	}
	w.Flush()
	return buf.Bytes()
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
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
