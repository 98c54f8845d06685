package bittorrent

// Issue 10, item 11: the first lookup round side by side with the
// library's traversal, (a) on a sparse lab of the library's own nodes and
// (b) on a simulated DHT of a million nodes with loss and churn. Results
// and commands: docs/benchmarks.md, "First lookup round".

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/lab/announcer"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// loadAvg is /proc/loadavg's first three fields, for the record.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) < 14 {
		return "unknown"
	}
	var a, c, d string
	fmt.Sscan(string(b), &a, &c, &d)
	return a + " " + c + " " + d
}

// BenchmarkFirstRoundSparse is (a): for each seed, a sparse DHT of 60
// anacrolix nodes bootstrapped from 3 with 19 pairs announced; the sensor
// (DefaultConfig) and the library's traversal run their first round at
// the same time. Seeds: VIGIL_FIRSTROUND_SEEDS (default 5).
func BenchmarkFirstRoundSparse(b *testing.B) {
	seeds := envInt("VIGIL_FIRSTROUND_SEEDS", 5)
	for range b.N {
		var vt, lt firstRound
		for seed := 1; seed <= seeds; seed++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			sc := startSparseScenario(b, ctx, 60, uint64(seed))
			v, l := sideBySide(b, ctx, sc, DefaultConfig())
			cancel()
			b.Logf("seed %d: vigil %v", seed, v)
			b.Logf("seed %d: library %v", seed, l)
			for _, p := range []struct{ sum, r *firstRound }{{&vt, &v}, {&lt, &l}} {
				p.sum.Found += p.r.Found
				p.sum.Pairs += p.r.Pairs
				p.sum.Lookups += p.r.Lookups
				p.sum.Datagrams += p.r.Datagrams
				p.sum.Other += p.r.Other
				p.sum.Took += p.r.Took
			}
		}
		b.Logf("all %d seeds: vigil %v", seeds, vt)
		b.Logf("all %d seeds: library %v", seeds, lt)
		b.Logf("load average %s, %d CPUs", loadAvg(), runtime.NumCPU())
		b.ReportMetric(vt.recall(), "vigil-recall-%")
		b.ReportMetric(lt.recall(), "lib-recall-%")
		b.ReportMetric(vt.perLookup(), "vigil-pkts/lookup")
		b.ReportMetric(lt.perLookup(), "lib-pkts/lookup")
	}
}

// BenchmarkFirstRoundSparseFamilies is issue 18's speed figure: the sparse
// lab of (a) on IPv4 and on IPv6, of the same size and seeds, the same
// node ids and pairs, each address the IPv6 twin of the IPv4 one
// (lab.IPv6Twin); per seed the IPv4 lab, then the IPv6 one, each with the
// sensor (DefaultConfig, on 127.0.0.1 or its twin) and the library's
// traversal side by side. Seeds: VIGIL_FIRSTROUND_SEEDS (default 5). The
// IPv6 lab needs one address a node, so the benchmark runs only in a
// network namespace with loopback only, as root:
//
//	go test -c -o /tmp/bt.test ./internal/sensor/bittorrent/
//	unshare -n /tmp/bt.test -test.run '^$' -test.bench BenchmarkFirstRoundSparseFamilies -test.benchtime 1x -test.timeout 1800s -test.v
func BenchmarkFirstRoundSparseFamilies(b *testing.B) {
	if err := lab.ULAReady(); err != nil {
		if err := lab.PrepareULA(); err != nil {
			b.Skipf("%v (see the benchmark's comment for the command)", err)
		}
	}
	seeds := envInt("VIGIL_FIRSTROUND_SEEDS", 5)
	for range b.N {
		var sums [2][2]firstRound // [IPv4, IPv6][vigil, library]
		for seed := 1; seed <= seeds; seed++ {
			for f, v6 := range []bool{false, true} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				sc := startSparseScenarioOn(b, ctx, 60, uint64(seed), v6)
				v, l := sideBySide(b, ctx, sc, DefaultConfig())
				cancel()
				name := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
				b.Logf("seed %d %s: vigil %v", seed, name, v)
				b.Logf("seed %d %s: library %v", seed, name, l)
				for k, r := range []firstRound{v, l} {
					p := &sums[f][k]
					p.Found += r.Found
					p.Pairs += r.Pairs
					p.Lookups += r.Lookups
					p.Datagrams += r.Datagrams
					p.Other += r.Other
					p.Took += r.Took
				}
			}
		}
		b.Logf("all %d seeds IPv4: vigil %v", seeds, sums[0][0])
		b.Logf("all %d seeds IPv4: library %v", seeds, sums[0][1])
		b.Logf("all %d seeds IPv6: vigil %v", seeds, sums[1][0])
		b.Logf("all %d seeds IPv6: library %v", seeds, sums[1][1])
		b.Logf("load average %s, %d CPUs", loadAvg(), runtime.NumCPU())
		b.ReportMetric(sums[0][0].recall(), "v4-vigil-recall-%")
		b.ReportMetric(sums[1][0].recall(), "v6-vigil-recall-%")
		b.ReportMetric(sums[0][0].perLookup(), "v4-vigil-pkts/lookup")
		b.ReportMetric(sums[1][0].perLookup(), "v6-vigil-pkts/lookup")
		b.ReportMetric(sums[0][1].recall(), "v4-lib-recall-%")
		b.ReportMetric(sums[1][1].recall(), "v6-lib-recall-%")
		b.ReportMetric(sums[0][1].perLookup(), "v4-lib-pkts/lookup")
		b.ReportMetric(sums[1][1].perLookup(), "v6-lib-pkts/lookup")
	}
}

