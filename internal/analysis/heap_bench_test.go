package analysis_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// heapShape makes observations for BenchmarkEngineHeapPerObservation.
type heapShape struct {
	name string
	// next returns observation i of n.
	next func(r *rand.Rand, i, n int) observe.Observation
}

// heapObs is one observation of endpoint ep (a device with a DHT node id
// and a peer id, on loopback), file number file, at.
func heapObs(r *rand.Rand, ep, file int, at time.Time) observe.Observation {
	lvl := observe.Level(1 + r.IntN(5))
	ip := netip.AddrFrom4([4]byte{127, byte(1 + ep>>16), byte(ep >> 8), byte(ep)})
	o := ob(netip.AddrPortFrom(ip, uint16(6881+ep%1000)).String(), file, lvl, at)
	o.Client.NodeID = make([]byte, 20)
	binary.BigEndian.PutUint64(o.Client.NodeID, uint64(ep)|0xAB<<56)
	o.Client.PeerID = []byte(fmt.Sprintf("-TR3000-%012d", ep))
	o.Jurisdiction.Agency = fmt.Sprintf("agency-%02d", ep%benchAgencies)
	if lvl >= observe.Partial {
		o.Possession.PiecesTotal, o.Possession.PiecesHave = 64, 64
		if lvl == observe.Partial {
			o.Possession.PiecesHave = 1 + r.IntN(63)
		}
	}
	return o
}

var heapShapes = []heapShape{
	// The web fixture's shape (internal/web fillStore): 20 observations
	// an endpoint, endpoint after endpoint, three of 500 files each, at
	// random times over ten days. Endpoints grow with the observations.
	{"fixture", func(r *rand.Rand, i, n int) observe.Observation {
		ep := i / 20
		at := t0.Add(time.Duration(r.Int64N(int64(10 * 24 * time.Hour))))
		return heapObs(r, ep, (ep*7+i%3)%500, at)
	}},
	// The same, each endpoint's 20 sightings in time order (as a sensor
	// sends them): only a silence longer than the endpoint window starts
	// another generation of the IP:port, where the fixture's random order
	// starts one for each sighting more than a window from those before.
	{"fixture-in-time-order", inTimeOrder()},
	// A fixed population: 1,000 endpoints with three files each, seen
	// again and again within one day, whatever n. Endpoints, files,
	// links, days and hours stop growing early: what grows from one n to
	// the next is kept per observation.
	{"fixed-endpoints", func(r *rand.Rand, i, n int) observe.Observation {
		ep := r.IntN(1000)
		at := t0.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
		return heapObs(r, ep, (ep*7+r.IntN(3))%500, at)
	}},
}

// inTimeOrder is the fixture shape with each endpoint's sightings sorted.
func inTimeOrder() func(r *rand.Rand, i, n int) observe.Observation {
	var times []time.Time
	return func(r *rand.Rand, i, n int) observe.Observation {
		if i%20 == 0 {
			times = times[:0]
			for range 20 {
				times = append(times, t0.Add(time.Duration(r.Int64N(int64(10*24*time.Hour)))))
			}
			slices.SortFunc(times, time.Time.Compare)
		}
		ep := i / 20
		return heapObs(r, ep, (ep*7+i%3)%500, times[i%20])
	}
}

// BenchmarkEngineHeapPerObservation feeds an engine (on a SQLite store, in
// batches of 5,000, saving as `vigil ingest` does) n observations of each
// shape and reports the live Go heap after runtime.GC(), less the heap
// before the engine was made, as heap-B/obs and heap-MB. Compare the two
// sizes of a shape: growth per observation shows as heap-B/obs that stays
// up from n=100k to n=400k on fixed-endpoints.
//
//	go test ./internal/analysis -run '^$' -bench EngineHeapPerObservation -benchtime 1x
//
// The engine and store are built once per sub-benchmark whatever b.N (run
// it with -benchtime 1x); the figures are sizes, not times. With
// VIGIL_HEAP_PROFILE=DIR each writes its live heap to DIR/heap-SHAPE-N.prof
// (add -test.memprofilerate=4096 for a finer sample).
func BenchmarkEngineHeapPerObservation(b *testing.B) {
	for _, sh := range heapShapes {
		for _, n := range []int{100_000, 400_000} {
			b.Run(fmt.Sprintf("shape=%s/n=%dk", sh.name, n/1000), func(b *testing.B) {
				heap, eps := engineHeap(b, sh, n)
				for b.Loop() {
				}
				b.ReportMetric(float64(heap)/float64(n), "heap-B/obs")
				b.ReportMetric(float64(heap)/1e6, "heap-MB")
				b.ReportMetric(float64(eps), "endpoints")
				b.ReportMetric(float64(heap)/float64(max(eps, 1)), "heap-B/endpoint")
			})
		}
	}
}

// engineHeap builds the engine over n observations of sh and returns the
// live heap it holds and the endpoints (Stats) it made.
func engineHeap(b *testing.B, sh heapShape, n int) (int64, int) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "vigil.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	cfg := analysis.DefaultConfig()
	before := liveHeap()
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(13, 13))
	batch := make([]observe.Observation, 0, 5000)
	for i := range n {
		batch = append(batch, sh.next(r, i, n))
		if len(batch) == cap(batch) || i == n-1 {
			if err := st.InsertObservations(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if err := e.Add(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	batch = nil
	heap := liveHeap() - before
	if dir := os.Getenv("VIGIL_HEAP_PROFILE"); dir != "" {
		// The engine's live heap, for go tool pprof -sample_index=inuse_space.
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("heap-%s-%d.prof", sh.name, n)))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	runtime.KeepAlive(e)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var eps int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM analysis_endpoints`).Scan(&eps); err != nil {
		b.Fatal(err)
	}
	return heap, eps
}

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
