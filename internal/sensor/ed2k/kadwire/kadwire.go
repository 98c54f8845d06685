// Package kadwire is Kademlia 2 (Kad), eMule's and aMule's DHT, on the
// wire: 128-bit ids and their byte order, contacts, tags, and the UDP
// packets a node needs to bootstrap, route, search for a file's sources,
// answer pings and firewall checks, and (in the lab only) store sources.
// Bytes in, values out.
//
// Kad's packet obfuscation (the RC4 layer eMule 0.47c added, keyed by the
// receiver's id or a per-address key) is not implemented: such datagrams
// are recognised and refused with ErrObfuscated, so a node built on this
// package talks only to peers that send plain Kad (aMule with
// IsClientCryptLayerSupported off does; an eMule node would answer us
// plainly too, since obfuscation is chosen by the sender per contact).
//
// It must never do I/O or trust a count: every count is checked against
// the bytes present before anything is allocated, and a packed datagram
// is inflated only up to its bound.
package kadwire

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/netip"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/cursor"
)

// Sentinel errors; every decoding error wraps one of them.
var (
	ErrMalformed  = errors.New("kad: malformed")
	ErrTooLarge   = errors.New("kad: too large")
	ErrObfuscated = errors.New("kad: obfuscated or not a Kad datagram")
)

// Header bytes.
const (
	ProtoKad       byte = 0xE4
	ProtoKadPacked byte = 0xE5
)

// Version is the Kad version this package speaks (aMule 2.3's 0x08).
const Version = 0x08

// Opcodes (Kad 2).
const (
	OpBootstrapReq    byte = 0x01
	OpBootstrapRes    byte = 0x09
	OpHelloReq        byte = 0x11
	OpHelloRes        byte = 0x19
	OpReq             byte = 0x21
	OpHelloResAck     byte = 0x22
	OpRes             byte = 0x29
	OpSearchKeyReq    byte = 0x33
	OpSearchSourceReq byte = 0x34
	OpSearchNotesReq  byte = 0x35
	OpSearchRes       byte = 0x3B
	OpPublishKeyReq   byte = 0x43
	OpPublishSrcReq   byte = 0x44
	OpPublishNotesReq byte = 0x45
	OpPublishRes      byte = 0x4B
	OpPublishResAck   byte = 0x4C
	OpFirewalledReq   byte = 0x50 // Kad 1, still sent by old nodes
	OpFirewalled2Req  byte = 0x53
	OpFirewalledRes   byte = 0x58
	OpFirewalledAck   byte = 0x59
	OpPing            byte = 0x60
	OpPong            byte = 0x61
	OpFirewallUDP     byte = 0x62
)

// KADEMLIA2_REQ types: how many contacts the asker wants.
const (
	FindValue byte = 0x02
	Store     byte = 0x04
	FindNode  byte = 0x0B
)

// SearchTolerance: a node stores (and searchers address) a key only when
// the top 32 bits of the distance from its id are at most this.
const SearchTolerance = 1 << 24

// ID is a 128-bit Kad id (node id, file id, user hash) as a big-endian
// number. A file's Kad id is its ed2k hash's bytes in order (FileID).
type ID [16]byte

// FileID is the Kad id of an ed2k hash (aMule's CUInt128 built from the
// hash bytes, most significant first).
func FileID(ed2k [16]byte) ID { return ID(ed2k) }

