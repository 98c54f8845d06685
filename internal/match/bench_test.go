package match

import (
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// The benchmarks compare the Matcher (and its Index alone) with the obvious
// baseline, Go's map[[20]byte]struct{}, built from the same synthetic SHA-1
// entries and probed with the same lookups in the same loop shape. By
// default there are 10 million entries and 10 million lookups, of which 10%
// are entries and 90% fresh random digests; VIGIL_BENCH_MATCH_N sets a
// smaller size for quick runs.

const benchHitPercent = 10

type benchData struct {
	n        int
	entries  [][20]byte
	hashes   []hashkind.Hash // entries as Hash values
	lookups  [][20]byte
	lhashes  []hashkind.Hash // lookups as Hash values
	wantHits int             // hits in one pass over lookups, by the map
	matcher  *Matcher
	index    *Index
	set      map[[20]byte]struct{}
}

var (
	benchOnce sync.Once
	bench     benchData
)

func benchN(tb testing.TB) int {
	if s := os.Getenv("VIGIL_BENCH_MATCH_N"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			tb.Fatalf("VIGIL_BENCH_MATCH_N=%q: want a positive integer", s)
		}
		return n
	}
	return 10_000_000
}

var benchSource = Source{List: "synthetic-list", Category: "1", Severity: 3}

// benchSetup generates the entries and lookups (seeded, so every run probes
// the same keys) and builds the three structures once per process.
func benchSetup(tb testing.TB) *benchData {
	benchOnce.Do(func() {
		n := benchN(tb)
		r := rand.New(rand.NewPCG(20240601, 7))
		fill := func(d *[20]byte) {
			a, b, c := r.Uint64(), r.Uint64(), r.Uint32()
			for i := range 8 {
				d[i], d[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
			}
			for i := range 4 {
				d[16+i] = byte(c >> (8 * i))
			}
		}
		bench.n = n
		bench.entries = make([][20]byte, n)
		bench.hashes = make([]hashkind.Hash, n)
		for i := range bench.entries {
			fill(&bench.entries[i])
			bench.hashes[i] = hashkind.MustNew(hashkind.SHA1, bench.entries[i][:])
		}
		bench.lookups = make([][20]byte, n)
		bench.lhashes = make([]hashkind.Hash, n)
		for i := range bench.lookups {
			if r.IntN(100) < benchHitPercent {
				bench.lookups[i] = bench.entries[r.IntN(n)]
			} else {
				fill(&bench.lookups[i])
			}
			bench.lhashes[i] = hashkind.MustNew(hashkind.SHA1, bench.lookups[i][:])
		}
		bench.set = buildMap(bench.entries)
		bench.matcher = buildMatcher(tb, bench.hashes)
		bench.index = bench.matcher.idx[hashkind.SHA1]
		for _, k := range bench.lookups {
			if _, ok := bench.set[k]; ok {
				bench.wantHits++
			}
		}
		// Settle the heap, so that no collection runs beside the first
		// timed loop.
		runtime.GC()
	})
	return &bench
}

func buildMap(entries [][20]byte) map[[20]byte]struct{} {
	m := make(map[[20]byte]struct{}, len(entries))
	for _, e := range entries {
		m[e] = struct{}{}
	}
	return m
}

func buildMatcher(tb testing.TB, hashes []hashkind.Hash) *Matcher {
	var b Builder
	b.Grow(hashkind.SHA1, len(hashes))
	for _, h := range hashes {
		if err := b.Add(h, benchSource); err != nil {
			tb.Fatal(err)
		}
	}
	return b.Build()
}

// checkHits fails the benchmark if a pass over the lookups did not find
// what the map found: a fast wrong answer is no answer.
func checkHits(b *testing.B, d *benchData, hits, iters int) {
	b.Helper()
	if iters < d.n {
		return
	}
	if full := iters / d.n; hits < full*d.wantHits {
		b.Fatalf("%d hits in %d lookups, want at least %d", hits, iters, full*d.wantHits)
	}
}

func reportLookups(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkMapLookup is the baseline: Go's map from the same entries.
func BenchmarkMapLookup(b *testing.B) {
	d := benchSetup(b)
	keys, set := d.lookups, d.set
	hits, j := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := set[keys[j]]; ok {
			hits++
		}
		if j++; j == len(keys) {
			j = 0
		}
	}
	b.StopTimer()
	reportLookups(b)
	checkHits(b, d, hits, b.N)
}

// BenchmarkMatcherLookup is Matcher.Contains on the same lookups, as Hash
// values (what callers hold).
func BenchmarkMatcherLookup(b *testing.B) {
	d := benchSetup(b)
	keys, m := d.lhashes, d.matcher
	hits, j := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if m.Contains(keys[j]) {
			hits++
		}
		if j++; j == len(keys) {
			j = 0
		}
	}
	b.StopTimer()
	reportLookups(b)
	checkHits(b, d, hits, b.N)
}

