package analysis

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// An endpoint's active days (the score's days_active) are each UTC day on
// which it showed a file not held first-hand, once, in order, whatever the
// order its sightings arrive in and however many files it showed that day.
func TestActiveDaysOncePerDayWhateverTheOrderAndFiles(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	e := &Engine{quarantine: map[hashkind.Hash]*QuarantineRecord{}}
	for i := range 4 {
		var b [20]byte
		b[0] = byte(i + 1)
		h, err := hashkind.New(hashkind.BTIH, b[:])
		if err != nil {
			t.Fatal(err)
		}
		e.itemList = append(e.itemList, &item{idx: int32(i), hash: h})
	}
	e.quarantine[e.itemList[3].hash] = &QuarantineRecord{State: QuarantineHeld}
	for round := range 200 {
		p := &endpoint{}
		shown := map[int32]bool{} // day -> a file not held shown
		for range 12 {
			d, idx := int32(20000+r.IntN(5)), int32(r.IntN(4))
			p.addFHDay(d, idx)
			shown[d] = shown[d] || idx != 3
		}
		var want []int32
		for d, ok := range shown {
			if ok {
				want = append(want, d)
			}
		}
		slices.Sort(want)
		if got := e.activeDays(p); !slices.Equal(got, want) {
			t.Fatalf("round %d: active days %v, want %v (days %v)", round, got, want, p.fhDays)
		}
	}
}
