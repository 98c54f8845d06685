package bittorrent

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// A transcript is the raw protocol exchange behind an observation, in the
// order it happened, so that a defence expert can decode it with any
// BitTorrent tool. Its encoding (package transcript, docs/evidence.md) is a
// sequence of records, each with its own time:
//
//	type       1 byte: '<' received by the sensor, '>' sent by it, '#' a
//	           note, '-' bytes cut, '=' bytes not kept while paused
//	offset     uvarint: nanoseconds since the first record
//	peer       1 byte length, then the peer's address as text ("127.0.0.1:6881")
//	length     uvarint, then that many bytes: raw bytes (one datagram, or a
//	           chunk of a stream), a note's text, or for '-' and '=' three
//	           uvarints: bytes left out received, sent, and the nanoseconds
//	           from the record's offset to the last byte left out
//
// A transcript is bounded (limit). A record that does not fit keeps what
// fits of its start, at most half the room left so that later small
// messages still fit, and the rest is counted in a cut record written
// where the cut happened (before the next record kept, or at the end):
// nothing is left out without a record saying where and how much. Room
// for three such records is kept; when a gap record would leave no room
// for one more, it and everything after it go into one last cut record,
// written at the end: the transcript never exceeds its bound.
type transcript struct {
	limit int
	start time.Time
	buf   []byte

	cut   *gapRecord // bytes being cut, not yet written
	pause *gapRecord // non-nil while paused
	over  *gapRecord // the bound is reached: every later byte is counted here

	// The received stream's byte offsets (stream records only) and the
	// ranges of it that are not in the transcript, so that the probe
	// counts only messages whose bytes a reader can see (kept).
	recvOff uint64
	gaps    []byteRange
}

type gapRecord struct {
	typ        byte
	at, last   time.Time
	peer       string
	recv, sent uint64
}

type byteRange struct{ from, to uint64 }

// maxGaps bounds the gaps remembered; past it the rest of the stream
// counts as not kept.
const maxGaps = 1024

func newTranscript(limit int) *transcript { return &transcript{limit: limit} }

// maxPeerText bounds the peer field the writer uses (an address as text
// is at most 47 bytes without a zone; zones are cut).
const maxPeerText = 64

// gapRecordMax is the most bytes a cut or pause record takes.
const gapRecordMax = 1 + 10 + 1 + maxPeerText + 1 + 30

func peerText(peer netip.AddrPort) string {
	p := peer.String()
	if len(p) > maxPeerText {
		p = p[:maxPeerText]
	}
	return p
}

func (t *transcript) on() bool { return t != nil && t.limit > 0 }

func (t *transcript) offset(at time.Time) time.Duration {
	if t.start.IsZero() {
		t.start = at
	}
	return at.Sub(t.start)
}

func (t *transcript) record(r tscript.Record) { t.buf = r.AppendTo(t.buf) }

// flush writes g if that leaves room for one more gap record, and
// otherwise counts it in the last cut record (over).
func (t *transcript) flush(g *gapRecord) {
	if g == nil {
		return
	}
	if t.over != nil || len(t.buf)+2*gapRecordMax > t.limit {
		if t.over == nil {
			t.over = &gapRecord{typ: tscript.Cut, at: g.at, last: g.last, peer: g.peer}
		}
		t.over.recv += g.recv
		t.over.sent += g.sent
		if g.last.After(t.over.last) {
			t.over.last = g.last
		}
		return
	}
	t.record(tscript.Record{Type: g.typ, Offset: t.offset(g.at), Peer: g.peer,
		ReceivedLeft: g.recv, SentLeft: g.sent, Span: g.last.Sub(g.at)})
}

// leave counts n bytes of direction dir as left out in g (created if nil).
func leave(g **gapRecord, typ, dir byte, at time.Time, peer string, n int) {
	if *g == nil {
		*g = &gapRecord{typ: typ, at: at, peer: peer}
	}
	(*g).last = at
	if dir == tscript.Received {
		(*g).recv += uint64(n)
	} else {
		(*g).sent += uint64(n)
	}
}

// gap notes that received stream bytes [from, to) are not kept.
func (t *transcript) gap(from, to uint64) {
	if from >= to {
		return
	}
	if k := len(t.gaps); k > 0 && t.gaps[k-1].to >= from {
		t.gaps[k-1].to = max(t.gaps[k-1].to, to)
		return
	}
	if len(t.gaps) >= maxGaps {
		t.gaps[len(t.gaps)-1].to = ^uint64(0)
		return
	}
	t.gaps = append(t.gaps, byteRange{from, to})
}

// kept reports whether received stream bytes [from, to) are all in the
// transcript. With transcripts off (limit 0) there is nothing to show and
// nothing to hide: every byte counts as kept.
func (t *transcript) kept(from, to uint64) bool {
	if !t.on() {
		return true
	}
	for _, g := range t.gaps {
		if g.from < to && from < g.to {
			return false
		}
	}
	return true
}

func (t *transcript) add(dir byte, at time.Time, peer netip.AddrPort, b []byte) {
	t.addRecord(dir, at, peer, b, false)
}

