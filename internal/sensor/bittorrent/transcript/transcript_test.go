package transcript

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func sample() []Record {
	return []Record{
		{Type: Sent, Offset: 0, Peer: "127.0.0.2:6881", Data: []byte("\x13BitTorrent protocol")},
		{Type: Received, Offset: 1500 * time.Microsecond, Peer: "127.0.0.2:6881", Data: []byte{0, 0, 0, 1, 14}},
		{Type: Cut, Offset: 2 * time.Millisecond, Peer: "127.0.0.2:6881", ReceivedLeft: 20000, SentLeft: 3, Span: time.Millisecond},
		{Type: Paused, Offset: 3 * time.Millisecond, Peer: "[::1]:6881", ReceivedLeft: 16397, Span: 40 * time.Millisecond},
		{Type: Note, Offset: 50 * time.Millisecond, Peer: "127.0.0.2:6881", Data: []byte("piece 0 hashed")},
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	var b []byte
	for _, r := range sample() {
		b = r.AppendTo(b)
	}
	recs, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(sample()) {
		t.Fatalf("%d records, want %d", len(recs), len(sample()))
	}
	for i, r := range recs {
		w := sample()[i]
		if r.Type != w.Type || r.Offset != w.Offset || r.Peer != w.Peer || !bytes.Equal(r.Data, w.Data) ||
			r.ReceivedLeft != w.ReceivedLeft || r.SentLeft != w.SentLeft || r.Span != w.Span {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
	}
	s, err := Summarize(b)
	if err != nil || !s.Cut || !s.Paused || s.ReceivedLeft != 36397 || s.SentLeft != 3 {
		t.Fatalf("Summarize = %+v, %v", s, err)
	}
}

// Transcripts written before cut records ended with '!' and a count; they
// still read, as a cut.
func TestDecodeReadsLegacyEndMarker(t *testing.T) {
	b := Record{Type: Received, Peer: "127.0.0.1:1", Data: []byte("x")}.AppendTo(nil)
	b = append(b, '!', 0x91, 0x01) // 145 bytes cut
	s, err := Summarize(b)
	if err != nil || !s.Cut || s.LegacyLeft != 145 || s.Records != 2 {
		t.Fatalf("Summarize = %+v, %v", s, err)
	}
	if _, err := Decode(append(b, b...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("legacy marker in the middle: %v, want ErrMalformed", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"unknown-type":      {'?', 0, 0, 0},
		"short-peer":        {'<', 0, 5, 'a'},
		"short-data":        {'<', 0, 0, 9, 1, 2},
		"overlong-uvarint":  {'<', 0x80, 0x00, 0, 0},
		"gap-payload-extra": {'-', 0, 0, 4, 1, 1, 1, 1},
		"gap-payload-short": {'=', 0, 0, 2, 1, 1},
	} {
		if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Decode(%x) = %v, want ErrMalformed", name, b, err)
		}
	}
}

// FuzzDecode decodes, re-encodes and compares: the encoding is canonical,
// so what decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	var b []byte
	for _, r := range sample() {
		b = r.AppendTo(b)
	}
	f.Add(b)
	f.Add([]byte{'<', 0, 3, '1', ':', '2', 1, 'x', '!', 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		recs, err := Decode(in)
		if err != nil {
			return
		}
		var out []byte
		for _, r := range recs {
			out = r.AppendTo(out)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("Decode then AppendTo of %x gave %x", in, out)
		}
	})
}

// Past maxGaps holes the writer counts the rest of the received stream as
// not kept (Kept), and keeps none of it either: a byte a reader could
// find, which Kept says is not there, would be counted by the verifier and
// not by the probe.
func TestNothingKeptPastMaxGaps(t *testing.T) {
	w := NewWriter(1 << 20)
	peer := netip.MustParseAddrPort("127.0.0.2:6881")
	at := time.Unix(0, 0)
	for range maxGaps + 5 {
		w.StreamReceived(at, peer, []byte{1})
		w.StreamWithheld(at, peer, 10)
	}
	from := w.recvOff
	w.StreamReceived(at, peer, []byte("evidence"))
	if w.Kept(from, from+8) {
		t.Fatal("Kept says bytes past maxGaps holes are kept")
	}
	if bytes.Contains(w.Bytes(), []byte("evidence")) {
		t.Fatal("bytes Kept says are not kept are in the transcript")
	}
	recs, err := Decode(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var kept, left uint64
	for _, r := range recs {
		if r.Type == Received {
			kept += uint64(len(r.Data))
		}
		left += r.ReceivedLeft
	}
	if kept+left != w.recvOff {
		t.Fatalf("kept %d and cut %d bytes of %d received", kept, left, w.recvOff)
	}
}
