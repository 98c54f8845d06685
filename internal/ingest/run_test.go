package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// failingStore refuses every insert.
type failingStore struct {
	store.Store
	err error
}

func (f failingStore) InsertObservations(context.Context, []observe.Observation) error { return f.err }

// recordingConsumer hands out one batch and records what ingest said of it.
type recordingConsumer struct {
	obs        []observe.Observation
	acked, nak int
}

func (r *recordingConsumer) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if r.obs == nil {
		return nil, bus.ErrClosed
	}
	b := &recordedBatch{r: r, obs: r.obs}
	r.obs = nil
	return b, nil
}
func (r *recordingConsumer) Len() int { return len(r.obs) }
func (r *recordingConsumer) Close()   {}

type recordedBatch struct {
	r   *recordingConsumer
	obs []observe.Observation
}

func (b *recordedBatch) Observations() []observe.Observation { return b.obs }
func (b *recordedBatch) Ack(context.Context) error           { b.r.acked++; return nil }
func (b *recordedBatch) Nak()                                { b.r.nak++ }

// A batch the store refuses is returned as an error, counted, and handed
// back to the bus (never acknowledged): a durable bus delivers it again.
func TestFailedCommitIsReturnedCountedAndHandedBack(t *testing.T) {
	boom := errors.New("disk full")
	c := &recordingConsumer{obs: bustest.Observations(3)}
	cfg := DefaultConfig()
	cfg.Metrics = NewMetrics()
	committed := 0
	cfg.OnCommit = func(b []observe.Observation) { committed += len(b) }
	_, err := Run(context.Background(), c, failingStore{err: boom}, cfg)
	if !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the store's error", err)
	}
	if c.acked != 0 || c.nak != 1 || committed != 0 {
		t.Fatalf("acked %d, handed back %d, OnCommit saw %d: want 0, 1, 0", c.acked, c.nak, committed)
	}
	if got := value(t, cfg.Metrics.Errors); got != 1 {
		t.Fatalf("vigil_ingest_errors_total = %v, want 1", got)
	}
	if got := value(t, cfg.Metrics.Committed); got != 0 {
		t.Fatalf("vigil_ingest_committed_total = %v, want 0", got)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("metric %v is neither a counter, a gauge nor a histogram", c.Desc())
	return 0
}

// What ingest received, committed and how late is counted; the queue
// depth is what waits on the bus.
func TestMetricsCountWhatWasReceivedAndCommitted(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	b := inproc.New(64)
	obs := bustest.Observations(20)
	for i := range obs {
		if err := b.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.BatchSize = 6
	cfg.Metrics = NewMetrics()
	cfg.Metrics.watch(b)
	if got := value(t, cfg.Metrics.QueueDepth); got != 20 {
		t.Fatalf("vigil_ingest_queue_depth = %v before ingest, want 20", got)
	}
	b.Close()
	if _, err := Run(ctx, b, st, cfg); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]prometheus.Metric{"received": cfg.Metrics.Received, "committed": cfg.Metrics.Committed, "lag": cfg.Metrics.Lag} {
		if got := value(t, c); got != 20 {
			t.Errorf("%s = %v, want 20", name, got)
		}
	}
	if got := value(t, cfg.Metrics.QueueDepth); got != 0 {
		t.Errorf("vigil_ingest_queue_depth = %v after the drain, want 0", got)
	}
}
