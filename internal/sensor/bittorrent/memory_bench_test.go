package bittorrent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// memResult is what a memory child reports.
type memResult struct {
	Watched      int     `json:"watched"`
	Seconds      float64 `json:"seconds"`
	PeakRSSMB    float64 `json:"peak_rss_mb"`
	FinalRSSMB   float64 `json:"final_rss_mb"`
	PeakHeapMB   float64 `json:"peak_heap_inuse_mb"`
	SysMB        float64 `json:"go_sys_mb"`
	Lookups      uint64  `json:"lookups"`
	Observations uint64  `json:"observations"`
	Probes       uint64  `json:"probes"`
	RoutingNodes int     `json:"routing_nodes"`
}

// memWatched is the i-th watched info-hash of a memory run: the parent
// preloads some of them on its DHT, the child watches them all.
func memWatched(seed uint64, n int) [][20]byte {
	r := rand.New(rand.NewPCG(seed, 0x3e3))
	out := make([][20]byte, n)
	for i := range out {
		for k := range out[i] {
			out[i][k] = byte(r.Uint32())
		}
	}
	return out
}

// rssBytes reads the process's resident set from /proc/self/statm.
func rssBytes() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	var size, res uint64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0, fmt.Errorf("/proc/self/statm %q: %w", b, err)
	}
	return res * uint64(os.Getpagesize()), nil
}

// TestMain runs the test binary as the child process of
// BenchmarkSensorMemory when VIGIL_MEM_CHILD=1, and as the tests
// otherwise: the child is no test, and is never listed or counted as one.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_MEM_CHILD") == "1" {
		if err := memoryChild(); err != nil {
			fmt.Fprintln(os.Stderr, "memory child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// memoryChild is the child process of BenchmarkSensorMemory. Alone in its
// process, the sensor watches VIGIL_MEM_WATCH info-hashes for
// VIGIL_MEM_SECONDS against the DHT at VIGIL_MEM_BOOT, then prints its
// resident memory.
func memoryChild() error {
	n := envInt("VIGIL_MEM_WATCH", 0)
	if os.Getenv("VIGIL_MEM_WATCH") == "0" {
		n = 0
	}
	secs := envInt("VIGIL_MEM_SECONDS", 30)
	var boot []netip.AddrPort
	for _, s := range strings.Split(os.Getenv("VIGIL_MEM_BOOT"), ",") {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return fmt.Errorf("VIGIL_MEM_BOOT %q: %w", s, err)
		}
		boot = append(boot, ap)
	}
	cfg := LabConfig()
	cfg.Bootstrap = boot
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		return err
	}
	var obs atomic.Uint64
	s, err := New(cfg, g, pubFunc(func(observe.Observation) { obs.Add(1) }), nil)
	if err != nil {
		return err
	}
	for _, h := range memWatched(uint64(envInt("VIGIL_MEM_SEED", 1)), n) {
		if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.BTIH, h[:]), Matched: []observe.Match{{List: "bench", Category: "1"}}}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(ctx) }()
	var res memResult
	res.Watched = n
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sample := func() error {
		rss, err := rssBytes()
		if err != nil {
			return err
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.PeakRSSMB = max(res.PeakRSSMB, float64(rss)/(1<<20))
		res.FinalRSSMB = float64(rss) / (1 << 20)
		res.PeakHeapMB = max(res.PeakHeapMB, float64(ms.HeapInuse)/(1<<20))
		res.SysMB = float64(ms.Sys) / (1 << 20)
		return nil
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if err := sample(); err != nil {
				return err
			}
		}
	}
	st := s.Stats() // before Run returns and the routing tables are dropped
	if err := <-done; err != nil {
		return err
	}
	res.Seconds = time.Since(start).Seconds()
	res.Lookups, res.Observations, res.Probes, res.RoutingNodes = st.Lookups, obs.Load(), st.Probes, st.RoutingNodes
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Printf("MEMRESULT %s\n", b)
	return nil
}

// pubFunc adapts a function to bus.Publisher.
type pubFunc func(observe.Observation)

func (f pubFunc) Publish(_ context.Context, o observe.Observation) error { f(o); return nil }

// BenchmarkSensorMemory measures the resident memory of a sensor watching
// 100,000 info-hashes (VIGIL_MEM_WATCH) with lookups going, beside the
// same sensor watching none, each alone in a child process, against one
// simulated DHT of 1,000 nodes (in this process) on which 1,000 of the
// watched info-hashes have a peer (on a closed port: probes fail fast).
// Run with -benchtime 1x.
func BenchmarkSensorMemory(b *testing.B) {
	if testing.Short() {
		b.Skip("memory benchmark skipped in -short mode")
	}
	n, secs, seed := envInt("VIGIL_MEM_WATCH", 100_000), envInt("VIGIL_MEM_SECONDS", 30), envInt("VIGIL_MEM_SEED", 1)
	ctx := context.Background()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.FirstAddr = 1000, netip.MustParseAddr("127.68.0.1")
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		b.Fatal(err)
	}
	defer nw.Close()
	hs := memWatched(uint64(seed), min(n, 1000))
	ids := make([]simdht.ID, len(hs))
	copy(ids, hs)
	nw.Preload(ids, func(i int) []netip.AddrPort {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 12, byte(i >> 8), byte(1 + i%254)}), 9)}
	}, 8)
	boot := nw.Nodes()[0].Addr.String() + "," + nw.Nodes()[500].Addr.String()
	child := func(watch int) memResult {
		// The child's deadline: its window and ample time to start and stop.
		cctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, os.Args[0]) // TestMain runs the child, under VIGIL_MEM_CHILD=1
		cmd.Env = append(os.Environ(), "VIGIL_MEM_CHILD=1", fmt.Sprintf("VIGIL_MEM_WATCH=%d", watch),
			fmt.Sprintf("VIGIL_MEM_SECONDS=%d", secs), fmt.Sprintf("VIGIL_MEM_SEED=%d", seed), "VIGIL_MEM_BOOT="+boot)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("memory child (watch %d): %v\n%s", watch, err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "MEMRESULT "); ok {
				var r memResult
				if err := json.Unmarshal([]byte(rest), &r); err != nil {
					b.Fatal(err)
				}
				return r
			}
		}
		b.Fatalf("memory child (watch %d) printed no result:\n%s", watch, out)
		return memResult{}
	}
	for range b.N {
		base := child(0)
		w := child(n)
		b.Logf("watching 0: %+v", base)
		b.Logf("watching %d: %+v", n, w)
		b.ReportMetric(w.PeakRSSMB, "peak-rss-MB")
		b.ReportMetric(base.PeakRSSMB, "base-peak-rss-MB")
		b.ReportMetric(w.PeakHeapMB, "peak-heap-MB")
		b.ReportMetric(base.PeakHeapMB, "base-peak-heap-MB")
		b.ReportMetric(float64(w.Lookups), "lookups")
	}
}
