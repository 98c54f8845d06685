package server

import (
	"context"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A server answers the first request for a file's sources after the
// sensor stopped waiting, and never again (it knows no source when asked
// the second time). With one watched file the late answer sat in the
// connection until the next round (15 minutes by default), and the code
// before this took it as the answer to the next request for the same
// file: sources recorded with that request's time and transcript, though
// the server named them a round before (the address may have changed
// hands since). Now what arrived between two requests is read and
// dropped before a request is sent, after a request that got no answer.
func TestLateAnswerIsNotTakenForTheNextRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	sent := make(chan struct{})
	asks := 0
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		if asks++; asks > 1 {
			return true // knows no source now: says nothing
		}
		go func() {
			time.Sleep(2 * cfg.AnswerWait)
			labed2k.SendSources(ctx, pc, gs.Hash, []wire.Source{{ID: wire.AddrToID(netip.MustParseAddr("127.91.130.9")), Port: 4662}})
			close(sent)
		}()
		return true
	}}
	s := loginScripted(ctx, t, "127.91.130.1:0", cfg, srv)
	h := [16]byte{0x1a, 0x7e}
	first, err := s.Sources(ctx, h, 1000)
	if err != nil || len(first.Sources) != 0 {
		t.Fatalf("first request: %v %v; want no answer in time", first.Sources, err)
	}
	<-sent
	time.Sleep(100 * time.Millisecond) // the late answer is in the connection
	second, err := s.Sources(ctx, h, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Sources) != 0 {
		t.Fatalf("the late answer to the first request was taken for the second's: %v at %v", second.Sources, second.At)
	}
}

// The same, with an answered request between: the sensor asks for file
// A (no answer in time), then for file B (answered at once), and the
// server's late answer about A comes after B's. That answer sat in the
// connection until A was asked again, and the drain, which looked only
// at whether the request just before got its answer, let it through:
// A's sources of a round before, recorded as the server's word of this
// round. Any request left unanswered may still be answered, until what
// arrived is read.
func TestLateAnswerAfterAnAnsweredRequestIsNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	a, b := [16]byte{0x1a, 0x7e, 1}, [16]byte{0x1b, 0x7e, 2}
	src := []wire.Source{{ID: wire.AddrToID(netip.MustParseAddr("127.91.130.9")), Port: 4662}}
	sent := make(chan struct{})
	asksA := 0
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		switch {
		case gs.Hash == b:
			labed2k.SendSources(ctx, pc, b, src)
		case asksA == 0:
			asksA++
			go func() {
				time.Sleep(3 * cfg.AnswerWait)
				labed2k.SendSources(ctx, pc, a, src)
				close(sent)
			}()
		}
		return true
	}}
	s := loginScripted(ctx, t, "127.91.130.2:0", cfg, srv)
	if f, err := s.Sources(ctx, a, 1000); err != nil || len(f.Sources) != 0 {
		t.Fatalf("first request for A: %v %v; want no answer in time", f.Sources, err)
	}
	if f, err := s.Sources(ctx, b, 1000); err != nil || len(f.Sources) != 1 {
		t.Fatalf("request for B: %v %v; want its answer", f.Sources, err)
	}
	<-sent
	time.Sleep(100 * time.Millisecond) // the late answer about A is in the connection
	again, err := s.Sources(ctx, a, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Sources) != 0 {
		t.Fatalf("the late answer to the first request for A was taken for the second's: %v at %v", again.Sources, again.At)
	}
}

// A search that got no answer in time, answered late, with nothing asked
// between: the late answer sat in the connection and the next search
// took it for its own, its files (whose names hold the next search's
// words too) reported as found by that search, at its time.
func TestLateSearchResultIsNotTakenForTheNextSearch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	sent := make(chan struct{})
	asks := 0
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpSearchRequest {
			return true
		}
		if asks++; asks > 1 {
			return true // finds nothing now: says nothing
		}
		go func() {
			time.Sleep(2 * cfg.AnswerWait)
			sr := wire.SearchResult{Files: []wire.OfferedFile{{Hash: [16]byte{0xEF, 4}, ClientID: 0x0A0B0C0D, Port: 4662,
				Tags: []wire.Tag{wire.StrTag(wire.FTFileName, "lab-alpha lab-beta 07.bin")}}}}
			pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpSearchResult, sr.AppendTo(nil))
			close(sent)
		}()
		return true
	}}
	s := loginScripted(ctx, t, "127.91.130.3:0", cfg, srv)
	if got, err := s.Search(ctx, []string{"lab-alpha"}); err != nil || len(got.Files) != 0 {
		t.Fatalf("first search: %+v, %v; want no answer in time", got, err)
	}
	<-sent
	time.Sleep(100 * time.Millisecond) // the late answer is in the connection
	got, err := s.Search(ctx, []string{"lab-beta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 0 {
		t.Fatalf("the late answer to the first search was taken for the second's: %+v", got)
	}
}
