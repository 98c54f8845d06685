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
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A hostile server answers the request for the sources of the first
// watched hash with a zlib bomb (a packed OP_FOUNDSOURCES whose payload
// inflates past the bound) and that of the second with a source. The
// packet's framing is intact: its length is known, and the stream is
// still in step. The code before this ended the session at the bomb, and
// the next one there again (the first hash is asked first in every
// round): the second hash was never asked on that server, and a server
// could blind the sensor to every hash after the one it bombs. Now the
// answer is dropped and counted (server_packet_not_unpacked), and the
// session goes on with the next hash.
func TestServerZlibBombDoesNotEndTheSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.125.66.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	bombed := [16]byte(bytes.Repeat([]byte{0xb0}, 16))
	asked := [16]byte(bytes.Repeat([]byte{0xa5}, 16))
	source := netip.MustParseAddrPort("127.125.66.9:4662")
	var bombs atomic.Int64
	bomb := wire.AppendPacked(nil, wire.OpFoundSources, make([]byte, 8<<20)) // made before: in time means in time
	srv := &labed2k.ScriptedServer{ID: 0x0100007F, Idle: 20 * time.Second, Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		if p.Opcode != wire.OpGetSources {
			return true
		}
		gs, err := wire.DecodeGetSources(p.Payload)
		if err != nil {
			return false
		}
		if gs.Hash == bombed {
			bombs.Add(1)
			pc.SendRaw(ctx, time.Second, bomb)
			return true
		}
		labed2k.SendSources(ctx, pc, gs.Hash, []wire.Source{{ID: ed2kID(source.Addr()), Port: source.Port()}})
		return true
	}}
	go srv.Serve(ctx, ln)
	logins := &srv.Logins
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.125.66.2")
	cfg.Servers = []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}
	cfg.SearchEvery, cfg.Probe = time.Minute, false
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][16]byte{bombed, asked} {
		if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, h[:]), Size: 1000, Matched: []observe.Match{{List: "lab"}}}); err != nil {
			t.Fatal(err)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	recorded := func() bool {
		for _, o := range pub.all() {
			if o.Method == observe.MethodED2KServerSources && bytes.Equal(o.Item.Hash.Bytes(), asked[:]) &&
				netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == source {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for !recorded() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if !recorded() {
		t.Fatalf("the hash after the bombed one was never recorded (%d logins, %d bombs, %d session errors, dropped %v)",
			logins.Load(), bombs.Load(), st.ServerErrors, st.Dropped)
	}
	if st.Dropped["server_packet_not_unpacked"] != uint64(bombs.Load()) || st.ServerErrors != 0 || logins.Load() != 1 {
		t.Fatalf("dropped %v, %d bombs, %d session errors, %d logins; want each bomb counted, one session", st.Dropped, bombs.Load(), st.ServerErrors, logins.Load())
	}
}
