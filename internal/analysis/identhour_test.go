package analysis

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// An identifier's hours (addHour) count the distinct IPs of each clock
// hour as the map of hours to IPs they replaced did, whatever the order
// sightings arrive in: each sighting's count (0 for an IP counted already
// that hour) is the map's, and two endpoints of one IP (two ports, two
// generations) count once.
func TestIdentHoursCountDistinctIPsAsTheMapDid(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 2))
	for round := range 200 {
		e := &Engine{eps: []*endpoint{nil}}
		for i := range 12 {
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 5)})
			if i%4 == 3 {
				ip = netip.MustParseAddr("2001:db8::1")
			}
			e.eps = append(e.eps, &endpoint{id: int32(i + 1), key: netip.AddrPortFrom(ip, uint16(1000+i))})
		}
		id := &ident{}
		want := map[int64][]netip.Addr{}
		for range 60 {
			p := e.eps[1+r.IntN(12)]
			h := int64(r.IntN(6)) - 3 // hours before the epoch too
			ips := want[h]
			wantN := 0
			if !slices.Contains(ips, p.key.Addr()) {
				want[h] = append(ips, p.key.Addr())
				wantN = len(want[h])
			}
			if n := e.addHour(id, int32(h), p); n != wantN {
				t.Fatalf("round %d: hour %d from %s counted %d, want %d", round, h, p.key, n, wantN)
			}
		}
		if !slices.IsSortedFunc(id.hours, func(a, b identHour) int { return int(a.hour - b.hour) }) {
			t.Fatalf("round %d: hours not sorted: %v", round, id.hours)
		}
	}
}
