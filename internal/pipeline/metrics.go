package pipeline

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// analysisMetrics counts the analysis stage as the pipeline feeds it.
type analysisMetrics struct {
	received  prometheus.Counter // vigil_analysis_received_total
	processed prometheus.Counter // vigil_analysis_processed_total
	errors    prometheus.Counter // vigil_analysis_errors_total
}

func newAnalysisMetrics() *analysisMetrics {
	return &analysisMetrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_analysis_received_total",
			Help: "Committed observations handed to the analysis."}),
		processed: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_analysis_processed_total",
			Help: "Committed observations the analysis scored as they came (the rest are re-read at the next catch-up)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_analysis_errors_total",
			Help: "Analysis batches, associated files, catch-ups and flushes that failed (logged; a batch is re-read at the next catch-up)."}),
	}
}

// register registers the metrics of every stage this pipeline runs.
func (p *Pipeline) register() error {
	var cs []prometheus.Collector
	switch {
	case p.queue != nil:
		cs = append(cs, p.queue.Collectors()...)
	case p.pub != nil:
		cs = append(cs, p.busM.Collectors()...)
	}
	if p.consumer != nil {
		cs = append(cs, p.ingestM.Collectors()...)
		cs = append(cs, p.enricher.Collectors()...)
		cs = append(cs, p.checkM.batches, p.checkM.failures)
	}
	if p.engine != nil {
		cs = append(cs, p.analysisM.received, p.analysisM.processed, p.analysisM.errors, p.engine.Collector())
	}
	return p.registerAll(cs...)
}

// registerAll registers cs with the configured registry, if any.
func (p *Pipeline) registerAll(cs ...prometheus.Collector) error {
	if p.cfg.Registry == nil {
		return nil
	}
	for _, c := range cs {
		if err := p.cfg.Registry.Register(c); err != nil {
			return fmt.Errorf("pipeline: metrics: %w", err)
		}
	}
	return nil
}

// checkMetrics count what ingest's ChainChecker found.
type checkMetrics struct {
	batches, failures prometheus.Counter
}

func newCheckMetrics() *checkMetrics {
	return &checkMetrics{
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_signed_batches_total",
			Help: "Sensor batches whose hash chain and signature checked as ingest stored them."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_ingest_signature_failures_total",
			Help: "Sensor evidence that did not check: as 'vigil ingest' reads from a bus, each bad signature, untrusted key and observation no signature covers (stored marked signature_failed); with sensors in the same process, each batch that did not check (stored as it came). Logged."}),
	}
}
