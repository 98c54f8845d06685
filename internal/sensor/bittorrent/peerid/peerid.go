// Package peerid names the client behind a BitTorrent peer id (BEP 20 and
// the older conventions): Azureus style ("-TR3000-" is Transmission 3.00),
// Shadow style ("S58B-----" is Shad0w 5.8.11), Mainline style ("M7-2-0--"
// is BitTorrent 7.2.0) and a few one-offs.
//
// A peer id is chosen by the client and proves nothing: the name is a
// hint for an investigator, recorded beside the raw id, never evidence of
// what software ran. The package does no I/O, must never panic on any 20
// bytes, and returns only valid UTF-8 so that names can go to JSON and SQL
// unescaped.
package peerid

import (
	"strconv"
	"strings"
)

// Style is the convention a peer id follows.
type Style string

// Styles.
const (
	StyleAzureus  Style = "azureus"  // -XXvvvv-
	StyleShadow   Style = "shadow"   // Xvvvvv---
	StyleMainline Style = "mainline" // Mx-y-z--
	StyleOther    Style = "other"    // a client-specific prefix
	StyleUnknown  Style = "unknown"
)

// Client is what a peer id says about the client that chose it.
type Client struct {
	// Name is the client's name, "" if unknown.
	Name string
	// Version is the version the id encodes, "" if none.
	Version string
	// Style is the convention recognised.
	Style Style
	// Code is the Azureus-style two-letter client code ("TR"), if any.
	Code string
	// Raw is the id with non-printable bytes escaped as %XX ('%' itself as
	// %25), for display beside the name.
	Raw string
}

// String is "Name Version", or "unknown (prefix)" for an unknown client.
func (c Client) String() string {
	if c.Name == "" {
		raw := c.Raw
		if c.Style == StyleAzureus && len(raw) >= 8 {
			raw = raw[:8]
		}
		return "unknown (" + raw + ")"
	}
	if c.Version == "" {
		return c.Name
	}
	return c.Name + " " + c.Version
}

// Decode names the client of a 20-byte peer id.
func Decode(id [20]byte) Client {
	c := identify(id)
	c.Raw = escape(id[:])
	return c
}

// DecodeBytes names the client of a peer id given as a slice; anything
// but 20 bytes is unknown.
func DecodeBytes(b []byte) Client {
	if len(b) != 20 {
		return Client{Style: StyleUnknown, Raw: escape(b)}
	}
	return Decode([20]byte(b))
}

func escape(b []byte) string {
	var sb strings.Builder
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if c >= 0x20 && c < 0x7f && c != '%' {
			sb.WriteByte(c)
		} else {
			sb.WriteByte('%')
			sb.WriteByte(hex[c>>4])
			sb.WriteByte(hex[c&0xf])
		}
	}
	return sb.String()
}

func identify(id [20]byte) Client {
	if c, ok := azureus(id); ok {
		return c
	}
	if c, ok := shadow(id); ok {
		return c
	}
	if c, ok := mainline(id); ok {
		return c
	}
	if c, ok := other(id); ok {
		return c
	}
	return Client{Style: StyleUnknown}
}

// digit decodes one version character as most Azureus-style clients
// write it: 0-9, then A-Z for 10-35 and a-z for 36-61.
func digit(c byte) (int, bool) {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10, true
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 36, true
	}
	return 0, false
}

// dotted joins the decoded version characters with dots; ok is false if
// one is not a version character.
func dotted(v []byte) (string, bool) {
	parts := make([]string, len(v))
	for i, c := range v {
		d, ok := digit(c)
		if !ok {
			return "", false
		}
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, "."), true
}

type formatter func(v [4]byte) (string, bool)

func threeDigits(v [4]byte) (string, bool) { return dotted(v[:3]) }
func fourDigits(v [4]byte) (string, bool)  { return dotted(v[:]) }
func noVersion([4]byte) (string, bool)     { return "", true }

