package server

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// source names one source at addr, port 4662.
func source(addr string) []wire.Source {
	return []wire.Source{{ID: wire.AddrToID(netip.MustParseAddr(addr)), Port: 4662}}
}

// A hostile server answers the first request for a file late, and 100
// times over, then says nothing. The drain before the next request read
// at most 64 packets and then asked: the 65th stale answer was taken for
// the new request's, with its time and transcript. Now a drain that
// reaches its bound without the server going quiet leaves the request
// unsent (ErrNotQuiet): what is past the bound cannot be told from the
// answer.
func TestMoreStaleAnswersThanTheDrainReadsAreNeverTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	sent := make(chan struct{})
	var asks atomic.Int32
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		if asks.Add(1) > 1 {
			return true // knows no source now: says nothing
		}
		go func() {
			time.Sleep(2 * cfg.AnswerWait)
			for range drainMax + 36 {
				labed2k.SendSources(ctx, pc, gs.Hash, source("127.91.131.9"))
			}
			close(sent)
		}()
		return true
	}}
	s := loginScripted(ctx, t, "127.91.131.1:0", cfg, srv)
	h := [16]byte{0x5a, 0x7e}
	if f, err := s.Sources(ctx, h, 1000); err != nil || len(f.Sources) != 0 {
		t.Fatalf("first request: %v %v; want no answer in time", f.Sources, err)
	}
	<-sent
	time.Sleep(100 * time.Millisecond) // the stale answers are in the connection
	second, err := s.Sources(ctx, h, 1000)
	if len(second.Sources) != 0 {
		t.Fatalf("a stale answer past the drain's bound was taken for the second request's: %v at %v (err %v)", second.Sources, second.At, err)
	}
	if !errors.Is(err, ErrNotQuiet) || second.Late != drainMax {
		t.Fatalf("err %v, %d late answers read; want ErrNotQuiet after %d", err, second.Late, drainMax)
	}
	time.Sleep(100 * time.Millisecond)
	if n := asks.Load(); n != 1 {
		t.Fatalf("the server was asked %d times; the second request must not be sent", n)
	}
}

// Two stale answers about file B, which got no answer in time: the
// server sends one before its answer about A, while A's is awaited, and
// one after. The first is not A's (it names B) and is counted; the code
// before this took reading it as B's late answer come, and so asked for
// B again without draining: the second stale answer, waiting in the
// connection, was taken for the new request's. A file's request is only
// answered by what came after it was sent.
func TestStaleAnswersAboutAnotherFileAreNeverTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	a, b := [16]byte{0x5a, 0x7e, 1}, [16]byte{0x5b, 0x7e, 2}
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		if gs.Hash == a {
			labed2k.SendSources(ctx, pc, b, source("127.91.131.8"))
			labed2k.SendSources(ctx, pc, a, source("127.91.131.9"))
			labed2k.SendSources(ctx, pc, b, source("127.91.131.8"))
		}
		return true // about B: says nothing
	}}
	s := loginScripted(ctx, t, "127.91.131.2:0", cfg, srv)
	if f, err := s.Sources(ctx, b, 1000); err != nil || len(f.Sources) != 0 {
		t.Fatalf("first request for B: %v %v; want no answer in time", f.Sources, err)
	}
	fa, err := s.Sources(ctx, a, 1000)
	if err != nil || len(fa.Sources) != 1 || fa.Sources[0] != source("127.91.131.9")[0] {
		t.Fatalf("request for A: %v %v; want A's answer", fa.Sources, err)
	}
	time.Sleep(100 * time.Millisecond) // the second stale answer about B is in the connection
	fb, err := s.Sources(ctx, b, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.Sources) != 0 {
		t.Fatalf("a stale answer about B was taken for B's second request: %v at %v", fb.Sources, fb.At)
	}
	if fa.Unasked != 1 || fa.Late != 0 || fb.Late != 1 {
		t.Fatalf("request for A: %d unasked, %d late; second for B: %d late; want B's first stale answer counted unasked, its second late",
			fa.Unasked, fa.Late, fb.Late)
	}
}

