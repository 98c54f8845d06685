package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
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

// BenchmarkBundleExport writes the bundle of 100 observations spread
// over a log of -bench-observations (batches of 1,000): the evidence_tiles
// of level tileLevel (each proof hashes the 16 observations of its node
// again) against level 0 (a node a leaf: the leaves read as evidence_blocks
// kept them), alternating.
func BenchmarkBundleExport(b *testing.B) {
	requirePostgres(b)
	ctx := context.Background()
	n := *benchObs
	src := newBenchSource()
	obs := make([]observe.Observation, n)
	src.fill(obs)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	var ids []string
	for i := 0; i < n; i += max(1, n/100) {
		ids = append(ids, obs[i].ID)
	}
	levels := []uint{tileLevel, 0}
	stores := make([]*Store, len(levels))
	for v, level := range levels {
		openTileLevel = level
		stores[v] = openTest(b, DefaultConfig())
		for done := 0; done < n; done += 1000 {
			if err := stores[v].InsertObservations(ctx, obs[done:min(done+1000, n)]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := evidence.MakeCheckpoint(ctx, stores[v], key, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	openTileLevel = tileLevel
	cpu, wall := make([]time.Duration, len(levels)), make([]time.Duration, len(levels))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for v := range levels {
			t0, c0 := time.Now(), cpuTime()
			var buf bytes.Buffer
			if err := evidence.WriteBundle(ctx, &buf, stores[v], key, evidence.Export{Target: "t", IDs: ids, Now: time.Now()}); err != nil {
				b.Fatal(err)
			}
			cpu[v] += cpuTime() - c0
			wall[v] += time.Since(t0)
		}
	}
	for v, level := range levels {
		b.ReportMetric(cpu[v].Seconds()*1000/float64(b.N), fmt.Sprintf("level%d-client-cpu-ms/bundle", level))
		b.ReportMetric(wall[v].Seconds()*1000/float64(b.N), fmt.Sprintf("level%d-wall-ms/bundle", level))
	}
}
