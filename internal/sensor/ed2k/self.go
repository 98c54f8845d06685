package ed2k

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"time"
)

// The sensor must never record itself. A client it probed, and a server
// it logged in to, see the sensor's address and the source port of the
// connection, and a hostile server or Kad node can name that endpoint as
// a source. Outside lab scope any port of the listen address is the
// sensor's (Sensor.self); in lab scope, where lab clients share an
// address, connSet remembers the local address and port of every
// connection the sensor dials, for connTTL each, at most connMax of them
// (the oldest go first), as the BitTorrent sensor does.

const (
	// connTTL is how long the source port of an outgoing connection is
	// remembered as the sensor's own: far beyond a probe or a server
	// answer that could pass it on.
	connTTL = time.Hour
	// connMax bounds the ports remembered (one connection each).
	connMax = 1 << 16
)

type connEntry struct {
	ap netip.AddrPort
	at time.Time
}

// connSet is usable as its zero value.
type connSet struct {
	mu    sync.Mutex
	ports map[netip.AddrPort]time.Time
	queue []connEntry // in the order added, for expiry and the bound
}

func (m *connSet) add(ap netip.AddrPort, now time.Time) {
	if !ap.IsValid() {
		return
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ports == nil {
		m.ports = map[netip.AddrPort]time.Time{}
	}
	m.expire(now)
	for len(m.queue) >= connMax {
		m.pop()
	}
	m.ports[ap] = now
	m.queue = append(m.queue, connEntry{ap, now})
}

func (m *connSet) pop() {
	e := m.queue[0]
	m.queue = m.queue[1:]
	if t, ok := m.ports[e.ap]; ok && t.Equal(e.at) {
		delete(m.ports, e.ap)
	}
	if len(m.queue) == 0 {
		m.queue = nil // let the array go
	}
}

func (m *connSet) expire(now time.Time) {
	for len(m.queue) > 0 && now.Sub(m.queue[0].at) > connTTL {
		m.pop()
	}
}

// has reports whether ap is the source of a connection the sensor made
// within connTTL.
func (m *connSet) has(ap netip.AddrPort, now time.Time) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.ports[ap]
	return ok && now.Sub(t) <= connTTL
}

// remembering wraps a dial so that the local end of every connection it
// makes is remembered in conns before any byte crosses it.
func remembering(dial func(ctx context.Context, network, address string) (net.Conn, error), conns *connSet, now func() time.Time) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err == nil {
			if ap, perr := netip.ParseAddrPort(c.LocalAddr().String()); perr == nil {
				conns.add(ap, now())
			}
		}
		return c, err
	}
}
