package canon

import (
	"bytes"
	"encoding/json"
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
	key   []byte
	value []byte
	empty bool // null, "", [], or {} after pruning
}

type scanner struct {
	b []byte
	i int
	// stack holds the members of the objects being read, innermost last
	// (members); orders are the orders members last sorted objects of n
	// members in, by n.
	stack  []member
	orders map[int][]int32
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

// Object is a JSON object read once (Parse) for its canonical forms and
// for its members' values: its members in key order, the last of a
// repeated key kept, each value already in canonical form. The members
// whose value is empty are kept too (Value gives them); the forms leave
// them out.
type Object struct{ ms []member }

// Parse reads the JSON object in line. The Object refers to line's bytes:
// line must not change while it is used.
func Parse(line []byte) (Object, error) {
	var p Parser
	return p.Parse(line)
}

// A Parser reads objects as Parse does, reusing its memory from one to the
// next: the Object it returns is valid until its next Parse.
type Parser struct{ s scanner }

// Parse reads the JSON object in line, as the package's Parse.
func (p *Parser) Parse(line []byte) (Object, error) {
	s := &p.s
	s.b, s.i, s.stack = line, 0, s.stack[:0]
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return Object{}, fmt.Errorf("%w: not an object", ErrNotObject)
	}
	ms, err := s.members(true)
	if err != nil {
		return Object{}, fmt.Errorf("%w: %v", ErrNotObject, err)
	}
	s.ws()
	if s.i != len(s.b) {
		return Object{}, fmt.Errorf("%w: more after the object", ErrNotObject)
	}
	return Object{ms}, nil
}

// AppendForm appends o's canonical form, without the top-level keys in
// drop, to dst.
func (o Object) AppendForm(dst []byte, drop []string) []byte {
	return appendObject(dst, o.ms, drop, true)
}

// AppendSensorForm appends the canonical form a sensor's hash covers in
// evidence form (1 or 2): o's form without SensorDrop(form), and with
// "marks" without IngestMarks (dropped when none is left).
func (o Object) AppendSensorForm(dst []byte, form int) []byte {
	ms := o.ms
	if i, sensor, _, ok := o.splitMarks(); ok {
		ms = slices.Clone(o.ms)
		ms[i].value, ms[i].empty = sensor, len(sensor) == 0
	}
	return appendObject(dst, ms, SensorDrop(form), true)
}

// splitMarks finds the "marks" member and, when it is an array of
// strings holding one of IngestMarks, returns its index, its canonical
// value without them (nil when none is left) and with them alone, and
// true. Anything else (no marks, no ingest mark, not an array of
// strings) is false: the forms take "marks" as it is.
func (o Object) splitMarks() (i int, sensor, ingest []byte, ok bool) {
	i, found := slices.BinarySearchFunc(o.ms, "marks", func(m member, k string) int { return bytes.Compare(m.key, []byte(k)) })
	if !found {
		return 0, nil, nil, false
	}
	v := o.ms[i].value
	hit := false
	for _, m := range IngestMarks {
		hit = hit || bytes.Contains(v, []byte(`"`+m+`"`))
	}
	if !hit {
		return 0, nil, nil, false
	}
	var marks []string
	if err := json.Unmarshal(v, &marks); err != nil {
		return 0, nil, nil, false
	}
	var s, g [][]byte
	for _, m := range marks {
		if slices.Contains(IngestMarks, m) {
			g = append(g, appendString(nil, []byte(m)))
		} else {
			s = append(s, appendString(nil, []byte(m)))
		}
	}
	if len(g) == 0 {
		return 0, nil, nil, false
	}
	list := func(xs [][]byte) []byte {
		if len(xs) == 0 {
			return nil
		}
		return append(append([]byte{'['}, bytes.Join(xs, []byte{','})...), ']')
	}
	return i, list(s), list(g), true
}

// AppendLeaf2 appends the canonical form an evidence form 2 leaf covers:
// o's members whose keys are in IngestKeys, IngestMarksKey with the
// ingest marks of "marks" when it holds any, and SensorHashKey with
// sensorHash in hex, in key order.
func (o Object) AppendLeaf2(dst []byte, sensorHash []byte) []byte {
	ms := make([]member, 0, len(IngestKeys)+2)
	v := make([]byte, 0, 2+2*len(sensorHash))
	v = append(v, '"')
	for _, c := range sensorHash {
		v = append(v, hexDigits[c>>4], hexDigits[c&0xf])
	}
	v = append(v, '"')
	sh := member{key: []byte(SensorHashKey), value: v}
	for _, m := range o.ms {
		if sh.key != nil && bytes.Compare(m.key, sh.key) > 0 {
			ms, sh.key = append(ms, sh), nil
		}
		if dropped(IngestKeys, m.key) {
			ms = append(ms, m)
		}
	}
	if sh.key != nil {
		ms = append(ms, sh)
	}
	if _, _, ingest, ok := o.splitMarks(); ok {
		im := member{key: []byte(IngestMarksKey), value: ingest}
		at, _ := slices.BinarySearchFunc(ms, im.key, func(m member, k []byte) int { return bytes.Compare(m.key, k) })
		ms = slices.Insert(ms, at, im)
	}
	return appendObject(dst, ms, nil, true)
}

