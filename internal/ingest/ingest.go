// Package ingest takes observations off the bus and commits them to the
// store in batches. It is the only writer of observations.
//
// Ingest never drops an observation it accepted: on shutdown it drains the
// bus and flushes before returning, and a failed batch is returned as an
// error, not logged and forgotten.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// Config sets the batching.
type Config struct {
	// BatchSize is the most observations committed in one transaction.
	BatchSize int
	// FlushEvery commits a partial batch after this long, so observations
	// reach the store (and the screens) promptly when traffic is light.
	FlushEvery time.Duration
	// Enrich, if set, is applied to each observation before it is stored
	// (geolocation and routing at observation time).
	Enrich func(o *observe.Observation)
	// OnCommit, if set, is called after each committed batch (counters,
	// live updates).
	OnCommit func(batch []observe.Observation)
}

// DefaultConfig returns conservative batching: 1,000 observations or 250 ms.
func DefaultConfig() Config {
	return Config{BatchSize: 1000, FlushEvery: 250 * time.Millisecond}
}

// Stats counts what ingest did.
type Stats struct {
	Committed int
	Batches   int
}

// Run reads from in until it is closed, committing batches to st. When ctx
// ends, Run stops reading new observations only after in is closed by its
// owner: cancel the producers, close the bus, and Run drains and returns.
// It uses a background context for the final flushes so that a shutdown
// never loses what was accepted.
func Run(ctx context.Context, in <-chan observe.Observation, st store.Store, cfg Config, log *slog.Logger) (Stats, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultConfig().BatchSize
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultConfig().FlushEvery
	}
	var stats Stats
	batch := make([]observe.Observation, 0, cfg.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// Flush with a context that outlives shutdown by a bounded time.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := st.InsertObservations(fctx, batch); err != nil {
			return fmt.Errorf("ingest: committing %d observations: %w", len(batch), err)
		}
		stats.Committed += len(batch)
		stats.Batches++
		if cfg.OnCommit != nil {
			cfg.OnCommit(batch)
		}
		batch = make([]observe.Observation, 0, cfg.BatchSize)
		return nil
	}
	tick := time.NewTicker(cfg.FlushEvery)
	defer tick.Stop()
	for {
		select {
		case o, ok := <-in:
			if !ok {
				err := flush()
				if log != nil {
					log.Info("ingest drained", "committed", stats.Committed, "batches", stats.Batches)
				}
				return stats, err
			}
			if cfg.Enrich != nil {
				cfg.Enrich(&o)
			}
			batch = append(batch, o)
			if len(batch) >= cfg.BatchSize {
				if err := flush(); err != nil {
					return stats, err
				}
			}
		case <-tick.C:
			if err := flush(); err != nil {
				return stats, err
			}
		}
	}
}
