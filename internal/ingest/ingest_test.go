package ingest

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

func TestIngestDrainsEverythingAcceptedOnShutdown(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := inproc.New(16)
	cfg := DefaultConfig()
	cfg.BatchSize = 7
	cfg.FlushEvery = time.Hour // only size and shutdown flush
	enriched := 0
	cfg.Enrich = func(o *observe.Observation) { enriched++ }
	type result struct {
		stats Stats
		err   error
	}
	done := make(chan result, 1)
	go func() {
		s, err := Run(ctx, b, st, cfg)
		done <- result{s, err}
	}()
	const n = 50
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if err := b.Publish(ctx, storetest.Observation(rng, base.Add(time.Duration(i)*time.Second), i)); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	if err := b.Publish(ctx, storetest.Observation(rng, base, n)); err == nil {
		t.Fatal("publish after close succeeded")
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stats.Committed != n || enriched != n {
		t.Fatalf("committed %d, enriched %d, want %d", r.stats.Committed, enriched, n)
	}
	if want := (n + cfg.BatchSize - 1) / cfg.BatchSize; r.stats.Batches != want {
		t.Fatalf("batches %d, want %d", r.stats.Batches, want)
	}
	got := 0
	if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { got++; return nil }); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("store holds %d observations, want %d", got, n)
	}
}

func TestIngestFlushesPartialBatchOnTimer(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	b := inproc.New(4)
	cfg := Config{BatchSize: 1000, FlushEvery: 20 * time.Millisecond}
	committed := make(chan int, 4)
	cfg.OnCommit = func(batch []observe.Observation) { committed <- len(batch) }
	go func() { _, _ = Run(ctx, b, st, cfg) }()
	defer b.Close()
	if err := b.Publish(ctx, storetest.Observation(rand.New(rand.NewPCG(1, 1)), time.Now(), 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-committed:
		if n != 1 {
			t.Fatalf("committed %d, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a lone observation was not committed by the flush timer")
	}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
