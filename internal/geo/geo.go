// Package geo places an IP address: country, subdivisions, city, time zone,
// autonomous system and whether the address is a VPN exit or a hosting
// provider's, read from MaxMind-format (.mmdb) files and ASN range CSV files
// at the time of an observation.
//
// It reads two record layouts: MaxMind's nested GeoIP2/GeoLite2 City,
// Country and ASN records, and the flat records of the @ip-location-db
// packages (country_code, state1, state2, city, postcode, latitude,
// longitude, timezone). ASN ranges come from an ASN .mmdb or from the CSV
// files that @ip-location-db/asn ships.
//
// A place is where the database says the address is, not where a person is:
// for a VPN exit or a hosting provider the place is the exit's. Place carries
// VPN and Hosting flags so that no screen or routing decision forgets it.
//
// This package must never send anything over a network: it reads local
// files only. Lookups are safe for concurrent use and allocate nothing on the
// hot path once a record is cached.
package geo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Sentinel errors, wrapped with the file, line or address they concern.
var (
	// ErrNoRecord: no database had a record for the address. It is not
	// agency.ErrNotFound (a record that does not exist or that the reader
	// may not see): an address no database knows is stored unplaced, never
	// answered as missing.
	ErrNoRecord = errors.New("address not found in any geolocation database")
	// ErrNotCovered: no database covers the address family (an IPv6
	// address and only IPv4-only files).
	ErrNotCovered = errors.New("address family not covered by any geolocation database")
	// ErrInvalidAddr: the zero netip.Addr.
	ErrInvalidAddr = errors.New("invalid address")
	// ErrBadDatabase: a .mmdb file that is truncated, corrupt or not a
	// MaxMind DB at all.
	ErrBadDatabase = errors.New("bad .mmdb database")
	// ErrBadCSV: a line of an ASN range CSV file that cannot be read.
	ErrBadCSV = errors.New("bad ASN range CSV")
	// ErrBadProviders: a line of a VPN/hosting provider list that cannot be read.
	ErrBadProviders = errors.New("bad provider list")
	// ErrNoSource: a Locator was configured with no database at all.
	ErrNoSource = errors.New("no geolocation source configured")
)

// Place is where an address was at lookup time, according to the named
// database. The Subdivisions slice may be shared between Places returned by
// the same Locator: treat it as read-only.
type Place struct {
	// Country is the ISO 3166-1 alpha-2 code ("FR"), empty when unknown.
	Country string `json:"country,omitempty"`
	// Subdivisions run from the largest to the smallest: for France the
	// region then the département. A nested GeoIP2 database gives ISO
	// 3166-2 codes ("IDF", "78"); a flat @ip-location-db database gives
	// English names ("Ile-de-France", "Yvelines").
	Subdivisions []string `json:"subdivisions,omitempty"`
	City         string   `json:"city,omitempty"`
	Postcode     string   `json:"postcode,omitempty"`
	// Lat and Lon are in degrees; both zero when the database has none.
	Lat      float64 `json:"latitude,omitempty"`
	Lon      float64 `json:"longitude,omitempty"`
	TimeZone string  `json:"time_zone,omitempty"`
	// ASN is the autonomous system number, 0 when unknown.
	ASN uint32 `json:"asn,omitempty"`
	Org string `json:"org,omitempty"`
	// DB names the database the place came from (its file name), and
	// DBBuild is its build time from the .mmdb metadata: evidence must say
	// which edition of a database placed an address.
	DB      string    `json:"db,omitempty"`
	DBBuild time.Time `json:"db_build,omitzero"`
	// VPN: the ASN is a VPN provider's. The place is the exit's, not the
	// person's.
	VPN bool `json:"vpn"`
	// Hosting: the ASN is a hosting or cloud provider's; the address is
	// likely a server, a proxy or a VPN exit, not a subscriber line.
	Hosting bool `json:"hosting"`
}

