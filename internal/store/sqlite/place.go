package sqlite

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// placeJSON is the stored form of an observation's place (column place).
// Keys are short but spelled out; an unknown place is NULL, not "{}".
type placeJSON struct {
	Country      string   `json:"country,omitempty"`
	Subdivisions []string `json:"subdivisions,omitempty"`
	City         string   `json:"city,omitempty"`
	Lat          float64  `json:"lat,omitempty"`
	Lon          float64  `json:"lon,omitempty"`
	ASN          uint32   `json:"asn,omitempty"`
	Org          string   `json:"org,omitempty"`
	DB           string   `json:"db,omitempty"`
	DBBuild      int64    `json:"db_build,omitempty"` // Unix ns
	VPN          bool     `json:"vpn,omitempty"`
	Hosting      bool     `json:"hosting,omitempty"`
}

// placeValue is the column value for p: NULL when nothing is known. It is
// written by hand (the insert path runs at 100,000 rows a second), in the
// same shape encoding/json reads back.
func placeValue(p *observe.Place) any {
	if !p.Found() && p.DB == "" {
		return nil
	}
	b := make([]byte, 0, 160)
	b = append(b, '{')
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	str := func(k, v string) {
		if v != "" {
			sep()
			b = append(b, '"')
			b = append(b, k...)
			b = append(b, `":`...)
			b = appendJSONString(b, v)
		}
	}
	str("country", p.Country)
	if len(p.Subdivisions) > 0 {
		sep()
		b = append(b, `"subdivisions":[`...)
		for i, s := range p.Subdivisions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, s)
		}
		b = append(b, ']')
	}
	str("city", p.City)
	if p.Lat != 0 || p.Lon != 0 {
		sep()
		b = append(b, `"lat":`...)
		b = strconv.AppendFloat(b, p.Lat, 'g', -1, 64)
		b = append(b, `,"lon":`...)
		b = strconv.AppendFloat(b, p.Lon, 'g', -1, 64)
	}
	if p.ASN != 0 {
		sep()
		b = append(b, `"asn":`...)
		b = strconv.AppendUint(b, uint64(p.ASN), 10)
	}
	str("org", p.Org)
	str("db", p.DB)
	if !p.DBBuild.IsZero() {
		sep()
		b = append(b, `"db_build":`...)
		b = strconv.AppendInt(b, p.DBBuild.UnixNano(), 10)
	}
	if p.VPN {
		sep()
		b = append(b, `"vpn":true`...)
	}
	if p.Hosting {
		sep()
		b = append(b, `"hosting":true`...)
	}
	b = append(b, '}')
	return string(b)
}

func parsePlace(s string, p *observe.Place) error {
	var j placeJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return fmt.Errorf("place: %w", err)
	}
	*p = observe.Place{
		Country: j.Country, Subdivisions: j.Subdivisions, City: j.City, Lat: j.Lat, Lon: j.Lon,
		ASN: j.ASN, Org: j.Org, DB: j.DB, VPN: j.VPN, Hosting: j.Hosting,
	}
	if j.DBBuild != 0 {
		p.DBBuild = time.Unix(0, j.DBBuild).UTC()
	}
	return nil
}
