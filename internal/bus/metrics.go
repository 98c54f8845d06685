package bus

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/observe"
)

// Metrics counts what sensors handed to the bus.
type Metrics struct {
	// Published counts observations the bus accepted
	// (vigil_bus_published_total).
	Published prometheus.Counter
	// Errors counts publishes that failed: observations that never
	// reached the bus (vigil_bus_publish_errors_total).
	Errors prometheus.Counter
}

// NewMetrics returns unregistered counters; Collectors lists them for a
// registry.
func NewMetrics() *Metrics {
	return &Metrics{
		Published: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_bus_published_total",
			Help: "Observations the bus accepted from sensors."}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_bus_publish_errors_total",
			Help: "Publishes that failed: observations of watched items that never reached the bus."}),
	}
}

// Collectors returns the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Published, m.Errors}
}

// Counted wraps p so that every publish is counted in m: accepted or
// failed, an observation at a time (a batch counts each of its own). It
// is a BatchPublisher, passing batches on whole to a p that takes them.
func Counted(p Publisher, m *Metrics) BatchPublisher { return counted{p, m} }

type counted struct {
	p Publisher
	m *Metrics
}

func (c counted) Publish(ctx context.Context, o observe.Observation) error {
	if err := c.p.Publish(ctx, o); err != nil {
		c.m.Errors.Inc()
		return err
	}
	c.m.Published.Inc()
	return nil
}

// PublishBatch counts each observation of obs, accepted or failed.
func (c counted) PublishBatch(ctx context.Context, obs []observe.Observation) error {
	err := PublishBatch(ctx, c.p, obs)
	failed := len(FailedOf(err, len(obs)))
	c.m.Errors.Add(float64(failed))
	c.m.Published.Add(float64(len(obs) - failed))
	return err
}
