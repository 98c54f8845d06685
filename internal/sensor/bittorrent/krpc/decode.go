package krpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// wrapBencode turns an error of the bencode readers into one that names the
// key and wraps both the krpc sentinel and the bencode one.
func wrapBencode(key string, err error) error {
	switch {
	case errors.Is(err, bencode.ErrTruncated), errors.Is(err, bencode.ErrTooDeep):
		return fmt.Errorf("krpc: %s: %w", key, err)
	default:
		return fmt.Errorf("krpc: %s: %w: %w", key, ErrSyntax, err)
	}
}

func badField(key, format string, args ...any) error {
	return fmt.Errorf("krpc: %q: %s: %w", key, fmt.Sprintf(format, args...), ErrBadField)
}

func duplicate(key string) error { return fmt.Errorf("krpc: %q: %w", key, ErrDuplicateKey) }

func missing(key string) error { return fmt.Errorf("krpc: %q: %w", key, ErrMissingField) }

// Top-level keys, for duplicate detection.
const (
	keyT uint16 = 1 << iota
	keyY
	keyQ
	keyA
	keyR
	keyE
	keyV
	keyIP
	keyRO
)

// Decode reads one message from b into m, replacing what m held. The byte
// fields of m alias b; copy them before reusing b.
func (m *Msg) Decode(b []byte) error {
	m.Reset()
	if len(b) > MaxMessageSize {
		return fmt.Errorf("krpc: %d-byte datagram, limit %d: %w", len(b), MaxMessageSize, ErrTooLarge)
	}
	if len(b) == 0 || b[0] != 'd' {
		return fmt.Errorf("krpc: datagram does not start with a dictionary: %w", ErrNotKRPC)
	}
	var seen, aSeen uint16
	i := 1
	for {
		if i >= len(b) {
			return fmt.Errorf("krpc: message dictionary: %w", ErrTruncated)
		}
		if b[i] == 'e' {
			i++
			break
		}
		key, next, err := bencode.String(b, i)
		if err != nil {
			return wrapBencode("message key", err)
		}
		i = next
		var bit uint16
		switch string(key) {
		case "t":
			bit = keyT
			if m.T, i, err = readString(b, i, "t"); err != nil {
				return err
			}
			if len(m.T) > MaxTransactionIDLen {
				return badField("t", "%d bytes, limit %d", len(m.T), MaxTransactionIDLen)
			}
		case "y":
			bit = keyY
			var y []byte
			if y, i, err = readString(b, i, "y"); err != nil {
				return err
			}
			if len(y) != 1 || (y[0] != 'q' && y[0] != 'r' && y[0] != 'e') {
				return fmt.Errorf("krpc: \"y\" is %q: %w", y, ErrNotKRPC)
			}
			m.Kind = Kind(y[0])
		case "q":
			bit = keyQ
			if m.MethodName, i, err = readString(b, i, "q"); err != nil {
				return err
			}
			m.Method = methodFromName(m.MethodName)
		case "a":
			bit = keyA
			if i, aSeen, err = m.A.decode(b, i); err != nil {
				return err
			}
		case "r":
			bit = keyR
			if i, err = m.R.decode(b, i); err != nil {
				return err
			}
		case "e":
			bit = keyE
			if i, err = m.E.decode(b, i); err != nil {
				return err
			}
		case "v":
			bit = keyV
			if m.V, i, err = readString(b, i, "v"); err != nil {
				return err
			}
		case "ip":
			bit = keyIP
			var s []byte
			if s, i, err = readString(b, i, "ip"); err != nil {
				return err
			}
			if m.IP, err = compactAddr("ip", s); err != nil {
				return err
			}
		case "ro":
			bit = keyRO
			var v int64
			if v, i, err = readInt(b, i, "ro", math.MinInt64, math.MaxInt64); err != nil {
				return err
			}
			m.RO = v != 0
		default:
			// BEP 5: unknown keys are ignored, so that the protocol can grow.
			if i, err = bencode.Skip(b, i, MaxDepth-1); err != nil {
				return wrapBencode(fmt.Sprintf("key %q", key), err)
			}
		}
		if seen&bit != 0 {
			return duplicate(string(key))
		}
		seen |= bit
	}
	if i != len(b) {
		return fmt.Errorf("krpc: %d bytes after the message: %w", len(b)-i, ErrTrailingData)
	}
	if seen&keyY == 0 {
		return fmt.Errorf("krpc: no \"y\": %w", ErrNotKRPC)
	}
	if seen&keyT == 0 {
		return missing("t")
	}
	return m.normalize(seen, aSeen)
}

