package pipeline

import (
	"context"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// ImportObservations stores observations read from a file through ingest,
// the only writer, in one batch: one transaction, all or nothing. They are
// not placed or routed again: what was known when they were seen stays.
// One that the store refuses (store.RefusedError) fails it, naming it;
// one whose time cannot be true is imported marked time_implausible, as
// ingest stores it from a bus.
func ImportObservations(ctx context.Context, st store.Store, obs []observe.Observation) error {
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = max(len(obs), 1)
	cfg.AllOrNothing = true    // an observation the store refuses fails the import, naming it
	cfg.KeepIngestMarks = true // a file's marks are those of the store it came from
	_, err := ingest.Run(ctx, inproc.NewSlice(obs), st, cfg)
	return err
}
