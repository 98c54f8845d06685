package server

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A hostile server answers a request, then sends server messages one
// after another, each slowly (its first byte, then the rest a while
// later), never a pause of 1 ms between them and fewer than the drain's
// 64 packets in the timeout. The drain read each packet whole within the
// timeout and went on, 64 packets (64 times the timeout: 21 minutes by
// default) before it gave up, with nothing counted on the way: a server
// held the session so, each request after the next, silently. Now the
// drain as a whole is bounded by the timeout: past it, ErrNotQuiet
// (counted, server_not_quiet), the request unsent.
func TestSlowTrickleBeforeARequestEndsTheDrainWithinTheTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := testConfig(t)
	cfg.Timeout = time.Second
	h := [16]byte{0x5e, 0x7e, 5}
	var asks, slow atomic.Int32
	msg := wire.Append(nil, wire.ProtoEDonkey, wire.OpServerMessage, wire.ServerMessage{Text: "slowly"}.AppendTo(nil))
	srv := &labed2k.ScriptedServer{Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		if asks.Add(1) > 1 {
			return true
		}
		labed2k.SendSources(ctx, pc, h, source("127.91.133.9"))
		go func() {
			for ctx.Err() == nil {
				if pc.SendRaw(ctx, time.Second, msg[:1]) != nil {
					return
				}
				time.Sleep(cfg.Timeout / 4)
				if pc.SendRaw(ctx, time.Second, msg[1:]) != nil {
					return
				}
				slow.Add(1)
			}
		}()
		return true
	}}
	s := loginScripted(ctx, t, "127.91.133.2:0", cfg, srv)
	if f, err := s.Sources(ctx, h, 1000); err != nil || len(f.Sources) != 1 {
		t.Fatalf("first request: %v %v; want its answer", f.Sources, err)
	}
	// Ten times the bound, and a third of what 64 slow packets take.
	rctx, rcancel := context.WithTimeout(ctx, 10*cfg.Timeout)
	defer rcancel()
	f, err := s.Sources(rctx, h, 1000)
	if !errors.Is(err, ErrNotQuiet) || f.Asked {
		t.Fatalf("second request: asked %v, err %v after %d slow packets; want ErrNotQuiet, not asked", f.Asked, err, slow.Load())
	}
	if n := asks.Load(); n != 1 {
		t.Fatalf("the server was asked %d times; want the second request unsent", n)
	}
}

// The drain waits up to drainWait for a packet to begin, within the
// Timeout: a Timeout shorter than that left no time for the quiet spell,
// and every request after one unanswered failed with ErrNotQuiet, the
// server's silence taken for its flood. Such a Timeout is refused.
func TestTimeoutShorterThanTheDrainsWaitIsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Timeout = drainWait
	if err := cfg.Validate(); err == nil {
		t.Fatalf("Timeout %v validated; want refused (the drain waits up to %v within it)", cfg.Timeout, drainWait)
	}
	cfg.Timeout = 2 * drainWait
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Timeout %v: %v; want accepted", cfg.Timeout, err)
	}
}
