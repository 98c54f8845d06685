package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

var (
	benchBundle    = flag.Int("bench-bundle", 100_000, "observations in the bundle BenchmarkVerify checks")
	benchBundleOut = flag.String("bench-bundle-out", "", "also write the bundle BenchmarkVerify checks to this file (to time 'vigil verify' on it)")
)

// BenchmarkVerify checks a bundle of -bench-bundle observations (signed
// peer probes with transcripts of a handshake and a bitfield, batches of
// 256) with verify.Verify, as 'vigil verify' does. The bundle is made once
// (store, checkpoint, export), outside the timer.
func BenchmarkVerify(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 7))
	obs := make([]observe.Observation, *benchBundle)
	for i := range obs {
		obs[i] = probe(r, i, 3+i%7, 10+i%7)
		obs[i].Time = t0.Add(time.Duration(i) * time.Millisecond)
		obs[i].ID = observe.NewID(obs[i].Time)
	}
	c := &collect{}
	s := evidence.NewBatchSigner(c, sensorKey, evidence.DefaultSignerConfig())
	for _, o := range obs {
		if err := s.Publish(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, c.obs)
	f.checkpoint(b)
	bundle := f.bundle(b, f.ids)
	if *benchBundleOut != "" {
		if err := os.WriteFile(*benchBundleOut, bundle, 0o600); err != nil {
			b.Fatal(err)
		}
		vkey, err := evidence.VerifierKey(f.key.Public().(ed25519.PublicKey))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(*benchBundleOut+".logkey", []byte(vkey+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		c0 := cpuTime()
		rep, err := verify.Verify(bytes.NewReader(bundle), int64(len(bundle)), verify.Options{})
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		if !rep.OK() || rep.Signed != len(obs) {
			b.Fatalf("problems %v", rep.Problems[:min(3, len(rep.Problems))])
		}
	}
	// On a shared machine wall time depends on the neighbours; CPU time
	// (user+system of this process, all cores) shows the cost itself.
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(len(bundle))/(1<<20), "MiB-bundle")
	b.ReportMetric(float64(len(obs)), "observations")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