// twoMajorTwoMinor is BitComet's "-BC0150-": 1.50.
func twoMajorTwoMinor(v [4]byte) (string, bool) {
	for _, c := range v {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	major, _ := strconv.Atoi(string(v[:2]))
	return strconv.Itoa(major) + "." + string(v[2:]), true
}

// transmission versions: "-TR0072-" is 0.72, "-TR3000-" is 3.00 ("Z" or
// "X" in the last place marks a build between releases: 3.00+), and from
// 4.0 on each place is one component: "-TR4050-" is 4.0.5.
func transmission(v [4]byte) (string, bool) {
	for _, c := range v[:3] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	suffix := ""
	switch v[3] {
	case 'Z', 'X':
		suffix = "+"
	case 'B':
		suffix = " (Beta)"
	default:
		if v[3] < '0' || v[3] > '9' {
			return "", false
		}
	}
	switch {
	case v[0] == '0' && v[1] == '0' && v[2] == '0':
		return "0." + string(v[3]), true
	case v[0] == '0' && v[1] == '0':
		return "0." + string(v[2:]), true
	case v[0] >= '4':
		return string(v[0]) + "." + string(v[1]) + "." + string(v[2]) + suffix, true
	}
	return string(v[0]) + "." + string(v[1:3]) + suffix, true
}

// µTorrent and BitTorrent: hexadecimal major, minor and patch, then a
// build letter ("-UT355W-" is 3.5.5; "B" marks a beta).
func utorrent(v [4]byte) (string, bool) {
	parts := make([]string, 3)
	for i, c := range v[:3] {
		n, err := strconv.ParseUint(string(c), 16, 8)
		if err != nil {
			return "", false
		}
		parts[i] = strconv.FormatUint(n, 10)
	}
	s := strings.Join(parts, ".")
	switch v[3] {
	case 'B', 'b':
		s += " (Beta)"
	case 'd':
		s += " (Debug)"
	case 'X', 'x', 'Z':
		s += " (Dev)"
	}
	return s, true
}

var azureusClients = map[string]struct {
	name   string
	format formatter
}{
	"AG": {"Ares", fourDigits},
	"A~": {"Ares", threeDigits},
	"AZ": {"Vuze", fourDigits},
	"BC": {"BitComet", twoMajorTwoMinor},
	"BI": {"BiglyBT", fourDigits},
	"BM": {"BitMagnet", fourDigits},
	"BN": {"Baidu Netdisk", noVersion},
	"BT": {"BitTorrent", utorrent},
	"DE": {"Deluge", fourDigits},
	"FD": {"Free Download Manager", threeDigits},
	"FW": {"FrostWire", threeDigits},
	"GT": {"anacrolix/torrent", noVersion}, // "-GT0003-" is a fixed prefix, not a version
	"HL": {"Halite", threeDigits},
	"KT": {"KTorrent", threeDigits},
	"LT": {"libtorrent (Rasterbar)", threeDigits},
	"lt": {"libTorrent (rakshasa)", threeDigits},
	"MO": {"MonoTorrent", fourDigits},
	"PI": {"PicoTorrent", threeDigits},
	"qB": {"qBittorrent", threeDigits},
	"SD": {"Thunder", fourDigits},
	"TR": {"Transmission", transmission},
	"TT": {"TuoTu", fourDigits},
	"UE": {"µTorrent Embedded", utorrent},
	"UM": {"µTorrent Mac", utorrent},
	"UT": {"µTorrent", utorrent},
	"UW": {"µTorrent Web", utorrent},
	"WW": {"WebTorrent", fourDigits},
	"XL": {"Xunlei", fourDigits},
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '~'
}

func azureus(id [20]byte) (Client, bool) {
	if id[0] != '-' || id[7] != '-' || !isAlnum(id[1]) || !isAlnum(id[2]) {
		return Client{}, false
	}
	code := string(id[1:3])
	v := [4]byte(id[3:7])
	c := Client{Style: StyleAzureus, Code: code}
	known, ok := azureusClients[code]
	if !ok {
		if s, ok := dotted(v[:]); ok {
			c.Version = s
		}
		return c, true
	}
	c.Name = known.name
	if s, ok := known.format(v); ok {
		c.Version = s
	} else {
		c.Version = escape(v[:])
	}
	return c, true
}

// Shadow style: a client letter, up to five version characters from the
// alphabet below padded with '-', then "---".
const shadowAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-"

var shadowClients = map[byte]string{
	'A': "ABC", 'O': "Osprey Permaseed", 'Q': "BTQueue", 'R': "Tribler", 'S': "Shad0w", 'T': "BitTornado", 'U': "UPnP NAT Bit Torrent",
}

func shadow(id [20]byte) (Client, bool) {
	name, ok := shadowClients[id[0]]
	if !ok || string(id[6:9]) != "---" {
		return Client{}, false
	}
	v := id[1:6]
	// Trailing dashes pad the version.
	end := len(v)
	for end > 0 && v[end-1] == '-' {
		end--
	}
	if end == 0 {
		return Client{}, false
	}
	parts := make([]string, end)
	for i, c := range v[:end] {
		n := strings.IndexByte(shadowAlphabet, c)
		if n < 0 {
			return Client{}, false
		}
		parts[i] = strconv.Itoa(n)
	}
	return Client{Name: name, Version: strings.Join(parts, "."), Style: StyleShadow}, true
}

// Mainline style: 'M' (BitTorrent) or 'Q' (Queen Bee), then major, minor
// and patch in decimal separated by '-', padded with '-' to eight bytes:
// "M7-2-0--", "M4-20-8-".
func mainline(id [20]byte) (Client, bool) {
	var name string
	switch id[0] {
	case 'M':
		name = "BitTorrent (Mainline)"
	case 'Q':
		name = "Queen Bee"
	default:
		return Client{}, false
	}
	v, ok := dashedNumbers(id[1:8], 3)
	if !ok {
		return Client{}, false
	}
	return Client{Name: name, Version: v, Style: StyleMainline}, true
}

// dashedNumbers reads n decimal numbers separated by '-' from b, which
// must then hold only '-'.
func dashedNumbers(b []byte, n int) (string, bool) {
	parts := make([]string, 0, n)
	i := 0
	for len(parts) < n {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || i-start > 3 || i >= len(b) || b[i] != '-' {
			return "", false
		}
		parts = append(parts, strings.TrimLeft(string(b[start:i]), "0"))
		if parts[len(parts)-1] == "" {
			parts[len(parts)-1] = "0"
		}
		i++
	}
	for ; i < len(b); i++ {
		if b[i] != '-' {
			return "", false
		}
	}
	return strings.Join(parts, "."), true
}

// other recognises clients with a prefix of their own.
func other(id [20]byte) (Client, bool) {
	s := string(id[:])
	switch {
	case strings.HasPrefix(s, "exbc"), strings.HasPrefix(s, "FUTB"), strings.HasPrefix(s, "xUTB"):
		// Old BitComet (and BitLord, which adds "LORD"): two bytes of
		// version after the prefix, major and minor.
		name := "BitComet"
		if s[6:10] == "LORD" {
			name = "BitLord"
		}
		minor := strconv.Itoa(int(id[5]))
		if len(minor) == 1 {
			minor = "0" + minor
		}
		return Client{Name: name, Version: strconv.Itoa(int(id[4])) + "." + minor, Style: StyleOther}, true
	case strings.HasPrefix(s, "XBT"):
		v := id[3:6]
		for _, c := range v {
			if c < '0' || c > '9' {
				return Client{Name: "XBT Client", Style: StyleOther}, true
			}
		}
		ver := string(v[0]) + "." + string(v[1]) + "." + string(v[2])
		switch id[6] {
		case 'd':
			ver += " (Debug)"
		case 'b', 'B':
			ver += " (Beta)"
		}
		return Client{Name: "XBT Client", Version: ver, Style: StyleOther}, true
	case strings.HasPrefix(s, "A2-"):
		// aria2: "A2-1-35-0-" is 1.35.0.
		c := Client{Name: "aria2", Style: StyleOther}
		b := id[3:]
		end := 0
		for dashes := 0; end < len(b) && dashes < 3; end++ {
			if b[end] == '-' {
				dashes++
			}
		}
		if v, ok := dashedNumbers(b[:end], 3); ok {
			c.Version = v
		}
		return c, true
	case strings.HasPrefix(s, "OP"):
		// Opera: "OP" and a four-digit build number.
		for _, c := range id[2:6] {
			if c < '0' || c > '9' {
				return Client{}, false
			}
		}
		return Client{Name: "Opera", Version: string(id[2:6]), Style: StyleOther}, true
	}
	return Client{}, false
}
