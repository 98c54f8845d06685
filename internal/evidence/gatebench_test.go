package evidence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// BenchmarkGateExpireLongRun is one pass of Gate.Expire over n forged
// observations a hostile publisher put on the bus at consecutive seqs of
// one chain, without a head: past MaxHold each waits for HeadWait, and
// every pass of ingest's loop (one a fetch) goes over them all.
func BenchmarkGateExpireLongRun(b *testing.B) {
	for _, n := range []int{1 << 12, 1 << 14, 1 << 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			cfg := evidence.DefaultGateConfig()
			cfg.Stored = func(string, uint64) ([]byte, []byte, bool) { return nil, nil, false }
			g := evidence.NewGate(cfg)
			now := time.Now()
			o := signed(b, sample(1))[0]
			o.Chain.BatchSig = nil
			for i := range n {
				f := o
				f.ID = observe.NewID(now.Add(time.Duration(i)))
				f.Chain.Seq = uint64(i + 1)
				f.Sensor.ID = fmt.Sprint(i)
				g.Add(f, i, now)
			}
			if g.Held() != n {
				b.Fatalf("held %d of %d", g.Held(), n)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if rs := g.Expire(now.Add(cfg.MaxHold+time.Duration(i+1)*cfg.AskEvery), false); len(rs) != 0 {
					b.Fatalf("released %d", len(rs))
				}
			}
		})
	}
}

// BenchmarkGateAdd is the gate's CPU per observation as 'vigil ingest'
// adds signed observations in order (a sensor's batches of 4 here, two
// peer probes with transcripts in every three): the sensor hash, in
// evidence form 2 the transcript's SHA-256 compared with its
// transcript_sha256, the signature at each head.
func BenchmarkGateAdd(b *testing.B) {
	obs := signed(b, sample(256))
	now := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := evidence.NewGate(evidence.DefaultGateConfig())
		for j, o := range obs {
			g.Add(o, j, now)
		}
		if g.Held() != 0 {
			b.Fatalf("held %d", g.Held())
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(obs)), "ns/obs")
}

// BenchmarkGateAddSensorBatches is BenchmarkGateAdd with a sensor's own
// batches of 256 (DefaultSignerConfig), as 'vigil ingest' gets them: the
// signature is checked once a batch, what is left is the gate's own work
// an observation.
func BenchmarkGateAddSensorBatches(b *testing.B) {
	c := &collect{}
	s := evidence.NewBatchSigner(c, sensorKey, evidence.SignerConfig{BatchSize: 256, Interval: time.Hour})
	for _, o := range sample(1024) {
		if err := s.Publish(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	obs := c.obs
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := evidence.NewGate(evidence.DefaultGateConfig())
		var rel []evidence.Released
		for j, o := range obs {
			rel = g.AddTo(rel, o, j, now)
		}
		if g.Held() != 0 || len(rel) != len(obs) {
			b.Fatalf("held %d, released %d", g.Held(), len(rel))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(obs)), "ns/obs")
}
