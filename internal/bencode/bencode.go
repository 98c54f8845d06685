// Package bencode reads and writes the bencoding of BEP 3 (integers, byte
// strings, lists, dictionaries) without reflection, for wire codecs that must
// run at packet rate: the DHT's KRPC messages and the peer wire's extension
// dictionaries.
//
// Reading is strict and bounded: integers and string lengths must be in
// canonical form (no leading zeros, no "-0"), a string may not claim more
// bytes than remain, and nesting is limited by the caller. Strings returned by
// the readers alias the input; nothing is copied.
//
// The package does no I/O and must never allocate in proportion to a length
// the input claims: every length is checked against the bytes actually
// present before it is used.
package bencode

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrSyntax means the bytes are not bencoding.
	ErrSyntax = errors.New("bencode: syntax error")
	// ErrTruncated means the input ends inside a value.
	ErrTruncated = errors.New("bencode: truncated")
	// ErrNonCanonical means an integer or length has a leading zero or is "-0".
	ErrNonCanonical = errors.New("bencode: non-canonical number")
	// ErrTooDeep means lists and dictionaries nest deeper than allowed.
	ErrTooDeep = errors.New("bencode: nesting too deep")
	// ErrIntRange means an integer does not fit in 64 bits.
	ErrIntRange = errors.New("bencode: integer out of range")
	// ErrTrailing means bytes follow a complete top-level value.
	ErrTrailing = errors.New("bencode: trailing data")
)

func errAt(off int, err error) error { return fmt.Errorf("offset %d: %w", off, err) }

// Int reads the integer ("i42e") that starts at b[i] and returns it with the
// index just after it.
func Int(b []byte, i int) (int64, int, error) {
	if i >= len(b) {
		return 0, i, errAt(i, ErrTruncated)
	}
	if b[i] != 'i' {
		return 0, i, errAt(i, ErrSyntax)
	}
	start := i
	i++
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	digits := i
	var u uint64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-digits >= 19 { // 19 digits always fit in uint64; a 20th may not
			return 0, start, errAt(start, ErrIntRange)
		}
		u = u*10 + uint64(b[i]-'0')
	}
	if i >= len(b) {
		return 0, start, errAt(start, ErrTruncated)
	}
	if b[i] != 'e' || i == digits {
		return 0, start, errAt(i, ErrSyntax)
	}
	if b[digits] == '0' && (i-digits > 1 || neg) {
		return 0, start, errAt(start, ErrNonCanonical)
	}
	if neg {
		if u > 1<<63 {
			return 0, start, errAt(start, ErrIntRange)
		}
		return -int64(u), i + 1, nil
	}
	if u > 1<<63-1 {
		return 0, start, errAt(start, ErrIntRange)
	}
	return int64(u), i + 1, nil
}

// String reads the byte string ("4:spam") that starts at b[i] and returns it,
// aliasing b, with the index just after it.
func String(b []byte, i int) ([]byte, int, error) {
	if i >= len(b) {
		return nil, i, errAt(i, ErrTruncated)
	}
	start := i
	n := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start >= 9 { // a billion bytes is more than any input we are given
			return nil, start, errAt(start, ErrIntRange)
		}
		n = n*10 + int(b[i]-'0')
	}
	if i == start {
		return nil, start, errAt(start, ErrSyntax)
	}
	if i >= len(b) {
		return nil, start, errAt(start, ErrTruncated)
	}
	if b[i] != ':' {
		return nil, start, errAt(i, ErrSyntax)
	}
	if b[start] == '0' && i-start > 1 {
		return nil, start, errAt(start, ErrNonCanonical)
	}
	i++
	if n > len(b)-i {
		return nil, start, errAt(start, ErrTruncated)
	}
	return b[i : i+n : i+n], i + n, nil
}

// Skip checks the value that starts at b[i] and returns the index just after
// it. Lists and dictionaries may nest at most depth levels (a dictionary
// holding a list is two levels).
func Skip(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errAt(i, ErrTruncated)
	}
	switch c := b[i]; {
	case c == 'i':
		_, next, err := Int(b, i)
		return next, err
	case c >= '0' && c <= '9':
		_, next, err := String(b, i)
		return next, err
	case c == 'l' || c == 'd':
		if depth <= 0 {
			return i, errAt(i, ErrTooDeep)
		}
		dict := c == 'd'
		i++
		for {
			if i >= len(b) {
				return i, errAt(i, ErrTruncated)
			}
			if b[i] == 'e' {
				return i + 1, nil
			}
			var err error
			if dict {
				if _, i, err = String(b, i); err != nil {
					return i, err
				}
			}
			if i, err = Skip(b, i, depth-1); err != nil {
				return i, err
			}
		}
	default:
		return i, errAt(i, ErrSyntax)
	}
}

// Valid reports whether b holds exactly one bencoded value nested at most
// depth levels, with nothing after it.
func Valid(b []byte, depth int) error {
	next, err := Skip(b, 0, depth)
	if err != nil {
		return err
	}
	if next != len(b) {
		return errAt(next, ErrTrailing)
	}
	return nil
}

// AppendInt appends the encoding of v.
func AppendInt(dst []byte, v int64) []byte {
	dst = append(dst, 'i')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, 'e')
}

// AppendString appends the encoding of the byte string s.
func AppendString(dst, s []byte) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// AppendStr appends the encoding of s; it saves a conversion for keys.
func AppendStr(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// AppendStringHeader appends only the length prefix of a byte string of n
// bytes, for a caller that writes the n bytes itself (compact peer lists).
func AppendStringHeader(dst []byte, n int) []byte {
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, ':')
}
