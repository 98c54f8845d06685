package krpc

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// AppendTo appends the bencoding of m to dst and returns the extended
// buffer. Keys are written in sorted order, as BEP 3 requires. Only the
// part of m that its Kind uses is written: Args for a query, Return for a
// response, Error for an error. Optional fields are written when set (non-
// zero); for a query, the arguments written are those of its Method.
//
// With a dst of enough capacity it does not allocate.
func (m *Msg) AppendTo(dst []byte) ([]byte, error) {
	if m.Kind != KindQuery && m.Kind != KindResponse && m.Kind != KindError {
		return dst, fmt.Errorf("krpc: message kind %v: %w", m.Kind, ErrEncode)
	}
	var method string
	if m.Kind == KindQuery {
		if m.Method != MethodUnknown && int(m.Method) < len(methodNames) {
			method = methodNames[m.Method]
		} else if len(m.MethodName) == 0 {
			return dst, fmt.Errorf("krpc: query with no method: %w", ErrEncode)
		}
	}
	dst = append(dst, 'd')
	if m.Kind == KindQuery {
		dst = append(dst, "1:a"...)
		dst = m.A.appendTo(dst, m.Method)
	}
	if m.Kind == KindError {
		dst = append(dst, "1:el"...)
		dst = bencode.AppendInt(dst, int64(m.E.Code))
		dst = bencode.AppendString(dst, m.E.Msg)
		dst = append(dst, 'e')
	}
	if m.IP.IsValid() {
		dst = append(dst, "2:ip"...)
		dst = appendCompactAddr(dst, m.IP)
	}
	if m.Kind == KindQuery {
		dst = append(dst, "1:q"...)
		if method != "" {
			dst = bencode.AppendStr(dst, method)
		} else {
			dst = bencode.AppendString(dst, m.MethodName)
		}
	}
	if m.Kind == KindResponse {
		var err error
		dst = append(dst, "1:r"...)
		if dst, err = m.R.appendTo(dst); err != nil {
			return dst, err
		}
	}
	if m.RO {
		dst = append(dst, "2:roi1e"...)
	}
	dst = append(dst, "1:t"...)
	dst = bencode.AppendString(dst, m.T)
	if len(m.V) > 0 {
		dst = append(dst, "1:v"...)
		dst = bencode.AppendString(dst, m.V)
	}
	dst = append(dst, "1:y1:"...)
	dst = append(dst, byte(m.Kind))
	return append(dst, 'e'), nil
}

func (a *Args) appendTo(dst []byte, method Method) []byte {
	dst = append(dst, "d2:id20:"...)
	dst = append(dst, a.ID[:]...)
	switch method {
	case MethodFindNode, MethodSampleInfohashes:
		dst = append(dst, "6:target20:"...)
		dst = append(dst, a.Target[:]...)
		dst = appendWant(dst, a.Want)
	case MethodGetPeers:
		dst = append(dst, "9:info_hash20:"...)
		dst = append(dst, a.InfoHash[:]...)
		dst = appendWant(dst, a.Want)
	case MethodAnnouncePeer:
		if a.ImpliedPort {
			dst = append(dst, "12:implied_porti1e"...)
		}
		dst = append(dst, "9:info_hash20:"...)
		dst = append(dst, a.InfoHash[:]...)
		if len(a.Name) > 0 {
			dst = append(dst, "1:n"...)
			dst = bencode.AppendString(dst, a.Name)
		}
		dst = append(dst, "4:port"...)
		dst = bencode.AppendInt(dst, int64(a.Port))
		if a.Seed {
			dst = append(dst, "4:seedi1e"...)
		}
		dst = append(dst, "5:token"...)
		dst = bencode.AppendString(dst, a.Token)
	}
	return append(dst, 'e')
}

func appendWant(dst []byte, w Want) []byte {
	if w == 0 {
		return dst
	}
	dst = append(dst, "4:wantl"...)
	if w&WantN4 != 0 {
		dst = append(dst, "2:n4"...)
	}
	if w&WantN6 != 0 {
		dst = append(dst, "2:n6"...)
	}
	return append(dst, 'e')
}

func (r *Return) appendTo(dst []byte) ([]byte, error) {
	dst = append(dst, "d2:id20:"...)
	dst = append(dst, r.ID[:]...)
	if r.HasInterval {
		dst = append(dst, "8:interval"...)
		dst = bencode.AppendInt(dst, int64(r.Interval))
	}
	if len(r.Nodes) > 0 {
		dst = append(dst, "5:nodes"...)
		dst = bencode.AppendStringHeader(dst, 26*len(r.Nodes))
		for _, n := range r.Nodes {
			a := n.Addr.Addr().Unmap()
			if !a.Is4() {
				return dst, fmt.Errorf("krpc: node %v in \"nodes\" is not IPv4: %w", n.Addr, ErrEncode)
			}
			dst = append(dst, n.ID[:]...)
			a4 := a.As4()
			dst = append(dst, a4[:]...)
			dst = binary.BigEndian.AppendUint16(dst, n.Addr.Port())
		}
	}
	if len(r.Nodes6) > 0 {
		dst = append(dst, "6:nodes6"...)
		dst = bencode.AppendStringHeader(dst, 38*len(r.Nodes6))
		for _, n := range r.Nodes6 {
			if !n.Addr.IsValid() {
				return dst, fmt.Errorf("krpc: invalid node address in \"nodes6\": %w", ErrEncode)
			}
			dst = append(dst, n.ID[:]...)
			a16 := n.Addr.Addr().As16()
			dst = append(dst, a16[:]...)
			dst = binary.BigEndian.AppendUint16(dst, n.Addr.Port())
		}
	}
	if r.HasNum {
		dst = append(dst, "3:num"...)
		dst = bencode.AppendInt(dst, int64(r.Num))
	}
	if len(r.Samples) > 0 {
		dst = append(dst, "7:samples"...)
		dst = bencode.AppendStringHeader(dst, 20*len(r.Samples))
		for i := range r.Samples {
			dst = append(dst, r.Samples[i][:]...)
		}
	}
	if len(r.Token) > 0 {
		dst = append(dst, "5:token"...)
		dst = bencode.AppendString(dst, r.Token)
	}
	if len(r.Values) > 0 {
		dst = append(dst, "6:valuesl"...)
		for _, v := range r.Values {
			if !v.IsValid() {
				return dst, fmt.Errorf("krpc: invalid peer address in \"values\": %w", ErrEncode)
			}
			dst = appendCompactAddr(dst, v)
		}
		dst = append(dst, 'e')
	}
	return append(dst, 'e'), nil
}

// appendCompactAddr appends a compact address as a bencoded string: 6 bytes
// for IPv4 (or IPv4-mapped), 18 for IPv6.
func appendCompactAddr(dst []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	if a.Is4() {
		dst = append(dst, "6:"...)
		b := a.As4()
		dst = append(dst, b[:]...)
	} else {
		dst = append(dst, "18:"...)
		b := a.As16()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}