// Value returns the canonical JSON of key's value (null, "", [] and {}
// included), and whether o has key (exactly: case counts).
func (o Object) Value(key string) ([]byte, bool) {
	i, ok := slices.BinarySearchFunc(o.ms, key, func(m member, k string) int { return bytes.Compare(m.key, []byte(k)) })
	if !ok {
		return nil, false
	}
	return o.ms[i].value, true
}

// fastForms is Forms without maps.
func fastForms(line []byte, drop []string) (full, without []byte, err error) {
	o, err := Parse(line)
	if err != nil {
		return nil, nil, err
	}
	return o.AppendForm(make([]byte, 0, len(line)), nil), o.AppendForm(make([]byte, 0, len(line)), drop), nil
}

// members reads an object (at '{') and returns its members sorted by key,
// the last of a repeated key kept. Whether the object is pruned (prune)
// decides only how its members' values are read (value). The members are
// on s.stack, above those of the objects around it: the caller drops
// them (truncates the stack) once it has written them.
func (s *scanner) members(prune bool) ([]member, error) {
	s.i++ // '{'
	base := len(s.stack)
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil, nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, errSyntax
		}
		k, _, err := s.str()
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
		s.stack = append(s.stack, member{key: k, value: v, empty: empty})
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
	// a map). The members' positions are sorted, by key then position,
	// rather than the members themselves (moving a member is slower); the
	// members are then copied above the ones read, in that order.
	read := s.stack[base:]
	byKey := func(a, b int32) int {
		if c := bytes.Compare(read[a].key, read[b].key); c != 0 {
			return c
		}
		return int(a - b)
	}
	// Objects of one kind (the lines of a file) have their keys in the
	// same order: the order the last object of as many members was sorted
	// in is tried first. If the members are in key order under it, it is
	// the order the sort would give (there is one: no two members have
	// the same key and position).
	if s.orders == nil {
		s.orders = map[int][]int32{}
	}
	order := s.orders[len(read)]
	if len(order) != len(read) || !slices.IsSortedFunc(order, byKey) {
		order = order[:0]
		for i := range read {
			order = append(order, int32(i))
		}
		slices.SortFunc(order, byKey)
		s.orders[len(read)] = order
	}
	sorted := len(s.stack)
	for i, j := range order {
		if i+1 < len(order) && bytes.Equal(read[order[i+1]].key, read[j].key) {
			continue
		}
		s.stack = append(s.stack, read[j])
	}
	return s.stack[sorted:], nil
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
		base := len(s.stack)
		ms, err := s.members(prune)
		if err != nil {
			return nil, false, err
		}
		v := appendObject(nil, ms, nil, prune)
		s.stack = s.stack[:base]
		return v, len(v) == len("{}"), nil
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
		str, token, err := s.str()
		if err != nil {
			return nil, false, err
		}
		if token == nil {
			token = appendString(nil, str)
		}
		return token, len(str) == 0, nil
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
	return s.b[s.i-len(w) : s.i : s.i], false, nil
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
// not UTF-8 as U+FFFD. When the string is already in canonical form (no
// escape, no character appendString would escape), token is the string
// as read, quotes included; else nil.
func (s *scanner) str() (str, token []byte, err error) {
	s.i++ // '"'
	start := s.i
	// Fast path: no escape, nothing to escape.
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			s.i++
			return s.b[start : s.i-1 : s.i-1], s.b[start-1 : s.i : s.i], nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
				break
			}
			s.i += size
			continue
		}
		s.i++
	}
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil, nil
		case c < 0x20:
			return nil, nil, errSyntax
		case c == '\\':
			if s.i+1 >= len(s.b) {
				return nil, nil, errSyntax
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
					return nil, nil, errSyntax
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
				return nil, nil, errSyntax
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
	return nil, nil, errSyntax
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

// appendObject writes ms (sorted) as an object, leaving out the keys in
// drop, and the empty members when prune.
func appendObject(dst []byte, ms []member, drop []string, prune bool) []byte {
	dst = append(dst, '{')
	n := 0
	for _, m := range ms {
		if prune && m.empty || dropped(drop, m.key) {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}')
}

func dropped(drop []string, key []byte) bool {
	for _, d := range drop {
		if string(key) == d {
			return true
		}
	}
	return false
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
