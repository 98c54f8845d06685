package spool

import "github.com/prometheus/client_golang/prometheus"

// Collectors returns the queue's metrics, read from its Stats when
// scraped: vigil_queue_{queued,published,dropped,torn,publish_errors}_total,
// vigil_queue_depth, vigil_queue_bytes, vigil_queue_max_bytes and
// vigil_queue_bus_up.
func (s *Spool) Collectors() []prometheus.Collector {
	counter := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(s.Stats())) })
	}
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return f(s.Stats()) })
	}
	return []prometheus.Collector{
		counter("vigil_queue_queued_total", "Observations written to the sensor's on-disk queue.", func(st Stats) uint64 { return st.Queued }),
		counter("vigil_queue_published_total", "Queued observations the bus acknowledged.", func(st Stats) uint64 { return st.Published }),
		counter("vigil_queue_dropped_total", "Observations dropped because the sensor's queue was full.", func(st Stats) uint64 { return st.Dropped }),
		counter("vigil_queue_torn_total", "Torn or damaged queue records found and skipped.", func(st Stats) uint64 { return st.Torn }),
		counter("vigil_queue_publish_errors_total", "Publishes from the queue to the bus that failed (retried).", func(st Stats) uint64 { return st.PublishErrors }),
		gauge("vigil_queue_depth", "Observations waiting in the sensor's queue.", func(st Stats) float64 { return float64(st.Pending) }),
		gauge("vigil_queue_bytes", "Size of the queue's segment files.", func(st Stats) float64 { return float64(st.Bytes) }),
		gauge("vigil_queue_max_bytes", "The queue's bound (--queue-max).", func(st Stats) float64 { return float64(st.MaxBytes) }),
		gauge("vigil_queue_bus_up", "1 while publishes to the bus succeed, 0 from a failure to the next success.", func(st Stats) float64 {
			if st.BusUp {
				return 1
			}
			return 0
		}),
	}
}
