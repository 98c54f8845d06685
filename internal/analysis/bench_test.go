package analysis_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// benchGen makes a realistic mix: devices with one to three addresses and
// a DHT node id, each sharing a few of a pool of watched files, seen again
// and again, in twenty agencies; new devices keep arriving.
type benchGen struct {
	r       *rand.Rand
	devices int
	at      time.Time
}

const benchAgencies = 20

func (g *benchGen) next(newDevice bool) observe.Observation {
	var d int
	if newDevice {
		d = g.devices
		g.devices++
	} else {
		d = g.r.IntN(max(g.devices, 1))
	}
	addr := g.r.IntN(1 + d%3)
	ip := netip.AddrFrom4([4]byte{10, byte(d >> 16), byte(d >> 8), byte(d)})
	if addr > 0 {
		ip = netip.AddrFrom4([4]byte{11 + byte(addr), byte(d >> 16), byte(d >> 8), byte(d)})
	}
	file := (d*7 + g.r.IntN(4+d%12)) % 5000
	g.at = g.at.Add(time.Duration(g.r.IntN(20)) * time.Millisecond)
	o := ob(netip.AddrPortFrom(ip, uint16(20000+d%40000)).String(), file, observe.Level(1+g.r.IntN(5)), g.at)
	o.Client.NodeID = make([]byte, 20)
	o.Client.NodeID[0], o.Client.NodeID[1], o.Client.NodeID[2], o.Client.NodeID[3] = 0x5A, byte(d>>16), byte(d>>8), byte(d)
	o.Jurisdiction.Agency = fmt.Sprintf("agency-%02d", d%benchAgencies)
	o.Item.Matched[0].Category = fmt.Sprint(1 + d%3)
	return o
}

func benchSize() int {
	if os.Getenv("VIGIL_BENCH_10M") == "1" {
		return 10_000_000
	}
	return 200_000
}

var (
	rankedOnce sync.Once
	rankedPath string
	rankedErr  error
)

// rankedStore builds, once per process, a store with benchSize()
// observations analysed (about one device per 20 observations).
func rankedStore(b *testing.B) string {
	rankedOnce.Do(func() {
		// VIGIL_BENCH_STORE names a store an earlier run built (its path
		// is printed), to measure again without the setup.
		if p := os.Getenv("VIGIL_BENCH_STORE"); p != "" {
			if _, err := os.Stat(p); err == nil {
				rankedPath = p
				return
			}
		}
		dir, err := os.MkdirTemp("", "vigil-bench-analysis-")
		if err != nil {
			rankedErr = err
			return
		}
		rankedPath = filepath.Join(dir, "vigil.db")
		ctx := context.Background()
		st, err := sqlite.Open(ctx, rankedPath, sqlite.DefaultConfig())
		if err != nil {
			rankedErr = err
			return
		}
		defer st.Close()
		cfg := analysis.DefaultConfig()
		cfg.Quarantine.MinPeers = 1 << 30
		// Setup only: save rarely (the ranked list is what is measured),
		// then flush once.
		cfg.SaveInterval = time.Minute
		e, err := analysis.New(ctx, st, cfg)
		if err != nil {
			rankedErr = err
			return
		}
		g := &benchGen{r: rand.New(rand.NewPCG(7, 7)), at: t0}
		n := benchSize()
		batch := make([]observe.Observation, 0, 1000)
		start := time.Now()
		for i := 0; i < n; i++ {
			batch = append(batch, g.next(i%20 == 0))
			if len(batch) == cap(batch) || i == n-1 {
				if err := st.InsertObservations(ctx, batch); err != nil {
					rankedErr = err
					return
				}
				if err := e.Add(ctx, batch); err != nil {
					rankedErr = err
					return
				}
				batch = batch[:0]
			}
		}
		if err := e.Flush(ctx); err != nil {
			rankedErr = err
			return
		}
		fmt.Fprintf(os.Stderr, "analysis bench setup: %d observations, %d devices, %s; store %s (VIGIL_BENCH_STORE reuses it)\n", n, g.devices, time.Since(start).Round(time.Second), rankedPath)
	})
	if rankedErr != nil {
		b.Fatal(rankedErr)
	}
	return rankedPath
}

func p95(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)*95/100]) / float64(time.Millisecond)
}

