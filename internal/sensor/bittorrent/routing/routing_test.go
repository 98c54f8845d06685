package routing

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

func id(b0 byte, rest byte) ID {
	var x ID
	x[0] = b0
	for i := 1; i < 20; i++ {
		x[i] = rest
	}
	return x
}

func addr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)}), uint16(6881+i%1000))
}

func TestCommonPrefix(t *testing.T) {
	tests := []struct {
		a, b ID
		want int
	}{
		{id(0, 0), id(0, 0), 160},
		{id(0x80, 0), id(0, 0), 0},
		{id(0x01, 0), id(0, 0), 7},
		{id(0, 0), id(0, 1), 8 + 7},
	}
	for _, tt := range tests {
		if got := CommonPrefix(tt.a, tt.b); got != tt.want {
			t.Errorf("CommonPrefix(%x, %x) = %d, want %d", tt.a[:2], tt.b[:2], got, tt.want)
		}
	}
}

func TestBucketKeepsOldNodesWhenFull(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	self := id(0, 0)
	tb := New(self, 2)
	// All three share 0 prefix bits with self: same bucket.
	a, b, c := id(0x80, 1), id(0x81, 2), id(0x82, 3)
	if !tb.Seen(a, addr(1), now) || !tb.Seen(b, addr(2), now) {
		t.Fatal("room in bucket refused")
	}
	if tb.Seen(c, addr(3), now) {
		t.Fatal("full bucket of good nodes accepted a newcomer")
	}
	// a fails twice: it is no longer good and the newcomer replaces it.
	tb.Failed(a)
	tb.Failed(a)
	if !tb.Seen(c, addr(3), now) {
		t.Fatal("newcomer did not replace a failing node")
	}
	if got := tb.Len(); got != 2 {
		t.Fatalf("len = %d, want 2", got)
	}
}

func TestSelfAndPortZeroAreNeverStored(t *testing.T) {
	self := id(7, 7)
	tb := New(self, 8)
	now := time.Now()
	if tb.Seen(self, addr(1), now) {
		t.Fatal("stored own id")
	}
	if tb.Seen(id(1, 1), netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0), now) {
		t.Fatal("stored port 0")
	}
}

func TestClosestMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var self ID
	for i := range self {
		self[i] = byte(r.Uint32())
	}
	tb := New(self, 8)
	now := time.Unix(1_800_000_000, 0)
	var all []ID
	for i := 0; i < 2000; i++ {
		var x ID
		for j := range x {
			x[j] = byte(r.Uint32())
		}
		if tb.Seen(x, addr(i), now) {
			all = append(all, x)
		}
	}
	var target ID
	for j := range target {
		target[j] = byte(r.Uint32())
	}
	got := tb.Closest(target, 8, now)
	if len(got) != 8 {
		t.Fatalf("got %d nodes", len(got))
	}
	// Every stored node not returned is no closer than the farthest returned.
	far := got[len(got)-1].ID
	returned := map[ID]bool{}
	for _, n := range got {
		returned[n.ID] = true
	}
	for _, x := range all {
		if !returned[x] && Closer(target, x, far) {
			t.Fatalf("node %x is closer than returned %x", x[:4], far[:4])
		}
	}
	for i := 1; i < len(got); i++ {
		if Closer(target, got[i].ID, got[i-1].ID) {
			t.Fatal("not sorted closest first")
		}
	}
}
