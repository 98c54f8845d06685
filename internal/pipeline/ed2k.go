package pipeline

import (
	"context"
	"fmt"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k"
	"github.com/vigil-oss/vigil/internal/timesync"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// ED2K is an eD2K and Kad sensor to run.
type ED2K struct {
	// Sensor is the sensor's configuration. With Keywords, the pipeline
	// sets OnSuspect (when nil) to record the files found as suspect
	// leads in this process's analysis; a pipeline without one (a remote
	// bus) refuses keywords: leads do not travel on the bus. The pipeline
	// sets Own (Config.Own) when it is nil.
	Sensor ed2k.Config
	// Scope is where the sensor may send.
	Scope scope.Config
	// NTP are the servers the sensor's clock is measured against, through
	// its scope guard (unless Sensor.TimeSync is set); no server: every
	// offset is unknown.
	NTP timesync.Config
}

// AddED2K builds an eD2K and Kad sensor that watches the store's watched
// ed2k hashes (match.WatchSet: the ed2k entries of the enabled lists, less
// what a known-benign list holds, each with the file size the first entry
// that gives one gives: servers want it and a part map is judged against
// it) and publishes to the pipeline, registers its metrics, and adds it to
// the sensors. Call before Run.
func (p *Pipeline) AddED2K(ctx context.Context, c ED2K) (*ed2k.Sensor, error) {
	if p.pub == nil {
		return nil, fmt.Errorf("pipeline: sensor %s: this pipeline has no bus to publish to", c.Sensor.ID)
	}
	guard, err := scope.New(c.Scope, nil)
	if err != nil {
		return nil, err
	}
	watched, err := watchedED2K(ctx, p.cfg.Store)
	if err != nil {
		return nil, err
	}
	if len(watched) == 0 {
		p.log.Warn("no ed2k entries on any enabled watch-list: the sensor will run but watch nothing")
	}
	cfg := c.Sensor
	if cfg.Own == nil {
		cfg.Own = p.cfg.Own
	}
	if len(cfg.Keywords) > 0 && cfg.OnSuspect == nil {
		if p.engine == nil {
			return nil, fmt.Errorf("pipeline: sensor %s: keyword searches make review leads, which only this process's analysis records (they do not travel on the bus): run the sensor with its store, without a remote bus", cfg.ID)
		}
		// The analysis tells a listed file (watched or known-benign)
		// from a lead.
		m, err := match.Load(ctx, p.cfg.Store)
		if err != nil {
			return nil, err
		}
		p.live.Store(m)
		cfg.OnSuspect = p.suspect
		p.log.Info("keyword searches on: unwatched files found become suspect leads for review", "keywords", len(cfg.Keywords))
	}
	if cfg.TimeSync == nil {
		if cfg.TimeSync, err = p.clock(ctx, "ed2k "+cfg.ID, c.NTP, guard); err != nil {
			return nil, err
		}
	}
	s, err := ed2k.New(cfg, guard, p.pub, p.log)
	if err != nil {
		return nil, err
	}
	if err := s.Watch(watched...); err != nil {
		return nil, err
	}
	if err := p.registerAll(s.Collector()); err != nil {
		return nil, err
	}
	return s, p.AddSensor("ed2k "+c.Sensor.ID, s.Run)
}

// suspect records a file of a keyword search as a suspect lead, unless a
// list names it (watched, or on a known-benign list: neither is a lead),
// and reports whether it did. Nothing of it is logged.
func (p *Pipeline) suspect(sp ed2k.Suspect) bool {
	if m := p.live.Load(); m != nil {
		if r := m.Match(sp.Hash); len(r.Matches) > 0 || len(r.Negative) > 0 {
			return false
		}
	}
	if err := p.engine.AddSuspects(p.bg, []analysis.Suspect{{Hash: sp.Hash, Name: sp.Name, Size: sp.Size, Sources: sp.Sources,
		Keyword: sp.Keyword, Network: sp.Network, Time: sp.Time}}); err != nil {
		p.analysisM.errors.Inc()
		// Not the error's text: a store's error may name the file.
		p.log.Error("analysis: a suspect lead was not recorded; the analysis's next save retries it", "network", sp.Network)
		return false
	}
	return true
}

// watchedED2K is the ed2k sensor's watch set: match.WatchSet's ed2k
// hashes, with the size of the first enabled entry of a watch-list that
// gives one (-1: none does).
func watchedED2K(ctx context.Context, src match.Entries) ([]ed2k.Watched, error) {
	ws, err := match.WatchSet(ctx, src, hashkind.ED2K)
	if err != nil {
		return nil, err
	}
	size := make(map[hashkind.Hash]int64, len(ws))
	for _, w := range ws {
		size[w.Hash] = -1
	}
	err = src.ActiveEntries(ctx, func(l *watchlist.List, e *watchlist.Entry) error {
		if s, ok := size[e.Hash]; ok && s < 0 && e.Size > 0 && !l.Negative {
			size[e.Hash] = e.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the watch-lists' file sizes: %w", err)
	}
	out := make([]ed2k.Watched, len(ws))
	for i, w := range ws {
		out[i] = ed2k.Watched{Hash: w.Hash, Size: size[w.Hash]}
		for _, s := range w.Sources {
			out[i].Matched = append(out[i].Matched, observe.Match{List: s.List, Category: s.Category})
		}
	}
	return out, nil
}
