package bittorrent

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

var trPeer = netip.MustParseAddrPort("127.0.0.2:6881")

func decodeTranscript(t *testing.T, tr observe.Transcript) []tscript.Record {
	t.Helper()
	recs, err := tscript.Decode(tr.Bytes)
	if err != nil {
		t.Fatalf("transcript does not decode: %v", err)
	}
	return recs
}

// A record too large for the bound keeps its start and a cut record right
// after it counts the rest; a later small record still fits, after the
// cut. Before, the whole record was dropped and only a total at the end
// said so (the 20 KB bitfield that left 91 bytes).
func TestTranscriptMarksCutWhereItHappens(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTranscript(4096)
	tr.StreamSent(t0, trPeer, []byte("hello"))
	big := bytes.Repeat([]byte{0xff}, 20000)
	tr.StreamReceived(t0.Add(time.Millisecond), trPeer, big)
	tr.StreamReceived(t0.Add(2*time.Millisecond), trPeer, []byte{0, 0, 0, 1, 14})
	out := final(tr)
	if len(out.Bytes) > 4096 {
		t.Fatalf("transcript of %d bytes, bound 4096", len(out.Bytes))
	}
	recs := decodeTranscript(t, out)
	var types []byte
	for _, r := range recs {
		types = append(types, r.Type)
	}
	if string(types) != "><-<" {
		t.Fatalf("record types %q, want \"><-<\" (the cut where it happened)", types)
	}
	kept, cut := len(recs[1].Data), recs[2]
	if uint64(kept)+cut.ReceivedLeft != 20000 || cut.SentLeft != 0 || kept == 0 {
		t.Fatalf("kept %d and cut %d of 20000 bytes", kept, cut.ReceivedLeft)
	}
	if cut.Offset != time.Millisecond || recs[3].Offset != 2*time.Millisecond {
		t.Fatalf("offsets %v, %v: each record keeps its own time", cut.Offset, recs[3].Offset)
	}
	if !tr.Kept(0, uint64(kept)) || tr.Kept(uint64(kept), uint64(kept)+1) || !tr.Kept(20000, 20005) {
		t.Fatal("kept() does not follow the cut")
	}
	if ms := transcriptMarks(out.Bytes); len(ms) != 1 || ms[0] != observe.MarkTranscriptCut {
		t.Fatalf("marks %v, want transcript_cut", ms)
	}
}

// Bytes that cross while recording is paused are counted in a paused
// record placed where the pause began.
func TestTranscriptMarksPause(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTranscript(1 << 16)
	tr.StreamReceived(t0, trPeer, []byte("abc"))
	tr.PauseAt(t0.Add(time.Second), trPeer)
	tr.StreamSent(t0.Add(time.Second), trPeer, []byte("req"))
	tr.StreamReceived(t0.Add(2*time.Second), trPeer, bytes.Repeat([]byte{7}, 1000))
	tr.ResumeAt(t0.Add(3 * time.Second))
	tr.Note(t0.Add(3*time.Second), trPeer, "piece 0 hashed")
	tr.StreamReceived(t0.Add(4*time.Second), trPeer, []byte("z"))
	out := final(tr)
	recs := decodeTranscript(t, out)
	if len(recs) != 4 || recs[1].Type != tscript.Paused || recs[2].Type != tscript.Note {
		t.Fatalf("records %+v", recs)
	}
	p := recs[1]
	if p.ReceivedLeft != 1000 || p.SentLeft != 3 || p.Offset != time.Second || p.Span != time.Second {
		t.Fatalf("paused record %+v", p)
	}
	if bytes.Contains(out.Bytes, bytes.Repeat([]byte{7}, 10)) {
		t.Fatal("paused bytes in the transcript")
	}
	if tr.Kept(3, 1003) || !tr.Kept(1003, 1004) {
		t.Fatal("kept() does not follow the pause")
	}
	if ms := transcriptMarks(out.Bytes); len(ms) != 1 || ms[0] != observe.MarkTranscriptPaused {
		t.Fatalf("marks %v, want transcript_paused", ms)
	}
	// A pause that never ends is written at the end.
	tr2 := newTranscript(1 << 16)
	tr2.PauseAt(t0, trPeer)
	tr2.StreamReceived(t0, trPeer, []byte("secret"))
	if recs := decodeTranscript(t, final(tr2)); len(recs) != 1 || recs[0].Type != tscript.Paused || recs[0].ReceivedLeft != 6 {
		t.Fatalf("unended pause: %+v", recs)
	}
}

// Many records past the bound merge into one cut record; the transcript
// stays within the bound.
func TestTranscriptCutsMergeAndStayBounded(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tr := newTranscript(1024)
	for i := range 1000 {
		tr.Received(t0.Add(time.Duration(i)), trPeer, bytes.Repeat([]byte{byte(i)}, 100))
	}
	out := final(tr)
	if len(out.Bytes) > 1024 {
		t.Fatalf("%d bytes, bound 1024", len(out.Bytes))
	}
	recs := decodeTranscript(t, out)
	var kept, left uint64
	cuts := 0
	for _, r := range recs {
		kept += uint64(len(r.Data))
		left += r.ReceivedLeft
		if r.Type == tscript.Cut {
			cuts++
		}
	}
	if kept+left != 100000 {
		t.Fatalf("kept %d + cut %d != 100000 bytes", kept, left)
	}
	if cuts > 3 {
		t.Fatalf("%d cut records for one run of cuts", cuts)
	}
}

// FuzzTranscriptWriter drives the writer with records, pauses and resumes
// read from the input: the transcript must decode, stay within its bound
// (plus the gap records it always has room for), and account for every
// byte, kept or counted as left out.
func FuzzTranscriptWriter(f *testing.F) {
	f.Add(uint16(300), []byte{0, 200, 1, 10, 2, 3, 0, 50, 3})
	f.Add(uint16(4096), []byte{0, 255, 0, 255, 0, 255, 1, 255})
	f.Fuzz(func(t *testing.T, limit uint16, ops []byte) {
		tr := newTranscript(int(limit))
		at := time.Unix(1000, 0)
		var total uint64
		for i := 0; i+1 < len(ops); i += 2 {
			at = at.Add(time.Duration(ops[i+1]) * time.Millisecond)
			n := int(ops[i+1]) * 37
			switch ops[i] % 5 {
			case 0:
				tr.StreamReceived(at, trPeer, make([]byte, n))
				total += uint64(n)
			case 1:
				tr.StreamSent(at, trPeer, make([]byte, n))
				total += uint64(n)
			case 2:
				tr.PauseAt(at, trPeer)
			case 3:
				tr.ResumeAt(at)
			case 4:
				tr.Received(at, trPeer, make([]byte, n))
				total += uint64(n)
			}
		}
		out := final(tr)
		if limit == 0 {
			if len(out.Bytes) != 0 {
				t.Fatal("a transcript with limit 0")
			}
			return
		}
		recs, err := tscript.Decode(out.Bytes)
		if err != nil {
			t.Fatalf("does not decode: %v", err)
		}
		if len(out.Bytes) > int(limit) && len(recs) > 1 {
			t.Fatalf("%d bytes, limit %d", len(out.Bytes), limit)
		}
		var got uint64
		for _, r := range recs {
			switch r.Type {
			case tscript.Received, tscript.Sent:
				got += uint64(len(r.Data))
			case tscript.Cut, tscript.Paused:
				got += r.ReceivedLeft + r.SentLeft
			}
		}
		if got != total {
			t.Fatalf("%d bytes accounted for, %d went through", got, total)
		}
	})
}
