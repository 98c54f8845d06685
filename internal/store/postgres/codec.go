package postgres

// The column encodings shared with the SQLite store (internal/store/sqlite
// place.go and observations.go): the same JSON shapes for matches and
// places, the same id rule. Copied rather than imported, as the SQLite
// store keeps them unexported; a change to one belongs in both.

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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
// written by hand, on the insert path, in the shape encoding/json reads
// back.
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

func parsePlace(s []byte, p *observe.Place) error {
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

// appendMatched writes the matches as a JSON array of {list, category}.
func appendMatched(b []byte, ms []observe.Match) []byte {
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"list":`...)
		b = appendJSONString(b, m.List)
		b = append(b, `,"category":`...)
		b = appendJSONString(b, m.Category)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendJSONString escapes s as encoding/json would read it back; a NUL
// becomes \u0000, which the json column type keeps (jsonb would refuse it).
func appendJSONString(b []byte, s string) []byte {
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

// parseUUID reads a canonical (lower-case 8-4-4-4-12) UUID; anything else
// is not one, and is stored as the text given.
func parseUUID(s string) ([16]byte, bool) {
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

func formatUUID(v [16]byte) string {
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
