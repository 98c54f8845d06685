package netlimit

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestPerAddrBudgetRefusesBurstThenRefills(t *testing.T) {
	l := New(Config{PerAddrPerSecond: 1, PerAddrBurst: 2, MaxAddrs: 10})
	a := netip.MustParseAddr("127.0.0.2")
	now := time.Unix(1_800_000_000, 0)
	if !l.AllowAddr(a, now) || !l.AllowAddr(a, now) {
		t.Fatal("burst of 2 refused")
	}
	if l.AllowAddr(a, now) {
		t.Fatal("third packet in the same instant allowed")
	}
	if got := l.Stats().RefusedByAddr; got != 1 {
		t.Fatalf("refused count = %d, want 1", got)
	}
	// Another address has its own budget.
	if !l.AllowAddr(netip.MustParseAddr("127.0.0.3"), now) {
		t.Fatal("other address refused")
	}
	if !l.AllowAddr(a, now.Add(time.Second)) {
		t.Fatal("budget did not refill after a second")
	}
}

func TestPerAddrTableStaysBounded(t *testing.T) {
	l := New(Config{PerAddrPerSecond: 1, PerAddrBurst: 1, MaxAddrs: 100})
	now := time.Unix(1_800_000_000, 0)
	for i := 0; i < 1000; i++ {
		a := netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})
		l.AllowAddr(a, now.Add(time.Duration(i)*time.Millisecond))
	}
	if got := l.Stats().Addrs; got > 100 {
		t.Fatalf("table holds %d addresses, bound is 100", got)
	}
}

func TestInFlightCapBlocksUntilRelease(t *testing.T) {
	l := New(Config{MaxInFlight: 2})
	ctx := context.Background()
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Acquire(short); err == nil {
		t.Fatal("third acquire succeeded past the cap")
	}
	l.Release()
	if err := l.Acquire(ctx); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if got := l.InFlight(); got != 2 {
		t.Fatalf("in flight = %d, want 2", got)
	}
}

func TestZeroRatesAreUnlimited(t *testing.T) {
	l := New(Unlimited())
	a := netip.MustParseAddr("127.0.0.1")
	now := time.Now()
	for i := 0; i < 1000; i++ {
		if !l.AllowAddr(a, now) {
			t.Fatalf("packet %d refused with no limit", i)
		}
	}
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestEvictionKeepsBusyAddressesBudget(t *testing.T) {
	// 1 packet/s, burst 1: an address idle for a second has a full bucket.
	l := New(Config{PerAddrPerSecond: 1, PerAddrBurst: 1, MaxAddrs: 10})
	now := time.Unix(1_800_000_000, 0)
	busy := netip.MustParseAddr("127.0.0.99")
	for i := 0; i < 9; i++ { // idle addresses, seen long ago
		l.AllowAddr(netip.AddrFrom4([4]byte{127, 0, 0, byte(i)}), now.Add(-time.Hour))
	}
	if !l.AllowAddr(busy, now) {
		t.Fatal("first packet refused")
	}
	// The table is full: a newcomer evicts the idle ones, not the busy one,
	// whose spent budget must still hold.
	l.AllowAddr(netip.MustParseAddr("127.0.1.1"), now)
	if l.AllowAddr(busy, now) {
		t.Fatal("eviction forgot a busy address's spent budget")
	}
	if got := l.Stats().Addrs; got > 10 {
		t.Fatalf("table holds %d addresses, bound is 10", got)
	}
}

// Addresses of one IPv6 /64 share one budget (a hostile peer list naming
// many addresses of one household must not multiply what the sensor sends
// there); another /64, and IPv4 addresses, have their own; an
// IPv4-mapped address counts as its IPv4 address.
func TestPerAddrBudgetIsPerIPv6Slash64(t *testing.T) {
	l := New(Config{PerAddrPerSecond: 1, PerAddrBurst: 2, MaxAddrs: 100})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	same := []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"}
	allowed := 0
	for _, a := range same {
		if l.AllowAddr(netip.MustParseAddr(a), now) {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("%d of 3 sends to one /64 allowed at once, want the burst of 2", allowed)
	}
	if !l.AllowAddr(netip.MustParseAddr("2001:db8:1:3::1"), now) {
		t.Fatal("the next /64 shares the first one's budget")
	}
	v4 := netip.MustParseAddr("192.0.2.1")
	l.AllowAddr(v4, now)
	l.AllowAddr(v4, now)
	if l.AllowAddr(netip.MustParseAddr("::ffff:192.0.2.1"), now) {
		t.Fatal("an IPv4-mapped address escaped its IPv4 address's budget")
	}
	if !l.AllowAddr(netip.MustParseAddr("192.0.2.2"), now) {
		t.Fatal("two IPv4 addresses share a budget")
	}
}

// An IPv6 address that carries an IPv4 host (NAT64, 6to4, Teredo) counts
// against that host's budget, not its /64's: the whole IPv4 internet
// behind NAT64 shares no budget, and one host has one.
func TestTranslatedAddressesCountAsTheirIPv4Host(t *testing.T) {
	l := New(Config{PerAddrPerSecond: 1, PerAddrBurst: 1, MaxAddrs: 100})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if !l.AllowAddr(netip.MustParseAddr("64:ff9b::c000:201"), now) { // 192.0.2.1
		t.Fatal("first send refused")
	}
	if !l.AllowAddr(netip.MustParseAddr("64:ff9b::c000:202"), now) {
		t.Fatal("two IPv4 hosts behind NAT64 share one budget")
	}
	for _, same := range []string{"192.0.2.1", "2002:c000:201::1", "2001:0:4136:e378:8000:63bf:3fff:fdfe"} { // Teredo client 192.0.2.1
		if l.AllowAddr(netip.MustParseAddr(same), now) {
			t.Errorf("%s escaped the budget of 192.0.2.1", same)
		}
	}
}
