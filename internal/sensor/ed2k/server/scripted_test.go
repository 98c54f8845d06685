package server

import (
	"context"
	"net"
	"testing"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
)

// loginScripted starts srv on addr (a loopback address, port 0) and
// logs in to it with cfg; the listener and the session are closed at
// the test's end.
func loginScripted(ctx context.Context, t *testing.T, addr string, cfg Config, srv *labed2k.ScriptedServer) *Session {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go srv.Serve(ctx, ln)
	s, err := Login(ctx, cfg, ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
