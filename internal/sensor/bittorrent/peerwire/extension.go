package peerwire

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// Extension names of the messages this package decodes.
const (
	ExtPEX      = "ut_pex"      // BEP 11
	ExtMetadata = "ut_metadata" // BEP 9
)

// ExtHandshakeID is the extended message id of the extension handshake.
const ExtHandshakeID = 0

// MetadataPieceLen is the size of a metadata piece (BEP 9); only the last
// piece may be shorter.
const MetadataPieceLen = 16 << 10

// maxExtDepth bounds nesting inside extension dictionaries (unknown keys).
const maxExtDepth = 8

func extErr(what, format string, args ...any) error {
	return fmt.Errorf("peerwire: %s: %s: %w", what, fmt.Sprintf(format, args...), ErrBadExtension)
}

// walkDict calls f for each key of the dictionary at b[i]; f reads the
// value at b[j] and returns the index after it. Duplicate keys are refused.
func walkDict(what string, b []byte, i int, f func(key string, j int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != 'd' {
		return i, extErr(what, "not a dictionary")
	}
	i++
	var seen []string
	for {
		if i >= len(b) {
			return i, extErr(what, "truncated")
		}
		if b[i] == 'e' {
			return i + 1, nil
		}
		k, next, err := bencode.String(b, i)
		if err != nil {
			return next, extErr(what, "key: %v", err)
		}
		key := string(k)
		if slices.Contains(seen, key) {
			return next, extErr(what, "duplicate key %q", key)
		}
		seen = append(seen, key)
		if i, err = f(key, next); err != nil {
			return i, err
		}
	}
}

func extInt(what string, b []byte, i int, min, max int64) (int64, int, error) {
	if i < len(b) && b[i] != 'i' {
		return 0, i, extErr(what, "not an integer")
	}
	v, next, err := bencode.Int(b, i)
	if err != nil {
		return 0, next, extErr(what, "%v", err)
	}
	if v < min || v > max {
		return 0, next, extErr(what, "%d out of range [%d, %d]", v, min, max)
	}
	return v, next, nil
}

func extString(what string, b []byte, i int) ([]byte, int, error) {
	if i < len(b) && (b[i] < '0' || b[i] > '9') {
		return nil, i, extErr(what, "not a string")
	}
	s, next, err := bencode.String(b, i)
	if err != nil {
		return nil, next, extErr(what, "%v", err)
	}
	return s, next, nil
}

func skipValue(what string, b []byte, i int) (int, error) {
	next, err := bencode.Skip(b, i, maxExtDepth)
	if err != nil {
		return next, extErr(what, "%v", err)
	}
	return next, nil
}

// ExtHandshake is the BEP 10 extension handshake (extended id 0). Zero
// fields were absent.
type ExtHandshake struct {
	// M maps extension names to the ids the sender wants to receive them
	// under; 0 means the sender disabled the extension.
	M map[string]uint8
	// Port is the sender's listen port ("p").
	Port uint16
	// Client is the sender's client name and version ("v"), e.g.
	// "Transmission 3.00".
	Client string
	// YourIP is the receiver's address as the sender sees it ("yourip").
	YourIP netip.Addr
	// IPv4 and IPv6 are addresses the sender says it has ("ipv4", "ipv6").
	IPv4, IPv6 netip.Addr
	// ReqQ is how many outstanding requests the sender accepts ("reqq").
	ReqQ int
	// MetadataSize is the size of the info dictionary (BEP 9).
	MetadataSize int
	// UploadOnly says the sender is a seed or partial seed (BEP 21).
	UploadOnly bool
}

// ParseExtHandshake decodes an extension handshake payload (after the
// extended id byte). Unknown keys are ignored.
func ParseExtHandshake(p []byte) (ExtHandshake, error) {
	var h ExtHandshake
	end, err := walkDict("extension handshake", p, 0, func(key string, i int) (int, error) {
		switch key {
		case "m":
			h.M = map[string]uint8{}
			return walkDict("extension handshake m", p, i, func(name string, j int) (int, error) {
				v, next, err := extInt("extension handshake m."+name, p, j, 0, 255)
				h.M[name] = uint8(v)
				return next, err
			})
		case "p":
			v, next, err := extInt("extension handshake p", p, i, 0, 65535)
			h.Port = uint16(v)
			return next, err
		case "v":
			s, next, err := extString("extension handshake v", p, i)
			h.Client = string(s)
			return next, err
		case "yourip":
			s, next, err := extString("extension handshake yourip", p, i)
			if err != nil {
				return next, err
			}
			a, ok := netip.AddrFromSlice(s)
			if !ok {
				return next, extErr("extension handshake yourip", "%d bytes, want 4 or 16", len(s))
			}
			h.YourIP = a.Unmap()
			return next, nil
		case "ipv4", "ipv6":
			s, next, err := extString("extension handshake "+key, p, i)
			if err != nil {
				return next, err
			}
			want := 4
			if key == "ipv6" {
				want = 16
			}
			if len(s) != want {
				return next, extErr("extension handshake "+key, "%d bytes, want %d", len(s), want)
			}
			a, _ := netip.AddrFromSlice(s)
			if key == "ipv4" {
				h.IPv4 = a
			} else {
				h.IPv6 = a
			}
			return next, nil
		case "reqq":
			v, next, err := extInt("extension handshake reqq", p, i, 0, 1<<31-1)
			h.ReqQ = int(v)
			return next, err
		case "metadata_size":
			v, next, err := extInt("extension handshake metadata_size", p, i, 0, 1<<31-1)
			h.MetadataSize = int(v)
			return next, err
		case "upload_only":
			v, next, err := extInt("extension handshake upload_only", p, i, -1<<31, 1<<31-1)
			h.UploadOnly = v != 0
			return next, err
		}
		return skipValue("extension handshake "+key, p, i)
	})
	if err != nil {
		return ExtHandshake{}, err
	}
	if end != len(p) {
		return ExtHandshake{}, extErr("extension handshake", "%d bytes after the dictionary", len(p)-end)
	}
	return h, nil
}

// AppendTo appends the bencoded handshake dictionary (the payload of an
// extended message with id 0), keys sorted.
func (h *ExtHandshake) AppendTo(dst []byte) []byte {
	dst = append(dst, 'd')
	if h.IPv4.Is4() {
		dst = append(dst, "4:ipv4"...)
		dst = bencode.AppendString(dst, h.IPv4.AsSlice())
	}
	if h.IPv6.Is6() {
		dst = append(dst, "4:ipv6"...)
		a := h.IPv6.As16()
		dst = bencode.AppendString(dst, a[:])
	}
	if h.M != nil {
		dst = append(dst, "1:md"...)
		names := make([]string, 0, len(h.M))
		for name := range h.M {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			dst = bencode.AppendStr(dst, name)
			dst = bencode.AppendInt(dst, int64(h.M[name]))
		}
		dst = append(dst, 'e')
	}
	if h.MetadataSize > 0 {
		dst = append(dst, "13:metadata_size"...)
		dst = bencode.AppendInt(dst, int64(h.MetadataSize))
	}
	if h.Port != 0 {
		dst = append(dst, "1:p"...)
		dst = bencode.AppendInt(dst, int64(h.Port))
	}
	if h.ReqQ > 0 {
		dst = append(dst, "4:reqq"...)
		dst = bencode.AppendInt(dst, int64(h.ReqQ))
	}
	if h.UploadOnly {
		dst = append(dst, "11:upload_onlyi1e"...)
	}
	if h.Client != "" {
		dst = append(dst, "1:v"...)
		dst = bencode.AppendStr(dst, h.Client)
	}
	if h.YourIP.IsValid() {
		dst = append(dst, "6:yourip"...)
		dst = bencode.AppendString(dst, h.YourIP.Unmap().AsSlice())
	}
	return append(dst, 'e')
}

// PEXFlags are the per-peer flags of ut_pex "added.f" (BEP 11).
type PEXFlags uint8

// PEX flags.
const (
	PEXPrefersEncryption PEXFlags = 0x01
	PEXSeed              PEXFlags = 0x02 // seed or upload-only
	PEXUTP               PEXFlags = 0x04 // supports uTP
	PEXHolepunch         PEXFlags = 0x08 // supports ut_holepunch
	PEXReachable         PEXFlags = 0x10 // outgoing connection: the peer is reachable
)

// PEXPeer is one peer added in a PEX message.
type PEXPeer struct {
	Addr  netip.AddrPort
	Flags PEXFlags
}

// PEX is a ut_pex message (BEP 11): peers the sender connected to or
// dropped since its last message.
type PEX struct {
	Added    []PEXPeer // IPv4 ("added", "added.f")
	Added6   []PEXPeer // IPv6 ("added6", "added6.f")
	Dropped  []netip.AddrPort
	Dropped6 []netip.AddrPort
}

// ParsePEX decodes a ut_pex payload. A flags string must have one byte per
// peer, or be absent (flags zero).
func ParsePEX(p []byte) (PEX, error) {
	var x PEX
	var f4, f6 []byte
	var has4f, has6f bool
	end, err := walkDict("ut_pex", p, 0, func(key string, i int) (int, error) {
		var s []byte
		var next int
		var err error
		switch key {
		case "added", "added6", "dropped", "dropped6", "added.f", "added6.f":
			if s, next, err = extString("ut_pex "+key, p, i); err != nil {
				return next, err
			}
		default:
			return skipValue("ut_pex "+key, p, i)
		}
		switch key {
		case "added":
			var addrs []netip.AddrPort
			if addrs, err = compactPeers("ut_pex added", s, 6); err == nil {
				x.Added = make([]PEXPeer, len(addrs))
				for k, a := range addrs {
					x.Added[k].Addr = a
				}
			}
		case "added6":
			var addrs []netip.AddrPort
			if addrs, err = compactPeers("ut_pex added6", s, 18); err == nil {
				x.Added6 = make([]PEXPeer, len(addrs))
				for k, a := range addrs {
					x.Added6[k].Addr = a
				}
			}
		case "dropped":
			x.Dropped, err = compactPeers("ut_pex dropped", s, 6)
		case "dropped6":
			x.Dropped6, err = compactPeers("ut_pex dropped6", s, 18)
		case "added.f":
			f4, has4f = s, true
		case "added6.f":
			f6, has6f = s, true
		}
		return next, err
	})
	if err != nil {
		return PEX{}, err
	}
	if end != len(p) {
		return PEX{}, extErr("ut_pex", "%d bytes after the dictionary", len(p)-end)
	}
	if has4f && len(f4) != len(x.Added) {
		return PEX{}, extErr("ut_pex added.f", "%d flags for %d peers", len(f4), len(x.Added))
	}
	if has6f && len(f6) != len(x.Added6) {
		return PEX{}, extErr("ut_pex added6.f", "%d flags for %d peers", len(f6), len(x.Added6))
	}
	for k := range f4 {
		x.Added[k].Flags = PEXFlags(f4[k])
	}
	for k := range f6 {
		x.Added6[k].Flags = PEXFlags(f6[k])
	}
	return x, nil
}

func compactPeers(what string, s []byte, size int) ([]netip.AddrPort, error) {
	if len(s)%size != 0 {
		return nil, extErr(what, "%d bytes, not a multiple of %d", len(s), size)
	}
	if len(s) == 0 {
		return nil, nil
	}
	out := make([]netip.AddrPort, 0, len(s)/size)
	for j := 0; j < len(s); j += size {
		a, _ := netip.AddrFromSlice(s[j : j+size-2])
		out = append(out, netip.AddrPortFrom(a, binary.BigEndian.Uint16(s[j+size-2:])))
	}
	return out, nil
}

// AppendTo appends the bencoded ut_pex dictionary, keys sorted. Lists that
// are empty are left out; flags are written for every added peer.
func (x *PEX) AppendTo(dst []byte) ([]byte, error) {
	var err error
	dst = append(dst, 'd')
	if len(x.Added) > 0 {
		dst = append(dst, "5:added"...)
		if dst, err = appendPEXPeers(dst, x.Added, false); err != nil {
			return dst, err
		}
		dst = append(dst, "7:added.f"...)
		dst = bencode.AppendStringHeader(dst, len(x.Added))
		for _, pp := range x.Added {
			dst = append(dst, byte(pp.Flags))
		}
	}
	if len(x.Added6) > 0 {
		dst = append(dst, "6:added6"...)
		if dst, err = appendPEXPeers(dst, x.Added6, true); err != nil {
			return dst, err
		}
		dst = append(dst, "8:added6.f"...)
		dst = bencode.AppendStringHeader(dst, len(x.Added6))
		for _, pp := range x.Added6 {
			dst = append(dst, byte(pp.Flags))
		}
	}
	if len(x.Dropped) > 0 {
		dst = append(dst, "7:dropped"...)
		if dst, err = appendCompactPeers(dst, x.Dropped, false); err != nil {
			return dst, err
		}
	}
	if len(x.Dropped6) > 0 {
		dst = append(dst, "8:dropped6"...)
		if dst, err = appendCompactPeers(dst, x.Dropped6, true); err != nil {
			return dst, err
		}
	}
	return append(dst, 'e'), nil
}

func appendPEXPeers(dst []byte, peers []PEXPeer, six bool) ([]byte, error) {
	addrs := make([]netip.AddrPort, len(peers))
	for i, pp := range peers {
		addrs[i] = pp.Addr
	}
	return appendCompactPeers(dst, addrs, six)
}

func appendCompactPeers(dst []byte, addrs []netip.AddrPort, six bool) ([]byte, error) {
	size := 6
	if six {
		size = 18
	}
	dst = bencode.AppendStringHeader(dst, size*len(addrs))
	for _, ap := range addrs {
		a := ap.Addr()
		switch {
		case six && a.IsValid():
			b := a.As16()
			dst = append(dst, b[:]...)
		case !six && a.Unmap().Is4():
			b := a.Unmap().As4()
			dst = append(dst, b[:]...)
		default:
			return dst, extErr("ut_pex", "address %v does not fit a %d-byte compact peer", ap, size)
		}
		dst = binary.BigEndian.AppendUint16(dst, ap.Port())
	}
	return dst, nil
}

// MetadataType is the msg_type of a ut_metadata message (BEP 9).
type MetadataType int

// ut_metadata message types.
const (
	MetadataRequest MetadataType = 0
	MetadataData    MetadataType = 1
	MetadataReject  MetadataType = 2
)

// Metadata is a ut_metadata message: a request for, a reply with, or a
// refusal of one 16 KiB piece of a torrent's info dictionary.
type Metadata struct {
	Type  MetadataType
	Piece int
	// TotalSize is the size of the whole info dictionary (data only).
	TotalSize int
	// Data is the piece, the bytes after the dictionary (data only). It
	// aliases the payload.
	Data []byte
}

// ParseMetadata decodes a ut_metadata payload. Unknown message types are
// errors (BEP 9 says to ignore them; the caller decides).
func ParseMetadata(p []byte) (Metadata, error) {
	var m Metadata
	var hasType, hasPiece, hasTotal bool
	end, err := walkDict("ut_metadata", p, 0, func(key string, i int) (int, error) {
		var v int64
		var next int
		var err error
		switch key {
		case "msg_type":
			v, next, err = extInt("ut_metadata msg_type", p, i, 0, 2)
			m.Type, hasType = MetadataType(v), true
		case "piece":
			v, next, err = extInt("ut_metadata piece", p, i, 0, 1<<31-1)
			m.Piece, hasPiece = int(v), true
		case "total_size":
			v, next, err = extInt("ut_metadata total_size", p, i, 0, 1<<31-1)
			m.TotalSize, hasTotal = int(v), true
		default:
			return skipValue("ut_metadata "+key, p, i)
		}
		return next, err
	})
	if err != nil {
		return Metadata{}, err
	}
	if !hasType || !hasPiece {
		return Metadata{}, extErr("ut_metadata", "msg_type or piece missing")
	}
	trailing := p[end:]
	if m.Type == MetadataData {
		if !hasTotal {
			return Metadata{}, extErr("ut_metadata", "data without total_size")
		}
		// Every piece is 16 KiB but the last, which holds the rest.
		start := int64(m.Piece) * MetadataPieceLen
		if start >= int64(m.TotalSize) {
			return Metadata{}, extErr("ut_metadata", "piece %d beyond total_size %d", m.Piece, m.TotalSize)
		}
		if want := min(int64(m.TotalSize)-start, MetadataPieceLen); int64(len(trailing)) != want {
			return Metadata{}, extErr("ut_metadata", "piece %d of %d bytes, want %d for total_size %d", m.Piece, len(trailing), want, m.TotalSize)
		}
		m.Data = trailing
		return m, nil
	}
	if len(trailing) > 0 {
		return Metadata{}, extErr("ut_metadata", "%d bytes after a %s", len(trailing), m.Type)
	}
	m.TotalSize = 0
	return m, nil
}

func (t MetadataType) String() string {
	switch t {
	case MetadataRequest:
		return "request"
	case MetadataData:
		return "data"
	case MetadataReject:
		return "reject"
	}
	return fmt.Sprintf("msg_type(%d)", int(t))
}

// AppendTo appends the ut_metadata payload: the dictionary, then the data
// for a data message.
func (m *Metadata) AppendTo(dst []byte) []byte {
	dst = append(dst, "d8:msg_type"...)
	dst = bencode.AppendInt(dst, int64(m.Type))
	dst = append(dst, "5:piece"...)
	dst = bencode.AppendInt(dst, int64(m.Piece))
	if m.Type == MetadataData {
		dst = append(dst, "10:total_size"...)
		dst = bencode.AppendInt(dst, int64(m.TotalSize))
		dst = append(dst, 'e')
		return append(dst, m.Data...)
	}
	return append(dst, 'e')
}
