package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// ackFailing hands out one batch whose Ack fails, then reports closed.
type ackFailing struct{ obs []observe.Observation }

type ackFailingBatch struct{ obs []observe.Observation }

func (b ackFailingBatch) Observations() []observe.Observation { return b.obs }
func (ackFailingBatch) Ack(context.Context) error             { return errors.New("nats: timeout") }
func (ackFailingBatch) Nak()                                  {}

func (c *ackFailing) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if c.obs == nil {
		return nil, bus.ErrClosed
	}
	b := ackFailingBatch{c.obs}
	c.obs = nil
	return b, nil
}
func (c *ackFailing) Len() int { return len(c.obs) }
func (c *ackFailing) Close()   {}

// A committed batch whose acknowledgement the bus refuses stays stored,
// ingest goes on, and the failure is counted (found in review: it was
// dropped with `_ =`).
func TestAckFailureIsCountedNotFatal(t *testing.T) {
	st := openStore(t)
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(r, at, 0), storetest.Observation(r, at, 1), storetest.Observation(r, at, 2)}
	cfg := DefaultConfig()
	cfg.Metrics = NewMetrics()
	stats, err := Run(context.Background(), &ackFailing{obs: obs}, st, cfg)
	if err != nil || stats.Committed != 3 {
		t.Fatalf("Run: %+v, %v; want 3 committed and no error", stats, err)
	}
	if got := value(t, cfg.Metrics.AckFailures.(prometheus.Metric)); got != 1 {
		t.Fatalf("ack failures counted: %v, want 1", got)
	}
	n := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("stored %d (%v), want 3", n, err)
	}
}

// redelivering hands out the same batch twice, as a bus does when an
// ingest committed it and died before acknowledging it, then closes.
type redelivering struct {
	obs  []observe.Observation
	left int
}

func (c *redelivering) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if c.left == 0 {
		return nil, bus.ErrClosed
	}
	c.left--
	return bus.Delivered(append([]observe.Observation(nil), c.obs...)), nil
}
func (c *redelivering) Len() int { return c.left * len(c.obs) }
func (c *redelivering) Close()   {}

// A batch delivered again is stored once, and ingest counts what the
// store already held (vigil_ingest_duplicates_total, Stats.Duplicates).
func TestRedeliveredBatchIsCountedAsDuplicates(t *testing.T) {
	st := openStore(t)
	r := rand.New(rand.NewPCG(3, 4))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(r, at, 0), storetest.Observation(r, at, 1), storetest.Observation(r, at, 2)}
	cfg := DefaultConfig()
	cfg.Metrics = NewMetrics()
	stats, err := Run(context.Background(), &redelivering{obs: obs, left: 2}, st, cfg)
	if err != nil || stats.Committed != 6 || stats.Duplicates != 3 {
		t.Fatalf("Run: %+v, %v; want 6 committed, 3 of them duplicates", stats, err)
	}
	if got := value(t, cfg.Metrics.Duplicates.(prometheus.Metric)); got != 3 {
		t.Fatalf("vigil_ingest_duplicates_total = %v, want 3", got)
	}
	n := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("stored %d (%v), want 3", n, err)
	}
}
