package canon

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file writes the canonical form in one pass over the line, without
// building maps: 'vigil verify' computes it for every line of a bundle.
// It must give exactly what Form gives (decode into maps, prune, encode);
// TestFastIsForm holds it to that on every kind of value. Its reading is
// stricter than Form's on malformed input only (it refuses what Form
// might accept after the object), never on a valid object.

var errSyntax = errors.New("invalid JSON")

// member is one member of an object: its key (decoded) and its value in
// canonical form.
type member struct {
	key   string
	value []byte
	empty bool // null, "", [], or {} after pruning
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// fastForms is Forms without maps.
func fastForms(line []byte, drop []string) (full, without []byte, err error) {
	s := &scanner{b: line}
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, nil, fmt.Errorf("%w: not an object", ErrNotObject)
	}
	ms, err := s.members(true)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, nil, fmt.Errorf("%w: more after the object", ErrNotObject)
	}
	full = appendObject(make([]byte, 0, len(line)), ms, nil)
	without = appendObject(make([]byte, 0, len(line)), ms, drop)
	return full, without, nil
}

// members reads an object (at '{') and returns its members sorted by key,
// the last of a repeated key kept, the empty ones dropped when prune.
func (s *scanner) members(prune bool) ([]member, error) {
	s.i++ // '{'
	var ms []member
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return ms, nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, errSyntax
		}
		k, err := s.str()
		if err != nil {
			return nil, err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, errSyntax
		}
		s.i++
		s.ws()
		v, empty, err := s.value(prune, false)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key: string(k), value: v, empty: empty})
		s.ws()
		if s.i >= len(s.b) {
			return nil, errSyntax
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		if s.b[s.i] != '}' {
			return nil, errSyntax
		}
		s.i++
		break
	}
	// Sort by key; of repeated keys the last read wins (as decoding into
	// a map): stable sort, then keep the last of each run.
	slices.SortStableFunc(ms, func(a, b member) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := ms[:0]
	for i := range ms {
		if i+1 < len(ms) && ms[i+1].key == ms[i].key {
			continue
		}
		if prune && ms[i].empty {
			continue
		}
		out = append(out, ms[i])
	}
	return out, nil
}

// value reads one value and returns its canonical form and whether it is
// empty. In a pruned object (prune) objects are pruned, and so are the
// objects directly in an array there (inArray: the array's own elements);
// anything deeper than an array in an array is not (as Form).
func (s *scanner) value(prune, inArray bool) ([]byte, bool, error) {
	if s.i >= len(s.b) {
		return nil, false, errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		ms, err := s.members(prune)
		if err != nil {
			return nil, false, err
		}
		return appendObject(nil, ms, nil), len(ms) == 0, nil
	case c == '[':
		s.i++
		out := []byte{'['}
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return append(out, ']'), true, nil
		}
		for n := 0; ; n++ {
			s.ws()
			// An object element of an array is pruned when the array is
			// a pruned object's member; an array element is never.
			v, _, err := s.value(prune && !inArray && s.i < len(s.b) && s.b[s.i] == '{', true)
			if err != nil {
				return nil, false, err
			}
			if n > 0 {
				out = append(out, ',')
			}
			out = append(out, v...)
			s.ws()
			if s.i >= len(s.b) {
				return nil, false, errSyntax
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.b[s.i] != ']' {
				return nil, false, errSyntax
			}
			s.i++
			return append(out, ']'), false, nil
		}
	case c == '"':
		str, err := s.str()
		if err != nil {
			return nil, false, err
		}
		return appendString(nil, str), len(str) == 0, nil
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		v, _, err := s.lit("null")
		return v, true, err
	case c == '-' || c >= '0' && c <= '9':
		start := s.i
		s.number()
		if !validNumber(s.b[start:s.i]) {
			return nil, false, errSyntax
		}
		return s.b[start:s.i:s.i], false, nil
	}
	return nil, false, errSyntax
}

func (s *scanner) lit(w string) ([]byte, bool, error) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(w)) {
		return nil, false, errSyntax
	}
	s.i += len(w)
	return []byte(w), false, nil
}

func (s *scanner) number() {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			s.i++
		default:
			return
		}
	}
}

// validNumber is JSON's number grammar (RFC 8259).
func validNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return false
		}
	}
	return i == len(b)
}

// str reads a string (at '"') and returns it decoded as encoding/json
// decodes it: escapes resolved, a lone surrogate and every byte that is
// not UTF-8 as U+FFFD.
func (s *scanner) str() ([]byte, error) {
	s.i++ // '"'
	start := s.i
	// Fast path: no escape, all ASCII printable.
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			out := s.b[start:s.i:s.i]
			s.i++
			return out, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		s.i++
	}
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, errSyntax
			}
			e := s.b[s.i+1]
			s.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, errSyntax
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						save := s.i
						s.i += 2
						var ok2 bool
						r2, ok2 = s.hex4()
						if !ok2 {
							s.i = save
							r2 = -1
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							break
						}
						s.i = save // the second escape is read on its own
					}
					out = utf8.AppendRune(out, utf8.RuneError)
					break
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, errSyntax
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			s.i += size
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, s.b[s.i-size:s.i]...)
			}
		}
	}
	return nil, errSyntax
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// appendObject writes ms (sorted, pruned) as an object, leaving out the
// keys in drop.
func appendObject(dst []byte, ms []member, drop []string) []byte {
	dst = append(dst, '{')
	n := 0
	for _, m := range ms {
		if slices.Contains(drop, m.key) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, []byte(m.key))
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString writes s (valid UTF-8: str replaced what was not) as
// encoding/json writes a string with HTML escaping off.
func appendString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
