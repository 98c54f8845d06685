// Package record keeps the bounded transcript of an eD2K or Kad exchange
// in the transcript format of internal/sensor/bittorrent/transcript
// (docs/evidence.md, "Transcripts"): one record per packet or datagram,
// each with its own time and peer, so that an expert can decode it with
// that package or by hand.
//
// It must never hide a gap: a packet that does not fit keeps its start
// and the rest is counted in a cut record written right after it; once
// the bound leaves room for no more, everything later is counted in one
// cut record at the end; bytes not kept while paused (a part fetched for
// verification) are counted in a paused record where the pause began. A
// transcript never exceeds its bound.
package record

import (
	"crypto/sha256"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// maxPeerText bounds the peer field.
const maxPeerText = 64

// gapMax is the most bytes a cut or paused record takes.
const gapMax = 1 + 10 + 1 + maxPeerText + 1 + 30

// Recorder builds one transcript. The zero limit records nothing. It is
// not safe for concurrent use.
type Recorder struct {
	limit int
	now   func() time.Time
	start time.Time
	buf   []byte
	pause *gap // non-nil while paused
	over  *gap // the bound was reached: everything later counts here
}

type gap struct {
	typ        byte
	at, last   time.Time
	peer       string
	recv, sent uint64
}

// New returns a recorder of at most limit bytes, timed by now (time.Now
// when nil).
func New(limit int, now func() time.Time) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{limit: limit, now: now}
}

func peerText(p netip.AddrPort) string {
	s := p.String()
	if len(s) > maxPeerText {
		s = s[:maxPeerText]
	}
	return s
}

func (r *Recorder) on() bool { return r != nil && r.limit > 0 }

func (r *Recorder) offset(at time.Time) time.Duration {
	if r.start.IsZero() {
		r.start = at
	}
	return max(at.Sub(r.start), 0)
}

func (r *Recorder) writeGap(g *gap) {
	r.buf = tscript.Record{Type: g.typ, Offset: r.offset(g.at), Peer: g.peer,
		ReceivedLeft: g.recv, SentLeft: g.sent, Span: g.last.Sub(g.at)}.AppendTo(r.buf)
}

func (g *gap) add(dir byte, at time.Time, n int) {
	g.last = at
	if dir == tscript.Received {
		g.recv += uint64(n)
	} else {
		g.sent += uint64(n)
	}
}

// Sent records bytes the sensor sent to peer, and reports whether they
// are all in the transcript.
func (r *Recorder) Sent(peer netip.AddrPort, b []byte) bool {
	return r.add(tscript.Sent, peer, b)
}

// Received records bytes the sensor received from peer (one packet or
// datagram), and reports whether they are all in the transcript. A caller
// takes nothing into an observation from bytes that are not.
func (r *Recorder) Received(peer netip.AddrPort, b []byte) bool {
	return r.add(tscript.Received, peer, b)
}

// Note records a text of the sensor's (whole or not at all).
func (r *Recorder) Note(peer netip.AddrPort, text string) bool {
	return r.add(tscript.Note, peer, []byte(text))
}

func (r *Recorder) add(dir byte, peer netip.AddrPort, b []byte) bool {
	if !r.on() {
		return true // nothing to show, nothing hidden
	}
	at := r.now()
	p := peerText(peer)
	if r.pause != nil || r.over != nil {
		g := r.pause
		if g == nil {
			g = r.over
		}
		g.add(dir, at, len(b))
		return false
	}
	header := 1 + 10 + 1 + len(p) + 10
	reserve := 2 * gapMax
	keep := len(b)
	if len(r.buf)+header+len(b)+reserve > r.limit {
		room := r.limit - len(r.buf) - header - reserve
		keep = min(len(b), max(room/2, 0))
		if dir == tscript.Note {
			keep = 0
		}
	}
	if keep == 0 && len(b) > 0 {
		r.cut(p, dir, at, len(b))
		return false
	}
	r.buf = tscript.Record{Type: dir, Offset: r.offset(at), Peer: p, Data: b[:keep]}.AppendTo(r.buf)
	if keep < len(b) {
		r.cut(p, dir, at, len(b)-keep)
		return false
	}
	return true
}