// BenchmarkRankedList: the ranked list of one jurisdiction (50 targets and
// the total), from the targets table, against the baseline: the naive
// aggregation of the observations of that agency grouped by address.
func BenchmarkRankedList(b *testing.B) {
	path := rankedStore(b)
	ctx := context.Background()
	b.Run("targets", func(b *testing.B) {
		st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		var ds []time.Duration
		i := 0
		for b.Loop() {
			a := fmt.Sprintf("agency-%02d", i%benchAgencies)
			i++
			t := time.Now()
			page, total, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{a}}, Limit: 50})
			ds = append(ds, time.Since(t))
			if err != nil || len(page) == 0 || total == 0 {
				b.Fatalf("%s: %d/%d, %v", a, len(page), total, err)
			}
		}
		b.ReportMetric(p95(ds), "p95-ms")
	})
	b.Run("naive-group-by-ip", func(b *testing.B) {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		var ds []time.Duration
		i := 0
		for b.Loop() {
			a := fmt.Sprintf("agency-%02d", i%benchAgencies)
			i++
			t := time.Now()
			rows, err := db.QueryContext(ctx, `SELECT ip, COUNT(DISTINCT item_id) AS files, COUNT(*) AS n, MAX(time_ns)
				FROM observations WHERE agency = ? GROUP BY ip ORDER BY files DESC, n DESC LIMIT 50`, a)
			if err != nil {
				b.Fatal(err)
			}
			k := 0
			for rows.Next() {
				k++
			}
			rows.Close()
			ds = append(ds, time.Since(t))
			if k == 0 {
				b.Fatalf("%s: no rows", a)
			}
		}
		b.ReportMetric(p95(ds), "p95-ms")
	})
}

// BenchmarkAdd: incremental analysis of committed batches of 1,000 (80 %
// repeat sightings, 20 % new devices, twenty agencies), against the
// baseline of ingest's own commit of the same batch: analysis keeps up
// when its rate is at least ingest's and at least 10,000 a second.
func BenchmarkAdd(b *testing.B) {
	ctx := context.Background()
	setup := func(b *testing.B) (*sqlite.Store, *analysis.Engine, *benchGen) {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "vigil.db"), sqlite.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		cfg := analysis.DefaultConfig()
		cfg.Quarantine.MinPeers = 1 << 30
		// Setup only: save rarely (the ranked list is what is measured),
		// then flush once.
		cfg.SaveInterval = time.Minute
		e, err := analysis.New(ctx, st, cfg)
		if err != nil {
			b.Fatal(err)
		}
		g := &benchGen{r: rand.New(rand.NewPCG(9, 9)), at: t0}
		// Warm: 50,000 observations already analysed.
		for range 50 {
			batch := make([]observe.Observation, 1000)
			for i := range batch {
				batch[i] = g.next(i%5 == 0)
			}
			if err := st.InsertObservations(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if err := e.Add(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		return st, e, g
	}
	run := func(b *testing.B, analyse bool) {
		st, e, g := setup(b)
		var n int
		var spent time.Duration
		for b.Loop() {
			batch := make([]observe.Observation, 1000)
			for i := range batch {
				batch[i] = g.next(i%5 == 0)
			}
			t := time.Now()
			if err := st.InsertObservations(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if !analyse {
				spent += time.Since(t)
			} else {
				t = time.Now()
				if err := e.Add(ctx, batch); err != nil {
					b.Fatal(err)
				}
				spent += time.Since(t)
			}
			n += len(batch)
		}
		b.ReportMetric(float64(n)/spent.Seconds(), "obs/s")
	}
	b.Run("engine-add", func(b *testing.B) { run(b, true) })
	b.Run("baseline-ingest-commit", func(b *testing.B) { run(b, false) })
}

// BenchmarkFiguresFlush: the save that writes the figures' roll-ups of
// many observations at once, as ingest's does every FiguresInterval (30
// seconds of observations, several profiles sharing each week's total).
// Each round analyses 30,000 observations of about 6,000 devices with
// the roll-ups held back (untimed), then times Flush, whose only work is
// then the roll-ups (the targets were saved with each batch). It
// reports the wall time and the process's CPU time (getrusage) of the
// flush: on a loaded machine the CPU is what compares.
func BenchmarkFiguresFlush(b *testing.B) {
	ctx := context.Background()
	var spent, cpu time.Duration
	for i := 0; i < b.N; i++ {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("vigil-%d.db", i)), sqlite.DefaultConfig())
		if err != nil {
			b.Fatal(err)
		}
		cfg := analysis.DefaultConfig()
		cfg.Quarantine.MinPeers = 1 << 30
		cfg.SaveInterval, cfg.FiguresInterval = 0, time.Hour
		e, err := analysis.New(ctx, st, cfg)
		if err != nil {
			b.Fatal(err)
		}
		g := &benchGen{r: rand.New(rand.NewPCG(7, 7)), at: t0}
		for range 30 {
			batch := make([]observe.Observation, 1000)
			for j := range batch {
				batch[j] = g.next(j%5 == 0)
			}
			if err := st.InsertObservations(ctx, batch); err != nil {
				b.Fatal(err)
			}
			if err := e.Add(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		c0 := processCPU(b)
		t := time.Now()
		if err := e.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(t)
		cpu += processCPU(b) - c0
		st.Close()
	}
	b.ReportMetric(float64(spent.Milliseconds())/float64(b.N), "ms/flush")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/flush")
}

// processCPU is the user and system time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