// Observed is the place as an observation carries it (observe.Place, what
// routing reads): the same fields but the postcode and time zone, which
// an observation does not keep. The Subdivisions slice is shared.
func (p Place) Observed() observe.Place {
	return observe.Place{
		Country: p.Country, Subdivisions: p.Subdivisions, City: p.City, Lat: p.Lat, Lon: p.Lon,
		ASN: p.ASN, Org: p.Org, DB: p.DB, DBBuild: p.DBBuild, VPN: p.VPN, Hosting: p.Hosting,
	}
}

// Found reports whether the place holds anything at all.
func (p Place) Found() bool {
	return p.Country != "" || p.City != "" || len(p.Subdivisions) > 0 || p.ASN != 0 || p.Lat != 0 || p.Lon != 0
}

// ExitNote is the warning shown beside a place whose address is a VPN exit
// or a hosting provider's.
const ExitNote = "the place is the exit's, not the person's"

// Summary formats the place as one line for a person, e.g.
//
//	FR, Ile-de-France / Yvelines, Le Chesnay 78150 (48.8248, 2.1222) Europe/Paris; AS3215 Orange; db x.mmdb built 2026-06-17
func (p Place) Summary() string {
	if !p.Found() {
		return "unknown location"
	}
	var b strings.Builder
	where := make([]string, 0, 3)
	if p.Country != "" {
		where = append(where, p.Country)
	}
	if len(p.Subdivisions) > 0 {
		where = append(where, strings.Join(p.Subdivisions, " / "))
	}
	city := strings.TrimSpace(strings.Join([]string{p.City, p.Postcode}, " "))
	if city != "" {
		where = append(where, city)
	}
	if len(where) == 0 {
		b.WriteString("unknown location")
	} else {
		b.WriteString(strings.Join(where, ", "))
	}
	if p.Lat != 0 || p.Lon != 0 {
		fmt.Fprintf(&b, " (%s, %s)", strconv.FormatFloat(p.Lat, 'f', -1, 64), strconv.FormatFloat(p.Lon, 'f', -1, 64))
	}
	if p.TimeZone != "" {
		b.WriteString(" ")
		b.WriteString(p.TimeZone)
	}
	if p.ASN != 0 {
		fmt.Fprintf(&b, "; AS%d", p.ASN)
		if p.Org != "" {
			b.WriteString(" ")
			b.WriteString(p.Org)
		}
	}
	switch {
	case p.VPN:
		b.WriteString("; VPN exit: " + ExitNote)
	case p.Hosting:
		b.WriteString("; hosting provider: " + ExitNote)
	}
	if p.DB != "" {
		b.WriteString("; db ")
		b.WriteString(p.DB)
		if !p.DBBuild.IsZero() {
			b.WriteString(" built ")
			b.WriteString(p.DBBuild.UTC().Format(time.DateOnly))
		}
	}
	return b.String()
}

// FormatLine formats one lookup result for `vigil geo lookup`: the address,
// then the place's summary, or the error.
func FormatLine(addr netip.Addr, p Place, err error) string {
	if err != nil && !p.Found() {
		// Lookup errors already start with the address.
		return addr.String() + "\t" + strings.TrimPrefix(err.Error(), addr.String()+": ")
	}
	return addr.String() + "\t" + p.Summary()
}

// LookupResult is the JSON form of one lookup for `vigil geo lookup --json`.
type LookupResult struct {
	IP    string `json:"ip"`
	Place *Place `json:"place,omitempty"`
	Error string `json:"error,omitempty"`
}

// FormatJSON formats one lookup result as a JSON object on one line
// (snake_case keys), for JSON Lines output.
func FormatJSON(addr netip.Addr, p Place, err error) ([]byte, error) {
	r := LookupResult{IP: addr.String()}
	if p.Found() {
		r.Place = &p
	}
	if err != nil {
		r.Error = err.Error()
	}
	return json.Marshal(r)
}
