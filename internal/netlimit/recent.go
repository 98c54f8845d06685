package netlimit

import (
	"net/netip"
	"sync"
	"time"
)

// Recent remembers addresses and ports for TTL each, at most Max of them
// (the oldest go first): the sensors keep in it the local end of every
// connection they make, which a hostile peer, tracker, server or Kad node
// may name back to them as a peer (each sensor's self.go). IPv4-mapped
// IPv6 addresses are kept and looked up as IPv4. It is usable once TTL
// and Max are set: Add panics without them (a set that remembers nothing
// would let the sensor record itself without a word).
type Recent struct {
	TTL time.Duration
	Max int

	mu    sync.Mutex
	ports map[netip.AddrPort]time.Time
	queue []recentEntry // in the order added, for expiry and the bound
}

type recentEntry struct {
	ap netip.AddrPort
	at time.Time
}

// Add remembers ap as of now.
func (m *Recent) Add(ap netip.AddrPort, now time.Time) {
	if !ap.IsValid() {
		return
	}
	if m.Max <= 0 || m.TTL <= 0 {
		panic("netlimit.Recent: TTL and Max not set")
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ports == nil {
		m.ports = map[netip.AddrPort]time.Time{}
	}
	m.expire(now)
	for len(m.queue) >= m.Max {
		m.pop()
	}
	m.ports[ap] = now
	m.queue = append(m.queue, recentEntry{ap, now})
}

// Has reports whether ap was added within TTL of now.
func (m *Recent) Has(ap netip.AddrPort, now time.Time) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.ports[ap]
	return ok && now.Sub(t) <= m.TTL
}

// Len is how many are held (expired ones included until the next Add).
func (m *Recent) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.queue)
}

func (m *Recent) pop() {
	e := m.queue[0]
	m.queue = m.queue[1:]
	if t, ok := m.ports[e.ap]; ok && t.Equal(e.at) {
		delete(m.ports, e.ap)
	}
	if len(m.queue) == 0 {
		m.queue = nil // let the array go
	}
}

func (m *Recent) expire(now time.Time) {
	for len(m.queue) > 0 && now.Sub(m.queue[0].at) > m.TTL {
		m.pop()
	}
}
