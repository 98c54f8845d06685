package observe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Peer text: a string a peer chose (a client's name and version, a file
// name in a torrent's metadata or in an eD2K or Kad search result) that
// Vigil turns into text of its own (a link's evidence and reason, a
// lead's name and key) is written with EscapeText. The observation itself
// keeps what the peer sent, byte for byte (the stores keep a client's
// name as bytes; the transcript keeps the exchange).
//
// The rule (docs/evidence.md, "Peer text"), read by UnescapeText:
//
//   - a backslash is written \\;
//   - a byte that does not begin a valid UTF-8 character is written \xHH;
//   - a valid character that is not printable (Go's unicode.IsPrint: a
//     control such as NUL, a tab or a newline, DEL, a C1 control, a
//     format character such as the bidi override U+202E, a separator
//     other than the space U+0020) is written \uHHHH, or \UHHHHHHHH
//     above U+FFFF;
//   - every other character is kept as it is.
//
// (H is a lower-case hex digit.) The result is valid UTF-8 with no
// control character: PostgreSQL's text holds it (it takes no NUL byte
// and only UTF-8), and a page, a JSON document or a CSV cell shows it as
// it is. Text without a backslash or anything to escape is unchanged
// ("Transmission", "3.00", "dir/a.bin").

// ErrBadEscape is UnescapeText's error for text that EscapeText could not
// have written.
var ErrBadEscape = errors.New("not peer text: bad escape")

// EscapeText is s written by the rule above.
func EscapeText(s string) string {
	if plainText(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r != ' ' && !unicode.IsPrint(r):
			if r > 0xFFFF {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// plainText reports whether EscapeText leaves s as it is.
func plainText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return plainRunes(s[i:])
		}
	}
	return true
}

func plainRunes(s string) bool {
	for _, r := range s {
		// (utf8.RuneError: a byte that is not UTF-8, or U+FFFD itself,
		// which the slow path keeps.)
		if r == utf8.RuneError || r == '\\' || (r != ' ' && !unicode.IsPrint(r)) {
			return false
		}
	}
	return true
}

// UnescapeText is the string EscapeText wrote as t: it undoes \\, \xHH,
// \uHHHH and \UHHHHHHHH, and refuses (ErrBadEscape) any other backslash
// and any text EscapeText does not write so: a raw control, a byte that
// is not UTF-8, an escape of what EscapeText keeps ("\x41", "\u00e9", a
// valid UTF-8 sequence as \xHH), \U below U+10000. So each string has
// one text, and each text one string. Text with no backslash and nothing
// to escape is returned as it is.
func UnescapeText(t string) (string, error) {
	i := strings.IndexByte(t, '\\')
	if i < 0 {
		if !plainText(t) && EscapeText(t) != t {
			return "", fmt.Errorf("%w: a character or byte EscapeText writes escaped", ErrBadEscape)
		}
		return t, nil
	}
	s, err := unescape(t, i)
	if err != nil {
		return "", err
	}
	if EscapeText(s) != t {
		return "", fmt.Errorf("%w: not the form EscapeText writes (%s)", ErrBadEscape, EscapeText(s))
	}
	return s, nil
}

// unescape undoes the escapes of t from its first backslash, at i.
func unescape(t string, i int) (string, error) {
	b := make([]byte, 0, len(t))
	b = append(b, t[:i]...)
	for i < len(t) {
		c := t[i]
		if c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(t) {
			return "", fmt.Errorf("%w: a backslash at the end", ErrBadEscape)
		}
		var n int
		switch t[i+1] {
		case '\\':
			b = append(b, '\\')
			i += 2
			continue
		case 'x':
			n = 2
		case 'u':
			n = 4
		case 'U':
			n = 8
		default:
			return "", fmt.Errorf("%w: \\%c at byte %d", ErrBadEscape, t[i+1], i)
		}
		if i+2+n > len(t) || !lowerHex(t[i+2:i+2+n]) {
			return "", fmt.Errorf("%w: \\%c needs %d lower-case hex digits at byte %d", ErrBadEscape, t[i+1], n, i)
		}
		v, _ := strconv.ParseUint(t[i+2:i+2+n], 16, 32)
		switch {
		case n == 2:
			b = append(b, byte(v))
		case v > unicode.MaxRune || (v >= 0xD800 && v <= 0xDFFF):
			return "", fmt.Errorf("%w: %s is no character", ErrBadEscape, t[i:i+2+n])
		default:
			b = utf8.AppendRune(b, rune(v))
		}
		i += 2 + n
	}
	return string(b), nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// PlaceText is a geo database's string (a place's country, subdivision,
// city or organisation: a file from outside, as hostile as a peer's
// text) as Vigil's own text: each byte that is not UTF-8 made U+FFFD, as
// a stored place and a JSON line keep it (so that the text is the same
// whether it was made from an observation as ingest had it or as a store
// read it back), then written by EscapeText.
func PlaceText(s string) string {
	if !utf8.ValidString(s) {
		b := make([]byte, 0, len(s)+8)
		for _, r := range s { // U+FFFD for each byte that is not UTF-8
			b = utf8.AppendRune(b, r)
		}
		s = string(b)
	}
	return EscapeText(s)
}
