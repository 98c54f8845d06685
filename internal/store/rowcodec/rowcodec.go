// Package rowcodec holds the column encodings every store backend shares,
// so that the embedded SQLite store and the PostgreSQL store write the same
// JSON shapes and the same id rule, and a change is made once:
// observation places and list matches as JSON, canonical UUIDs as 16 bytes,
// a watch-list entry's extra fields and its trust; and the embedded schema
// migrations' file rule (migrations.go). What an import of a list does is
// not here: store.PlanImport decides it for both.
//
// Encoders append to a byte slice: they are on the insert path, which runs
// at 100,000 rows a second.
package rowcodec

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
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

// AppendPlace appends p as the place column's JSON object and reports
// true, or appends nothing and reports false when nothing is known (the
// column is then NULL). It is written by hand (the insert path runs at 100,000 rows a second), in the
// same shape encoding/json reads back.
func AppendPlace(b []byte, p *observe.Place) ([]byte, bool) {
	if !p.Found() && p.DB == "" {
		return b, false
	}
	start := len(b)
	b = append(b, '{')
	sep := func() {
		if len(b) > start+1 {
			b = append(b, ',')
		}
	}
	str := func(k, v string) {
		if v != "" {
			sep()
			b = append(b, '"')
			b = append(b, k...)
			b = append(b, `":`...)
			b = AppendJSONString(b, v)
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
			b = AppendJSONString(b, s)
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
	return append(b, '}'), true
}

// ParsePlace reads a place column.
func ParsePlace(s []byte, p *observe.Place) error {
	var j placeJSON
	if err := json.Unmarshal(s, &j); err != nil {
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

// AppendMatched writes the matches as a JSON array of {list, category}.
func AppendMatched(b []byte, ms []observe.Match) []byte {
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"list":`...)
		b = AppendJSONString(b, m.List)
		b = append(b, `,"category":`...)
		b = AppendJSONString(b, m.Category)
		b = append(b, '}')
	}
	return append(b, ']')
}

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json writes it.
func AppendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// ParseUUID reads a canonical (lower-case 8-4-4-4-12) UUID; anything
// else is not one.
func ParseUUID(s string) ([16]byte, bool) {
	var b [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return b, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := lowerHex(s[i])
		lo, ok2 := lowerHex(s[i+1])
		if !ok1 || !ok2 {
			return b, false
		}
		b[j] = hi<<4 | lo
		i += 2
		j++
	}
	return b, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// FormatUUID is the canonical form of a 16-byte UUID.
func FormatUUID(v [16]byte) string {
	const hexDigits = "0123456789abcdef"
	var s [36]byte
	j := 0
	for i, c := range v {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = hexDigits[c>>4], hexDigits[c&0xf]
		j += 2
	}
	return string(s[:])
}

// ExtraJSON is an entry's extra fields as a JSON object, or nil when
// there are none (the column is then NULL).
func ExtraJSON(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return json.Marshal(m)
}

// FillTrust sets each record's trust: the organisations that confirmed the
// hash (orgs) and the other enabled, non-negative lists that hold it.
func FillTrust(recs []store.EntryRecord, orgs []string) {
	for i := range recs {
		from := slices.Clone(orgs)
		for j := range recs {
			o := &recs[j]
			if j != i && !o.List.Negative && !o.Disabled {
				from = append(from, o.List.Name)
			}
		}
		recs[i].Trust = store.Trust{Confirmations: len(from), From: from}
	}
}

// MarksColumn is the stored form of an observation's marks: the sorted
// marks joined by commas (a mark is a-z, 0-9 and _), or NULL (nil) when
// there are none, so that rows without marks cost nothing.
func MarksColumn(marks []string) any {
	if len(marks) == 0 {
		return nil
	}
	return strings.Join(marks, ",")
}

// ParseMarks reads the marks column back; "" and NULL are no marks.
func ParseMarks(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	return observe.NormalizeMarks(strings.Split(s, ","))
}

// AddrPortColumn is the stored form of an optional address and port (an
// observation's sensor_address): its text, or NULL (nil) when zero.
func AddrPortColumn(a netip.AddrPort) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

// ParseAddrPort reads AddrPortColumn back; "" and NULL are the zero value.
func ParseAddrPort(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("sensor address %q: %w", s, err)
	}
	return a, nil
}
