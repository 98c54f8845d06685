package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/anacrolix/utp"

	"github.com/vigil-oss/vigil/internal/scope"
)

// uTP (BEP 29) is a stream protocol over UDP that most clients accept on
// their listen port beside TCP, and some peers (behind NATs that let UDP
// through, or configured so) only over uTP.
//
// The sensor speaks it with github.com/anacrolix/utp, the pure-Go uTP that
// anacrolix/torrent builds on where cgo is off. It was chosen over
// go-libutp (cgo, what anacrolix/torrent uses by default) because it runs
// on a net.PacketConn the caller gives it: the sensor hands it a socket
// wrapped by the scope guard, so that every datagram it would send (SYN,
// data, ACK, FIN and the resets it answers stray packets with) is checked
// before the kernel sees it. go-libutp opens and writes its own socket.

// dialUTP opens a uTP connection to peer from a UDP socket of its own on
// local (port chosen by the kernel). The destination is checked before the
// socket is opened; the socket is the guard's, so every later datagram is
// checked too. Closing the returned conn closes the socket.
//
// opened (may be nil) is told the socket's local address before the SYN
// leaves, whether the dial then succeeds or not: a peer that drops the
// SYN has seen its source as well as one that answers it, and may pass it
// on in PEX.
func dialUTP(ctx context.Context, g *scope.Guard, local netip.Addr, peer netip.AddrPort, opened func(net.Addr)) (net.Conn, error) {
	if err := g.Check(peer); err != nil {
		return nil, err
	}
	network := "udp4"
	if local.Is6() {
		network = "udp6"
	}
	pc, err := g.ListenPacket(ctx, nil, network, netip.AddrPortFrom(local, 0).String())
	if err != nil {
		return nil, fmt.Errorf("utp socket on %s: %w", local, err)
	}
	if opened != nil {
		opened(pc.LocalAddr())
	}
	return dialUTPOn(ctx, g, pc, peer)
}

// dialUTPOn dials peer over uTP on pc, which it owns from then on (it is
// closed when the dial fails or the returned conn is closed). pc is
// wrapped by the guard whatever it is, so a caller cannot hand in an
// unguarded socket.
func dialUTPOn(ctx context.Context, g *scope.Guard, pc net.PacketConn, peer netip.AddrPort) (net.Conn, error) {
	if err := g.Check(peer); err != nil {
		pc.Close()
		return nil, err
	}
	sock, err := utp.NewSocketFromPacketConn(g.PacketConn(pc))
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("utp socket: %w", err)
	}
	// The address is a literal checked above: the library's resolver
	// parses it, it never looks a name up.
	c, err := sock.DialContext(ctx, "udp", peer.String())
	if err != nil {
		sock.CloseNow()
		return nil, fmt.Errorf("utp dial %s: %w", peer, err)
	}
	return &utpConn{Conn: c, sock: sock}, nil
}

// utpConn is a uTP stream that owns its socket.
type utpConn struct {
	net.Conn
	sock *utp.Socket
	once sync.Once
}

// Close sends FIN and closes the socket at once: a probe's conversation
// is over when it closes, and the socket must not outlive the probe.
func (c *utpConn) Close() error {
	c.once.Do(func() {
		_ = c.Conn.Close()
		_ = c.sock.CloseNow()
	})
	return nil
}