// BenchmarkFirstRoundMillion is (b): a simulated DHT of
// VIGIL_MILLION_NODES (default 1,000,000) nodes, 100 watched torrents and
// 300 (peer, torrent) pairs announced by simulated clients, then the
// sensor (DefaultConfig) and the library's traversal run their first
// round at the same time, with 10% of queries and 10% of replies lost
// (VIGIL_MILLION_LOSS) and 10% of nodes leaving and 10% joining
// (VIGIL_MILLION_CHURN) over VIGIL_MILLION_CHURN_OVER seconds (600). It
// runs only with VIGIL_MILLION=1, in a namespace with loopback only:
//
//	go test -c -o /tmp/bt.test ./internal/sensor/bittorrent/
//	VIGIL_MILLION=1 unshare -n sh -c 'ip link set lo up && /tmp/bt.test -test.run ^$ -test.bench BenchmarkFirstRoundMillion -test.benchtime 1x -test.timeout 3600s'
func BenchmarkFirstRoundMillion(b *testing.B) {
	if os.Getenv("VIGIL_MILLION") != "1" {
		b.Skip("set VIGIL_MILLION=1 (and run under unshare -n) for the million-node first round")
	}
	if err := simdht.LoopbackOnly(); err != nil {
		testenv.Missing(b, "LOOPBACKNS", err.Error())
	}
	nodes := envInt("VIGIL_MILLION_NODES", 1_000_000)
	loss, churn := 0.1, 0.1
	if os.Getenv("VIGIL_MILLION_LOSS") != "" {
		loss = envFloat("VIGIL_MILLION_LOSS")
	}
	if os.Getenv("VIGIL_MILLION_CHURN") != "" {
		churn = envFloat("VIGIL_MILLION_CHURN")
	}
	over := time.Duration(envInt("VIGIL_MILLION_CHURN_OVER", 600)) * time.Second
	seed := uint64(envInt("VIGIL_MILLION_SEED", 1))
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
		t0 := time.Now()
		m, err := simdht.StartMassive(ctx, simdht.MassiveConfig{Nodes: nodes, Port: 16881, Seed: seed, Workers: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("simulated DHT: %d nodes up in %v", m.Len(), time.Since(t0).Round(time.Millisecond))
		var boot []netip.AddrPort
		for i := range 8 {
			boot = append(boot, m.Node(i*(m.Len()/8)+m.Len()/16).Addr)
		}
		if err := m.SetLoss(loss, loss); err != nil {
			b.Fatal(err)
		}
		// The clients announce under the same loss, before the round.
		watched, _, npeers, pairs := planScale(scaleScenario{Watched: 100, Pairs: 300, Spread: 1, Seed: seed})
		acfg := announcer.DefaultConfig()
		acfg.Bootstrap = boot
		clients := make([]*announcer.Client, npeers)
		for i := range clients {
			c, err := announcer.Listen(netip.AddrPortFrom(scalePeerAddr(i), 6881), acfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			clients[i] = c
		}
		truth := map[pairKey]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var failed atomic.Int64
		sem := make(chan struct{}, 16)
		t1 := time.Now()
		for _, p := range pairs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				res, err := clients[p.peer].Announce(ctx, p.key, 6881)
				if err != nil || res.AnnouncedTo == 0 {
					failed.Add(1)
					return
				}
				mu.Lock()
				truth[pairKey{scalePeerAddr(p.peer), p.key}] = true
				mu.Unlock()
			}()
		}
		wg.Wait()
		b.Logf("%d of %d pairs announced by %d clients in %v (%d failed: out of the denominator)", len(truth), len(pairs), npeers,
			time.Since(t1).Round(time.Millisecond), failed.Load())
		if churn > 0 {
			if err := m.StartChurn(simdht.Churn{Leave: churn, Join: churn, Over: over, Seed: seed}); err != nil {
				b.Fatal(err)
			}
		}
		sc := sparseScenario{boot: boot, watched: watched, truth: truth}
		v, l := sideBySide(b, ctx, sc, DefaultConfig())
		st := m.Stats()
		b.Logf("vigil (DefaultConfig): %v", v)
		b.Logf("library traversal: %v", l)
		b.Logf("simulated nodes: %d queries, %d answered, %d dropped (loss), %d to silent nodes (churn), %d announces; loss %.2f+%.2f, churn %.2f+%.2f over %v; load average %s, %d CPUs",
			st.Queries, st.Answered, st.Dropped, st.SilentHits, st.Announces, loss, loss, churn, churn, over, loadAvg(), runtime.NumCPU())
		b.ReportMetric(v.recall(), "vigil-recall-%")
		b.ReportMetric(l.recall(), "lib-recall-%")
		b.ReportMetric(v.perLookup(), "vigil-pkts/lookup")
		b.ReportMetric(l.perLookup(), "lib-pkts/lookup")
		m.Close()
		cancel()
	}
}