// normalize checks that the keys a message's kind and method require are
// present, and clears whatever the kind or method does not use, so that a
// decoded message encodes to the same message.
func (m *Msg) normalize(seen, aSeen uint16) error {
	switch m.Kind {
	case KindQuery:
		if seen&keyQ == 0 {
			return missing("q")
		}
		if seen&keyA == 0 {
			return missing("a")
		}
		m.R, m.E = Return{Nodes: m.R.Nodes[:0], Nodes6: m.R.Nodes6[:0], Values: m.R.Values[:0], Samples: m.R.Samples[:0]}, Error{}
		return m.A.normalize(m.Method, aSeen)
	case KindResponse:
		if seen&keyR == 0 {
			return missing("r")
		}
		m.Method, m.MethodName, m.A, m.E = MethodUnknown, nil, Args{}, Error{}
		if len(m.R.Token) == 0 {
			m.R.Token = nil
		}
	case KindError:
		if seen&keyE == 0 {
			return missing("e")
		}
		m.Method, m.MethodName, m.A = MethodUnknown, nil, Args{}
		m.R = Return{Nodes: m.R.Nodes[:0], Nodes6: m.R.Nodes6[:0], Values: m.R.Values[:0], Samples: m.R.Samples[:0]}
	}
	if len(m.V) == 0 {
		m.V = nil
	}
	return nil
}

// Argument keys, for duplicate detection and required-field checks.
const (
	argID uint16 = 1 << iota
	argTarget
	argInfoHash
	argToken
	argPort
	argImpliedPort
	argName
	argSeed
	argWant
)

func (a *Args) decode(b []byte, i int) (int, uint16, error) {
	if i >= len(b) {
		return i, 0, fmt.Errorf("krpc: \"a\": %w", ErrTruncated)
	}
	if b[i] != 'd' {
		return i, 0, badField("a", "not a dictionary")
	}
	i++
	var seen uint16
	for {
		if i >= len(b) {
			return i, seen, fmt.Errorf("krpc: \"a\": %w", ErrTruncated)
		}
		if b[i] == 'e' {
			return i + 1, seen, nil
		}
		key, next, err := bencode.String(b, i)
		if err != nil {
			return next, seen, wrapBencode(`"a" key`, err)
		}
		i = next
		var bit uint16
		switch string(key) {
		case "id":
			bit = argID
			i, err = readID(b, i, "id", &a.ID)
		case "target":
			bit = argTarget
			i, err = readID(b, i, "target", &a.Target)
		case "info_hash":
			bit = argInfoHash
			i, err = readID(b, i, "info_hash", &a.InfoHash)
		case "token":
			bit = argToken
			if a.Token, i, err = readString(b, i, "token"); err != nil {
				return i, seen, err
			}
			if len(a.Token) > MaxTokenLen {
				return i, seen, badField("token", "%d bytes, limit %d", len(a.Token), MaxTokenLen)
			}
		case "port":
			bit = argPort
			var v int64
			if v, i, err = readInt(b, i, "port", 0, 65535); err == nil {
				a.Port = uint16(v)
			}
		case "implied_port":
			bit = argImpliedPort
			var v int64
			v, i, err = readInt(b, i, "implied_port", -1<<31, 1<<31-1)
			a.ImpliedPort = v != 0
		case "n":
			bit = argName
			if a.Name, i, err = readString(b, i, "n"); err != nil {
				return i, seen, err
			}
		case "seed":
			bit = argSeed
			var v int64
			v, i, err = readInt(b, i, "seed", -1<<31, 1<<31-1)
			a.Seed = v != 0
		case "want":
			bit = argWant
			i, err = a.decodeWant(b, i)
		default:
			i, err = bencode.Skip(b, i, MaxDepth-2)
			if err != nil {
				err = wrapBencode(fmt.Sprintf("\"a\" key %q", key), err)
			}
		}
		if err != nil {
			return i, seen, err
		}
		if seen&bit != 0 {
			return i, seen, duplicate(string(key))
		}
		seen |= bit
	}
}

func (a *Args) decodeWant(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"want\": %w", ErrTruncated)
	}
	if b[i] != 'l' {
		return i, badField("want", "not a list")
	}
	i++
	for n := 0; ; n++ {
		if i >= len(b) {
			return i, fmt.Errorf("krpc: \"want\": %w", ErrTruncated)
		}
		if b[i] == 'e' {
			return i + 1, nil
		}
		if n >= MaxListLen {
			return i, fmt.Errorf("krpc: \"want\": more than %d entries: %w", MaxListLen, ErrTooLarge)
		}
		if b[i] < '0' || b[i] > '9' {
			return i, badField("want", "entry is not a string")
		}
		s, next, err := bencode.String(b, i)
		if err != nil {
			return next, wrapBencode(`"want"`, err)
		}
		i = next
		// Unknown families are ignored, as BEP 32 asks.
		switch string(s) {
		case "n4":
			a.Want |= WantN4
		case "n6":
			a.Want |= WantN6
		}
	}
}