// BenchmarkIndexLookup is the SHA-1 Index alone, on the [20]byte lookups
// the map gets.
func BenchmarkIndexLookup(b *testing.B) {
	d := benchSetup(b)
	keys, x := d.lookups, d.index
	hits, j := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if x.Has(keys[j][:]) {
			hits++
		}
		if j++; j == len(keys) {
			j = 0
		}
	}
	b.StopTimer()
	reportLookups(b)
	checkHits(b, d, hits, b.N)
}

// The batch variants look the same keys up in batches of benchBatch
// consecutive lookups, as a sensor does with a batch of observations:
// Matcher.ContainsBatch, and its equivalent for the map (a loop over the
// batch filling the same result slice: a map has no way to overlap its
// lookups). Both count their hits from the results.
const benchBatch = 256

func BenchmarkMapLookupBatch(b *testing.B) {
	d := benchSetup(b)
	keys, set := d.lookups, d.set
	out := make([]bool, benchBatch)
	hits, j := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(benchBatch, b.N-i, len(keys)-j)
		out = out[:n]
		// Not `_, out[k] = set[key]` in a range loop: that form is
		// three times slower (Go 1.26), and the baseline gets its best.
		ks := keys[j : j+n]
		for k := range ks {
			_, ok := set[ks[k]]
			out[k] = ok
		}
		for _, ok := range out {
			if ok {
				hits++
			}
		}
		i += n
		if j += n; j == len(keys) {
			j = 0
		}
	}
	b.StopTimer()
	reportLookups(b)
	checkHits(b, d, hits, b.N)
}

func BenchmarkMatcherLookupBatch(b *testing.B) {
	d := benchSetup(b)
	keys, m := d.lhashes, d.matcher
	out := make([]bool, benchBatch)
	hits, j := 0, 0
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(benchBatch, b.N-i, len(keys)-j)
		out = m.ContainsBatch(keys[j:j+n], out)
		for _, ok := range out {
			if ok {
				hits++
			}
		}
		i += n
		if j += n; j == len(keys) {
			j = 0
		}
	}
	b.StopTimer()
	reportLookups(b)
	checkHits(b, d, hits, b.N)
}

