package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
)

// AnalysisConfig is what a process sets of the analysis it starts.
type AnalysisConfig struct {
	// EndpointWindow is analysis.Config.EndpointWindow (0: its default).
	EndpointWindow time.Duration
	// IPv6 is analysis.Config.IPv6 (nil: its default).
	IPv6 *analysis.IPv6Config
	// Watched says which file hashes are on a list (they are matches,
	// never associated-file leads); nil: none known.
	Watched func(hashkind.Hash) bool
	// OnAlert, if set, receives each alert after it is logged.
	OnAlert func(analysis.Alert)
	// Log receives the alerts and the catch-ups; nil discards them.
	Log *slog.Logger
	// Behind is analysis.Config.Behind: ingest has a backlog.
	Behind func() bool
	// Own is analysis.Config.Own: the deployment's own addresses, of
	// which no observation makes a target.
	Own *own.Set
}

// StartAnalysis starts the analysis over st with the list rules in force
// (analysis.ListRules: a hash confirmed benign is disabled on every list,
// a confirmed lead goes to the local list), and catches it up with the
// observations stored since it last ran (another process's ingest or
// import).
func StartAnalysis(ctx context.Context, st AnalysisStore, c AnalysisConfig) (*analysis.Engine, error) {
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := analysis.DefaultConfig()
	if c.EndpointWindow > 0 {
		cfg.EndpointWindow = c.EndpointWindow
	}
	if c.IPv6 != nil {
		cfg.IPv6 = *c.IPv6
	}
	cfg.Watched = c.Watched
	cfg.Behind = c.Behind
	cfg.Own = c.Own
	cfg.OnAlert = func(al analysis.Alert) {
		log.Warn("analysis alert", "kind", al.Kind, "detail", fmt.Sprintf("%+v", al))
		if c.OnAlert != nil {
			c.OnAlert(al)
		}
	}
	analysis.ListRules{Lists: st}.Apply(&cfg)
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		return nil, fmt.Errorf("analysis: %w", err)
	}
	if err := e.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("analysis catch-up: %w", err)
	}
	return e, nil
}

// score feeds a committed batch to the analysis, with its seqs if they
// were looked up (analysis.Engine.Seqs; else it looks them up). A failure
// is logged and counted, never lost: the watermark stays behind and the
// next catch-up re-reads what the analysis missed.
func (p *Pipeline) score(l lookedUp) {
	batch := l.batch
	p.analysisM.received.Add(float64(len(batch)))
	err := l.err
	switch {
	case err != nil:
	case l.seqs == nil:
		err = p.engine.Add(p.bg, batch)
	default:
		err = p.engine.AddSeqs(p.bg, batch, l.seqs)
	}
	if err != nil {
		p.analysisM.errors.Inc()
		p.log.Error("analysis: batch not scored yet; it will be re-read at the next catch-up", "err", err)
		return
	}
	p.analysisM.processed.Add(float64(len(batch)))
}

// associated turns the files of a watched torrent that a peer served into
// associated-file leads.
func (p *Pipeline) associated(tf bittorrent.TorrentFiles) {
	a := analysis.Associated{Torrent: tf.Torrent, Time: tf.Time,
		Endpoint: observe.Endpoint{IP: tf.Peer.Addr(), Port: tf.Peer.Port(), Transport: tf.Transport}}
	for i := range tf.Files {
		f := &tf.Files[i]
		a.Files = append(a.Files, analysis.AssocFile{Path: f.Path, Size: f.Length, Hash: f.FileHash()})
	}
	if err := p.engine.AddAssociated(p.bg, []analysis.Associated{a}); err != nil {
		p.analysisM.errors.Inc()
		p.log.Error("analysis: associated files not recorded", "torrent", tf.Torrent.Hex(), "err", err)
	}
}

// poll catches the analysis up with what other processes stored, and
// rescores, until ctx ends. An error (a database server restarting) is
// logged and counted, and the loop starts again after a poll interval:
// the server goes on serving what is stored meanwhile, and targets follow
// new observations again once the store answers.
func (p *Pipeline) poll(ctx context.Context) {
	for {
		err := p.engine.Run(ctx, p.cfg.AnalysisPoll, p.cfg.Rescore)
		if err == nil || ctx.Err() != nil {
			return
		}
		p.analysisM.errors.Inc()
		p.log.Error("analysis: catch-up failed; trying again at the next poll", "err", err)
		t := time.NewTimer(p.cfg.AnalysisPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
