package bittorrent

import (
	"context"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/discover"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Discovery (Config.Discover) finds torrents whose info-hash is on no
// list but whose files are, and watches them (package discover).

// MatchFunc answers which watch-list entries name a file hash (kinds btv2
// and sha1). It must be exact and safe for concurrent use.
type MatchFunc = discover.MatchFunc

// Discovery records how a discovered torrent came to be watched.
type Discovery = discover.Discovery

// DiscoveredFile is one file of a discovered torrent that is on a list.
type DiscoveredFile = discover.DiscoveredFile

// DiscoveryStats are discovery's counters.
type DiscoveryStats = discover.Stats

// MatchLive adapts the live matcher: entries of watch-lists, none if the
// hash is also on a negative (known-benign) list.
func MatchLive(l *match.Live) MatchFunc {
	return func(h hashkind.Hash) []observe.Match {
		r := l.Load().Match(h)
		if !r.Alert() {
			return nil
		}
		out := make([]observe.Match, 0, len(r.Matches))
		for _, s := range r.Matches {
			out = append(out, observe.Match{List: s.List, Category: s.Category})
		}
		return out
	}
}

// newDiscoverer returns discovery over the sensor's parts; what it finds
// comes back through discoverEvents.
func (s *Sensor) newDiscoverer() (*discover.Discoverer, error) {
	cfg := s.cfg
	return discover.New(discover.Config{
		Concurrency: cfg.DiscoverConcurrency, FetchWorkers: cfg.DiscoverFetchWorkers, Queue: cfg.DiscoverQueue,
		MinInterval: cfg.DiscoverMinInterval, MaxNodes: cfg.DiscoverMaxNodes, SeenCapacity: cfg.SeenCapacity,
		FetchTimeout: cfg.ProbeTimeout, Bootstrap: cfg.Bootstrap, Match: cfg.Match, Clock: cfg.Clock,
	}, discover.Parts{DHT: s.dht, Prober: s.prober, Guard: s.guard, Limits: s.lim, Sensor: (*discoverEvents)(s), Log: s.log})
}

// discoverEvents is the Sensor as discovery sees it (discover.Sensor): a
// conversion of the Sensor, not a pointer back to it.
type discoverEvents Sensor

// Watched implements discover.Sensor: the exact watch set.
func (e *discoverEvents) Watched(key routing.ID) bool {
	_, ok := e.watch.get(key)
	return ok
}

// Peers implements discover.Sensor: peers a node named for a watched key
// are recorded as a lookup records them.
func (e *discoverEvents) Peers(ctx context.Context, key routing.ID, peers map[netip.AddrPort]dhtnode.PeerSource) {
	s := (*Sensor)(e)
	if w, ok := s.watch.get(key); ok {
		s.recordPeers(ctx, w, peers)
	}
}

// Watch implements discover.Sensor: a discovered torrent is watched from
// now on, and its verified info dictionary kept.
func (e *discoverEvents) Watch(h hashkind.Hash, matched []observe.Match, reason string, info []byte) error {
	s := (*Sensor)(e)
	if err := s.Watch(Watched{Hash: h, Matched: matched, Reason: reason}); err != nil {
		return err
	}
	s.rememberInfo(Key(h), info)
	return nil
}

// IsSelf implements discover.Sensor.
func (e *discoverEvents) IsSelf(p netip.AddrPort) bool { return (*Sensor)(e).isSelf(p) }

// Discovered returns the torrents discovery has matched so far.
func (s *Sensor) Discovered() []Discovery {
	if s.disc == nil {
		return nil
	}
	return s.disc.Discovered()
}

// DiscoveryStats returns discovery's counters (zero when it is off).
func (s *Sensor) DiscoveryStats() DiscoveryStats {
	if s.disc == nil {
		return DiscoveryStats{}
	}
	return s.disc.Stats()
}

// DiscoveryCollector exports discovery's counters to Prometheus; register
// it beside Collector when Discover is on.
func (s *Sensor) DiscoveryCollector() prometheus.Collector { return discover.Collector{D: s.disc} }