// Xor is the Kademlia distance.
func (a ID) Xor(b ID) ID {
	var d ID
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// Cmp compares two ids (or distances) as numbers.
func (a ID) Cmp(b ID) int { return bytes.Compare(a[:], b[:]) }

// Top32 is the most significant 32 bits.
func (a ID) Top32() uint32 { return binary.BigEndian.Uint32(a[:4]) }

// Bit returns bit i, 0 being the most significant.
func (a ID) Bit(i int) int { return int(a[i/8]>>(7-i%8)) & 1 }

// LeadingZeros is the number of leading zero bits (128 for zero).
func (a ID) LeadingZeros() int {
	for i, b := range a {
		if b != 0 {
			return i*8 + bits.LeadingZeros8(b)
		}
	}
	return 128
}

func (a ID) String() string { return fmt.Sprintf("%x", a[:]) }

// reader is a cursor over a datagram (cursor.Cursor, failing with
// ErrMalformed), with the Kad field types on top.
type reader struct{ cursor.Cursor }

func newReader(b []byte) *reader { return &reader{cursor.Cursor{B: b, Malformed: ErrMalformed}} }

// id reads a 128-bit id: four little-endian 32-bit words, most
// significant word first (aMule's CFileDataIO::ReadUInt128).
func (r *reader) id(what string) ID {
	var id ID
	b := r.Take(16, what)
	if b == nil {
		return id
	}
	for i := 0; i < 4; i++ {
		binary.BigEndian.PutUint32(id[4*i:], binary.LittleEndian.Uint32(b[4*i:]))
	}
	return id
}

func (r *reader) end(what string) error {
	if r.Err == nil && r.Left() != 0 {
		r.Fail("%s: %d trailing bytes", what, r.Left())
	}
	return r.Err
}

func appendID(b []byte, id ID) []byte {
	for i := 0; i < 4; i++ {
		b = binary.LittleEndian.AppendUint32(b, binary.BigEndian.Uint32(id[4*i:]))
	}
	return b
}

// ip reads a Kad IPv4 address: a host-order number written little-endian.
func (r *reader) ip(what string) netip.Addr {
	v := r.U32(what)
	return IPFromUint32(v)
}

// IPFromUint32 is the address of a Kad host-order IPv4 number.
func IPFromUint32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// IPToUint32 is the Kad host-order number of an IPv4 address (0 for
// others).
func IPToUint32(a netip.Addr) uint32 {
	a = a.Unmap()
	if !a.Is4() {
		return 0
	}
	return binary.BigEndian.Uint32(a.AsSlice())
}

// Packet is one Kad datagram: an opcode and its (inflated) payload.
type Packet struct {
	Opcode  byte
	Payload []byte
	Packed  bool
}

// DefaultMaxUnpacked bounds a packed datagram once inflated. A datagram
// is at most 64 KiB; nothing a correct node sends inflates past that.
const DefaultMaxUnpacked = 64 << 10

// Decode decodes one datagram. A datagram that does not start with a Kad
// header byte (an obfuscated one, or eD2K UDP) is refused with
// ErrObfuscated; a packed payload is inflated up to maxUnpacked.
func Decode(b []byte, maxUnpacked int) (Packet, error) {
	if len(b) < 2 {
		return Packet{}, fmt.Errorf("datagram of %d bytes: %w", len(b), ErrMalformed)
	}
	p := Packet{Opcode: b[1], Payload: b[2:]}
	switch b[0] {
	case ProtoKad:
		return p, nil
	case ProtoKadPacked:
	default:
		return Packet{}, fmt.Errorf("first byte 0x%02x: %w", b[0], ErrObfuscated)
	}
	zr, err := zlib.NewReader(bytes.NewReader(b[2:]))
	if err != nil {
		return Packet{}, fmt.Errorf("packed datagram: %v: %w", err, ErrMalformed)
	}
	defer zr.Close()
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, int64(maxUnpacked)+1))
	switch {
	case err != nil:
		return Packet{}, fmt.Errorf("packed datagram: %v: %w", err, ErrMalformed)
	case n > int64(maxUnpacked):
		return Packet{}, fmt.Errorf("packed datagram inflates past %d bytes: %w", maxUnpacked, ErrTooLarge)
	}
	p.Payload, p.Packed = out.Bytes(), true
	return p, nil
}

// Encode returns a datagram with opcode and payload, plain.
func Encode(opcode byte, payload []byte) []byte {
	return append([]byte{ProtoKad, opcode}, payload...)
}

// EncodePacked returns a datagram with the payload compressed.
func EncodePacked(opcode byte, payload []byte) []byte {
	var buf bytes.Buffer
	buf.Write([]byte{ProtoKadPacked, opcode})
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zw.Write(payload)
	zw.Close()
	return buf.Bytes()
}
