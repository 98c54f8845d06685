package analysis

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
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

// A span keeps one observation id at each end whatever the ids: an id not
// in canonical form (an import's) is kept while a span end holds it and
// let go when a later sighting replaces it, so that the engine keeps no
// more for a stream of such ids than for canonical ones.
func TestSpanKeepsOneIDAtEachEnd(t *testing.T) {
	e := &Engine{}
	sp := e.widen(nil, 0, "import-0")
	for i := 1; i <= 1000; i++ {
		e.widen(sp, int64(i), fmt.Sprintf("import-%d", i))
	}
	if got := e.obsID(&sp.lastObs); got != "import-1000" || len(e.oddIDs) != 1 {
		t.Fatalf("last %q, %d ids kept; want import-1000 and one", got, len(e.oddIDs))
	}
	id := observe.NewID(time.Unix(2000, 0))
	e.widen(sp, 2000, id)
	if got := e.obsID(&sp.lastObs); got != id || len(e.oddIDs) != 0 {
		t.Fatalf("last %q, %d other ids kept; want %s and none", got, len(e.oddIDs), id)
	}
	p := &endpoint{}
	e.widenProbes(p, 10, "probe-10")
	e.widenProbes(p, 5, "probe-5")
	e.widenProbes(p, 20, id)
	if f, l := e.obsID(&p.probes.firstObs), e.obsID(&p.probes.lastObs); f != "probe-5" || l != id || len(e.oddIDs) != 1 {
		t.Fatalf("probes first %q last %q, %d other ids kept; want probe-5, %s, one", f, l, len(e.oddIDs), id)
	}
}
