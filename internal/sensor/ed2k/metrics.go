package ed2k

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the sensor's counters (Stats) as Prometheus metrics,
// vigil_ed2k_*: what it asked, what it published, what it did not record
// and why.
type Collector struct{ s *Sensor }

// Collector returns the sensor's metrics collector.
func (s *Sensor) Collector() prometheus.Collector { return Collector{s} }

var (
	descServerAsks   = prometheus.NewDesc("vigil_ed2k_server_requests_total", "OP_GETSOURCES requests sent to eD2K servers.", nil, nil)
	descServerLogins = prometheus.NewDesc("vigil_ed2k_server_logins_total", "Logins to eD2K servers that succeeded.", nil, nil)
	descServerErrors = prometheus.NewDesc("vigil_ed2k_server_errors_total", "eD2K server logins that failed and sessions that ended in an error.", nil, nil)
	descKadSearches  = prometheus.NewDesc("vigil_ed2k_kad_searches_total", "Kad source searches started.", nil, nil)
	descKadPackets   = prometheus.NewDesc("vigil_ed2k_kad_packets_total", "Kad datagrams, by direction (sent, received).", []string{"direction"}, nil)
	descKadDropped   = prometheus.NewDesc("vigil_ed2k_kad_dropped_total",
		"Kad datagrams dropped or refused, by reason: unsolicited (an answer from an address not asked, or about another target), "+
			"obfuscated (not plain Kad), malformed, out_of_scope (sends the scope guard refused), answer_budget (queries of other nodes over the per-address budget).",
		[]string{"reason"}, nil)
	descKeyword = prometheus.NewDesc("vigil_ed2k_keyword_total",
		"Keyword searches and their results, by what: searches (servers and Kad), watched (results whose hash is watched), suspects (unwatched results recorded in suspect leads for review; a file on a list is none).",
		[]string{"what"}, nil)
	descProbes    = prometheus.NewDesc("vigil_ed2k_probes_total", "Client probes started.", nil, nil)
	descProbeErrs = prometheus.NewDesc("vigil_ed2k_probe_failures_total", "Client probes that ended in an error.", nil, nil)
	descObs       = prometheus.NewDesc("vigil_ed2k_observations_total", "Observations published, by method.", []string{"method"}, nil)
	descDropped   = prometheus.NewDesc("vigil_ed2k_dropped_total",
		"Observations and probes not made, by reason (low_id, server_source_without_port, self, deployment_address (a fellow sensor of the deployment), non_public_<class>, not_acknowledged, wrong_file, "+
			"queue_full, address_budget, out_of_scope, answer_not_kept, server_packet_not_unpacked (a server's packet, read whole, that does not unpack within the bounds: a zlib bomb), "+
			"server_late_answer (a server's answer, sources or search result, that came before the request was sent: read and dropped), "+
			"server_answer_unasked (one read while another answer was awaited: sources of another file, a search result, or sources during a search), "+
			"server_not_quiet (a request not sent: the server sent more than 64 packets before it, or sent for 20 s, without a pause; the session ends), sources_over_cap, kad_source_without_address, kad_answer_not_kept, kad_sources_over_cap, publish_failed; "+
			"of keyword searches: keyword_result_unrelated, keyword_result_name_too_long, keyword_results_over_cap, keyword_result_no_lead).",
		[]string{"reason"}, nil)
	descWatched = prometheus.NewDesc("vigil_ed2k_watched_hashes", "ed2k hashes watched.", nil, nil)
	descProbeQ  = prometheus.NewDesc("vigil_ed2k_probe_queue_depth", "Probes waiting.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descServerAsks, descServerLogins, descServerErrors, descKadSearches, descKadPackets,
		descKadDropped, descKeyword, descProbes, descProbeErrs, descObs, descDropped, descWatched, descProbeQ} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descServerAsks, st.ServerAsks)
	counter(descServerLogins, st.ServerLogins)
	counter(descServerErrors, st.ServerErrors)
	counter(descKadSearches, st.KadSearches)
	counter(descKadPackets, st.Kad.Sent, "sent")
	counter(descKadPackets, st.Kad.Received, "received")
	counter(descKadDropped, st.Kad.Unsolicited, "unsolicited")
	counter(descKadDropped, st.Kad.Obfuscated, "obfuscated")
	counter(descKadDropped, st.Kad.Malformed, "malformed")
	counter(descKadDropped, st.Kad.Refused, "out_of_scope")
	counter(descKadDropped, st.Kad.AnswersLimited, "answer_budget")
	counter(descKeyword, st.KeywordSearches, "searches")
	counter(descKeyword, st.KeywordWatched, "watched")
	counter(descKeyword, st.Suspects, "suspects")
	counter(descProbes, st.Probes)
	counter(descProbeErrs, st.ProbeFailures)
	for m, v := range st.Emitted {
		counter(descObs, v, m)
	}
	for r, v := range st.Dropped {
		counter(descDropped, v, r)
	}
	c.s.mu.Lock()
	watched := len(c.s.order)
	c.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descWatched, prometheus.GaugeValue, float64(watched))
	ch <- prometheus.MustNewConstMetric(descProbeQ, prometheus.GaugeValue, float64(len(c.s.queue)))
}
