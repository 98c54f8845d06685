package netlimit

import (
	"net/netip"
	"testing"
	"time"
)

// Recent forgets an entry after TTL, holds at most Max, and looks a
// mapped address up as IPv4.
func TestRecentExpiresAndIsBounded(t *testing.T) {
	m := Recent{TTL: time.Hour, Max: 100}
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	a := netip.MustParseAddrPort("[::ffff:127.0.0.2]:6881")
	m.Add(a, t0)
	if !m.Has(netip.MustParseAddrPort("127.0.0.2:6881"), t0.Add(time.Minute)) {
		t.Fatal("a mapped address is not found as IPv4")
	}
	if m.Has(netip.MustParseAddrPort("127.0.0.2:6882"), t0) {
		t.Fatal("another port is found")
	}
	if m.Has(a, t0.Add(time.Hour+time.Second)) {
		t.Fatal("remembered past TTL")
	}
	for i := range 250 {
		m.Add(netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), uint16(i)), t0.Add(2*time.Hour))
	}
	if n := m.Len(); n != 100 {
		t.Fatalf("%d held, bound 100", n)
	}
	if m.Has(netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), 0), t0.Add(2*time.Hour)) {
		t.Fatal("the oldest was not the first to go")
	}
	if !m.Has(netip.AddrPortFrom(netip.MustParseAddr("127.0.1.1"), 249), t0.Add(2*time.Hour)) {
		t.Fatal("the newest is gone")
	}
	// Added again: the later time holds after the earlier entry expires.
	b := netip.MustParseAddrPort("127.0.2.1:1")
	m.Add(b, t0.Add(3*time.Hour))
	m.Add(b, t0.Add(3*time.Hour+30*time.Minute))
	m.Add(netip.MustParseAddrPort("127.0.2.2:1"), t0.Add(4*time.Hour+10*time.Minute))
	if !m.Has(b, t0.Add(4*time.Hour+10*time.Minute)) {
		t.Fatal("an address added again was forgotten with its first entry")
	}
}