// normalize checks the arguments a method requires and clears those it
// does not use.
func (a *Args) normalize(method Method, seen uint16) error {
	if seen&argID == 0 {
		return missing("id")
	}
	var keep uint16
	switch method {
	case MethodPing, MethodUnknown:
		keep = argID
	case MethodFindNode, MethodSampleInfohashes:
		if seen&argTarget == 0 {
			return missing("target")
		}
		keep = argID | argTarget | argWant
	case MethodGetPeers:
		if seen&argInfoHash == 0 {
			return missing("info_hash")
		}
		keep = argID | argInfoHash | argWant
	case MethodAnnouncePeer:
		if seen&argInfoHash == 0 {
			return missing("info_hash")
		}
		if seen&argToken == 0 {
			return missing("token")
		}
		if seen&argPort == 0 && !a.ImpliedPort {
			return missing("port")
		}
		keep = argID | argInfoHash | argToken | argPort | argImpliedPort | argName | argSeed
	}
	if keep&argTarget == 0 {
		a.Target = ID{}
	}
	if keep&argInfoHash == 0 {
		a.InfoHash = ID{}
	}
	if keep&argToken == 0 || len(a.Token) == 0 {
		a.Token = nil
	}
	if keep&argPort == 0 {
		a.Port = 0
	}
	if keep&argImpliedPort == 0 {
		a.ImpliedPort = false
	}
	if keep&argName == 0 || len(a.Name) == 0 {
		a.Name = nil
	}
	if keep&argSeed == 0 {
		a.Seed = false
	}
	if keep&argWant == 0 {
		a.Want = 0
	}
	return nil
}

// Return keys, for duplicate detection.
const (
	retID uint16 = 1 << iota
	retNodes
	retNodes6
	retValues
	retToken
	retSamples
	retNum
	retInterval
)

func (r *Return) decode(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"r\": %w", ErrTruncated)
	}
	if b[i] != 'd' {
		return i, badField("r", "not a dictionary")
	}
	i++
	var seen uint16
	for {
		if i >= len(b) {
			return i, fmt.Errorf("krpc: \"r\": %w", ErrTruncated)
		}
		if b[i] == 'e' {
			if seen&retID == 0 {
				return i, missing("id")
			}
			return i + 1, nil
		}
		key, next, err := bencode.String(b, i)
		if err != nil {
			return next, wrapBencode(`"r" key`, err)
		}
		i = next
		var bit uint16
		var s []byte
		switch string(key) {
		case "id":
			bit = retID
			i, err = readID(b, i, "id", &r.ID)
		case "nodes":
			bit = retNodes
			if s, i, err = readString(b, i, "nodes"); err != nil {
				return i, err
			}
			r.Nodes, err = appendNodes(r.Nodes, "nodes", s, 26)
		case "nodes6":
			bit = retNodes6
			if s, i, err = readString(b, i, "nodes6"); err != nil {
				return i, err
			}
			r.Nodes6, err = appendNodes(r.Nodes6, "nodes6", s, 38)
		case "values":
			bit = retValues
			i, err = r.decodeValues(b, i)
		case "token":
			bit = retToken
			if r.Token, i, err = readString(b, i, "token"); err != nil {
				return i, err
			}
			if len(r.Token) > MaxTokenLen {
				return i, badField("token", "%d bytes, limit %d", len(r.Token), MaxTokenLen)
			}
		case "samples":
			bit = retSamples
			if s, i, err = readString(b, i, "samples"); err != nil {
				return i, err
			}
			if len(s)%20 != 0 {
				return i, badField("samples", "%d bytes, not a multiple of 20", len(s))
			}
			for j := 0; j < len(s); j += 20 {
				r.Samples = append(r.Samples, ID(s[j:j+20]))
			}
		case "num":
			bit = retNum
			var v int64
			v, i, err = readInt(b, i, "num", 0, 1<<31-1)
			r.Num, r.HasNum = int(v), true
		case "interval":
			bit = retInterval
			var v int64
			v, i, err = readInt(b, i, "interval", 0, 1<<31-1)
			r.Interval, r.HasInterval = int(v), true
		default:
			i, err = bencode.Skip(b, i, MaxDepth-2)
			if err != nil {
				err = wrapBencode(fmt.Sprintf("\"r\" key %q", key), err)
			}
		}
		if err != nil {
			return i, err
		}
		if seen&bit != 0 {
			return i, duplicate(string(key))
		}
		seen |= bit
	}
}

