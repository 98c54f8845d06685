package bencode

import (
	"fmt"
)

// Pair is one key and value of a dictionary, in the order they were read.
type Pair struct {
	Key   []byte
	Value any
}

// Dict is a dictionary as an ordered list of pairs. Order is kept so that a
// value read and written again gives back the same bytes.
type Dict []Pair

// Get returns the value of key and whether it was present.
func (d Dict) Get(key string) (any, bool) {
	for _, p := range d {
		if string(p.Key) == key {
			return p.Value, true
		}
	}
	return nil, false
}

// Decode reads exactly one value from b into int64, []byte, []any or Dict,
// nesting at most depth levels. It allocates and is meant for tests, tools
// and diagnostics, not for the packet path; strings alias b.
func Decode(b []byte, depth int) (any, error) {
	v, next, err := decodeAt(b, 0, depth)
	if err != nil {
		return nil, err
	}
	if next != len(b) {
		return nil, errAt(next, ErrTrailing)
	}
	return v, nil
}

func decodeAt(b []byte, i, depth int) (any, int, error) {
	if i >= len(b) {
		return nil, i, errAt(i, ErrTruncated)
	}
	switch c := b[i]; {
	case c == 'i':
		return Int(b, i)
	case c >= '0' && c <= '9':
		return String(b, i)
	case c == 'l':
		if depth <= 0 {
			return nil, i, errAt(i, ErrTooDeep)
		}
		list := []any{}
		i++
		for {
			if i >= len(b) {
				return nil, i, errAt(i, ErrTruncated)
			}
			if b[i] == 'e' {
				return list, i + 1, nil
			}
			v, next, err := decodeAt(b, i, depth-1)
			if err != nil {
				return nil, next, err
			}
			list = append(list, v)
			i = next
		}
	case c == 'd':
		if depth <= 0 {
			return nil, i, errAt(i, ErrTooDeep)
		}
		dict := Dict{}
		i++
		for {
			if i >= len(b) {
				return nil, i, errAt(i, ErrTruncated)
			}
			if b[i] == 'e' {
				return dict, i + 1, nil
			}
			k, next, err := String(b, i)
			if err != nil {
				return nil, next, err
			}
			v, next, err := decodeAt(b, next, depth-1)
			if err != nil {
				return nil, next, err
			}
			dict = append(dict, Pair{Key: k, Value: v})
			i = next
		}
	default:
		return nil, i, errAt(i, ErrSyntax)
	}
}

// Append appends the encoding of v, which must be built of int64, int,
// []byte, string, []any and Dict. Dictionary pairs are written in the order
// given.
func Append(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int64:
		return AppendInt(dst, v), nil
	case int:
		return AppendInt(dst, int64(v)), nil
	case []byte:
		return AppendString(dst, v), nil
	case string:
		return AppendStr(dst, v), nil
	case []any:
		dst = append(dst, 'l')
		for _, e := range v {
			var err error
			if dst, err = Append(dst, e); err != nil {
				return dst, err
			}
		}
		return append(dst, 'e'), nil
	case Dict:
		dst = append(dst, 'd')
		for _, p := range v {
			dst = AppendString(dst, p.Key)
			var err error
			if dst, err = Append(dst, p.Value); err != nil {
				return dst, err
			}
		}
		return append(dst, 'e'), nil
	default:
		return dst, fmt.Errorf("bencode: cannot encode %T: %w", v, ErrSyntax)
	}
}
