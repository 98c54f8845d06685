package evidence_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/wire"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// benchBodies are the bodies of 1,024 observations as 'vigil ingest's
// benchmark publishes them (storetest's, one sensor): signed by a
// sensor's BatchSigner (batches of 256, one body each), and the same
// unsigned, in bodies of 256.
func benchBodies(b *testing.B) (signedBodies, plainBodies [][]byte) {
	r := rand.New(rand.NewPCG(13, 13))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	obs := make([]observe.Observation, 1024)
	for i := range obs {
		o := storetest.Observation(r, at, i)
		o.Place, o.Jurisdiction, o.Chain = observe.Place{}, observe.Jurisdiction{}, observe.Chain{}
		o.Sensor.ID = "bench"
		obs[i] = o
	}
	c := &collect{}
	s := evidence.NewBatchSigner(c, sensorKey, evidence.SignerConfig{BatchSize: 256, Interval: time.Hour})
	for _, o := range obs {
		if err := s.Publish(context.Background(), o); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	body := func(obs []observe.Observation) [][]byte {
		ms, failed, _ := wire.Split(obs, 1<<20, nil)
		if len(failed) > 0 {
			b.Fatal("did not encode")
		}
		var out [][]byte
		for i := 0; i < len(obs); i += 256 {
			m, _, _ := wire.Split(obs[i:i+256], 1<<20, nil)
			out = append(out, m[0].Body)
		}
		_ = ms
		return out
	}
	return body(c.obs), body(obs)
}

// BenchmarkSignedPath is what 'vigil ingest' does in its own process an
// observation before the store, signed and not: decoding a bus message's
// body, and for signed ones the gate.
func BenchmarkSignedPath(b *testing.B) {
	signedBodies, plainBodies := benchBodies(b)
	for _, v := range []struct {
		name   string
		bodies [][]byte
		gate   bool
		ref    bool // AddRef and Detach, as ingest adds a fetched batch
	}{{"plain/decode", plainBodies, false, false}, {"signed/decode", signedBodies, false, false},
		{"signed/decode+gate", signedBodies, true, false}, {"signed/decode+gate-in-place", signedBodies, true, true}} {
		b.Run(v.name, func(b *testing.B) {
			n, bytes := 0, 0
			for _, body := range v.bodies {
				bytes += len(body)
			}
			b.ReportAllocs()
			b.SetBytes(int64(bytes))
			now := time.Now()
			cpu0 := cpuTime()
			for range b.N {
				g := evidence.NewGate(evidence.DefaultGateConfig())
				var rel []evidence.Released
				for _, body := range v.bodies {
					obs, bad, _ := wire.Decode(body)
					if len(bad) > 0 {
						b.Fatal(bad)
					}
					n += len(obs)
					if v.gate {
						rel = rel[:0]
						for j := range obs {
							if v.ref {
								rel = g.AddRef(rel, &obs[j], j, now)
							} else {
								rel = g.AddTo(rel, obs[j], j, now)
							}
						}
						g.Detach()
						if len(rel) != len(obs) {
							b.Fatalf("released %d of %d", len(rel), len(obs))
						}
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/obs")
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/obs")
			b.ReportMetric(float64(bytes)/float64(n/b.N), "B/line")
		})
	}
}

// BenchmarkSignedGate is the gate alone (BenchmarkSignedPath's bodies
// decoded once, outside the clock): copy is AddTo, in-place AddRef and
// Detach (as ingest adds a fetched batch).
func BenchmarkSignedGate(b *testing.B) {
	b.Run("copy", func(b *testing.B) { benchSignedGate(b, false) })
	b.Run("in-place", func(b *testing.B) { benchSignedGate(b, true) })
}

func benchSignedGate(b *testing.B, ref bool) {
	signedBodies, _ := benchBodies(b)
	var batches [][]observe.Observation
	for _, body := range signedBodies {
		obs, _, _ := wire.Decode(body)
		batches = append(batches, obs)
	}
	b.ReportAllocs()
	now := time.Now()
	cpu0 := cpuTime()
	n := 0
	for range b.N {
		g := evidence.NewGate(evidence.DefaultGateConfig())
		var rel []evidence.Released
		for _, obs := range batches {
			rel = rel[:0]
			for j := range obs {
				if ref {
					rel = g.AddRef(rel, &obs[j], j, now)
				} else {
					rel = g.AddTo(rel, obs[j], j, now)
				}
			}
			g.Detach()
			if len(rel) != len(obs) {
				b.Fatalf("released %d of %d", len(rel), len(obs))
			}
			n += len(obs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/obs")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(n), "cpu-ns/obs")
}