func (r *Return) decodeValues(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"values\": %w", ErrTruncated)
	}
	if b[i] != 'l' {
		return i, badField("values", "not a list")
	}
	i++
	for n := 0; ; n++ {
		if i >= len(b) {
			return i, fmt.Errorf("krpc: \"values\": %w", ErrTruncated)
		}
		if b[i] == 'e' {
			return i + 1, nil
		}
		if n >= MaxListLen {
			return i, fmt.Errorf("krpc: \"values\": more than %d peers: %w", MaxListLen, ErrTooLarge)
		}
		if b[i] < '0' || b[i] > '9' {
			return i, badField("values", "entry %d is not a string", n)
		}
		s, next, err := bencode.String(b, i)
		if err != nil {
			return next, wrapBencode(`"values"`, err)
		}
		i = next
		ap, err := compactAddr("values", s)
		if err != nil {
			return i, err
		}
		r.Values = append(r.Values, ap)
	}
}

func (e *Error) decode(b []byte, i int) (int, error) {
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"e\": %w", ErrTruncated)
	}
	if b[i] != 'l' {
		return i, badField("e", "not a list")
	}
	code, i, err := readInt(b, i+1, "e", -1<<31, 1<<31-1)
	if err != nil {
		return i, err
	}
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"e\": %w", ErrTruncated)
	}
	if b[i] < '0' || b[i] > '9' {
		return i, badField("e", "message is not a string")
	}
	msg, i, err := bencode.String(b, i)
	if err != nil {
		return i, wrapBencode(`"e"`, err)
	}
	if i >= len(b) {
		return i, fmt.Errorf("krpc: \"e\": %w", ErrTruncated)
	}
	if b[i] != 'e' {
		return i, badField("e", "more than a code and a message")
	}
	e.Code, e.Msg = int(code), msg
	return i + 1, nil
}

func readID(b []byte, i int, key string, dst *ID) (int, error) {
	if i < len(b) && (b[i] < '0' || b[i] > '9') {
		return i, badField(key, "not a string")
	}
	s, next, err := bencode.String(b, i)
	if err != nil {
		return next, wrapBencode(`"`+key+`"`, err)
	}
	if len(s) != 20 {
		return next, badField(key, "%d bytes, want 20", len(s))
	}
	*dst = ID(s)
	return next, nil
}

func readString(b []byte, i int, key string) ([]byte, int, error) {
	if i < len(b) && (b[i] < '0' || b[i] > '9') {
		return nil, i, badField(key, "not a string")
	}
	s, next, err := bencode.String(b, i)
	if err != nil {
		return nil, next, wrapBencode(`"`+key+`"`, err)
	}
	return s, next, nil
}

func readInt(b []byte, i int, key string, min, max int64) (int64, int, error) {
	if i < len(b) && b[i] != 'i' {
		return 0, i, badField(key, "not an integer")
	}
	v, next, err := bencode.Int(b, i)
	if err != nil {
		return 0, next, wrapBencode(`"`+key+`"`, err)
	}
	if v < min || v > max {
		return 0, next, badField(key, "%d out of range [%d, %d]", v, min, max)
	}
	return v, next, nil
}

// compactAddr decodes a compact peer address: 6 bytes for IPv4, 18 for IPv6.
// IPv4-mapped IPv6 addresses are unmapped, so that a peer has one address
// whichever form a node chose.
func compactAddr(key string, s []byte) (netip.AddrPort, error) {
	switch len(s) {
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[:4])), binary.BigEndian.Uint16(s[4:])), nil
	case 18:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(s[:16])).Unmap(), binary.BigEndian.Uint16(s[16:])), nil
	}
	return netip.AddrPort{}, badField(key, "compact address of %d bytes, want 6 or 18", len(s))
}

func appendNodes(dst []NodeInfo, key string, s []byte, size int) ([]NodeInfo, error) {
	if len(s)%size != 0 {
		return dst, badField(key, "%d bytes, not a multiple of %d", len(s), size)
	}
	for j := 0; j < len(s); j += size {
		e := s[j : j+size]
		n := NodeInfo{ID: ID(e[:20])}
		if size == 26 {
			n.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte(e[20:24])), binary.BigEndian.Uint16(e[24:]))
		} else {
			n.Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte(e[20:36])).Unmap(), binary.BigEndian.Uint16(e[36:]))
		}
		dst = append(dst, n)
	}
	return dst, nil
}
