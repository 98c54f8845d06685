// Package netlimit holds the rate limits a sensor applies at the wire: one
// global budget, a per-address budget, and a cap on connections in flight.
// Defaults are conservative so that a sensor on an office line does not
// exhaust its router's connection table.
//
// A limiter never blocks forever: every wait is bounded by the caller's
// context, and a refusal is counted, not silently dropped.
package netlimit

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Config is a sensor's wire budget.
type Config struct {
	// GlobalPerSecond is the most packets or dials a second, all addresses together.
	GlobalPerSecond float64
	// GlobalBurst is how many may go at once after a quiet spell.
	GlobalBurst int
	// PerAddrPerSecond is the most packets or dials a second to one IPv4
	// address or one IPv6 /64 (see budgetKey).
	PerAddrPerSecond float64
	// PerAddrBurst is the burst to one IP.
	PerAddrBurst int
	// MaxAddrs bounds the per-address table; the least recently used entry
	// is forgotten past it.
	MaxAddrs int
	// MaxInFlight caps connections open at once (TCP dials, uTP sessions).
	MaxInFlight int
}

// DefaultConfig is a budget suitable for a sensor on a shared office line.
func DefaultConfig() Config {
	return Config{
		GlobalPerSecond:  500,
		GlobalBurst:      100,
		PerAddrPerSecond: 2,
		PerAddrBurst:     4,
		MaxAddrs:         100_000,
		MaxInFlight:      64,
	}
}

// Unlimited is for the lab's benchmarks, where the network is loopback.
func Unlimited() Config {
	return Config{GlobalPerSecond: 0, PerAddrPerSecond: 0, MaxAddrs: 100_000, MaxInFlight: 4096}
}

// Limiter applies a Config. It is safe for concurrent use.
type Limiter struct {
	cfg      Config
	global   *rate.Limiter
	mu       sync.Mutex
	perAddr  map[netip.Addr]*addrEntry
	inflight chan struct{}

	waitedGlobal, refusedAddr atomic.Uint64
}

type addrEntry struct {
	lim  *rate.Limiter
	used time.Time
}

// New returns a Limiter for cfg. A zero rate means unlimited.
func New(cfg Config) *Limiter {
	l := &Limiter{cfg: cfg, perAddr: make(map[netip.Addr]*addrEntry)}
	if cfg.GlobalPerSecond > 0 {
		burst := max(cfg.GlobalBurst, 1)
		l.global = rate.NewLimiter(rate.Limit(cfg.GlobalPerSecond), burst)
	}
	if cfg.MaxInFlight > 0 {
		l.inflight = make(chan struct{}, cfg.MaxInFlight)
	}
	return l
}

// Wait waits for the global budget; it returns ctx's error if ctx ends first.
func (l *Limiter) Wait(ctx context.Context) error {
	if l.global == nil {
		return ctx.Err()
	}
	if !l.global.Allow() {
		l.waitedGlobal.Add(1)
		return l.global.Wait(ctx)
	}
	return nil
}

// budgetKey is the entry of the per-address table that addr counts
// against: the IPv4 address itself (an IPv4-mapped IPv6 address as its
// IPv4 one), and for IPv6 its /64. A subscriber gets at least a /64, and
// every address in it may reach the same household: counted per /128, a
// list naming many addresses of one /64 (a hostile tracker or PEX message)
// would have the sensor send to that household as many times over.
//
// An address that carries an IPv4 host counts as that host: NAT64
// (64:ff9b::/96, 64:ff9b:1::/48: the last 32 bits), 6to4 (2002::/16: bits
// 16-47) and Teredo (2001::/32: the client's address, the last 32 bits
// inverted). Counted by /64 instead, the whole IPv4 internet behind NAT64
// or every Teredo client of one server would share one budget, and one
// host would have two.
func budgetKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is4() {
		return addr
	}
	if v4, ok := embeddedIPv4(addr); ok {
		return v4
	}
	p, err := addr.WithZone("").Prefix(64)
	if err != nil {
		return addr
	}
	return p.Addr()
}

// AllowAddr reports whether one more packet to addr fits its per-address
// budget now (an IPv6 address shares the budget of its /64). A false
// answer is counted; the caller skips or defers.
func (l *Limiter) AllowAddr(addr netip.Addr, now time.Time) bool {
	if l.cfg.PerAddrPerSecond <= 0 {
		return true
	}
	addr = budgetKey(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.perAddr[addr]
	if e == nil {
		if l.cfg.MaxAddrs > 0 && len(l.perAddr) >= l.cfg.MaxAddrs {
			l.evictLocked(now)
		}
		e = &addrEntry{lim: rate.NewLimiter(rate.Limit(l.cfg.PerAddrPerSecond), max(l.cfg.PerAddrBurst, 1))}
		l.perAddr[addr] = e
	}
	e.used = now
	if !e.lim.AllowN(now, 1) {
		l.refusedAddr.Add(1)
		return false
	}
	return true
}

// evictLocked makes room in one pass over the table. An address idle long
// enough to refill its whole burst has a full bucket, exactly what a fresh
// entry would get, so forgetting it changes no decision; those go first.
// If none is that idle, some entries (0.5%, at least one) are dropped in
// map order: the table stays bounded without a scan per eviction.
func (l *Limiter) evictLocked(now time.Time) {
	refill := time.Duration(float64(max(l.cfg.PerAddrBurst, 1)) / l.cfg.PerAddrPerSecond * float64(time.Second))
	for a, e := range l.perAddr {
		if now.Sub(e.used) >= refill {
			delete(l.perAddr, a)
		}
	}
	if len(l.perAddr) < l.cfg.MaxAddrs {
		return
	}
	n := max(len(l.perAddr)/200, 1)
	for a := range l.perAddr {
		if n == 0 {
			break
		}
		delete(l.perAddr, a)
		n--
	}
}

// Acquire takes one in-flight connection slot, waiting for one while ctx
// allows; Release gives it back.
func (l *Limiter) Acquire(ctx context.Context) error {
	if l.inflight == nil {
		return ctx.Err()
	}
	select {
	case l.inflight <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release returns a slot taken by Acquire.
func (l *Limiter) Release() {
	if l.inflight != nil {
		<-l.inflight
	}
}

// InFlight is the number of slots in use (a gauge).
func (l *Limiter) InFlight() int { return len(l.inflight) }

// Stats are the limiter's counters.
type Stats struct {
	WaitedGlobal  uint64 // sends that had to wait for the global budget
	RefusedByAddr uint64 // sends refused by a per-address budget
	Addrs         int    // addresses in the per-address table
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	n := len(l.perAddr)
	l.mu.Unlock()
	return Stats{WaitedGlobal: l.waitedGlobal.Load(), RefusedByAddr: l.refusedAddr.Load(), Addrs: n}
}

var (
	nat64      = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local = netip.MustParsePrefix("64:ff9b:1::/48")
)

// embeddedIPv4 is the IPv4 host an IPv6 address of a translation or
// tunnel range stands for.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64.Contains(a), nat64Local.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}
