package analysis

import "github.com/prometheus/client_golang/prometheus"

// Collector exports what the Engine set aside, so that a drop is counted
// where operators look (vigil_analysis_dropped_total by reason) and the
// third parties' sightings of non-public addresses it holds until a
// first-hand contact confirms them (vigil_analysis_held).
type Collector struct{ e *Engine }

// Collector returns the Engine's Prometheus collector.
func (e *Engine) Collector() prometheus.Collector { return Collector{e} }

var (
	descDropped = prometheus.NewDesc("vigil_analysis_dropped_total",
		"Observations the analysis set aside, by reason (a non-public address a third party named that no first-hand contact confirmed, past the hold's bounds: non_public_third_party; "+
			"a keyword search's file past the bound on leads: suspect_leads_full; an endpoint that is one of the deployment's own addresses, a fellow sensor: deployment_address; "+
			"an observation ingest marked time_implausible, seen at an unknown time: time_implausible).",
		[]string{"reason"}, nil)
	descHeld = prometheus.NewDesc("vigil_analysis_held",
		"Third parties' sightings of non-public addresses held until a first-hand contact at that address confirms them.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDropped
	ch <- descHeld
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	dropped, held := c.e.Dropped()
	for reason, n := range dropped {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(held))
}
