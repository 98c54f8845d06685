package ed2k

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/netlimit"
)

// The sensor must never record itself. A client it probed, and a server
// it logged in to, see the sensor's address and the source port of the
// connection, and a hostile server or Kad node can name that endpoint as
// a source. Outside lab scope any port of the listen address is the
// sensor's (Sensor.self); in lab scope, where lab clients share an
// address, Sensor.conns remembers the local address and port of every
// connection the sensor dials, for connTTL each, at most connMax of them
// (the oldest go first), as the BitTorrent sensor does (netlimit.Recent).

const (
	// connTTL is how long the source port of an outgoing connection is
	// remembered as the sensor's own: far beyond a probe or a server
	// answer that could pass it on.
	connTTL = time.Hour
	// connMax bounds the ports remembered (one connection each).
	connMax = 1 << 16
)

// remembering wraps a dial so that the local end of every connection it
// makes is remembered in conns before any byte crosses it.
func remembering(dial func(ctx context.Context, network, address string) (net.Conn, error), conns *netlimit.Recent, now func() time.Time) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err == nil {
			if ap, perr := netip.ParseAddrPort(c.LocalAddr().String()); perr == nil {
				conns.Add(ap, now())
			}
		}
		return c, err
	}
}
