package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/utp"

	"github.com/vigil-oss/vigil/internal/scope"
)

// fakePacketConn is a packet conn that sends nothing anywhere: it records
// the destinations it was asked to write to, and reads block until Close.
type fakePacketConn struct {
	mu     sync.Mutex
	writes []string
	closed chan struct{}
	once   sync.Once
}

func newFakePacketConn() *fakePacketConn { return &fakePacketConn{closed: make(chan struct{})} }

func (f *fakePacketConn) ReadFrom([]byte) (int, net.Addr, error) {
	<-f.closed
	return 0, nil, net.ErrClosed
}

func (f *fakePacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, addr.String())
	return len(b), nil
}

func (f *fakePacketConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakePacketConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (f *fakePacketConn) SetDeadline(time.Time) error      { return nil }
func (f *fakePacketConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakePacketConn) SetWriteDeadline(time.Time) error { return nil }

func (f *fakePacketConn) written() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.writes...)
}

// TestUTPDialRefusesOutOfScopeBeforeAnyPacket checks both lines of the
// scope guard on the uTP path, on a fake socket that cannot send: a dial
// to an out-of-scope address is refused before a socket is touched, and
// even a dial that bypasses that check (straight on the library's socket)
// has its SYN refused by the guarded packet conn, never written.
func TestUTPDialRefusesOutOfScopeBeforeAnyPacket(t *testing.T) {
	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	foreign := []netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.7:6881"), // public (documentation range)
		netip.MustParseAddrPort("10.1.2.3:6881"),    // private, not allowed
		netip.MustParseAddrPort("[2001:db8::1]:6881"),
	}
	for _, peer := range foreign {
		fake := newFakePacketConn()
		_, err := dialUTPOn(context.Background(), guard, fake, peer)
		if !errors.Is(err, scope.ErrOutOfScope) {
			t.Errorf("dial %v: err %v, want ErrOutOfScope", peer, err)
		}
		if w := fake.written(); len(w) != 0 {
			t.Errorf("dial %v: %d datagrams reached the socket: %v", peer, len(w), w)
		}
		select {
		case <-fake.closed:
		default:
			t.Errorf("dial %v: the socket handed in was not closed", peer)
		}
	}

	// Second line: the library's own dial, on the guarded conn.
	before := guard.Refused(scope.ReasonPublic)
	fake := newFakePacketConn()
	sock, err := utp.NewSocketFromPacketConn(guard.PacketConn(fake))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := sock.DialContext(ctx, "udp", "203.0.113.7:6881"); err == nil {
		t.Fatal("a uTP dial with every datagram refused connected")
	}
	if w := fake.written(); len(w) != 0 {
		t.Fatalf("%d datagrams reached the socket past the guard: %v", len(w), w)
	}
	if guard.Refused(scope.ReasonPublic) == before {
		t.Fatal("the guard counted no refusal of the SYN")
	}

	// And an in-scope dial on the same kind of socket does write: the fake
	// is not silently dropping everything.
	fake2 := newFakePacketConn()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	_, _ = dialUTPOn(ctx2, guard, fake2, netip.MustParseAddrPort("127.0.0.1:9"))
	if len(fake2.written()) == 0 {
		t.Fatal("an in-scope uTP dial wrote no SYN")
	}
}
