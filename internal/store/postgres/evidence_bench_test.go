package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
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

// BenchmarkEvidenceLog is the SQLite store's benchmark of the same name
// on PostgreSQL: the same -bench-observations observations (batches of
// 1,000, as ingest commits them) stored with no log, with the log, with
// the log and sensor-signed observations, and that with ingest's check
// of the signatures after each commit, the variants alternating, three
// rounds. CPU is the client's (this process) and the server's backends
// (read from /proc; the server on this machine), reported apart and
// summed.
func BenchmarkEvidenceLog(b *testing.B) {
	requirePostgres(b)
	ctx := context.Background()
	src := newBenchSource()
	n := *benchObs
	plain := make([]observe.Observation, n)
	src.fill(plain)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	c := &collector{}
	signer := evidence.NewBatchSigner(c, key, evidence.DefaultSignerConfig())
	for i := range plain {
		if err := signer.Publish(ctx, plain[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := signer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	variants := []struct {
		name  string
		noLog bool
		obs   []observe.Observation
		check bool
	}{
		{"no-log", true, plain, false},
		{"log", false, plain, false},
		{"log+signed", false, c.obs, false},
		{"log+signed+checked", false, c.obs, true},
	}
	const rounds = 3
	cpu := make([]time.Duration, len(variants))
	server := make([]time.Duration, len(variants))
	wall := make([]time.Duration, len(variants))
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for v, vr := range variants {
				cfg := DefaultConfig()
				cfg.NoEvidenceLog = vr.noLog
				cfg.Schema = newSchema(b)
				app := "vigil_bench_" + cfg.Schema
				st, err := Open(ctx, withApplicationName(testDSN(), app), cfg)
				if err != nil {
					b.Fatal(err)
				}
				server0 := serverCPU(ctx, st, app)
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
				server[v] += serverCPU(ctx, st, app) - server0
				st.Close()
			}
		}
	}
	total := float64(b.N * rounds * n)
	for v, vr := range variants {
		b.ReportMetric(total/wall[v].Seconds(), vr.name+"-obs/s")
		b.ReportMetric(total/cpu[v].Seconds(), vr.name+"-obs/client-cpu-s")
		if server[v] > 0 {
			b.ReportMetric(total/(cpu[v]+server[v]).Seconds(), vr.name+"-obs/cpu-s")
		}
	}
}
