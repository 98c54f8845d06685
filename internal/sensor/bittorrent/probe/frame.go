package probe

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// maxPaddingKept is the longest body of a message that shows nothing
// (not a possession message, PORT, the extension handshake, PEX or
// ut_metadata) that
// the transcript keeps; a longer one is withheld. Shorter ones cost less
// kept than the cut record that would count them.
const maxPaddingKept = 64

// framer records a peer's stream message by message, so that a hostile
// peer cannot push what a claim rests on out of the bounded transcript by
// padding (a long extension message of an id the sensor never gave,
// unknown messages, requests). The handshake and every message's length prefix and type are
// always recorded (a reader finds each message by the lengths before
// it); the body of a message that shows something is kept whole if it
// fits, else withheld whole (part of a bitfield shows nothing); the body
// of one that shows nothing is withheld when longer than maxPaddingKept.
// Withheld bytes go into cut records (transcript.Writer.StreamWithheld).
// It holds at most one message's first six bytes.
type framer struct {
	hs       int     // handshake bytes still to come
	hdr      [6]byte // the current message's length, type and extension id
	nhdr     int
	body     uint64 // bytes of the current message's body still to come
	keepBody bool
}

func newFramer() framer { return framer{hs: peerwire.HandshakeLen} }

// record records b, the next bytes received, at time at.
func (f *framer) record(tr *transcript.Writer, at time.Time, peer netip.AddrPort, b []byte) {
	start := 0 // the bytes from start to i are kept, not yet recorded
	flush := func(end int) {
		if end > start {
			tr.StreamReceived(at, peer, b[start:end])
		}
		start = end
	}
	for i := 0; i < len(b); {
		switch {
		case f.hs > 0:
			k := min(f.hs, len(b)-i)
			f.hs -= k
			i += k
		case f.body > 0:
			k := int(min(f.body, uint64(len(b)-i)))
			f.body -= uint64(k)
			if f.keepBody {
				i += k
				continue
			}
			flush(i)
			tr.StreamWithheld(at, peer, k)
			i += k
			start = i
		default:
			f.hdr[f.nhdr] = b[i]
			f.nhdr++
			i++
			f.header(tr, peer, i-start)
		}
	}
	flush(len(b))
}

// header reads the message's first bytes gathered so far; once they say
// its type (and extension id), it decides whether the body is kept.
// pending is the bytes kept and not yet recorded.
func (f *framer) header(tr *transcript.Writer, peer netip.AddrPort, pending int) {
	if f.nhdr < 4 {
		return
	}
	n := uint64(binary.BigEndian.Uint32(f.hdr[:4]))
	want := 5
	if n >= 2 && peerwire.MsgID(f.hdr[4]) == peerwire.Extended {
		want = 6
	}
	if n == 0 || f.nhdr == 4+int(n) || f.nhdr < want {
		if n == 0 || f.nhdr == 4+int(n) {
			f.nhdr = 0 // the whole message was its header
		}
		return
	}
	f.body = n + 4 - uint64(f.nhdr)
	if shows(f.hdr[4], f.hdr[5], f.nhdr) {
		f.keepBody = f.body <= showsMax(f.hdr[4], f.hdr[5]) && tr.Fits(peer, pending+int(f.body))
	} else {
		f.keepBody = f.body <= maxPaddingKept
	}
	f.nhdr = 0
}

// Longest bodies of extension messages that show something the
// transcript keeps; a longer one, larger than any client sends, is
// withheld like padding (a peer could bloat one to fill the bound and
// push its possession messages out). An extension handshake and a PEX
// message (BEP 11: at most 50 peers added a message, each family) are a
// few hundred bytes to a few KiB; a ut_metadata reply carries one 16 KiB
// piece of the info dictionary after its own dictionary.
const (
	maxExtKept      = 8 << 10
	maxMetadataKept = 16<<10 + 1<<10
)

// showsMax is the longest body kept of a message that shows something,
// of type id (extension id ext).
func showsMax(id, ext byte) uint64 {
	if peerwire.MsgID(id) != peerwire.Extended {
		return 1 << 30
	}
	if ext == ExtMetadataID {
		return maxMetadataKept
	}
	return maxExtKept
}

// shows reports whether a message of type id (extension id ext, if
// nhdr is 6) can back a claim: what the peer holds, its DHT port, its
// listen port and client (the extension handshake), the peers it names,
// the info dictionary it gave (the piece count).
func shows(id, ext byte, nhdr int) bool {
	switch peerwire.MsgID(id) {
	case peerwire.Bitfield, peerwire.Have, peerwire.HaveAll, peerwire.HaveNone, peerwire.Port:
		return true
	case peerwire.Extended:
		return nhdr == 6 && (ext == peerwire.ExtHandshakeID || ext == ExtPEXID || ext == ExtMetadataID)
	}
	return false
}
