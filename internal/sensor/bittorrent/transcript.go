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
// BitTorrent tool. Its encoding is package transcript's (docs/evidence.md),
// and so is the bounded writer every part of the sensor records with
// (transcript.Writer): nothing is left out without a record saying where
// and how much.

func newTranscript(limit int) *tscript.Writer { return tscript.NewWriter(limit) }

// final returns the transcript for an Observation: its bytes so far (the
// writer can go on) and their SHA-256; emit marks it cut or paused from
// its records.
func final(t *tscript.Writer) observe.Transcript {
	out := t.Bytes()
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
	t.Received(at, from, b)
	return final(t)
}
