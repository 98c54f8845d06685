// Package peerwire is the BitTorrent peer wire protocol (BEP 3) as bytes:
// the handshake and its reserved bits, length-prefixed messages (with the
// fast extension of BEP 6, the DHT port of BEP 5 and the v2 hash messages of
// BEP 52), and the extension protocol of BEP 10 with its handshake, peer
// exchange (ut_pex, BEP 11) and metadata exchange (ut_metadata, BEP 9).
//
// The peer probe uses it to learn, from the peer itself, whether it has a
// torrent and how much of it: a handshake accepted for an info-hash, a
// bitfield or have-all, the client's name and listen port.
//
// It reads from a bufio.Reader it is given and writes into byte slices; it
// opens no connection and sets no deadline (the caller does both). It must
// never allocate more than its configured bound for one message, whatever
// length a peer announces, and never panic on any input.
package peerwire

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors.
var (
	// ErrBadHandshake means the first bytes are not a BitTorrent handshake.
	ErrBadHandshake = errors.New("peerwire: not a BitTorrent handshake")
	// ErrTooLarge means a message announces a length above the bound.
	ErrTooLarge = errors.New("peerwire: message too large")
	// ErrBadLength means a message's length does not fit its type.
	ErrBadLength = errors.New("peerwire: bad message length")
	// ErrBadBitfield means a bitfield has the wrong length for the torrent
	// or sets spare bits.
	ErrBadBitfield = errors.New("peerwire: bad bitfield")
	// ErrBadExtension means an extension message is malformed.
	ErrBadExtension = errors.New("peerwire: bad extension message")
)

// Protocol is the protocol string of the handshake.
const Protocol = "BitTorrent protocol"

// HandshakeLen is the length of a full handshake.
const HandshakeLen = 1 + len(Protocol) + 8 + 20 + 20

// Reserved is the handshake's eight reserved bytes, where clients announce
// the extensions they support.
type Reserved [8]byte

// Reserved bits, as (byte index, mask).
const (
	extendedByte, extendedMask = 5, 0x10 // BEP 10 extension protocol
	v2Byte, v2Mask             = 7, 0x10 // BEP 52 upgrade to v2
	fastByte, fastMask         = 7, 0x04 // BEP 6 fast extension
	dhtByte, dhtMask           = 7, 0x01 // BEP 5 DHT
)

// Extended reports the BEP 10 extension protocol bit.
func (r Reserved) Extended() bool { return r[extendedByte]&extendedMask != 0 }

// Fast reports the BEP 6 fast extension bit.
func (r Reserved) Fast() bool { return r[fastByte]&fastMask != 0 }

// DHT reports the BEP 5 DHT bit (the peer will send a port message).
func (r Reserved) DHT() bool { return r[dhtByte]&dhtMask != 0 }

// V2 reports the BEP 52 bit: the peer can upgrade a hybrid torrent to v2.
func (r Reserved) V2() bool { return r[v2Byte]&v2Mask != 0 }

// SetExtended sets or clears the extension protocol bit.
func (r *Reserved) SetExtended(on bool) { r.set(extendedByte, extendedMask, on) }

// SetFast sets or clears the fast extension bit.
func (r *Reserved) SetFast(on bool) { r.set(fastByte, fastMask, on) }

// SetDHT sets or clears the DHT bit.
func (r *Reserved) SetDHT(on bool) { r.set(dhtByte, dhtMask, on) }

// SetV2 sets or clears the v2 upgrade bit.
func (r *Reserved) SetV2(on bool) { r.set(v2Byte, v2Mask, on) }

func (r *Reserved) set(i int, mask byte, on bool) {
	if on {
		r[i] |= mask
	} else {
		r[i] &^= mask
	}
}

// Handshake is the first message each side sends.
type Handshake struct {
	Reserved Reserved
	InfoHash [20]byte
	PeerID   [20]byte
}

// AppendTo appends the 68-byte handshake.
func (h *Handshake) AppendTo(dst []byte) []byte {
	dst = append(dst, byte(len(Protocol)))
	dst = append(dst, Protocol...)
	dst = append(dst, h.Reserved[:]...)
	dst = append(dst, h.InfoHash[:]...)
	return append(dst, h.PeerID[:]...)
}

// ParseHandshake decodes a 68-byte handshake.
func ParseHandshake(b []byte) (Handshake, error) {
	var h Handshake
	if len(b) != HandshakeLen {
		return h, fmt.Errorf("peerwire: handshake of %d bytes, want %d: %w", len(b), HandshakeLen, ErrBadHandshake)
	}
	if int(b[0]) != len(Protocol) || string(b[1:20]) != Protocol {
		return h, fmt.Errorf("peerwire: protocol string %q: %w", printable(b[:20]), ErrBadHandshake)
	}
	copy(h.Reserved[:], b[20:28])
	copy(h.InfoHash[:], b[28:48])
	copy(h.PeerID[:], b[48:68])
	return h, nil
}

// ReadHandshake reads and decodes a handshake from r. A peer that closes
// the connection before a whole handshake gives io.ErrUnexpectedEOF (or
// io.EOF if it sent nothing).
func ReadHandshake(r io.Reader) (Handshake, error) {
	var b [HandshakeLen]byte
	// Read the protocol header first, so that a peer speaking something else
	// is told apart without waiting for 68 bytes it may never send.
	if _, err := io.ReadFull(r, b[:20]); err != nil {
		return Handshake{}, err
	}
	if int(b[0]) != len(Protocol) || string(b[1:20]) != Protocol {
		return Handshake{}, fmt.Errorf("peerwire: protocol string %q: %w", printable(b[:20]), ErrBadHandshake)
	}
	if _, err := io.ReadFull(r, b[20:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Handshake{}, err
	}
	return ParseHandshake(b[:])
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
