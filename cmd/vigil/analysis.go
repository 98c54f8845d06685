package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// localConfirmedList is where analysts' confirmed associated files go
// (named in the help of 'vigil leads').
const localConfirmedList = analysis.LocalConfirmedList

// analysisEndpointWindow is the --endpoint-window of the running command
// (0: the default), read by every engine the command starts.
var analysisEndpointWindow atomic.Int64

// startAnalysis builds the analysis engine over the store and catches up
// with observations stored since it last ran (another process's import).
// onAlert, if set, receives quarantine alerts.
func startAnalysis(ctx context.Context, log *slog.Logger, sq *sqlite.Store, onAlert func(analysis.Alert)) (*analysis.Engine, error) {
	return startAnalysisWatching(ctx, log, sq, onAlert, nil)
}

// startAnalysisWatching is startAnalysis where watched says which file
// hashes are on a list (they are matches, never associated-file leads).
func startAnalysisWatching(ctx context.Context, log *slog.Logger, sq *sqlite.Store, onAlert func(analysis.Alert), watched func(hashkind.Hash) bool) (*analysis.Engine, error) {
	cfg := analysis.DefaultConfig()
	if w := analysisEndpointWindow.Load(); w > 0 {
		cfg.EndpointWindow = time.Duration(w)
	}
	cfg.Watched = watched
	cfg.OnAlert = func(al analysis.Alert) {
		log.Warn("analysis alert", "kind", al.Kind, "detail", fmt.Sprintf("%+v", al))
		if onAlert != nil {
			onAlert(al)
		}
	}
	analysis.ListRules{Lists: sq}.Apply(&cfg)
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

// sqliteStore is the store as the embedded SQLite store, which alone holds
// targets, accounts and the audit trail today.
func (a *app) sqliteStore(ctx context.Context) (*sqlite.Store, error) {
	st, err := a.store(ctx)
	if err != nil {
		return nil, err
	}
	sq, ok := st.(*sqlite.Store)
	if !ok {
		return nil, fmt.Errorf("store %s keeps no targets", a.dbPath)
	}
	return sq, nil
}