// addRecord records b; stream says it is a chunk of the received TCP or
// uTP stream whose offsets kept tracks.
func (t *transcript) addRecord(dir byte, at time.Time, peer netip.AddrPort, b []byte, stream bool) {
	if !t.on() || len(b) == 0 && dir != tscript.Note {
		return
	}
	p := peerText(peer)
	from := t.recvOff
	if stream && dir == tscript.Received {
		t.recvOff += uint64(len(b))
	}
	if t.pause != nil || t.over != nil {
		if t.pause != nil {
			leave(&t.pause, tscript.Paused, dir, at, p, len(b))
		} else {
			leave(&t.over, tscript.Cut, dir, at, p, len(b))
		}
		if stream && dir == tscript.Received {
			t.gap(from, t.recvOff)
		}
		return
	}
	reserve := 3 * gapRecordMax
	header := 1 + 10 + 1 + len(p) + 10
	keep := len(b)
	if len(t.buf)+header+len(b)+reserve > t.limit {
		room := t.limit - len(t.buf) - header - reserve
		keep = min(len(b), max(room/2, 0))
		if dir == tscript.Note {
			keep = 0 // a note is whole or not at all
		}
	}
	if keep > 0 {
		t.flush(t.cut)
		t.cut = nil
		t.record(tscript.Record{Type: dir, Offset: t.offset(at), Peer: p, Data: b[:keep]})
	} else {
		t.offset(at)
	}
	if left := len(b) - keep; left > 0 {
		leave(&t.cut, tscript.Cut, dir, at, p, left)
		if stream && dir == tscript.Received {
			t.gap(from+uint64(keep), t.recvOff)
		}
	}
}

// sent and received record one datagram or message each.
func (t *transcript) sent(at time.Time, peer netip.AddrPort, b []byte) {
	t.add(tscript.Sent, at, peer, b)
}
func (t *transcript) received(at time.Time, peer netip.AddrPort, b []byte) {
	t.add(tscript.Received, at, peer, b)
}

// note records a text of the sensor's.
func (t *transcript) note(at time.Time, peer netip.AddrPort, text string) {
	t.add(tscript.Note, at, peer, []byte(text))
}

// streamSent and streamReceived record a chunk of a TCP or uTP stream.
func (t *transcript) streamSent(at time.Time, peer netip.AddrPort, b []byte) {
	t.addRecord(tscript.Sent, at, peer, b, true)
}
func (t *transcript) streamReceived(at time.Time, peer netip.AddrPort, b []byte) {
	t.addRecord(tscript.Received, at, peer, b, true)
}

// pauseAt stops keeping bytes: those that cross until resumeAt are counted
// in a paused record written where the pause began.
func (t *transcript) pauseAt(at time.Time, peer netip.AddrPort) {
	if !t.on() || t.pause != nil {
		return
	}
	t.flush(t.cut)
	t.cut = nil
	t.pause = &gapRecord{typ: tscript.Paused, at: at, last: at, peer: peerText(peer)}
}

// resumeAt writes the paused record and keeps bytes again.
func (t *transcript) resumeAt(at time.Time) {
	if !t.on() || t.pause == nil {
		return
	}
	if t.pause.recv > 0 || t.pause.sent > 0 { // nothing crossed: nothing left out
		t.flush(t.pause)
	}
	t.pause = nil
}

// final returns the transcript for an Observation; emit marks it cut or
// paused from its records.
func (t *transcript) final() observe.Transcript {
	if !t.on() {
		return observe.Transcript{}
	}
	// Pending gaps are written to a copy: the transcript can go on.
	c := *t
	c.buf = append([]byte(nil), t.buf...)
	if t.over != nil {
		o := *t.over
		c.over = &o
	}
	c.flush(c.cut)
	if c.pause != nil && (c.pause.recv > 0 || c.pause.sent > 0) {
		c.flush(c.pause)
	}
	if c.over != nil {
		c.record(tscript.Record{Type: tscript.Cut, Offset: c.offset(c.over.at), Peer: c.over.peer,
			ReceivedLeft: c.over.recv, SentLeft: c.over.sent, Span: c.over.last.Sub(c.over.at)})
	}
	out := c.buf
	if len(out) == 0 {
		return observe.Transcript{}
	}
	sum := sha256.Sum256(out)
	return observe.Transcript{Bytes: out, SHA256: sum[:]}
}

// transcriptMarks returns the marks a transcript's records call for.
func transcriptMarks(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	s, err := tscript.Summarize(b)
	var ms []string
	if s.Cut || err != nil {
		ms = append(ms, observe.MarkTranscriptCut)
	}
	if s.Paused {
		ms = append(ms, observe.MarkTranscriptPaused)
	}
	return ms
}

// oneDatagram is the transcript of a single received datagram.
func oneDatagram(limit int, at time.Time, from netip.AddrPort, b []byte) observe.Transcript {
	t := newTranscript(limit)
	t.received(at, from, b)
	return t.final()
}
