package bittorrent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the sensor's counters to Prometheus, one metric per
// stage, so that a sensor that stops finding anything shows where.
type Collector struct{ s *Sensor }

// Collector returns the sensor's Prometheus collector.
func (s *Sensor) Collector() prometheus.Collector { return Collector{s} }

var (
	descPackets  = prometheus.NewDesc("vigil_bittorrent_dht_packets_received_total", "DHT datagrams received.", nil, nil)
	descSent     = prometheus.NewDesc("vigil_bittorrent_dht_packets_sent_total", "DHT datagrams sent.", nil, nil)
	descBad      = prometheus.NewDesc("vigil_bittorrent_dht_bad_packets_total", "DHT datagrams that did not decode or were too large.", nil, nil)
	descQueries  = prometheus.NewDesc("vigil_bittorrent_dht_queries_answered_total", "Queries answered, by method.", []string{"method"}, nil)
	descTimeouts = prometheus.NewDesc("vigil_bittorrent_dht_query_timeouts_total", "Queries of the sensor that got no reply.", nil, nil)
	descLookups  = prometheus.NewDesc("vigil_bittorrent_lookups_total", "Iterative get_peers lookups completed.", nil, nil)
	descRepolls  = prometheus.NewDesc("vigil_bittorrent_repolls_total", "Re-poll get_peers sent to the closest nodes of a watched info-hash's last lookup.", nil, nil)
	descRepollP  = prometheus.NewDesc("vigil_bittorrent_repoll_new_peers_total", "Peers first named since the last lookup by a re-poll.", nil, nil)
	descObs      = prometheus.NewDesc("vigil_bittorrent_observations_total", "Observations published, by method.", []string{"method"}, nil)
	descProbes   = prometheus.NewDesc("vigil_bittorrent_probes_total", "Peer probes attempted.", nil, nil)
	descProbeErr = prometheus.NewDesc("vigil_bittorrent_probe_failures_total", "Peer probes that failed or were not queued.", nil, nil)
	descTracker  = prometheus.NewDesc("vigil_bittorrent_tracker_errors_total", "Tracker announces that failed.", nil, nil)
	descScope    = prometheus.NewDesc("vigil_bittorrent_scope_refused_total", "Sends the scope guard refused.", nil, nil)
	descRouting  = prometheus.NewDesc("vigil_bittorrent_routing_nodes", "Nodes in all routing tables.", nil, nil)
	descWatched  = prometheus.NewDesc("vigil_bittorrent_watched_infohashes", "Info-hashes watched.", nil, nil)
	descProbeQ   = prometheus.NewDesc("vigil_bittorrent_probe_queue_depth", "Probes waiting.", nil, nil)
	descBoot     = prometheus.NewDesc("vigil_bittorrent_bootstrap_seconds", "How long the DHT identities' bootstrap before the first lookup round took (0 until it has ended).", nil, nil)
	// By address family (ipv4, ipv6): the totals above are their sums.
	descFamPackets  = prometheus.NewDesc("vigil_bittorrent_dht_family_packets_received_total", "DHT datagrams received, by address family of the identity's socket.", []string{"family"}, nil)
	descFamSent     = prometheus.NewDesc("vigil_bittorrent_dht_family_packets_sent_total", "DHT datagrams sent, by address family of the identity's socket.", []string{"family"}, nil)
	descFamRouting  = prometheus.NewDesc("vigil_bittorrent_family_routing_nodes", "Nodes in the routing tables of one address family's identities.", []string{"family"}, nil)
	descFamIdentity = prometheus.NewDesc("vigil_bittorrent_family_identities", "DHT identities on the sensor's listen address of one address family.", []string{"family"}, nil)
)

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPackets, descSent, descBad, descQueries, descTimeouts, descLookups, descRepolls, descRepollP,
		descObs, descProbes, descProbeErr, descTracker, descScope, descRouting, descWatched, descProbeQ, descDropped, descBoot,
		descFamPackets, descFamSent, descFamRouting, descFamIdentity} {
		ch <- d
	}
	c.s.dht.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descPackets, st.Packets)
	counter(descSent, st.Sent)
	counter(descBad, st.BadPackets)
	counter(descTimeouts, st.Timeouts)
	counter(descLookups, st.Lookups)
	counter(descRepolls, st.Repolls)
	counter(descRepollP, st.RepollPeers)
	counter(descProbes, st.Probes)
	counter(descProbeErr, st.ProbeFailures)
	counter(descTracker, st.TrackerErrors)
	counter(descScope, st.ScopeRefused)
	for m, v := range st.Queries {
		counter(descQueries, v, m)
	}
	for m, v := range st.Observations {
		counter(descObs, v, m)
	}
	ch <- prometheus.MustNewConstMetric(descRouting, prometheus.GaugeValue, float64(st.RoutingNodes))
	ch <- prometheus.MustNewConstMetric(descWatched, prometheus.GaugeValue, float64(st.Watched))
	ch <- prometheus.MustNewConstMetric(descProbeQ, prometheus.GaugeValue, float64(len(c.s.probeQ)))
	ch <- prometheus.MustNewConstMetric(descBoot, prometheus.GaugeValue, c.s.dht.BootstrapTook().Seconds())
	for fam, f := range st.Families {
		counter(descFamPackets, f.Packets, fam)
		counter(descFamSent, f.Sent, fam)
		ch <- prometheus.MustNewConstMetric(descFamRouting, prometheus.GaugeValue, float64(f.RoutingNodes), fam)
		ch <- prometheus.MustNewConstMetric(descFamIdentity, prometheus.GaugeValue, float64(f.Identities), fam)
	}
	c.s.dht.Collect(ch)
	c.s.collectDropped(ch)
}
