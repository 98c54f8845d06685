package transcript

import (
	"net/netip"
	"time"
)

// Writer builds one bounded transcript, in the order things happened, so
// that a defence expert can decode it with any BitTorrent tool.
//
// A transcript is bounded (its limit). A record that does not fit keeps
// what fits of its start, at most half the room left so that later small
// messages still fit, and the rest is counted in a cut record written
// where the cut happened (before the next record kept, or at the end):
// nothing is left out without a record saying where and how much. Room
// for three such records is kept; when a gap record would leave no room
// for one more, it and everything after it go into one last cut record,
// written at the end: the transcript never exceeds its bound.
//
// The zero limit records nothing. A Writer is not safe for concurrent use.
type Writer struct {
	limit int
	start time.Time
	buf   []byte

	cut   *gapRecord // bytes being cut, not yet written
	pause *gapRecord // non-nil while paused
	over  *gapRecord // the bound is reached: every later byte is counted here

	// The received stream's byte offsets (stream records only) and the
	// ranges of it that are not in the transcript, so that a reader of the
	// stream counts only messages whose bytes a reader can see (Kept).
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
// counts as not kept, and is not kept: every later byte goes into the
// last cut record, so that what Kept says and what a reader of the
// transcript finds stay the same.
const maxGaps = 1024

// gapsFull reports whether the gaps remembered reached maxGaps.
func (t *Writer) gapsFull() bool { return len(t.gaps) >= maxGaps }

// NewWriter returns a writer of at most limit bytes.
func NewWriter(limit int) *Writer { return &Writer{limit: limit} }

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

func (t *Writer) on() bool { return t != nil && t.limit > 0 }

func (t *Writer) offset(at time.Time) time.Duration {
	if t.start.IsZero() {
		t.start = at
	}
	return at.Sub(t.start)
}

func (t *Writer) record(r Record) { t.buf = r.AppendTo(t.buf) }

// flush writes g if that leaves room for one more gap record, and
// otherwise counts it in the last cut record (over).
func (t *Writer) flush(g *gapRecord) {
	if g == nil {
		return
	}
	if t.over != nil || len(t.buf)+2*gapRecordMax > t.limit {
		if t.over == nil {
			t.over = &gapRecord{typ: Cut, at: g.at, last: g.last, peer: g.peer}
		}
		t.over.recv += g.recv
		t.over.sent += g.sent
		if g.last.After(t.over.last) {
			t.over.last = g.last
		}
		return
	}
	t.record(Record{Type: g.typ, Offset: t.offset(g.at), Peer: g.peer,
		ReceivedLeft: g.recv, SentLeft: g.sent, Span: g.last.Sub(g.at)})
}

// leave counts n bytes of direction dir as left out in g (created if nil).
func leave(g **gapRecord, typ, dir byte, at time.Time, peer string, n int) {
	if *g == nil {
		*g = &gapRecord{typ: typ, at: at, peer: peer}
	}
	(*g).last = at
	if dir == Received {
		(*g).recv += uint64(n)
	} else {
		(*g).sent += uint64(n)
	}
}

// gap notes that received stream bytes [from, to) are not kept.
func (t *Writer) gap(from, to uint64) {
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

// Kept reports whether received stream bytes [from, to) are all in the
// transcript. With transcripts off (limit 0) there is nothing to show and
// nothing to hide: every byte counts as kept.
func (t *Writer) Kept(from, to uint64) bool {
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

func (t *Writer) add(dir byte, at time.Time, peer netip.AddrPort, b []byte) bool {
	return t.addRecord(dir, at, peer, b, false)
}

// addRecord records b; stream says it is a chunk of the received TCP or
// uTP stream whose offsets Kept tracks. It reports whether all of b is in
// the transcript (with transcripts off: true, nothing is hidden).
func (t *Writer) addRecord(dir byte, at time.Time, peer netip.AddrPort, b []byte, stream bool) bool {
	if !t.on() || len(b) == 0 && dir != Note {
		return true
	}
	p := peerText(peer)
	from := t.recvOff
	if stream && dir == Received {
		t.recvOff += uint64(len(b))
	}
	if t.pause != nil || t.over != nil || t.gapsFull() {
		if t.pause != nil {
			leave(&t.pause, Paused, dir, at, p, len(b))
		} else {
			leave(&t.over, Cut, dir, at, p, len(b))
		}
		if stream && dir == Received {
			t.gap(from, t.recvOff)
		}
		return false
	}
	reserve := 3 * gapRecordMax
	header := 1 + 10 + 1 + len(p) + 10
	keep := len(b)
	if len(t.buf)+header+len(b)+reserve > t.limit {
		room := t.limit - len(t.buf) - header - reserve
		keep = min(len(b), max(room/2, 0))
		if dir == Note {
			keep = 0 // a note is whole or not at all
		}
	}
	if keep > 0 {
		t.flush(t.cut)
		t.cut = nil
		t.record(Record{Type: dir, Offset: t.offset(at), Peer: p, Data: b[:keep]})
	} else {
		t.offset(at)
	}
	if left := len(b) - keep; left > 0 {
		leave(&t.cut, Cut, dir, at, p, left)
		if stream && dir == Received {
			t.gap(from+uint64(keep), t.recvOff)
		}
		return false
	}
	return true
}

// Sent and Received record one datagram or message each, and report
// whether it is all in the transcript: nothing may be taken from bytes
// that are not.
func (t *Writer) Sent(at time.Time, peer netip.AddrPort, b []byte) bool {
	return t.add(Sent, at, peer, b)
}

// Received records one datagram or message received (see Sent).
func (t *Writer) Received(at time.Time, peer netip.AddrPort, b []byte) bool {
	return t.add(Received, at, peer, b)
}

// Note records a text of the sensor's, whole or not at all, and reports
// whether it is in the transcript.
func (t *Writer) Note(at time.Time, peer netip.AddrPort, text string) bool {
	return t.add(Note, at, peer, []byte(text))
}

// StreamSent records a chunk of a TCP or uTP stream sent.
func (t *Writer) StreamSent(at time.Time, peer netip.AddrPort, b []byte) {
	t.addRecord(Sent, at, peer, b, true)
}

// StreamReceived records a chunk of a TCP or uTP stream received; Kept
// follows its offsets.
func (t *Writer) StreamReceived(at time.Time, peer netip.AddrPort, b []byte) {
	t.addRecord(Received, at, peer, b, true)
}

// StreamWithheld counts n bytes of the received TCP or uTP stream that
// are deliberately not kept (the body of a message that shows nothing,
// which a peer could use to push what does show out of the bound): they
// go into a cut record placed here, as bytes past the bound do, and Kept
// follows them.
func (t *Writer) StreamWithheld(at time.Time, peer netip.AddrPort, n int) {
	if !t.on() || n <= 0 {
		return
	}
	from := t.recvOff
	t.recvOff += uint64(n)
	t.offset(at)
	switch {
	case t.pause != nil:
		leave(&t.pause, Paused, Received, at, peerText(peer), n)
	case t.over != nil || t.gapsFull():
		leave(&t.over, Cut, Received, at, peerText(peer), n)
	default:
		leave(&t.cut, Cut, Received, at, peerText(peer), n)
	}
	t.gap(from, t.recvOff)
}

// Fits reports whether a record of n bytes for peer would be kept whole
// if it were added now.
func (t *Writer) Fits(peer netip.AddrPort, n int) bool {
	if !t.on() {
		return true
	}
	if t.pause != nil || t.over != nil || t.gapsFull() {
		return false
	}
	need := len(t.buf) + 1 + 10 + 1 + len(peerText(peer)) + 10 + n + 3*gapRecordMax
	if t.cut != nil {
		need += gapRecordMax // the pending cut record is written first
	}
	return need <= t.limit
}

// PauseAt stops keeping bytes: those that cross until ResumeAt are
// counted in a paused record written where the pause began.
func (t *Writer) PauseAt(at time.Time, peer netip.AddrPort) {
	if !t.on() || t.pause != nil {
		return
	}
	t.flush(t.cut)
	t.cut = nil
	t.pause = &gapRecord{typ: Paused, at: at, last: at, peer: peerText(peer)}
}

// ResumeAt writes the paused record and keeps bytes again.
func (t *Writer) ResumeAt(at time.Time) {
	if !t.on() || t.pause == nil {
		return
	}
	if t.pause.recv > 0 || t.pause.sent > 0 { // nothing crossed: nothing left out
		t.flush(t.pause)
	}
	t.pause = nil
}

// Bytes returns the transcript so far, with the gaps still pending (a
// cut, a pause, the last cut record) written at its end; nil when nothing
// was recorded or the limit is 0. The gaps are written to a copy: the
// writer can go on.
func (t *Writer) Bytes() []byte {
	if !t.on() {
		return nil
	}
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
		c.record(Record{Type: Cut, Offset: c.offset(c.over.at), Peer: c.over.peer,
			ReceivedLeft: c.over.recv, SentLeft: c.over.sent, Span: c.over.last.Sub(c.over.at)})
	}
	if len(c.buf) == 0 {
		return nil
	}
	return c.buf
}
