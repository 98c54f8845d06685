package bittorrent

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

// fastPeers is a set of loopback BitTorrent peers that answer any
// handshake at once as a Transmission seeder: handshake, extension
// handshake (no ut_metadata, so the probe has nothing to fetch), have-all.
// With hangUp they then close the connection, as a peer that has nothing
// more to say; without, they keep it open until the prober hangs up, as
// real clients do.
type fastPeers struct {
	addrs    []netip.AddrPort
	lns      []net.Listener
	wg       sync.WaitGroup
	accepted atomic.Uint64
}

func startFastPeers(tb testing.TB, n int, hangUp bool) *fastPeers {
	tb.Helper()
	fp := &fastPeers{}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 11, byte(1 + i/254), byte(1 + i%254)})
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			fp.close()
			tb.Fatal(err)
		}
		fp.lns = append(fp.lns, ln)
		fp.addrs = append(fp.addrs, netip.MustParseAddrPort(ln.Addr().String()))
		fp.wg.Add(1)
		go func() {
			defer fp.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fp.accepted.Add(1)
				fp.wg.Add(1)
				go func() {
					defer fp.wg.Done()
					defer c.Close()
					fastPeerAnswer(c, hangUp)
				}()
			}
		}()
	}
	tb.Cleanup(fp.close)
	return fp
}

func (fp *fastPeers) close() {
	for _, ln := range fp.lns {
		ln.Close()
	}
	fp.wg.Wait()
}

var fastPeerID = func() (id [20]byte) { copy(id[:], "-TR3000-fastpeer0001"); return id }()

// fastPeerAnswer is one peer's side of a probe.
func fastPeerAnswer(c net.Conn, hangUp bool) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	theirs, err := peerwire.ReadHandshake(br)
	if err != nil {
		return
	}
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	hs := peerwire.Handshake{Reserved: rsv, InfoHash: theirs.InfoHash, PeerID: fastPeerID}
	out := hs.AppendTo(make([]byte, 0, 256))
	eh := peerwire.ExtHandshake{M: map[string]uint8{"ut_pex": 1}, Client: "Transmission 3.00", Port: 51413}
	m := peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
	out = m.AppendTo(out)
	all := peerwire.Message{ID: peerwire.HaveAll}
	out = all.AppendTo(out)
	if _, err := c.Write(out); err != nil || hangUp {
		return
	}
	_, _ = io.Copy(io.Discard, br) // until the prober hangs up
}

// countingPub counts the sensor's probe observations and their levels.
type countingPub struct {
	probes, complete atomic.Uint64
}

func (p *countingPub) Publish(_ context.Context, o observe.Observation) error {
	if o.Method == observe.MethodPeerProbe {
		p.probes.Add(1)
		if o.Possession.Level == observe.Complete && o.Client.Name == "Transmission" {
			p.complete.Add(1)
		}
	}
	return nil
}

