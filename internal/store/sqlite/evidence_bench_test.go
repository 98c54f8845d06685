package sqlite

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

type collector struct{ obs []observe.Observation }

func (c *collector) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// BenchmarkEvidenceLog measures what the evidence log and signed batches
// cost ingest's commit, in one run: the same -bench-observations
// observations (batches of 1,000, as ingest commits them) stored with no
// log (the store before the log), with the log, and with the log and
// sensor-signed observations (longer records: key, chain, seq, previous
// hash, a signature each 256), and that with ingest's check of the
// signatures after each commit (evidence.ChainChecker). The variants alternate, rounds times, so
// that a neighbour's load falls on all of them alike. The sensor's own
// signing is reported apart (sign ns/obs).
func BenchmarkEvidenceLog(b *testing.B) {
	ctx := context.Background()
	src := newBenchSource()
	n := *benchObs
	plain := make([]observe.Observation, n)
	src.fill(plain)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	c := &collector{}
	signer := evidence.NewBatchSigner(c, key, evidence.DefaultSignerConfig())
	start := time.Now()
	for i := range plain {
		if err := signer.Publish(ctx, plain[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := signer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	signNS := float64(time.Since(start).Nanoseconds()) / float64(n)
	signedObs := c.obs
	variants := []struct {
		name  string
		noLog bool
		obs   []observe.Observation
		check bool // and ingest's ChainChecker after each commit
	}{
		{"no-log", true, plain, false},
		{"log", false, plain, false},
		{"log+signed", false, signedObs, false},
		{"log+signed+checked", false, signedObs, true},
	}
	const rounds = 3
	cpu := make([]time.Duration, len(variants))
	wall := make([]time.Duration, len(variants))
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for v, vr := range variants {
				cfg := DefaultConfig()
				cfg.NoEvidenceLog = vr.noLog
				st, err := Open(ctx, filepath.Join(b.TempDir(), fmt.Sprintf("%s-%d-%d.db", vr.name, i, r)), cfg)
				if err != nil {
					b.Fatal(err)
				}
				batch := make([]observe.Observation, 0, 1000)
				checker := evidence.NewChainChecker()
				for done := 0; done < n; done += 1000 {
					batch = append(batch[:0], vr.obs[done:min(done+1000, n)]...)
					t0, c0 := time.Now(), cpuTime()
					if err := st.InsertObservations(ctx, batch); err != nil {
						b.Fatal(err)
					}
					if vr.check {
						if r := checker.Check(batch); len(r.Failures) > 0 {
							b.Fatal(r.Failures[0])
						}
					}
					wall[v] += time.Since(t0)
					cpu[v] += cpuTime() - c0
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	total := float64(b.N * rounds * n)
	for v, vr := range variants {
		b.ReportMetric(total/wall[v].Seconds(), vr.name+"-obs/s")
		b.ReportMetric(total/cpu[v].Seconds(), vr.name+"-obs/cpu-s")
	}
	b.ReportMetric(signNS, "sign-ns/obs")
}
