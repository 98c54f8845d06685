package peerwire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// MsgID is a message's type byte.
type MsgID uint8

// Message types of BEP 3, 5, 6, 10 and 52.
const (
	Choke         MsgID = 0
	Unchoke       MsgID = 1
	Interested    MsgID = 2
	NotInterested MsgID = 3
	Have          MsgID = 4
	Bitfield      MsgID = 5
	Request       MsgID = 6
	Piece         MsgID = 7
	Cancel        MsgID = 8
	Port          MsgID = 9  // BEP 5: the peer's DHT port
	Suggest       MsgID = 13 // BEP 6
	HaveAll       MsgID = 14 // BEP 6
	HaveNone      MsgID = 15 // BEP 6
	Reject        MsgID = 16 // BEP 6: reject request
	AllowedFast   MsgID = 17 // BEP 6
	Extended      MsgID = 20 // BEP 10
	HashRequest   MsgID = 21 // BEP 52
	Hashes        MsgID = 22 // BEP 52
	HashReject    MsgID = 23 // BEP 52
)

var msgNames = map[MsgID]string{
	Choke: "choke", Unchoke: "unchoke", Interested: "interested", NotInterested: "not_interested",
	Have: "have", Bitfield: "bitfield", Request: "request", Piece: "piece", Cancel: "cancel",
	Port: "port", Suggest: "suggest", HaveAll: "have_all", HaveNone: "have_none", Reject: "reject_request",
	AllowedFast: "allowed_fast", Extended: "extended", HashRequest: "hash_request", Hashes: "hashes", HashReject: "hash_reject",
}

func (id MsgID) String() string {
	if s, ok := msgNames[id]; ok {
		return s
	}
	return fmt.Sprintf("msg(%d)", uint8(id))
}

// payloadLen is the exact payload length of fixed-size messages, and the
// minimum for variable ones (with variable true).
func payloadLen(id MsgID) (n int, variable, known bool) {
	switch id {
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
		return 0, false, true
	case Have, Suggest, AllowedFast:
		return 4, false, true
	case Request, Cancel, Reject:
		return 12, false, true
	case Port:
		return 2, false, true
	case Bitfield:
		return 0, true, true
	case Piece:
		return 8, true, true
	case Extended:
		return 1, true, true
	case HashRequest, HashReject:
		return 48, false, true
	case Hashes:
		return 48, true, true
	}
	return 0, true, false
}

// Message is one peer wire message. Which fields are set depends on ID.
type Message struct {
	// Keepalive is a zero-length message; the other fields are unused.
	Keepalive bool
	ID        MsgID
	// Index is the piece index (have, request, piece, cancel, suggest,
	// reject, allowed_fast) or the BEP 52 index (hash messages).
	Index uint32
	// Begin is the block offset (request, piece, cancel, reject).
	Begin uint32
	// Length is the block length (request, cancel, reject) or the BEP 52
	// number of hashes (hash messages).
	Length uint32
	// Port is the DHT port (port).
	Port uint16
	// ExtendedID is the extension message id (extended): 0 for the
	// extension handshake, otherwise an id the receiver assigned in its
	// handshake's "m" dictionary.
	ExtendedID uint8
	// PiecesRoot, BaseLayer and ProofLayers are the BEP 52 hash message
	// fields.
	PiecesRoot  [32]byte
	BaseLayer   uint32
	ProofLayers uint32
	// Payload is the variable part: the bitfield bytes, the piece block,
	// the extension payload after the extended id, the BEP 52 hashes, or the
	// whole payload of a message type this package does not know. From a
	// Decoder it aliases the decoder's buffer until the next Decode.
	Payload []byte
}

// AppendTo appends the length-prefixed encoding of m.
func (m *Message) AppendTo(dst []byte) []byte {
	if m.Keepalive {
		return append(dst, 0, 0, 0, 0)
	}
	n, variable, known := payloadLen(m.ID)
	length := 1 + n
	if variable || !known {
		length += len(m.Payload)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(length))
	dst = append(dst, byte(m.ID))
	switch m.ID {
	case Have, Suggest, AllowedFast:
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
	case Request, Cancel, Reject:
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
		dst = binary.BigEndian.AppendUint32(dst, m.Begin)
		dst = binary.BigEndian.AppendUint32(dst, m.Length)
	case Piece:
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
		dst = binary.BigEndian.AppendUint32(dst, m.Begin)
		dst = append(dst, m.Payload...)
	case Port:
		dst = binary.BigEndian.AppendUint16(dst, m.Port)
	case Extended:
		dst = append(dst, m.ExtendedID)
		dst = append(dst, m.Payload...)
	case HashRequest, HashReject, Hashes:
		dst = append(dst, m.PiecesRoot[:]...)
		dst = binary.BigEndian.AppendUint32(dst, m.BaseLayer)
		dst = binary.BigEndian.AppendUint32(dst, m.Index)
		dst = binary.BigEndian.AppendUint32(dst, m.Length)
		dst = binary.BigEndian.AppendUint32(dst, m.ProofLayers)
		if m.ID == Hashes {
			dst = append(dst, m.Payload...)
		}
	case Choke, Unchoke, Interested, NotInterested, HaveAll, HaveNone:
	default: // Bitfield and unknown types carry their payload as is
		dst = append(dst, m.Payload...)
	}
	return dst
}

