package ed2k

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/probe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// BenchmarkKadLabRecall is the speed target: a lab Kad of 5,000
// nodes, 100 watched files shared by 300 clients (two files each: 600
// (client, file) pairs). It starts the sensor with Kad only (no server),
// one search round, and reports the share of pairs probed within 120 s,
// the seconds until 99% were, and the process's peak heap (the lab's
// 5,000 nodes and 300 clients included; the heap before the sensor
// started is reported beside it).
//
//	go test ./internal/sensor/ed2k -run '^$' -bench KadLabRecall -benchtime 1x
func BenchmarkKadLabRecall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		kadLabRecall(b, 5000, 100, 300)
	}
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func kadLabRecall(b *testing.B, nodes, files, clients int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 99, KadNodes: nodes, Files: files, Clients: clients, SharesPerClient: 2,
		FileSizes: []int64{300_000, 1_000_000}, Base: netip.MustParseAddr("127.100.0.0")})
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	runtime.GC()
	labHeap := heapInUse()
	b.Logf("lab of %d Kad nodes, %d files, %d clients up in %v (heap %d MB)", nodes, files, clients, time.Since(t0).Round(time.Millisecond), labHeap>>20)

	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.100.255.1")
	cfg.SearchEvery = time.Hour // one round
	cfg.KadBootstrap = lab.Bootstrap(3)
	cfg.TranscriptLimit = 16 << 10
	truth := map[pair]bool{}
	for _, tr := range lab.Truth() {
		truth[pair{tr.Addrs[0], tr.File}] = true
	}
	var mu sync.Mutex
	found := map[pair]bool{}
	var at99 atomic.Int64
	start := time.Now()
	pub := publisherFunc(func(o observe.Observation) {
		if o.Method != observe.MethodPeerProbe {
			return
		}
		p := pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), [16]byte(o.Item.Hash.Bytes())}
		mu.Lock()
		found[p] = true
		if len(found)*100 >= 99*len(truth) && at99.Load() == 0 {
			at99.Store(int64(time.Since(start)))
		}
		mu.Unlock()
	})
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range lab.Files {
		s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, f.Hash[:]), Size: f.Size})
	}
	var peak atomic.Uint64
	stopSample := make(chan struct{})
	go func() {
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSample:
				return
			case <-t.C:
				if h := heapInUse(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	rctx, stop := context.WithTimeout(ctx, 120*time.Second)
	b.ResetTimer()
	done := make(chan struct{})
	go func() { s.Run(rctx); close(done) }()
	for rctx.Err() == nil {
		mu.Lock()
		n := len(found)
		mu.Unlock()
		if n == len(truth) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	<-done
	close(stopSample)
	b.StopTimer()
	mu.Lock()
	recall := float64(len(found)) / float64(len(truth))
	mu.Unlock()
	st := s.Stats()
	b.ReportMetric(100*recall, "%pairs_in_120s")
	b.ReportMetric(time.Duration(at99.Load()).Seconds(), "s_to_99%")
	b.ReportMetric(float64(peak.Load()>>20), "MB_peak_heap")
	b.ReportMetric(float64(labHeap>>20), "MB_lab_heap")
	b.ReportMetric(float64(st.Kad.Sent)/float64(max(st.KadSearches, 1)), "datagrams/search")
	b.Logf("%d/%d pairs probed in %v; %d Kad searches, %d datagrams sent, %d probes; dropped %v",
		len(found), len(truth), elapsed.Round(time.Millisecond), st.KadSearches, st.Kad.Sent, st.Probes, st.Dropped)
}

type publisherFunc func(observe.Observation)

func (f publisherFunc) Publish(_ context.Context, o observe.Observation) error { f(o); return nil }

// BenchmarkProbeRate measures client probes a second (hello, file
// request, file status) against 50 lab clients on loopback, 64 at once.
//
//	go test ./internal/sensor/ed2k -run '^$' -bench ProbeRate -benchtime 5000x
func BenchmarkProbeRate(b *testing.B) {
	f := labed2k.NewFile(3, wire.PartSize+1000)
	var clients []*labed2k.Client
	for i := 0; i < 50; i++ {
		c, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: probe.NewUserHash(), Software: labed2k.AMule233,
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 101, 0, byte(i + 1)}), 0), Shares: []labed2k.Share{{File: f}}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	g, _ := scope.New(scope.DefaultConfig(), nil)
	cfg := probe.DefaultConfig()
	cfg.Dial = g.Dialer(nil).DialContext
	cfg.UserHash = probe.NewUserHash()
	cfg.TranscriptLimit = 16 << 10
	var next, fails atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				c := clients[i%int64(len(clients))]
				res, _, err := probe.Probe(context.Background(), cfg, probe.Target{Addr: c.Addr(), Hash: f.Hash, Size: f.Size})
				if err != nil || res == nil || !res.Acknowledged() {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "probes/s")
	if fails.Load() > 0 {
		b.Fatalf("%d of %d probes failed", fails.Load(), b.N)
	}
}
