//go:build linux

package probe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-oss/vigil/internal/scope"
)

func labProberForDial(t *testing.T, listen netip.Addr) *Prober {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Listen: []netip.Addr{listen}}, g)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestProbeDialSetsBindAddressNoPort checks, on a real loopback dial through
// the sensor's TCP probe path (scope guard included), that the socket was
// bound to the listen address with IP_BIND_ADDRESS_NO_PORT set, and that
// the connection carries bytes both ways.
func TestProbeDialSetsBindAddressNoPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.12.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.CopyN(c, c, 4) // echo
	}()
	listen := netip.MustParseAddr("127.0.0.1")
	p := labProberForDial(t, listen)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.Dial(ctx, TransportTCP, netip.MustParseAddrPort(ln.Addr().String()))
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("Dial returned %T, want *net.TCPConn", c)
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatalf("getsockopt(IP_BIND_ADDRESS_NO_PORT): %v", gerr)
	}
	if v != 1 {
		t.Fatalf("IP_BIND_ADDRESS_NO_PORT = %d on the probe's socket, want 1", v)
	}
	local := netip.MustParseAddrPort(c.LocalAddr().String())
	if local.Addr() != listen || local.Port() == 0 {
		t.Fatalf("probe socket's local address %v, want %v with a port", local, listen)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
}

// TestProbeDialStillRefusesOutOfScope checks that the probe's dialer,
// with its own Control hook, is still wrapped by the scope guard.
func TestProbeDialStillRefusesOutOfScope(t *testing.T) {
	p := labProberForDial(t, netip.MustParseAddr("127.0.0.1"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Documentation range: the guard refuses it before any socket exists.
	_, err := p.Dial(ctx, TransportTCP, netip.MustParseAddrPort("203.0.113.7:6881"))
	if !errors.Is(err, scope.ErrOutOfScope) {
		t.Fatalf("Dial(public address) = %v, want ErrOutOfScope", err)
	}
}
