package ingest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// Ingest runs as two stages joined by a bounded queue, so that the
// process's work and the store's overlap: the fetcher (Run's own
// goroutine) fetches a batch from the bus, which decodes it, enriches it
// and passes it through the gate, while the committer (one goroutine)
// commits the batch before it, acknowledges it to the bus and hands it
// on (Config.OnCommit). One at a time, the fetcher waited for each commit
// and the store for each fetch: 'vigil ingest' from NATS into
// PostgreSQL kept neither core busy.
//
// The guarantees stay the committer's alone: it commits the batches in
// the order they were fetched, one transaction at a time (the store's
// seqs follow the bus's order, which the analysis reads by); it
// acknowledges a batch only once every observation of it is committed;
// after a commit fails it commits nothing more, and hands back (Nak)
// every batch the fetcher gives it, until the fetcher has seen the
// failure and stopped: nothing fetched after a batch that failed is
// committed before it. A crash loses nothing: what was fetched and not
// committed was not acknowledged, and the bus hands it over again.

// commitQueue is how many fetched batches may wait for the committer
// while it commits one and the fetcher fetches the next (a batch of
// 1,000 is about 1 MB): with the one being committed and the one being
// fetched, at most commitQueue+2 batches are in memory.
const commitQueue = 1

// job is what the fetcher hands the committer from one fetch.
type job struct {
	// Without a gate: the bus batch and its observations, enriched.
	b   bus.Batch
	obs []observe.Observation
	// With a gate: the bus batch fetched (if it held anything), what the
	// gate released (of this batch or of earlier ones), and when it was
	// fetched.
	fetched *taggedBatch
	rel     []evidence.Released
	now     time.Time
}

// taggedBatch is a bus batch with its gate tag.
type taggedBatch struct {
	tag int
	hb  *heldBatch
}

// handBack hands back (Nak) what j fetched: it will not be committed.
func (j *job) handBack() {
	if j.b != nil {
		j.b.Nak()
	}
	if j.fetched != nil {
		j.fetched.hb.b.Nak()
	}
}

// committer is ingest's second stage: it commits and acknowledges what
// the fetcher hands it, in order, on a goroutine of its own that
// stop waits for.
type committer struct {
	jobs   chan job
	free   chan []evidence.Released // rel arrays committed, for the fetcher to fill again
	done   chan struct{}
	failed chan struct{} // closed at the first commit that fails
	err    error         // that failure: read once failed or done is closed
	stats  Stats         // the committer's until done is closed
	// batches are the bus batches of a gated ingest not yet all
	// committed, by tag: the committer's until done is closed.
	batches map[int]*heldBatch
}

// startCommitter starts a committer; outage says that the last commit
// failed because the store was away (the committer clears it, saying so,
// at the next commit that succeeds).
func startCommitter(ctx context.Context, st store.Store, cfg Config, m *Metrics, outage *atomic.Bool) *committer {
	k := &committer{jobs: make(chan job, commitQueue), free: make(chan []evidence.Released, commitQueue+2),
		done: make(chan struct{}), failed: make(chan struct{}), batches: map[int]*heldBatch{}}
	go k.run(ctx, st, cfg, m, outage)
	return k
}

func (k *committer) run(ctx context.Context, st store.Store, cfg Config, m *Metrics, outage *atomic.Bool) {
	defer close(k.done)
	for j := range k.jobs {
		if k.err != nil {
			j.handBack()
			continue
		}
		var err error
		stored := false
		if cfg.Gate != nil {
			if j.fetched != nil {
				k.batches[j.fetched.tag] = j.fetched.hb
			}
			stored = len(j.rel) > 0
			err = commitReleased(ctx, st, cfg, m, &k.stats, k.batches, j.rel)
			if err == nil {
				keepAlive(k.batches, cfg.KeepAlive, j.now)
			}
			k.recycle(j.rel)
		} else {
			stored = true
			err = commitBatch(ctx, st, cfg, m, &k.stats, j.b, j.obs)
		}
		if err != nil {
			k.err = err
			close(k.failed)
			continue
		}
		if stored && outage.Swap(false) && cfg.Log != nil {
			cfg.Log.Warn("ingest: store available again")
		}
	}
}

// hand gives j to the committer, waiting for room; false: a commit
// failed, and j was not taken.
func (k *committer) hand(j job) bool {
	select {
	case <-k.failed:
		return false
	default:
	}
	select {
	case k.jobs <- j:
		return true
	case <-k.failed:
		return false
	}
}

// hasFailed says that a commit failed.
func (k *committer) hasFailed() bool {
	select {
	case <-k.failed:
		return true
	default:
		return false
	}
}

// stop waits for the committer to commit (or, after a failure, hand
// back) everything it was given, and end.
func (k *committer) stop() {
	close(k.jobs)
	<-k.done
}

// recycle keeps rel's array for the fetcher's next pass, holding no
// observation alive.
func (k *committer) recycle(rel []evidence.Released) {
	if cap(rel) == 0 {
		return
	}
	clear(rel)
	select {
	case k.free <- rel[:0]:
	default:
	}
}

// reuse is an array the committer is done with, if any.
func (k *committer) reuse() []evidence.Released {
	select {
	case rel := <-k.free:
		return rel
	default:
		return nil
	}
}

// add adds what another committer did.
func (s *Stats) add(o Stats) {
	s.Committed += o.Committed
	s.Duplicates += o.Duplicates
	s.Refused += o.Refused
	s.TimeImplausible += o.TimeImplausible
	s.Batches += o.Batches
}
