package record

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

var peer = netip.MustParseAddrPort("127.0.0.7:4662")

func clock() func() time.Time {
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

func TestRecordsDecodeInOrderWithTheirTimes(t *testing.T) {
	r := New(1<<16, clock())
	r.Sent(peer, []byte("hello"))
	r.Received(peer, []byte("answer"))
	r.Note(peer, "note")
	recs, err := tscript.Decode(r.Final().Bytes)
	if err != nil || len(recs) != 3 {
		t.Fatalf("recs %v err %v", recs, err)
	}
	if recs[0].Type != tscript.Sent || recs[1].Type != tscript.Received || recs[1].Offset != time.Millisecond || recs[1].Peer != peer.String() {
		t.Fatalf("recs %+v", recs)
	}
}

// TestNothingLeftOutWithoutACutRecord: a packet larger than the bound
// keeps its start and the rest is counted in a cut record right after;
// later packets past the bound go into one cut record at the end; the
// whole never exceeds the bound.
func TestNothingLeftOutWithoutACutRecord(t *testing.T) {
	const limit = 2000
	r := New(limit, clock())
	if !r.Sent(peer, []byte("hello")) {
		t.Fatal("a small packet was not kept")
	}
	big := bytes.Repeat([]byte{1}, 5000)
	if r.Received(peer, big) {
		t.Fatal("a packet larger than the bound was reported kept")
	}
	for i := 0; i < 50; i++ {
		r.Received(peer, bytes.Repeat([]byte{2}, 100))
	}
	tr := r.Final()
	if len(tr.Bytes) > limit {
		t.Fatalf("transcript of %d bytes, bound %d", len(tr.Bytes), limit)
	}
	recs, err := tscript.Decode(tr.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var kept, left uint64
	for _, rec := range recs {
		if rec.Type == tscript.Received {
			kept += uint64(len(rec.Data))
		}
		left += rec.ReceivedLeft
	}
	if kept+left != 5000+50*100 {
		t.Fatalf("kept %d + left %d != %d received", kept, left, 5000+50*100)
	}
	if recs[2].Type != tscript.Cut {
		t.Fatalf("record after the cut packet is %q, want a cut", recs[2].Type)
	}
	if m := Marks(tr.Bytes); len(m) != 1 || m[0] != "transcript_cut" {
		t.Fatalf("marks %v", m)
	}
}

func TestPausedBytesAreCountedWherePaused(t *testing.T) {
	r := New(1<<16, clock())
	r.Sent(peer, []byte("request"))
	r.Pause(peer)
	r.Received(peer, bytes.Repeat([]byte{9}, 1000))
	r.Resume()
	r.Note(peer, "part 0 verified")
	recs, err := tscript.Decode(r.Final().Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[1].Type != tscript.Paused || recs[1].ReceivedLeft != 1000 || recs[2].Type != tscript.Note {
		t.Fatalf("recs %+v", recs)
	}
	if m := Marks(r.Final().Bytes); len(m) != 1 || m[0] != "transcript_paused" {
		t.Fatalf("marks %v", m)
	}
}

func TestOneExchange(t *testing.T) {
	at := time.Unix(100, 0)
	tr, kept := One(1<<10, peer, at, []byte("q"), at.Add(time.Second), []byte("a"))
	recs, err := tscript.Decode(tr.Bytes)
	if err != nil || len(recs) != 2 || recs[1].Offset != time.Second || !kept {
		t.Fatalf("recs %+v err %v kept %v", recs, err, kept)
	}
	if len(tr.SHA256) != 32 {
		t.Fatal("no digest")
	}
	// An answer longer than the bound is not kept whole, and says so.
	if _, kept := One(1<<10, peer, at, []byte("q"), at, make([]byte, 2<<10)); kept {
		t.Fatal("an answer of 2 KiB reported whole in a transcript of 1 KiB")
	}
}
