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

// A hostile server answers the request for a first hash with a zlib bomb
// (a packed packet, read whole, that inflates past the bound), and a
// second hash with a source. Whether the bomb comes in time (then the
// wait goes on, and the answer that follows it is taken) or late (read
// and dropped before the next request), it is dropped and counted and
// the next request is answered: ending the session at it would leave
// every later hash unasked on that server.
func TestZlibBombIsDroppedAndTheSessionGoesOn(t *testing.T) {
	for _, late := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cfg := testConfig(t)
		if !late {
			cfg.AnswerWait = 10 * time.Second // the answer follows the bomb: no wait to the end
		}
		bomb := wire.AppendPacked(nil, wire.OpFoundSources, make([]byte, 8<<20)) // made before: in time means in time
		bombed, asked := [16]byte{0xb0}, [16]byte{0xa5}
		source := wire.Source{ID: wire.AddrToID(netip.MustParseAddr("127.91.131.9")), Port: 4662}
		srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
			if p.Opcode != wire.OpGetSources {
				return true
			}
			gs, _ := wire.DecodeGetSources(p.Payload)
			if gs.Hash == bombed {
				if late {
					time.Sleep(2 * cfg.AnswerWait)
				}
				pc.SendRaw(ctx, time.Second, bomb)
				if !late {
					labed2k.SendSources(ctx, pc, gs.Hash, []wire.Source{source})
				}
				return true
			}
			labed2k.SendSources(ctx, pc, gs.Hash, []wire.Source{source})
			return true
		}}
		s := loginScripted(ctx, t, "127.91.131.1:0", cfg, srv)
		first, err := s.Sources(ctx, bombed, 1000)
		if err != nil || len(first.Sources) != map[bool]int{false: 1, true: 0}[late] || first.NotUnpacked != map[bool]int{false: 1, true: 0}[late] {
			t.Fatalf("late %v: the bombed request: %v, %d not unpacked, %v", late, first.Sources, first.NotUnpacked, err)
		}
		if late {
			time.Sleep(2 * cfg.AnswerWait) // the bomb is in the connection
		}
		second, err := s.Sources(ctx, asked, 1000)
		if err != nil || len(second.Sources) != 1 || second.Sources[0] != source {
			t.Fatalf("late %v: the next request: %v, %v; want its source, the session going on", late, second.Sources, err)
		}
		s.Close()
	}
}

// The same during a keyword search: a hostile server answers the search
// with a zlib bomb, then its result. The bomb ended the session (the
// search's wait returned every error), and the searches after it on
// that server were not made until the next interval, while a request
// for sources drops the bomb and waits on. Now the search drops it,
// counts it and takes the result that follows.
func TestZlibBombDuringASearchIsDroppedAndTheWaitGoesOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.AnswerWait = 10 * time.Second // the result follows the bomb: no wait to the end
	bomb := wire.AppendPacked(nil, wire.OpSearchResult, make([]byte, 8<<20))
	file := wire.OfferedFile{Hash: [16]byte{0xEF, 9}, ClientID: 0x0A0B0C0D, Port: 4662, Tags: []wire.Tag{wire.StrTag(wire.FTFileName, "lab-gamma 09.bin")}}
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpSearchRequest {
			return true
		}
		pc.SendRaw(ctx, time.Second, bomb)
		labed2k.SendSearchResult(ctx, pc, []wire.OfferedFile{file})
		return true
	}}
	s := loginScripted(ctx, t, "127.91.133.5:0", cfg, srv)
	got, err := s.Search(ctx, []string{"lab-gamma"})
	if err != nil || len(got.Files) != 1 || got.Files[0].Hash != file.Hash || got.NotUnpacked != 1 {
		t.Fatalf("search: %+v, %v; want the result after the bomb, one not unpacked", got, err)
	}
}