// naiveProbe is the baseline: dial, handshake, read until the peer says
// what it has, hang up. No extension handshake of ours, no transcript, no
// linger for PORT or PEX.
func naiveProbe(peer netip.AddrPort, ih [20]byte, pid [20]byte) error {
	c, err := net.DialTimeout("tcp", peer.String(), 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var rsv peerwire.Reserved
	rsv.SetExtended(true)
	rsv.SetFast(true)
	hs := peerwire.Handshake{Reserved: rsv, InfoHash: ih, PeerID: pid}
	if _, err := c.Write(hs.AppendTo(nil)); err != nil {
		return err
	}
	dec := peerwire.NewDecoder(bufio.NewReader(c), peerwire.DefaultMaxLength)
	theirs, err := dec.ReadHandshake()
	if err != nil {
		return err
	}
	if theirs.InfoHash != ih {
		return errWrongTorrent
	}
	for {
		var m peerwire.Message
		if err := dec.Decode(&m); err != nil {
			return err
		}
		switch m.ID {
		case peerwire.HaveAll, peerwire.Bitfield, peerwire.HaveNone:
			if !m.Keepalive {
				return nil
			}
		}
	}
}

// probeRun is what runSensorProbes measured.
type probeRun struct {
	elapsed  time.Duration // from the first job queued to the last observation
	firstAt  time.Duration // when the first wave (workers observations) had ended
	complete uint64        // probes that found the peer complete
	failures uint64        // probes the sensor counted failed
}

// steadyRate is the rate after the first wave of workers probes: the
// workers' ramp-up (dials all at once, goroutines and buffers allocated)
// is left out. Zero when the run had fewer than two waves.
func (r probeRun) steadyRate(n, workers int) float64 {
	if n < 2*workers || r.elapsed <= r.firstAt {
		return 0
	}
	return float64(n-workers) / (r.elapsed - r.firstAt).Seconds()
}

// runSensorProbes pushes n probe jobs through a running sensor's probe
// workers and waits until every one has finished.
func runSensorProbes(b *testing.B, peers []netip.AddrPort, n, workers int) probeRun {
	b.Helper()
	cfg := LabConfig()
	cfg.Identities = 1
	cfg.ProbeWorkers = workers
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")} // silent: no DHT here
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := &countingPub{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("sensor: %v", err)
		}
	}()
	<-s.Ready()
	// One watched torrent per job, so that no two jobs are the same
	// (peer, torrent); jobs go straight to the workers' queue.
	jobs := make([]probeJob, n)
	for i := range jobs {
		var h [20]byte
		copy(h[:], fmt.Sprintf("probe-bench-%08d", i))
		jobs[i] = probeJob{peer: peers[i%len(peers)], w: Watched{Hash: hashkind.MustNew(hashkind.BTIH, h[:])}, via: "bench", transport: transportTCP}
	}
	b.ResetTimer()
	start := time.Now()
	go func() {
		for _, j := range jobs {
			select {
			case s.probeQ <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Every fast peer answers, so every job ends in an observation (a
	// probe may also count as failed when the peer's hang-up resets the
	// connection after its answer was read). Give up after 30 s without
	// progress.
	last, lastAt := uint64(0), time.Now()
	var firstAt time.Duration
	// Observations per 250 ms, logged with -test.v: shows whether the
	// probes end in waves (all workers started at once) or evenly.
	const slot = 250 * time.Millisecond
	var slots []uint64
	for pub.probes.Load() < uint64(n) {
		if got := pub.probes.Load(); got != last {
			i := int(time.Since(start) / slot)
			for len(slots) <= i {
				slots = append(slots, last) // cumulative count before this slot
			}
			slots[i] = got
			last, lastAt = got, time.Now()
			if firstAt == 0 && got >= uint64(workers) {
				firstAt = time.Since(start)
				// With VIGIL_PROBE_HEAPPROF=file, a heap profile with all
				// workers busy (the second wave in flight): what the
				// sensor's probes and the fast peers each hold.
				if f := os.Getenv("VIGIL_PROBE_HEAPPROF"); f != "" {
					writeHeapProfile(b, f)
				}
			}
		} else if time.Since(lastAt) > 30*time.Second {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	if testing.Verbose() {
		per := make([]uint64, len(slots))
		for i := range slots {
			per[i] = slots[i]
			if i > 0 {
				per[i] -= slots[i-1]
			}
		}
		b.Logf("%d workers, %d probes: observations per %v: %v", workers, n, slot, per)
	}
	return probeRun{elapsed: el, firstAt: firstAt, complete: pub.complete.Load(), failures: s.Stats().ProbeFailures}
}

func writeHeapProfile(b *testing.B, file string) {
	runtime.GC()
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkProbes measures completed probes a second through the
// sensor's probe workers (LabConfig: no per-address limits) against fast
// loopback peers, beside a naive sequential probe loop in the same run.
// One op is one probe; run with -benchtime Nx. "hangup" peers close once
// they have had their say; "stay" peers keep the connection open, as real
// clients do. The fast peers offer ut_pex and send no PEX (as Transmission,
// whose PEX comes every 90 s), so each of the sensor's probes of a "stay"
// peer waits ProbePEXWait (1 s) for it: that wait, times the workers,
// bounds its rate. probes/s is over the whole run; steady-probes/s (runs
// of at least two waves) leaves out the first wave of workers probes,
// whose dials all start at once. With -test.v the observations per 250 ms
// are logged; VIGIL_PROBE_HEAPPROF=file writes a heap profile when the
// first wave has ended.
func BenchmarkProbes(b *testing.B) {
	for _, hangUp := range []bool{true, false} {
		mode := "hangup"
		if !hangUp {
			mode = "stay"
		}
		fp := startFastPeers(b, 64, hangUp)
		workerSets := []int{DefaultConfig().ProbeWorkers, 256}
		if !hangUp {
			workerSets = append(workerSets, 4096)
		}
		for _, workers := range workerSets {
			b.Run(fmt.Sprintf("peers=%s/vigil-workers=%d", mode, workers), func(b *testing.B) {
				r := runSensorProbes(b, fp.addrs, b.N, workers)
				if r.complete != uint64(b.N) {
					b.Fatalf("%d probes: %d found the peer complete, %d failed", b.N, r.complete, r.failures)
				}
				b.ReportMetric(float64(r.failures), "failed-after-answer")
				b.ReportMetric(float64(b.N)/r.elapsed.Seconds(), "probes/s")
				// After the first wave: only reported with two waves or more.
				if v := r.steadyRate(b.N, workers); v > 0 {
					b.ReportMetric(v, "steady-probes/s")
				}
			})
		}
		b.Run(fmt.Sprintf("peers=%s/naive-sequential", mode), func(b *testing.B) {
			var pid [20]byte
			copy(pid[:], "-VG0001-naivebaselin")
			start := time.Now()
			for i := range b.N {
				var h [20]byte
				copy(h[:], fmt.Sprintf("probe-bench-%08d", i))
				if err := naiveProbe(fp.addrs[i%len(fp.addrs)], h, pid); err != nil && !errors.Is(err, io.EOF) {
					b.Fatalf("naive probe %d: %v", i, err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "probes/s")
		})
	}
}

// TestFastPeersAnswerTheSensorsProbe keeps the probe benchmark honest: a
// fast peer's answer reaches the sensor as a complete Transmission seeder,
// and the naive baseline reads the same answer.
func TestFastPeersAnswerTheSensorsProbe(t *testing.T) {
	fp := startFastPeers(t, 2, true)
	var pid [20]byte
	var h [20]byte
	h[0] = 1
	if err := naiveProbe(fp.addrs[0], h, pid); err != nil {
		t.Fatalf("naive probe: %v", err)
	}
	pub := newCollector()
	w := Watched{Hash: hashkind.MustNew(hashkind.BTIH, h[:])}
	s := startSensor(t, pub, w)
	s.enqueueProbe(fp.addrs[1], w, "test")
	o := pub.waitFor(t, observe.MethodPeerProbe, 1)[0]
	if o.Possession.Level != observe.Complete || o.Client.Name != "Transmission" || o.Endpoint.Port != fp.addrs[1].Port() {
		t.Fatalf("probe of a fast peer: level %v client %q endpoint %v", o.Possession.Level, o.Client.Name, o.Endpoint)
	}
}