// Withheld counts bytes received from peer that are deliberately not
// kept (a server's keyword search result, which names files nobody
// watches): a cut record placed here says how many, as for bytes past
// the bound. It reports false: they are not in the transcript.
func (r *Recorder) Withheld(peer netip.AddrPort, b []byte) bool {
	if !r.on() || len(b) == 0 {
		return len(b) == 0
	}
	at := r.now()
	if g := r.pause; g != nil {
		g.add(tscript.Received, at, len(b))
		return false
	}
	if r.over != nil {
		r.over.add(tscript.Received, at, len(b))
		return false
	}
	r.cut(peerText(peer), tscript.Received, at, len(b))
	return false
}

// cut counts n bytes left out here: a cut record right now if that still
// leaves room for the last one, else the final cut record.
func (r *Recorder) cut(p string, dir byte, at time.Time, n int) {
	g := &gap{typ: tscript.Cut, at: at, peer: p}
	g.add(dir, at, n)
	if len(r.buf)+2*gapMax > r.limit {
		r.over = g
		return
	}
	r.writeGap(g)
}

// Pause stops keeping bytes: what crosses until Resume is counted in a
// paused record placed where the pause began.
func (r *Recorder) Pause(peer netip.AddrPort) {
	if !r.on() || r.pause != nil || r.over != nil {
		return
	}
	at := r.now()
	r.pause = &gap{typ: tscript.Paused, at: at, last: at, peer: peerText(peer)}
}

// Resume writes the paused record (if anything crossed) and keeps bytes
// again.
func (r *Recorder) Resume() {
	if !r.on() || r.pause == nil {
		return
	}
	g := r.pause
	r.pause = nil
	if g.recv == 0 && g.sent == 0 {
		return
	}
	if len(r.buf)+2*gapMax > r.limit {
		r.over = &gap{typ: tscript.Cut, at: g.at, last: g.last, peer: g.peer, recv: g.recv, sent: g.sent}
		return
	}
	r.writeGap(g)
}

// Final returns the transcript as it stands, with any pending gap written
// (to a copy: the recorder can go on), and its SHA-256.
func (r *Recorder) Final() observe.Transcript {
	if !r.on() {
		return observe.Transcript{}
	}
	c := *r
	c.buf = append([]byte(nil), r.buf...)
	if c.pause != nil && (c.pause.recv > 0 || c.pause.sent > 0) {
		c.writeGap(c.pause)
	}
	if c.over != nil {
		c.writeGap(c.over)
	}
	if len(c.buf) == 0 {
		return observe.Transcript{}
	}
	sum := sha256.Sum256(c.buf)
	return observe.Transcript{Bytes: c.buf, SHA256: sum[:]}
}

// Marks returns the marks a transcript's records call for: transcript_cut
// when bytes were cut (or it cannot be decoded), transcript_paused when a
// pause left bytes out.
func Marks(b []byte) []string {
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

// One returns the transcript of a single exchange: what the sensor sent
// to peer at sentAt (if anything) and what came back at recvAt; kept
// reports whether what came back is whole in it (a caller takes nothing
// from it otherwise).
func One(limit int, peer netip.AddrPort, sentAt time.Time, sent []byte, recvAt time.Time, recv []byte) (tr observe.Transcript, kept bool) {
	times := []time.Time{sentAt, recvAt}
	i := 0
	r := New(limit, func() time.Time { t := times[min(i, 1)]; i++; return t })
	if len(sent) == 0 {
		i = 1
	} else {
		r.Sent(peer, sent)
	}
	kept = r.Received(peer, recv)
	return r.Final(), kept
}
