// Package transcript is the encoding of the raw exchange behind a
// BitTorrent observation (docs/evidence.md, "Transcripts"): a sequence of
// records, each with its own time, that a defence expert can decode with
// this package or by hand. It reads and writes bytes only; the sensor
// decides what to record.
//
// It must never hide a gap: every byte left out of a transcript is
// counted in a record placed where it happened.
package transcript

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Record types (the first byte of a record).
const (
	// Received: bytes the sensor received (one datagram, or a chunk of a
	// TCP or uTP stream as read).
	Received byte = '<'
	// Sent: bytes the sensor sent.
	Sent byte = '>'
	// Note: a text the sensor wrote (what a verification found).
	Note byte = '#'
	// Cut: bytes left out because the transcript's bound was reached.
	// Its payload counts them per direction.
	Cut byte = '-'
	// Paused: bytes not kept while recording was paused (a piece fetched
	// for verification is hashed, never kept). Same payload as Cut.
	Paused byte = '='
	// LegacyCut is the end marker of transcripts written before cut
	// records existed: '!' and a uvarint count of bytes left out
	// somewhere, with no header. Read, never written.
	LegacyCut byte = '!'
)

// Notes a reader relies on: a BitTorrent probe's claims that rest on the
// sensor's word rather than on the peer's bytes begin with these.
const (
	// HeldNote: the peer sent its handshake and nothing more that the
	// transcript kept, and held the connection open until the probe
	// stopped reading, at least a second later: it acknowledged.
	HeldNote = "the peer held the connection open"
	// VerifiedNote: a piece fetched from this peer alone (its bytes not
	// kept, a Paused record counts them) matched its hash.
	VerifiedNote = "SHA-1 matches the info dictionary: true"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("transcript: malformed")

// MaxPeerLen bounds the peer field (one length byte).
const MaxPeerLen = 255

// Record is one record of a transcript.
type Record struct {
	Type byte
	// Offset is the time of the record since the first record (for Cut
	// and Paused: of the first byte left out).
	Offset time.Duration
	// Peer is the remote address as text, e.g. "127.0.0.2:6881".
	Peer string
	// Data is the raw bytes (Received, Sent) or the text (Note).
	Data []byte
	// ReceivedLeft and SentLeft count the bytes left out in each
	// direction (Cut, Paused); Span is the time from Offset to the last
	// byte left out. LegacyCut has only Left.
	ReceivedLeft, SentLeft uint64
	Span                   time.Duration
	// Left is the legacy end marker's count (LegacyCut only).
	Left uint64
}

// Gap reports whether r stands for bytes that are not in the transcript.
func (r Record) Gap() bool { return r.Type == Cut || r.Type == Paused || r.Type == LegacyCut }

// AppendTo appends the record's encoding to dst. A peer longer than
// MaxPeerLen is cut to it; a negative offset is written as 0.
func (r Record) AppendTo(dst []byte) []byte {
	if r.Type == LegacyCut {
		dst = append(dst, LegacyCut)
		return binary.AppendUvarint(dst, r.Left)
	}
	peer := r.Peer
	if len(peer) > MaxPeerLen {
		peer = peer[:MaxPeerLen]
	}
	dst = append(dst, r.Type)
	dst = binary.AppendUvarint(dst, uint64(max(r.Offset, 0)))
	dst = append(dst, byte(len(peer)))
	dst = append(dst, peer...)
	payload := r.Data
	if r.Type == Cut || r.Type == Paused {
		payload = gapPayload(r.ReceivedLeft, r.SentLeft, r.Span)
	}
	dst = binary.AppendUvarint(dst, uint64(len(payload)))
	return append(dst, payload...)
}

func gapPayload(recv, sent uint64, span time.Duration) []byte {
	p := binary.AppendUvarint(nil, recv)
	p = binary.AppendUvarint(p, sent)
	return binary.AppendUvarint(p, uint64(max(span, 0)))
}

// Decode reads every record of b. The encoding is canonical (minimal
// uvarints, a legacy end marker only at the end), so that encoding the
// records again gives b.
func Decode(b []byte) ([]Record, error) {
	var out []Record
	for off := 0; off < len(b); {
		r, n, err := decodeOne(b[off:])
		if err != nil {
			return out, fmt.Errorf("transcript: record %d at byte %d: %w", len(out), off, err)
		}
		off += n
		if r.Type == LegacyCut && off != len(b) {
			return out, fmt.Errorf("transcript: record %d at byte %d: legacy end marker before the end: %w", len(out), off-n, ErrMalformed)
		}
		out = append(out, r)
	}
	return out, nil
}

func decodeOne(b []byte) (Record, int, error) {
	var r Record
	r.Type = b[0]
	i := 1
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(b[i:])
		if n <= 0 || n != uvarintLen(v) {
			return 0, fmt.Errorf("%s: bad uvarint: %w", what, ErrMalformed)
		}
		i += n
		return v, nil
	}
	switch r.Type {
	case LegacyCut:
		v, err := uv("count")
		if err != nil {
			return r, 0, err
		}
		r.Left = v
		return r, i, nil
	case Received, Sent, Note, Cut, Paused:
	default:
		return r, 0, fmt.Errorf("unknown record type %q: %w", r.Type, ErrMalformed)
	}
	off, err := uv("offset")
	if err != nil {
		return r, 0, err
	}
	if off > 1<<63-1 {
		return r, 0, fmt.Errorf("offset %d: %w", off, ErrMalformed)
	}
	r.Offset = time.Duration(off)
	if i >= len(b) {
		return r, 0, fmt.Errorf("no peer: %w", ErrMalformed)
	}
	pl := int(b[i])
	i++
	if len(b)-i < pl {
		return r, 0, fmt.Errorf("peer of %d bytes, %d left: %w", pl, len(b)-i, ErrMalformed)
	}
	r.Peer = string(b[i : i+pl])
	i += pl
	n, err := uv("length")
	if err != nil {
		return r, 0, err
	}
	if uint64(len(b)-i) < n {
		return r, 0, fmt.Errorf("%d bytes announced, %d left: %w", n, len(b)-i, ErrMalformed)
	}
	payload := b[i : i+int(n)]
	i += int(n)
	if r.Type != Cut && r.Type != Paused {
		r.Data = append([]byte{}, payload...)
		return r, i, nil
	}
	j := 0
	var vals [3]uint64
	for k := range vals {
		v, m := binary.Uvarint(payload[j:])
		if m <= 0 || m != uvarintLen(v) {
			return r, 0, fmt.Errorf("gap record field %d: bad uvarint: %w", k, ErrMalformed)
		}
		vals[k] = v
		j += m
	}
	if j != len(payload) || vals[2] > 1<<63-1 {
		return r, 0, fmt.Errorf("gap record payload of %d bytes: %w", len(payload), ErrMalformed)
	}
	r.ReceivedLeft, r.SentLeft, r.Span = vals[0], vals[1], time.Duration(vals[2])
	return r, i, nil
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

// Summary is what a reader checks before relying on a transcript.
type Summary struct {
	Records                int
	Cut, Paused            bool   // a Cut (or legacy end marker) / a Paused record is present
	ReceivedLeft, SentLeft uint64 // bytes left out, cut or paused, by direction
	LegacyLeft             uint64 // bytes left out per a legacy end marker
}

// Summarize decodes b and says what is missing from it.
func Summarize(b []byte) (Summary, error) {
	recs, err := Decode(b)
	var s Summary
	s.Records = len(recs)
	for _, r := range recs {
		switch r.Type {
		case Cut:
			s.Cut = true
		case Paused:
			s.Paused = true
		case LegacyCut:
			s.Cut = true
			s.LegacyLeft += r.Left
		}
		s.ReceivedLeft += r.ReceivedLeft
		s.SentLeft += r.SentLeft
	}
	return s, err
}
