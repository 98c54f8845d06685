package watchlist

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// detectWindow is how much of a file Detect looks at.
const detectWindow = 64 << 10

// detectLines is how many significant lines Detect tries as hashes before it
// gives up on a text list.
const detectLines = 20

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// Detect returns the format of a watch-list from its first bytes (64 KiB
// is plenty): JSON ('{' or '[') is VICS; "magnet:" a magnet list;
// "ed2k://" an ed2k link list; a header line naming a hash column (hash,
// md5, sha1, ...; comma, semicolon or tab separated; or hashdeep's "%%%%"
// header) is CSV; lines that read as hashes are a text list. Blank lines and
// '#' comments before the first entry are passed over. Binary data (a NUL
// byte, invalid UTF-8, UTF-16) and anything else are errors wrapping
// ErrFormat that say what was seen.
func Detect(head []byte) (Format, error) {
	return detect(head, ParseOptions{})
}

func detect(head []byte, opt ParseOptions) (Format, error) {
	head = bytes.TrimPrefix(head, utf8BOM)
	if len(head) >= 2 && (head[0] == 0xFF && head[1] == 0xFE || head[0] == 0xFE && head[1] == 0xFF) {
		return "", wrapf(ErrFormat, "UTF-16 text (save it as UTF-8)")
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return "", wrapf(ErrFormat, "binary data (NUL byte at offset %d)", i)
	}
	if i := invalidUTF8(head); i >= 0 {
		return "", wrapf(ErrFormat, "binary data or not UTF-8 (invalid byte 0x%02x at offset %d)", head[i], i)
	}
	var first []byte
	firstLine, line, tried := 0, 0, 0
	for rest := head; len(rest) > 0 && tried < detectLines; {
		var l []byte
		l, rest, _ = bytes.Cut(rest, []byte{'\n'})
		line++
		t := bytes.TrimSpace(l)
		if len(t) == 0 {
			continue
		}
		if first == nil {
			switch {
			case t[0] == '{' || t[0] == '[':
				return FormatVICS, nil
			case hasPrefixFold(t, "%%%% HASHDEEP"):
				return FormatCSV, nil
			case t[0] == '#':
				continue
			case hasPrefixFold(t, "magnet:"):
				return FormatMagnet, nil
			case hasPrefixFold(t, "ed2k://"):
				return FormatED2K, nil
			case isCSVHeader(t):
				return FormatCSV, nil
			}
			first, firstLine = t, line
		} else if t[0] == '#' {
			continue
		}
		if looksLikeHash(t, opt.Kind) {
			return FormatText, nil
		}
		tried++
	}
	if first == nil {
		return FormatText, nil // blank or comments only: a text list with no entries
	}
	return "", wrapf(ErrFormat, "line %d (%s) is not a hash, a magnet or ed2k link, a CSV header or JSON", firstLine, quoteCut(first))
}

// invalidUTF8 is the offset of the first byte that is not UTF-8, or -1. A
// rune cut by the end of the window is not counted.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			if len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:]) {
				return -1
			}
			return i
		}
		i += size
	}
	return -1
}

// looksLikeHash reports whether a line's first field reads as a hash, or
// would with --kind.
func looksLikeHash(t []byte, hint hashkind.Kind) bool {
	if k, _, v, ok := bsdLine(t); ok {
		_, err := hashkind.ParseBytes(v, k)
		return err == nil
	}
	tok, _ := cutField(bytes.TrimPrefix(t, []byte{'\\'}))
	_, err := hashkind.ParseRef(string(tok), hint)
	return err == nil || errors.Is(err, hashkind.ErrAmbiguous)
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// quoteCut quotes a line for a message, cut to a readable length.
func quoteCut(b []byte) string {
	const n = 60
	if len(b) <= n {
		return strconv.Quote(string(b))
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return strconv.Quote(string(b[:cut])) + "…"
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// cutField splits a line at its first space or tab.
func cutField(t []byte) (field, rest []byte) {
	for i, c := range t {
		if c == ' ' || c == '\t' {
			return t[:i], t[i:]
		}
	}
	return t, nil
}
