package main

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// localConfirmedList is where analysts' confirmed associated files go.
const localConfirmedList = "local-confirmed"

// analysisEndpointWindow is the --endpoint-window of the running command
// (0: the default), read by every engine the command starts.
var analysisEndpointWindow atomic.Int64

// analysisIPv6 is the --ipv6-prefixes of the running command (nil: the
// default), read by every engine the command starts.
var analysisIPv6 atomic.Pointer[analysis.IPv6Config]

// startAnalysis builds the analysis engine over the store and catches up
// with observations stored since it last ran (another process's import).
// onAlert, if set, receives quarantine alerts.
func startAnalysis(ctx context.Context, log *slog.Logger, sq backend, onAlert func(analysis.Alert)) (*analysis.Engine, error) {
	return startAnalysisWatching(ctx, log, sq, onAlert, nil)
}

// startAnalysisWatching is startAnalysis where watched says which file
// hashes are on a list (they are matches, never associated-file leads).
func startAnalysisWatching(ctx context.Context, log *slog.Logger, sq backend, onAlert func(analysis.Alert), watched func(hashkind.Hash) bool) (*analysis.Engine, error) {
	cfg := analysis.DefaultConfig()
	if w := analysisEndpointWindow.Load(); w > 0 {
		cfg.EndpointWindow = time.Duration(w)
	}
	if v6 := analysisIPv6.Load(); v6 != nil {
		cfg.IPv6 = *v6
	}
	cfg.Watched = watched
	cfg.OnAlert = func(al analysis.Alert) {
		log.Warn("analysis alert", "kind", al.Kind, "detail", fmt.Sprintf("%+v", al))
		if onAlert != nil {
			onAlert(al)
		}
	}
	cfg.OnDisable = func(ctx context.Context, h hashkind.Hash, by, why string) error {
		recs, err := sq.Lookup(ctx, h)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := sq.SetDisabled(ctx, r.List.Name, h, true, by, why); err != nil {
				return err
			}
		}
		return nil
	}
	cfg.OnLeadConfirmed = func(ctx context.Context, l analysis.Lead, by, why string) error {
		if l.Hash.IsZero() {
			return fmt.Errorf("lead %s has no hash: it cannot be listed", l.Key)
		}
		_, err := store.AddToList(ctx, sq, localConfirmedList, "local", watchlist.Entry{Hash: l.Hash, Size: l.Size, Name: l.Path}, by, why)
		return err
	}
	e, err := analysis.New(ctx, sq, cfg)
	if err != nil {
		return nil, fmt.Errorf("analysis: %w", err)
	}
	if err := e.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("analysis catch-up: %w", err)
	}
	return e, nil
}

// analysisFeed returns an ingest OnCommit hook that feeds the engine. A
// failure is logged and counted, never lost: the watermark stays behind
// and the next catch-up re-reads what the engine missed.
func analysisFeed(ctx context.Context, log *slog.Logger, e *analysis.Engine, failures *atomic.Int64) func([]observe.Observation) {
	return func(b []observe.Observation) {
		if err := e.Add(ctx, b); err != nil {
			failures.Add(1)
			log.Error("analysis: batch not scored yet; it will be re-read at the next catch-up", "err", err)
		}
	}
}

// associatedFeed turns the files of watched torrents that peers served into
// associated-file leads.
func associatedFeed(ctx context.Context, log *slog.Logger, e *analysis.Engine) func(bittorrent.TorrentFiles) {
	return func(tf bittorrent.TorrentFiles) {
		a := analysis.Associated{Torrent: tf.Torrent, Time: tf.Time,
			Endpoint: observe.Endpoint{IP: tf.Peer.Addr(), Port: tf.Peer.Port(), Transport: tf.Transport}}
		for i := range tf.Files {
			f := &tf.Files[i]
			a.Files = append(a.Files, analysis.AssocFile{Path: f.Path, Size: f.Length, Hash: f.FileHash()})
		}
		if err := e.AddAssociated(ctx, []analysis.Associated{a}); err != nil {
			log.Error("analysis: associated files not recorded", "torrent", tf.Torrent.Hex(), "err", err)
		}
	}
}

// sqliteStore is the store as a backend: a store that holds targets,
// accounts and the audit trail, which only the embedded SQLite store does
// today.
func (a *app) sqliteStore(ctx context.Context) (backend, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	sq, ok := st.(backend)
	if !ok {
		return nil, fmt.Errorf("store %s keeps no targets", a.dbPath)
	}
	return sq, nil
}

// analysisCollector exports what the analysis set aside, so that a drop is
// counted where operators look (vigil_analysis_dropped_total by reason)
// and the third parties' sightings of non-public addresses it holds until
// a first-hand contact confirms them (vigil_analysis_held).
type analysisCollector struct{ e *analysis.Engine }

var (
	descAnalysisDropped = prometheus.NewDesc("vigil_analysis_dropped_total",
		"Observations the analysis set aside, by reason (a non-public address a third party named that no first-hand contact confirmed, past the hold's bounds).",
		[]string{"reason"}, nil)
	descAnalysisHeld = prometheus.NewDesc("vigil_analysis_held",
		"Third parties' sightings of non-public addresses held until a first-hand contact at that address confirms them.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c analysisCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descAnalysisDropped
	ch <- descAnalysisHeld
}

// Collect implements prometheus.Collector.
func (c analysisCollector) Collect(ch chan<- prometheus.Metric) {
	dropped, held := c.e.Dropped()
	for reason, n := range dropped {
		ch <- prometheus.MustNewConstMetric(descAnalysisDropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descAnalysisHeld, prometheus.GaugeValue, float64(held))
}
