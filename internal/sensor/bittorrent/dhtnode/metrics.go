package dhtnode

import "github.com/prometheus/client_golang/prometheus"

// The DHT's anti-spoofing and token counters, exported by DHT as a
// Prometheus collector (the sensor's collector includes it).
var (
	descRepliesDropped = prometheus.NewDesc("vigil_bittorrent_dht_replies_dropped_total",
		"Responses to the sensor's queries that were dropped, by reason: wrong_source (not from the address:port queried), unknown_transaction (late, unsolicited or guessed transaction id).",
		[]string{"reason"}, nil)
	descAnnounceProof = prometheus.NewDesc("vigil_bittorrent_dht_announce_token_answers_total",
		"Announces with a valid token for a watched info-hash, by whether the answer that carried the token was kept for the transcript (kept) or not (missing).",
		[]string{"result"}, nil)
	descTokenEvicted = prometheus.NewDesc("vigil_bittorrent_dht_token_answers_evicted_total",
		"Kept token-carrying answers dropped before their token expired, for want of room.", nil, nil)
	descTokenKept = prometheus.NewDesc("vigil_bittorrent_dht_token_answers_kept",
		"Token-carrying answers kept for watched info-hashes.", nil, nil)
)

// Describe implements prometheus.Collector.
func (d *DHT) Describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{descRepliesDropped, descAnnounceProof, descTokenEvicted, descTokenKept} {
		ch <- x
	}
}

// Collect implements prometheus.Collector: the anti-spoofing and token
// counters, summed over the identities (zero before they listen).
func (d *DHT) Collect(ch chan<- prometheus.Metric) {
	st := d.Stats()
	counter := func(x *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(x, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRepliesDropped, st.WrongSource, "wrong_source")
	counter(descRepliesDropped, st.UnknownTx, "unknown_transaction")
	counter(descAnnounceProof, st.AnnounceProven, "kept")
	counter(descAnnounceProof, st.AnnounceUnproven, "missing")
	counter(descTokenEvicted, st.TokenEvicted)
	ch <- prometheus.MustNewConstMetric(descTokenKept, prometheus.GaugeValue, float64(st.TokenKept))
}
