package dhtnode

import (
	mrand "math/rand/v2"
	"net/netip"
	"testing"

	adht "github.com/anacrolix/dht/v2"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

// BEP 42 over IPv6 (the first 64 bits of the address, masked): the ids
// the sensor's identities take for a public IPv6 listen address agree
// with a third party's implementation (anacrolix/dht) on random
// addresses; on exempt addresses they are spread over the key space.
// (The sensor's check of the ids it is sent is tested beside
// the sensor, TestBEP42IPv6IdsAgreeWithAnacrolix.)
func TestSpreadIDsIPv6AgreeWithAnacrolix(t *testing.T) {
	r := mrand.New(mrand.NewPCG(42, 6))
	for range 500 {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f // 2000::/3, global unicast
		ip := netip.AddrFrom16(b)
		for _, id := range spreadIDs(ip, 3) {
			if !adht.NodeIdSecure(id, ip.AsSlice()) || !krpc.BEP42Valid(ip, id) {
				t.Fatalf("sensor id %x for %v: anacrolix %v, ours %v", id, ip, adht.NodeIdSecure(id, ip.AsSlice()), krpc.BEP42Valid(ip, id))
			}
		}
	}
	// Loopback and unique local addresses are exempt from BEP 42: the
	// sensor's ids there are spread over the key space instead.
	for _, ip := range []netip.Addr{netip.IPv6Loopback(), netip.MustParseAddr("fd00:0:0:1::1")} {
		for i, id := range spreadIDs(ip, 4) {
			if top := id[0] >> 6; int(top) != i {
				t.Errorf("lab id %d of %v starts %02x: not spread", i, ip, id[0])
			}
		}
	}
}
