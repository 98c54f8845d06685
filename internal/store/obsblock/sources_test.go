package obsblock

import (
	"math/rand/v2"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// diskObservations are the PostgreSQL disk benchmark's observations
// (internal/store/postgres, newBenchSource and fill): storetest.Observation
// drawn from a pool of 4,096 made with the same seed, taken in turn, each
// with a time 37 µs after the one before and a fresh id.
func diskObservations(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(42, 42))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	pool := make([]observe.Observation, 4096)
	for i := range pool {
		pool[i] = storetest.Observation(r, at, i)
	}
	out := make([]observe.Observation, n)
	for i := range out {
		o := pool[i%len(pool)]
		o.Time = at.Add(time.Duration(i) * 37 * time.Microsecond)
		o.ID = observe.NewID(o.Time)
		out[i] = o
	}
	return out
}

// labObservations are storetest.LabObservations: what a live BitTorrent
// sensor emits (the PostgreSQL disk benchmark's second shape).
func labObservations(n int, seed uint64) []observe.Observation {
	return storetest.LabObservations(n, seed)
}