// A server answers a file's request at once, and names the file's
// sources again, unasked, after its answer. The code before this drained
// only after a request that got no answer: the extra answer waited in
// the connection until the file was asked for again (a round later) and
// was taken then, with that request's time.
func TestAnswerSentBeforeTheRequestIsNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	h := [16]byte{0x5c, 0x7e, 3}
	var asks atomic.Int32
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		if asks.Add(1) == 1 {
			labed2k.SendSources(ctx, pc, h, source("127.91.131.9"))
			go func() {
				time.Sleep(50 * time.Millisecond)
				labed2k.SendSources(ctx, pc, h, source("127.91.131.7"))
			}()
		}
		return true // then knows no source: says nothing
	}}
	s := loginScripted(ctx, t, "127.91.131.3:0", cfg, srv)
	if f, err := s.Sources(ctx, h, 1000); err != nil || len(f.Sources) != 1 || f.Sources[0] != source("127.91.131.9")[0] {
		t.Fatalf("first request: %v %v; want its answer", f.Sources, err)
	}
	time.Sleep(200 * time.Millisecond) // the unasked answer is in the connection
	again, err := s.Sources(ctx, h, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Sources) != 0 || again.Late != 1 {
		t.Fatalf("second request: sources %v at %v, %d late; want none taken, one late dropped", again.Sources, again.At, again.Late)
	}
}

// A server answers the first search at once, then sends a second
// OP_SEARCHRESULT (whose file names hold the next search's words too)
// and finds nothing for the next search. An OP_SEARCHRESULT names no
// search; the code before this drained only after a search that got no
// answer, and the next search took the stale result for its own.
func TestStaleSearchResultIsNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	file := func(b byte, name string) wire.OfferedFile {
		return wire.OfferedFile{Hash: [16]byte{0xEF, b}, ClientID: 0x0A0B0C0D, Port: 4662, Tags: []wire.Tag{wire.StrTag(wire.FTFileName, name)}}
	}
	var asks atomic.Int32
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpSearchRequest || asks.Add(1) > 1 {
			return true // finds nothing for the second: says nothing
		}
		labed2k.SendSearchResult(ctx, pc, []wire.OfferedFile{file(1, "lab-alpha 01.bin")})
		labed2k.SendSearchResult(ctx, pc, []wire.OfferedFile{file(2, "lab-alpha lab-beta 02.bin")})
		return true
	}}
	s := loginScripted(ctx, t, "127.91.131.4:0", cfg, srv)
	first, err := s.Search(ctx, []string{"lab-alpha"})
	if err != nil || len(first.Files) != 1 || first.Files[0].Hash != ([16]byte{0xEF, 1}) {
		t.Fatalf("first search: %+v, %v; want its answer", first, err)
	}
	time.Sleep(100 * time.Millisecond) // the stale result is in the connection
	got, err := s.Search(ctx, []string{"lab-beta"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 0 || got.Late != 1 {
		t.Fatalf("second search: %+v; want the stale result dropped (one late), none taken", got)
	}
}

// A server's unasked packet arrives slowly: its first bytes before the
// next request, the rest 200 ms later. The drain's short wait (drainPeek)
// bounded the whole packet, and ended in its middle: the stream out of
// step, the session ended with an error and the request unsent, on an
// honest server with a slow link. Now the drain waits its short time only
// for a packet to begin, and reads one that began whole.
func TestDrainReadsASlowPacketWhole(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	a, b := [16]byte{0x5d, 0x7e, 4}, [16]byte{0x5e, 0x7e, 5}
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		labed2k.SendSources(ctx, pc, gs.Hash, source("127.91.131.9"))
		if gs.Hash == a {
			fs := wire.FoundSources{Hash: a, Sources: source("127.91.131.7")}
			extra := wire.Append(nil, wire.ProtoEDonkey, fs.Opcode(), fs.AppendTo(nil))
			pc.SendRaw(ctx, time.Second, extra[:10])
			time.Sleep(200 * time.Millisecond)
			pc.SendRaw(ctx, time.Second, extra[10:])
		}
		return true
	}}
	s := loginScripted(ctx, t, "127.91.131.5:0", cfg, srv)
	if f, err := s.Sources(ctx, a, 1000); err != nil || len(f.Sources) != 1 {
		t.Fatalf("request for A: %v %v; want its answer", f.Sources, err)
	}
	time.Sleep(50 * time.Millisecond) // the first bytes of the unasked packet are in the connection
	fb, err := s.Sources(ctx, b, 1000)
	if err != nil || len(fb.Sources) != 1 || fb.Late != 1 {
		t.Fatalf("request for B: %v, %d late, %v; want its answer, the slow packet read whole and dropped", fb.Sources, fb.Late, err)
	}
}
