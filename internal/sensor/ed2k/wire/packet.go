package wire

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
)

// Protocol bytes: the first byte of every TCP packet.
const (
	// ProtoEDonkey is the original eDonkey protocol (hello, file requests,
	// server messages).
	ProtoEDonkey byte = 0xE3
	// ProtoEMule is eMule's extended protocol (secure ident, queue
	// ranking, multipackets, ...).
	ProtoEMule byte = 0xC5
	// ProtoPacked is an eMule extended packet whose payload is zlib
	// compressed; inflated, it is a ProtoEMule packet.
	ProtoPacked byte = 0xD4
)

// HeaderLen is the length of a TCP packet header: protocol byte, 32-bit
// little-endian length (of the opcode and payload), opcode.
const HeaderLen = 6

// Limits bound what a decoder accepts from one peer.
type Limits struct {
	// MaxPacket bounds a packet's length on the wire (opcode and payload).
	// aMule drops a connection whose packet exceeds 2,000,000 bytes.
	MaxPacket int
	// MaxUnpacked bounds a packed (0xD4) packet's payload once inflated:
	// zlib can expand a thousandfold, so without it one 2 MB packet could
	// ask for 2 GB.
	MaxUnpacked int
}

// DefaultLimits are aMule's packet bound, and the same bound on an
// inflated payload (no legitimate packed packet needs more: a server's
// search results and a client's source lists are far smaller).
func DefaultLimits() Limits { return Limits{MaxPacket: 2_000_000, MaxUnpacked: 2_000_000} }

// Header is a decoded packet header.
type Header struct {
	Proto  byte
	Length uint32 // bytes after the length field: the opcode and the payload
	Opcode byte
}

// PayloadLen is the number of payload bytes that follow the header.
func (h Header) PayloadLen() int { return int(h.Length) - 1 }

// ParseHeader decodes a packet header and checks it against lim. The
// caller reads PayloadLen bytes more and calls Unpack.
func ParseHeader(b []byte, lim Limits) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("header of %d bytes: %w", len(b), ErrMalformed)
	}
	h := Header{Proto: b[0], Length: binary.LittleEndian.Uint32(b[1:5]), Opcode: b[5]}
	switch h.Proto {
	case ProtoEDonkey, ProtoEMule, ProtoPacked:
	default:
		return h, fmt.Errorf("protocol byte 0x%02x: %w", h.Proto, ErrProtocol)
	}
	if h.Length < 1 {
		return h, fmt.Errorf("packet length 0: %w", ErrMalformed)
	}
	if int64(h.Length) > int64(lim.MaxPacket) {
		return h, fmt.Errorf("packet of %d bytes, bound %d: %w", h.Length, lim.MaxPacket, ErrTooLarge)
	}
	return h, nil
}

// Packet is one decoded packet. A packed packet is returned inflated, with
// Proto ProtoEMule and Packed set.
type Packet struct {
	Proto   byte
	Opcode  byte
	Payload []byte
	Packed  bool // it came zlib-compressed (ProtoPacked)
	// WireLen is the packet's length on the wire, header included.
	WireLen int
}

// Unpack makes a Packet of a header and its payload, inflating a packed
// payload up to lim.MaxUnpacked. It returns ErrTooLarge for a payload that
// inflates past the bound (a bomb) and ErrMalformed for a broken stream.
func Unpack(h Header, payload []byte, lim Limits) (Packet, error) {
	if len(payload) != h.PayloadLen() {
		return Packet{}, fmt.Errorf("payload of %d bytes, header says %d: %w", len(payload), h.PayloadLen(), ErrMalformed)
	}
	p := Packet{Proto: h.Proto, Opcode: h.Opcode, Payload: payload, WireLen: HeaderLen + len(payload)}
	if h.Proto != ProtoPacked {
		return p, nil
	}
	out, err := Inflate(payload, lim.MaxUnpacked)
	if err != nil {
		return Packet{}, fmt.Errorf("packed packet opcode 0x%02x: %w", h.Opcode, err)
	}
	p.Proto, p.Payload, p.Packed = ProtoEMule, out, true
	return p, nil
}

// Decode decodes one whole packet from b and returns it with the number of
// bytes it took. It returns n == 0 and no error when b holds only part of
// a packet.
func Decode(b []byte, lim Limits) (p Packet, n int, err error) {
	if len(b) < HeaderLen {
		if len(b) > 0 {
			switch b[0] {
			case ProtoEDonkey, ProtoEMule, ProtoPacked:
			default:
				return Packet{}, 0, fmt.Errorf("protocol byte 0x%02x: %w", b[0], ErrProtocol)
			}
		}
		return Packet{}, 0, nil
	}
	h, err := ParseHeader(b, lim)
	if err != nil {
		return Packet{}, 0, err
	}
	total := HeaderLen + h.PayloadLen()
	if len(b) < total {
		return Packet{}, 0, nil
	}
	p, err = Unpack(h, b[HeaderLen:total], lim)
	return p, total, err
}

// Inflate inflates a zlib stream of at most max bytes. The stream must end
// (with its checksum) within the input, and nothing may follow it.
func Inflate(b []byte, max int) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("zlib header: %v: %w", err, ErrMalformed)
	}
	defer zr.Close()
	// Grow in steps: a small packet does not get a max-sized buffer.
	var out bytes.Buffer
	n, err := io.Copy(&out, io.LimitReader(zr, int64(max)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("zlib stream: %v: %w", err, ErrMalformed)
	case n > int64(max):
		return nil, fmt.Errorf("inflates past %d bytes: %w", max, ErrTooLarge)
	}
	return out.Bytes(), nil
}

// Append appends a packet with proto, opcode and payload to dst.
func Append(dst []byte, proto, opcode byte, payload []byte) []byte {
	dst = append(dst, proto)
	dst = appendU32(dst, uint32(len(payload)+1))
	dst = append(dst, opcode)
	return append(dst, payload...)
}

// AppendPacked appends an eMule extended packet with its payload
// compressed (ProtoPacked), as eMule sends large extended packets.
func AppendPacked(dst []byte, opcode byte, payload []byte) []byte {
	return Append(dst, ProtoPacked, opcode, Deflate(payload))
}

// Deflate compresses b as a zlib stream.
func Deflate(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&buf, zlib.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// AppendTo appends p's encoding: packed again if it came packed (the
// re-encoding of a packed packet need not equal the bytes received, since
// zlib streams are not canonical).
func (p Packet) AppendTo(dst []byte) []byte {
	if p.Packed {
		return AppendPacked(dst, p.Opcode, p.Payload)
	}
	return Append(dst, p.Proto, p.Opcode, p.Payload)
}