// DefaultMaxLength bounds one message: enough for a 16 KiB block and for
// the bitfield of a torrent of a million pieces.
const DefaultMaxLength = 1<<17 + 16

// Decoder reads messages from a stream. It is not safe for concurrent use.
type Decoder struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewDecoder returns a decoder reading from r that refuses messages longer
// than maxLength bytes (DefaultMaxLength if maxLength <= 0).
func NewDecoder(r *bufio.Reader, maxLength int) *Decoder {
	if maxLength <= 0 {
		maxLength = DefaultMaxLength
	}
	return &Decoder{r: r, max: maxLength}
}

// ReadHandshake reads the peer's handshake, which precedes its messages.
func (d *Decoder) ReadHandshake() (Handshake, error) { return ReadHandshake(d.r) }

// Decode reads the next message into m. It returns io.EOF if the stream
// ends cleanly between messages and io.ErrUnexpectedEOF if it ends inside
// one. m.Payload aliases the decoder's buffer until the next call.
func (d *Decoder) Decode(m *Message) error {
	*m = Message{}
	var hdr [4]byte
	if _, err := io.ReadFull(d.r, hdr[:]); err != nil {
		return err
	}
	length := binary.BigEndian.Uint32(hdr[:])
	if length == 0 {
		m.Keepalive = true
		return nil
	}
	if uint64(length) > uint64(d.max) {
		return fmt.Errorf("peerwire: message of %d bytes, limit %d: %w", length, d.max, ErrTooLarge)
	}
	if cap(d.buf) < int(length) {
		d.buf = make([]byte, length)
	}
	b := d.buf[:length]
	if _, err := io.ReadFull(d.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return parseMessage(b, m)
}

// ParseMessage decodes one message from its bytes without the length
// prefix (b[0] is the type). m.Payload aliases b.
func ParseMessage(b []byte, m *Message) error {
	*m = Message{}
	if len(b) == 0 {
		m.Keepalive = true
		return nil
	}
	return parseMessage(b, m)
}

func parseMessage(b []byte, m *Message) error {
	m.ID = MsgID(b[0])
	p := b[1:]
	n, variable, known := payloadLen(m.ID)
	if !known {
		m.Payload = p
		return nil
	}
	if len(p) < n || (!variable && len(p) != n) {
		return fmt.Errorf("peerwire: %v with %d-byte payload: %w", m.ID, len(p), ErrBadLength)
	}
	switch m.ID {
	case Have, Suggest, AllowedFast:
		m.Index = binary.BigEndian.Uint32(p)
	case Request, Cancel, Reject:
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Length = binary.BigEndian.Uint32(p[8:])
	case Piece:
		m.Index = binary.BigEndian.Uint32(p)
		m.Begin = binary.BigEndian.Uint32(p[4:])
		m.Payload = p[8:]
	case Port:
		m.Port = binary.BigEndian.Uint16(p)
	case Bitfield:
		m.Payload = p
	case Extended:
		m.ExtendedID = p[0]
		m.Payload = p[1:]
	case HashRequest, HashReject, Hashes:
		copy(m.PiecesRoot[:], p[:32])
		m.BaseLayer = binary.BigEndian.Uint32(p[32:])
		m.Index = binary.BigEndian.Uint32(p[36:])
		m.Length = binary.BigEndian.Uint32(p[40:])
		m.ProofLayers = binary.BigEndian.Uint32(p[44:])
		if m.ID == Hashes {
			if (len(p)-48)%32 != 0 {
				return fmt.Errorf("peerwire: hashes with %d bytes of hashes, not a multiple of 32: %w", len(p)-48, ErrBadLength)
			}
			m.Payload = p[48:]
		}
	}
	return nil
}