// BenchmarkLookupInterleaved runs the four loops above (map and Matcher,
// one key at a time and in batches) in turns of interleaveChunk lookups
// over the same keys, b.N lookups each, and reports each one's time per
// lookup and the Matcher's speed-ups over the map. On a machine shared with
// other work, the turns see the same load, so the ratios hold better than
// those of separate benchmarks run a minute apart. ns/op counts all four
// loops.
func BenchmarkLookupInterleaved(b *testing.B) {
	d := benchSetup(b)
	set, m := d.set, d.matcher
	out := make([]bool, benchBatch)
	var tMap, tOne, tRef, tMapBatch, tBatch time.Duration
	var hMap, hOne, hRef, hMapBatch, hBatch int
	b.ResetTimer()
	for done, j := 0, 0; done < b.N; {
		n := min(interleaveChunk, b.N-done, d.n-j)
		keys, hs := d.lookups[j:j+n], d.lhashes[j:j+n]

		t0 := time.Now()
		for k := range keys {
			if _, ok := set[keys[k]]; ok {
				hMap++
			}
		}
		t1 := time.Now()
		for k := range hs {
			if m.Contains(hs[k]) {
				hOne++
			}
		}
		t2 := time.Now()
		for k := range hs {
			if m.ContainsRef(&hs[k]) {
				hRef++
			}
		}
		t2r := time.Now()
		for s := 0; s < n; s += benchBatch {
			ks := keys[s:min(s+benchBatch, n)]
			out = out[:len(ks)]
			for k := range ks {
				_, ok := set[ks[k]]
				out[k] = ok
			}
			for _, ok := range out {
				if ok {
					hMapBatch++
				}
			}
		}
		t3 := time.Now()
		for s := 0; s < n; s += benchBatch {
			out = m.ContainsBatch(hs[s:min(s+benchBatch, n)], out)
			for _, ok := range out {
				if ok {
					hBatch++
				}
			}
		}
		t4 := time.Now()
		tMap, tOne, tRef, tMapBatch, tBatch = tMap+t1.Sub(t0), tOne+t2.Sub(t1), tRef+t2r.Sub(t2), tMapBatch+t3.Sub(t2r), tBatch+t4.Sub(t3)
		done += n
		if j += n; j == d.n {
			j = 0
		}
	}
	b.StopTimer()
	if hOne != hMap || hRef != hMap || hBatch != hMap || hMapBatch != hMap {
		b.Fatalf("hits: map %d, Matcher %d, Matcher by reference %d, map batched %d, Matcher batched %d", hMap, hOne, hRef, hMapBatch, hBatch)
	}
	checkHits(b, d, hMap, b.N)
	per := func(t time.Duration) float64 { return float64(t.Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(tMap), "map-ns/lookup")
	b.ReportMetric(per(tOne), "matcher-ns/lookup")
	b.ReportMetric(per(tRef), "matcher-ref-ns/lookup")
	b.ReportMetric(per(tMapBatch), "map-batch-ns/lookup")
	b.ReportMetric(per(tBatch), "matcher-batch-ns/lookup")
	b.ReportMetric(float64(tMap)/float64(tOne), "x-single")
	b.ReportMetric(float64(tMap)/float64(tRef), "x-single-ref")
	b.ReportMetric(float64(tMapBatch)/float64(tBatch), "x-batch")
}

// interleaveChunk is the turn of each loop in BenchmarkLookupInterleaved:
// long enough that the caches hold none of the previous turn's lines.
const interleaveChunk = 1 << 18

// The parallel variants run the same loops on every core (GOMAXPROCS
// goroutines), each goroutine starting at its own place in the lookups.
func BenchmarkMapLookupParallel(b *testing.B) {
	d := benchSetup(b)
	keys, set := d.lookups, d.set
	var next sync.Mutex
	start := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		j := start
		start += len(keys) / 7
		next.Unlock()
		hits := 0
		for pb.Next() {
			if _, ok := set[keys[j%len(keys)]]; ok {
				hits++
			}
			j++
		}
		sinkInt(hits)
	})
	b.StopTimer()
	reportLookups(b)
}

func BenchmarkMatcherLookupParallel(b *testing.B) {
	d := benchSetup(b)
	keys, m := d.lhashes, d.matcher
	var next sync.Mutex
	start := 0
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		j := start
		start += len(keys) / 7
		next.Unlock()
		hits := 0
		for pb.Next() {
			if m.Contains(keys[j%len(keys)]) {
				hits++
			}
			j++
		}
		sinkInt(hits)
	})
	b.StopTimer()
	reportLookups(b)
}

var sink int

//go:noinline
func sinkInt(v int) { sink += v }

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMapBuild builds the baseline map (sized up front) from the
// entries and reports the heap it keeps, per entry.
func BenchmarkMapBuild(b *testing.B) {
	d := benchSetup(b)
	var keep map[[20]byte]struct{}
	var retained uint64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		keep = nil
		before := heapAfterGC()
		t0 := time.Now()
		keep = buildMap(d.entries)
		elapsed += time.Since(t0)
		retained = heapAfterGC() - before
	}
	b.StopTimer()
	if len(keep) != d.n {
		b.Fatalf("map has %d entries, want %d", len(keep), d.n)
	}
	b.ReportMetric(float64(retained)/float64(d.n), "bytes/entry")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/build")
}

// BenchmarkMatcherBuild adds the entries to a Builder and builds the
// Matcher, then reports the heap the Matcher keeps (the builder dropped),
// per entry, and the Index's own count of its bytes.
func BenchmarkMatcherBuild(b *testing.B) {
	d := benchSetup(b)
	var keep *Matcher
	var retained uint64
	var elapsed time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		keep = nil
		before := heapAfterGC()
		t0 := time.Now()
		keep = buildMatcher(b, d.hashes)
		elapsed += time.Since(t0)
		retained = heapAfterGC() - before
	}
	b.StopTimer()
	if keep.Len() != d.n {
		b.Fatalf("matcher has %d hashes, want %d", keep.Len(), d.n)
	}
	b.ReportMetric(float64(retained)/float64(d.n), "bytes/entry")
	b.ReportMetric(float64(keep.Bytes())/float64(d.n), "index-bytes/entry")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/build")
}
