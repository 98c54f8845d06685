package ingest

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Metrics counts what ingest did, one series per question an operator
// asks of the stage: what came in, what was stored, how late, how much
// waits, what failed.
type Metrics struct {
	// Received counts observations the bus handed to ingest
	// (vigil_ingest_received_total).
	Received prometheus.Counter
	// Committed counts observations committed to the store
	// (vigil_ingest_committed_total).
	Committed prometheus.Counter
	// Errors counts reads of the bus and commits that failed
	// (vigil_ingest_errors_total).
	Errors prometheus.Counter
	// Duplicates counts committed observations the store already held
	// (vigil_ingest_duplicates_total): a batch delivered again after a
	// crash or a lost acknowledgement, skipped by id.
	Duplicates prometheus.Counter
	// Refused counts observations the store said it can never hold
	// (store.RefusedError), left out of their batches
	// (vigil_ingest_refused_total).
	Refused prometheus.Counter
	// TimeImplausible counts observations whose time cannot be true,
	// stored marked time_implausible (vigil_ingest_time_implausible_total).
	TimeImplausible prometheus.Counter
	// IngestMarksRemoved counts observations that arrived with an
	// ingest's mark (observe.IngestMarks), which no sensor sets: removed
	// and judged again (vigil_ingest_marks_removed_total).
	IngestMarksRemoved prometheus.Counter
	// AckFailures counts committed batches whose acknowledgement the bus
	// refused (vigil_ingest_ack_failures_total): stored, and redelivered
	// later, where the ids skip them.
	AckFailures prometheus.Counter
	// Lag is, for each committed observation, the time from when it was
	// seen to its commit (vigil_ingest_lag_seconds).
	Lag prometheus.Histogram
	// QueueDepth is the observations waiting on the bus for ingest
	// (vigil_ingest_queue_depth).
	QueueDepth prometheus.GaugeFunc

	consumer atomic.Pointer[bus.Consumer]
}

// NewMetrics returns unregistered metrics; Collectors lists them for a
// registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_received_total",
			Help: "Observations the bus handed to ingest."}),
		Committed: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_committed_total",
			Help: "Observations ingest committed to the store."}),
		Errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_errors_total",
			Help: "Reads of the bus and commits to the store that failed (ingest stops; a durable bus keeps the batch)."}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_duplicates_total",
			Help: "Observations delivered again that the store already held (skipped by id, never stored twice)."}),
		Refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_refused_total",
			Help: "Observations the store can never hold (a NUL byte in a text field, for PostgreSQL), left out of their batches."}),
		TimeImplausible: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_time_implausible_total",
			Help: "Observations whose time cannot be true (before 1999, or later than ingest's clock by more than the tolerance), stored marked time_implausible and logged."}),
		IngestMarksRemoved: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_marks_removed_total",
			Help: "Observations that arrived with an ingest's mark (time_implausible), which no sensor sets and no signature covers: the mark removed, the time judged again by this ingest."}),
		AckFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_ack_failures_total",
			Help: "Committed batches whose acknowledgement the bus refused (they come back and are skipped by id)."}),
		Lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_ingest_lag_seconds",
			Help:    "Time from an observation's time (the sensor's clock) to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
	}
	m.QueueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "vigil_ingest_queue_depth",
		Help: "Observations waiting on the bus for ingest."}, func() float64 {
		if c := m.consumer.Load(); c != nil {
			return float64((*c).Len())
		}
		return 0
	})
	return m
}

// Collectors returns the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Received, m.Committed, m.Duplicates, m.Refused, m.TimeImplausible, m.IngestMarksRemoved, m.Errors, m.AckFailures, m.Lag, m.QueueDepth}
}

// watch makes c the bus whose depth QueueDepth reports.
func (m *Metrics) watch(c bus.Consumer) { m.consumer.Store(&c) }

// committed counts a committed batch.
func (m *Metrics) committed(obs []observe.Observation, now time.Time) {
	m.Committed.Add(float64(len(obs)))
	for i := range obs {
		// A time that cannot be true says nothing of ingest's lag.
		if !obs[i].Time.IsZero() && !obs[i].HasMark(observe.MarkTimeImplausible) {
			m.Lag.Observe(max(now.Sub(obs[i].Time).Seconds(), 0))
		}
	}
}
