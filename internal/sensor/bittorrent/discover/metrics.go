package discover

import "github.com/prometheus/client_golang/prometheus"

var (
	descDiscQueries = prometheus.NewDesc("vigil_bittorrent_discovery_sample_queries_total", "BEP 51 sample_infohashes queries sent.", nil, nil)
	descDiscUnsup   = prometheus.NewDesc("vigil_bittorrent_discovery_sample_unsupported_total", "sample_infohashes queries without samples back (error, timeout, no BEP 51).", nil, nil)
	descDiscSampled = prometheus.NewDesc("vigil_bittorrent_discovery_sampled_infohashes_total", "Info-hashes received in samples, by outcome.", []string{"outcome"}, nil)
	descDiscMeta    = prometheus.NewDesc("vigil_bittorrent_discovery_metadata_total", "Metadata fetches of new info-hashes, by result.", []string{"result"}, nil)
	descDiscMatched = prometheus.NewDesc("vigil_bittorrent_discovery_matched_torrents_total", "Discovered torrents whose files matched a list, now watched.", nil, nil)
	descDiscRetries = prometheus.NewDesc("vigil_bittorrent_discovery_fetch_retries_total", "Failed metadata fetches tried again, or not for want of room.", []string{"outcome"}, nil)
	descDiscNodes   = prometheus.NewDesc("vigil_bittorrent_discovery_nodes", "Nodes known to the sampler.", nil, nil)
	descDiscQueue   = prometheus.NewDesc("vigil_bittorrent_discovery_queue_depth", "New info-hashes waiting for metadata.", nil, nil)
	descDiscSeen    = prometheus.NewDesc("vigil_bittorrent_discovery_seen_set_bytes", "Memory of the seen-set.", nil, nil)
)

// Collector exports counters to Prometheus: a Discoverer's, or, with
// none, zeros (discovery off).
type Collector struct{ D *Discoverer }

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDiscQueries, descDiscUnsup, descDiscSampled, descDiscMeta, descDiscMatched, descDiscRetries, descDiscNodes, descDiscQueue, descDiscSeen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	var st Stats
	if c.D != nil {
		st = c.D.Stats()
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descDiscQueries, st.Queries)
	counter(descDiscUnsup, st.Unsupported)
	counter(descDiscSampled, st.New, "new")
	counter(descDiscSampled, st.SeenBefore, "seen_before")
	counter(descDiscSampled, st.SampledWatched, "watched")
	counter(descDiscSampled, st.Deferred, "deferred")
	counter(descDiscMeta, st.MetaFetched, "fetched")
	counter(descDiscMeta, st.MetaFailed, "failed")
	counter(descDiscMeta, st.NoPeers, "no_peers")
	counter(descDiscMeta, st.InfoUnparsed, "unparsed")
	counter(descDiscMatched, st.Matched)
	counter(descDiscRetries, st.Retries, "retried")
	counter(descDiscRetries, st.RetriesDropped, "dropped")
	ch <- prometheus.MustNewConstMetric(descDiscNodes, prometheus.GaugeValue, float64(st.Nodes))
	ch <- prometheus.MustNewConstMetric(descDiscQueue, prometheus.GaugeValue, float64(st.QueueDepth))
	ch <- prometheus.MustNewConstMetric(descDiscSeen, prometheus.GaugeValue, float64(st.SeenBytes))
}
