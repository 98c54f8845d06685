package pipeline

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/timesync"
)

// clock makes the sensor's clock monitor of cfg's servers (nil for none),
// measures once so that the first observations carry a reading, and runs
// it as a service that measures again every cfg.Every.
func (p *Pipeline) clock(ctx context.Context, sensor string, cfg timesync.Config, guard *scope.Guard) (*timesync.Monitor, error) {
	if len(cfg.Servers) == 0 {
		return nil, nil
	}
	d := timesync.DefaultConfig()
	if cfg.Every == 0 {
		cfg.Every = d.Every
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = d.Timeout
	}
	if cfg.MaxOffset == 0 {
		cfg.MaxOffset = d.MaxOffset
	}
	m, err := timesync.New(cfg, guard, p.log.With("sensor", sensor))
	if err != nil {
		return nil, fmt.Errorf("pipeline: sensor %s: %w", sensor, err)
	}
	if p.cfg.Registry != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"sensor": sensor}, p.cfg.Registry)
		if err := reg.Register(m.Collector()); err != nil {
			return nil, fmt.Errorf("pipeline: sensor %s: metrics: %w", sensor, err)
		}
	}
	r := m.Measure(ctx)
	p.log.Info("sensor clock measured", "sensor", sensor, "known", r.Known, "offset", r.Offset,
		"uncertainty", r.Uncertainty, "source", r.Source)
	p.Go("clock "+sensor, m.Run)
	return m, nil
}

// BitTorrent is a BitTorrent sensor to run.
type BitTorrent struct {
	// Sensor is the sensor's configuration. The pipeline sets Match (for
	// discovery), OnFiles (for the analysis) and Own (Config.Own) when
	// they are nil.
	Sensor bittorrent.Config
	// Scope is where the sensor may send.
	Scope scope.Config
	// Trackers are the trackers known for watched info-hashes (a magnet
	// link's tr=).
	Trackers map[hashkind.Hash][]string
	// NTP are the servers the sensor's clock is measured against, through
	// its scope guard (unless Sensor.TimeSync is set); no server: every
	// offset is unknown.
	NTP timesync.Config
}

// AddBitTorrent builds a BitTorrent sensor that watches the store's
// watched info-hashes (match.WatchSet: the btih and btih2 entries of the
// enabled lists, less what a known-benign list holds) and publishes to
// the pipeline, registers its metrics, and adds it to the sensors. Call
// before Run.
func (p *Pipeline) AddBitTorrent(ctx context.Context, c BitTorrent) (*bittorrent.Sensor, error) {
	if p.pub == nil {
		return nil, fmt.Errorf("pipeline: sensor %s: this pipeline has no bus to publish to", c.Sensor.ID)
	}
	guard, err := scope.New(c.Scope, nil)
	if err != nil {
		return nil, err
	}
	ws, err := match.WatchSet(ctx, p.cfg.Store, hashkind.BTIH, hashkind.BTIH2)
	if err != nil {
		return nil, err
	}
	watched := make([]bittorrent.Watched, len(ws))
	for i, w := range ws {
		watched[i] = bittorrent.Watched{Hash: w.Hash, Reason: "list", Trackers: c.Trackers[w.Hash]}
		for _, s := range w.Sources {
			watched[i].Matched = append(watched[i].Matched, observe.Match{List: s.List, Category: s.Category})
		}
	}
	if len(watched) == 0 {
		p.log.Warn("no btih or btih2 entries on any enabled watch-list: the sensor will answer the DHT but watch nothing")
	}
	cfg := c.Sensor
	if cfg.Own == nil {
		cfg.Own = p.cfg.Own
	}
	if cfg.TimeSync == nil {
		if cfg.TimeSync, err = p.clock(ctx, "bittorrent "+cfg.ID, c.NTP, guard); err != nil {
			return nil, err
		}
	}
	discover := cfg.Discover && cfg.Match == nil
	if discover || p.engine != nil {
		// Discovery matches the files of sampled torrents; the analysis
		// tells a watched file from a lead.
		m, err := match.Load(ctx, p.cfg.Store)
		if err != nil {
			return nil, err
		}
		p.live.Store(m)
		if discover {
			cfg.Match = bittorrent.MatchLive(&p.live)
			p.log.Info("discovery on: files of sampled torrents are matched against the lists", "entries", m.Entries())
		}
	}
	if p.engine != nil && cfg.OnFiles == nil {
		cfg.OnFiles = p.associated
	}
	s, err := bittorrent.New(cfg, guard, p.pub, p.log)
	if err != nil {
		return nil, err
	}
	if err := s.Watch(watched...); err != nil {
		return nil, err
	}
	if err := p.registerAll(s.Collector()); err != nil {
		return nil, err
	}
	if cfg.Discover {
		if err := p.registerAll(s.DiscoveryCollector()); err != nil {
			return nil, err
		}
	}
	return s, p.AddSensor("bittorrent "+cfg.ID, s.Run)
}
