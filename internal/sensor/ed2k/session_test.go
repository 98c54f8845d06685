package ed2k

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// TestAServerThatEndsEverySessionIsNotLoggedInToInALoop: a server that
// accepts the login and closes the connection at the first request is
// logged in to again after a growing pause, as one that refuses logins
// is, not at once in a loop.
func TestAServerThatEndsEverySessionIsNotLoggedInToInALoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.124.65.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logins atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				pc := pconn.New(nc, nil, wire.DefaultLimits())
				for {
					p, _, err := pc.Next(ctx, 5*time.Second)
					if err != nil || p.Opcode != wire.OpLoginRequest {
						return
					}
					logins.Add(1)
					pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: 0x0100007F, Fields: 1}.AppendTo(nil))
				}
			}()
		}
	}()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.124.65.2")
	cfg.Servers = []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}
	cfg.SearchEvery = time.Minute
	s, err := New(cfg, g, &collector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, bytes.Repeat([]byte{7}, 16)), Size: 1000}); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	waitFor(t, 20*time.Second, "two sessions ended", func() bool { return s.Stats().ServerErrors >= 2 })
	n := logins.Load()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n > 2 {
		t.Fatalf("%d logins when the second session had ended; want 2 (a pause of a second, then two)", n)
	}
}
