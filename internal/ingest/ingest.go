// Package ingest takes observations off the bus, places and routes them
// (enrichment), and commits them to the store in batches. It is the only
// writer of observations: the sensors' in-process bus, NATS JetStream and
// a file of observations all come in through Run.
//
// Ingest fetches, decodes and checks the next batch while the store
// commits one (stages.go), and commits them one at a time in the order
// fetched. It never drops an observation it accepted: a batch is
// acknowledged to the bus only once committed, a closed bus is drained
// before Run returns, and a failed batch is returned as an error (and
// counted), not logged and forgotten (but for an observation the store
// says it can never hold, store.RefusedError: left out of its batch,
// counted and logged); a store that is only away for a
// while (as Config.Unavailable says) gets its batches back, from the
// bus, when it answers again.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/evidence"
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
	// (geolocation and routing at observation time: Enricher.Enrich).
	Enrich func(o *observe.Observation)
	// OnCommit, if set, is called after each committed batch (analysis,
	// counters, live updates).
	OnCommit func(batch []observe.Observation)
	// Gate, if set, holds each signed observation until a signature of
	// its sensor covers it, and marks what none covers (evidence.Gate):
	// for observations from a bus another party runs. The bus batches
	// that hold an observation it holds are acknowledged once it is
	// committed; at a stop, those still held are handed back (Nak) to a
	// bus that redelivers, and committed as failed otherwise.
	Gate *evidence.Gate
	// OnGate, if set, is called after each fetch with what the Gate
	// found that did not check (for counting and logging).
	OnGate func(checked int, failures []error)
	// Now is ingest's clock, against which each observation's time is
	// checked before it is stored (time.Now when nil).
	Now func() time.Time
	// TimeAhead is how far past Now an observation's time may lie
	// (DefaultTimeAhead when 0): one later, or before Earliest, is
	// stored marked time_implausible, counted and logged (clock.go).
	TimeAhead time.Duration
	// AllOrNothing makes an observation the store refuses
	// (store.RefusedError) fail its batch (the store's error, naming it)
	// instead of being left out: for a file imported all or nothing. A
	// bus's ingest leaves it out, or one hostile observation would stop
	// ingest at every redelivery. (A time that cannot be true fails
	// neither: it is stored marked, as from a bus.)
	AllOrNothing bool
	// KeepIngestMarks keeps the ingest marks (observe.IngestMarks) an
	// observation arrives with: for a file imported, whose marks are the
	// store's it was exported from. Otherwise (a bus, a sensor's own
	// process) they are removed and judged again here: no sensor sets
	// one, and a sensor's signature does not cover them, so one that
	// arrives was added on the way, to hide a signed observation from the
	// analysis without breaking its signature.
	KeepIngestMarks bool
	// Metrics, if set, counts what ingest does; nil counts nothing.
	Metrics *Metrics
	// Log receives the line that says what ingest did when it stops.
	Log *slog.Logger
	// Unavailable, if set, says which store errors mean the store is
	// away for a while (a database server restarting) rather than that it
	// refused the batch: on such an error ingest hands the batch back to
	// the bus and tries again every RetryEvery (1 s if 0) instead of
	// returning. nil: every store error ends Run.
	Unavailable func(error) bool
	RetryEvery  time.Duration
	// KeepAlive, with a Gate, tells the bus every KeepAlive that a batch
	// holding an observation the gate still holds is being worked on
	// (bus batches with an InProgress method: JetStream's, whose ack
	// wait would otherwise hand it over again while the observation
	// waits for its batch's signed head). 0: never.
	KeepAlive time.Duration
}

// DefaultConfig returns conservative batching: 1,000 observations or 250 ms.
func DefaultConfig() Config {
	return Config{BatchSize: 1000, FlushEvery: 250 * time.Millisecond}
}

// Stats counts what ingest did.
type Stats struct {
	// Committed is the observations in committed batches; Duplicates
	// those of them the store already held (delivered again), which it
	// skipped: Committed - Duplicates were added. Refused is the
	// observations the store said it can never hold (store.RefusedError),
	// left out of their batches, not counted in Committed.
	// TimeImplausible is the observations whose time cannot be true
	// (before Earliest, or past ingest's clock by more than TimeAhead),
	// stored marked time_implausible: counted in Committed too.
	Committed, Duplicates, Refused, TimeImplausible int
	Batches                                         int
}

// commitTimeout bounds one batch's commit, which runs on a context that
// outlives shutdown: a stop never abandons a batch in hand.
const commitTimeout = 30 * time.Second

// Run reads batches from c and commits each to st, acknowledging it to
// the bus only once committed; it fetches the next batch while it
// commits one (two stages: stages.go), and commits them in the order
// fetched. It returns when c is closed and drained (bus.ErrClosed) or
// when ctx ends, having committed the batches in hand either way. An
// in-process bus is drained by closing it, not by ending ctx: what it
// holds when ctx ends stays there.
func Run(ctx context.Context, c bus.Consumer, st store.Store, cfg Config) (Stats, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultConfig().BatchSize
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultConfig().FlushEvery
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	m.watch(c)
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	if cfg.Gate != nil {
		return runGated(ctx, c, st, cfg, m)
	}
	var stats Stats
	var outage atomic.Bool // the last commit failed because the store was away
	for {
		k := startCommitter(ctx, st, cfg, m, &outage)
		ferr := fetchBatches(ctx, c, cfg, m, k)
		k.stop()
		stats.add(k.stats)
		if err := k.err; err != nil {
			// The store away (restarting): the batch that failed and
			// every one fetched after it went back to the bus; wait, and
			// fetch them (or others) again.
			if !storeAway(ctx, cfg, &outage, err, nil) {
				return stats, err
			}
			continue
		}
		if ferr != nil {
			return stats, ferr
		}
		if cfg.Log != nil {
			cfg.Log.Info("ingest drained", "committed", stats.Committed, "duplicates", stats.Duplicates, "refused", stats.Refused, "time_implausible", stats.TimeImplausible, "batches", stats.Batches, "left_on_bus", c.Len())
		}
		return stats, nil
	}
}

// fetchBatches is ingest's first stage without a gate: it fetches and
// enriches batches and hands them to k, until the bus is closed and
// drained or ctx ends (nil), reading the bus fails (its error), or a
// commit fails (nil: k.err says why).
func fetchBatches(ctx context.Context, c bus.Consumer, cfg Config, m *Metrics, k *committer) error {
	for !k.hasFailed() {
		b, err := c.Fetch(ctx, cfg.BatchSize, cfg.FlushEvery)
		if err != nil {
			if errors.Is(err, bus.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			m.Errors.Inc()
			return fmt.Errorf("ingest: reading the bus: %w", err)
		}
		obs := b.Observations()
		if len(obs) == 0 {
			continue
		}
		m.Received.Add(float64(len(obs)))
		if cfg.Enrich != nil {
			for i := range obs {
				cfg.Enrich(&obs[i])
			}
		}
		if !k.hand(job{b: b, obs: obs}) {
			b.Nak()
		}
	}
	return nil
}

// storeAway is a run's answer to a commit that failed with err: false
// when ingest must stop with it (not the store away for a while, as
// Config.Unavailable says, or ctx ended while waiting); else it warns of
// the outage once, calls forget (if not nil), waits RetryEvery and says
// true: fetch again.
func storeAway(ctx context.Context, cfg Config, outage *atomic.Bool, err error, forget func()) bool {
	if cfg.Unavailable == nil || !cfg.Unavailable(err) {
		return false
	}
	if !outage.Swap(true) && cfg.Log != nil {
		cfg.Log.Warn("ingest: store unavailable; batches go back to the bus until it answers", "err", err)
	}
	if forget != nil {
		forget()
	}
	return sleep(ctx, cfg.RetryEvery)
}

// sleep waits d, or until ctx ends: it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// countCommitted counts a committed batch of obs, added of them new, in
// the metrics and the run's stats, and hands it to cfg.OnCommit.
func countCommitted(cfg Config, m *Metrics, stats *Stats, obs []observe.Observation, added int) {
	m.committed(obs, time.Now())
	m.Duplicates.Add(float64(len(obs) - added))
	stats.Committed += len(obs)
	stats.Duplicates += len(obs) - added
	stats.Batches++
	if cfg.OnCommit != nil {
		cfg.OnCommit(obs)
	}
}

// commitBatch stores one batch and acknowledges it, or hands it back,
// and counts it.
func commitBatch(ctx context.Context, st store.Store, cfg Config, m *Metrics, stats *Stats, b bus.Batch, obs []observe.Observation) error {
	added, obs, err := commit(ctx, st, b, obs, cfg, m, stats)
	if err != nil {
		m.Errors.Inc()
		return err
	}
	countCommitted(cfg, m, stats, obs, added)
	return nil
}

// commit stores one batch and acknowledges it, or hands it back. It
// returns how many observations the store added (the rest it already
// held); a store that cannot say is taken to have added all.
func commit(ctx context.Context, st store.Store, b bus.Batch, obs []observe.Observation, cfg Config, m *Metrics, stats *Stats) (int, []observe.Observation, error) {
	log := cfg.Log
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	added, obs, err := insert(cctx, st, obs, cfg, m, stats)
	if err != nil {
		b.Nak()
		return 0, obs, fmt.Errorf("ingest: committing %d observations: %w", len(obs), err)
	}
	// A lost ack is counted, never fatal: the batch is stored, and a
	// redelivery is skipped by its ids.
	if err := b.Ack(cctx); err != nil {
		m.AckFailures.Inc()
		if log != nil {
			log.Warn("ingest: batch committed but its acknowledgement failed; the bus will hand it over again", "observations", len(obs), "err", err)
		}
	}
	return added, obs, nil
}

// insert stores obs and returns how many the store added (the rest it
// already held; a store that cannot say is taken to have added all) and
// obs without the observations the store refused as ones it can never
// hold (store.RefusedError: PostgreSQL's text takes no NUL byte, which
// the bus and observe.Validate take). Those are counted and logged, and
// the batch stored without them: failed whole, it would fail at every
// redelivery, and ingest would stop for good on one hostile
// observation (with Config.AllOrNothing the first fails the batch
// instead). obs is copied before one is left out (it may be the bus's).
func insert(ctx context.Context, st store.Store, obs []observe.Observation, cfg Config, m *Metrics, stats *Stats) (int, []observe.Observation, error) {
	log := cfg.Log
	markImplausible(obs, cfg, m, stats)
	copied := false
	for {
		added, err := insertAll(ctx, st, obs)
		var re *store.RefusedError
		if err == nil || !errors.As(err, &re) || re.Index < 0 || re.Index >= len(obs) || cfg.AllOrNothing {
			return added, obs, err
		}
		m.Refused.Inc()
		stats.Refused++
		if log != nil {
			o := &obs[re.Index]
			attrs := []any{"id", o.ID, "sensor", o.Sensor.ID}
			if o.Signed() {
				// Its sensor's chain, as stored, lacks this position: a
				// bundle of its batch names it (evidence.ErrBatchIncomplete,
				// or the report's gaps).
				attrs = append(attrs, "chain", o.Chain.ID, "seq", o.Chain.Seq)
			}
			log.Warn("ingest: observation refused by the store, left out of its batch", append(attrs, "err", err)...)
		}
		if !copied {
			obs, copied = slices.Clone(obs), true
		}
		obs = slices.Delete(obs, re.Index, re.Index+1)
		if len(obs) == 0 {
			return 0, obs, nil
		}
	}
}

// insertAll stores obs: insert's one attempt.
func insertAll(ctx context.Context, st store.Store, obs []observe.Observation) (int, error) {
	if nc, ok := st.(store.NewCounter); ok {
		return nc.InsertObservationsCounted(ctx, obs)
	}
	return len(obs), st.InsertObservations(ctx, obs)
}

// heldBatch is a bus batch with observations the gate still holds.
type heldBatch struct {
	b       bus.Batch
	size    int       // observations fetched
	left    int       // observations not yet committed
	touched time.Time // fetched, or last told to the bus as in progress
}

// partBits: a gate tag is the bus batch's tag and the observation's index
// in it (tag<<partBits | index).
const partBits = 24

// MaxGatedBatch is the most observations a bus batch may hand a gated
// ingest: an index must fit in partBits, or an observation's tag would
// name the next batch (acknowledged before all of it is committed). A
// bus batch may exceed BatchSize (a NATS message larger than it comes
// whole), so runGated checks each batch as well.
const MaxGatedBatch = 1<<partBits - 1

// ErrBatchTooLarge is a bus batch of more than MaxGatedBatch observations
// for a gated ingest.
var ErrBatchTooLarge = fmt.Errorf("a bus batch of more than %d observations", MaxGatedBatch)

// partAcker is a bus batch whose observations can be acknowledged one by
// one (JetStream's: a message each): the observations committed of a bus
// batch that the gate still holds one of are acknowledged at once, so
// that the held one keeps only its own message unacknowledged, not its
// whole bus batch. (The stream stops
// delivering past its limit of unacknowledged messages: whole batches
// held for one observation each would stop it, and with it the heads
// they wait for.) Its Ack, Nak and InProgress then leave out what was
// acknowledged, and it may let go of its observations (Observations is
// then empty; ingest took them when fetched): a batch stays here up to
// --head-wait for one observation, and must not keep the others in
// memory meanwhile.
type partAcker interface {
	AckSome(ctx context.Context, idx []int) error
}

// redeliverer is a bus batch that says whether a Nak hands it over again.
type redeliverer interface{ Redelivers() bool }

// messageSizer is a bus batch that keeps each message whole until all
// its observations are committed (JetStream's): MessageOf gives the
// message observation i came in (an index in the batch) and its bytes.
// The gate counts them towards its bound while it holds an observation
// of it (evidence.Message): one small observation held for --head-wait
// keeps its message of up to a megabyte.
type messageSizer interface{ MessageOf(i int) (msg, bytes int) }

// inProgresser is a bus batch whose redelivery can be put off: it is
// still being worked on.
type inProgresser interface{ InProgress() }

// keepAlive tells the bus that each batch held longer than every is
// still being worked on.
func keepAlive(batches map[int]*heldBatch, every time.Duration, now time.Time) {
	if every <= 0 {
		return
	}
	for _, hb := range batches {
		if now.Sub(hb.touched) < every {
			continue
		}
		if ip, ok := hb.b.(inProgresser); ok {
			ip.InProgress()
		}
		hb.touched = now
	}
}

// runGated is Run with a Gate between the bus and the store: a bus batch
// is acknowledged once every observation of it is committed, whenever the
// gate lets them through.
func runGated(ctx context.Context, c bus.Consumer, st store.Store, cfg Config, m *Metrics) (Stats, error) {
	var stats Stats
	var outage atomic.Bool // the last commit failed because the store was away
	f := &gatedFetcher{}
	for {
		k := startCommitter(ctx, st, cfg, m, &outage)
		ferr := f.run(ctx, c, cfg, m, k)
		k.stop()
		stats.add(k.stats)
		if err := k.err; err != nil {
			// commitReleased handed back every batch not yet
			// acknowledged, and the committer every one fetched after.
			// The store away (restarting): the gate forgets what it
			// held; it comes again, with its signatures, once the store
			// answers.
			if !storeAway(ctx, cfg, &outage, err, cfg.Gate.Drop) {
				return stats, err
			}
			continue
		}
		if ferr != nil {
			nakAll(k.batches)
			return stats, ferr
		}
		// The committer has ended: its batches are this goroutine's.
		ferr = stopGated(ctx, st, cfg, m, &stats, k.batches)
		if cfg.Log != nil {
			cfg.Log.Info("ingest drained", "committed", stats.Committed, "duplicates", stats.Duplicates, "refused", stats.Refused, "time_implausible", stats.TimeImplausible, "batches", stats.Batches, "left_on_bus", c.Len())
		}
		return stats, ferr
	}
}

// gatedFetcher is ingest's first stage with a gate: it fetches batches,
// enriches them and passes them through the gate, and hands the
// committer what the gate releases. It owns the gate.
type gatedFetcher struct {
	next    int // the next bus batch's tag
	checked int // the gate's Checked when last told to OnGate
}

// run fetches and gates until the bus is closed and drained or ctx ends
// (nil), reading the bus fails or hands out a batch too large (the
// error), or a commit fails (nil: k.err says why).
func (f *gatedFetcher) run(ctx context.Context, c bus.Consumer, cfg Config, m *Metrics, k *committer) error {
	gate := cfg.Gate
	for !k.hasFailed() {
		b, err := c.Fetch(ctx, cfg.BatchSize, cfg.FlushEvery)
		if err != nil {
			if errors.Is(err, bus.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			m.Errors.Inc()
			return fmt.Errorf("ingest: reading the bus: %w", err)
		}
		now := time.Now()
		if n := len(b.Observations()); n > MaxGatedBatch {
			// Its tags would run into the next batch's: hand it back,
			// and stop, rather than acknowledge a batch not committed.
			b.Nak()
			m.Errors.Inc()
			return fmt.Errorf("ingest: %w: %d (lower --batch, or NATS's max_payload)", ErrBatchTooLarge, n)
		}
		// rel is what the gate releases in this pass, in an array the
		// committer is done with if there is one: commitReleased copies
		// each observation out of it (a batch of 1,000 is about 1 MB).
		j := job{now: now, rel: k.reuse()}
		if obs := b.Observations(); len(obs) > 0 {
			tag := f.next
			f.next++
			j.fetched = &taggedBatch{tag, &heldBatch{b: b, size: len(obs), left: len(obs), touched: now}}
			m.Received.Add(float64(len(obs)))
			j.rel = slices.Grow(j.rel, len(obs))
			// The gate holds each observation in place (AddRef) until
			// the Detach below, which copies what it still holds.
			sizer, _ := b.(messageSizer)
			for i := range obs {
				if cfg.Enrich != nil {
					cfg.Enrich(&obs[i])
				}
				if sizer == nil {
					j.rel = gate.AddRef(j.rel, &obs[i], tag<<partBits|i, now)
					continue
				}
				m, n := sizer.MessageOf(i)
				j.rel = gate.AddRefIn(j.rel, &obs[i], tag<<partBits|i, now, evidence.Message{Key: uint64(tag)<<32 | uint64(m), Bytes: n})
			}
		}
		j.rel = append(j.rel, gate.Expire(now, false)...)
		gate.Detach()
		if cfg.OnGate != nil {
			cfg.OnGate(gate.Checked-f.checked, gate.TakeFailures())
			f.checked = gate.Checked
		}
		if !k.hand(j) {
			j.handBack()
		}
	}
	return nil
}

// commitReleased stores what the gate released and acknowledges each bus
// batch all of whose observations are now committed.
func commitReleased(ctx context.Context, st store.Store, cfg Config, m *Metrics, stats *Stats, batches map[int]*heldBatch, rel []evidence.Released) error {
	if len(rel) == 0 {
		return nil
	}
	obs := make([]observe.Observation, len(rel))
	for i := range rel {
		obs[i] = rel[i].Obs
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	added, obs, err := insert(cctx, st, obs, cfg, m, stats)
	if err != nil {
		m.Errors.Inc()
		nakAll(batches)
		return fmt.Errorf("ingest: committing %d observations: %w", len(obs), err)
	}
	part := map[int][]int{} // bus batch → the indexes committed now
	for _, r := range rel {
		for _, t := range r.Tags {
			tag, i := t>>partBits, t&(1<<partBits-1)
			hb := batches[tag]
			if hb == nil {
				continue
			}
			part[tag] = append(part[tag], i)
			if hb.left--; hb.left == 0 {
				delete(batches, tag)
				if err := hb.b.Ack(cctx); err != nil {
					m.AckFailures.Inc()
					if cfg.Log != nil {
						cfg.Log.Warn("ingest: batch committed but its acknowledgement failed; the bus will hand it over again", "observations", hb.size, "err", err)
					}
				}
			}
		}
	}
	// What a batch still held had committed now is acknowledged now (one
	// round trip a batch); a batch all committed was acknowledged whole.
	for tag, idx := range part {
		hb := batches[tag]
		if hb == nil {
			continue
		}
		if pa, ok := hb.b.(partAcker); ok {
			if err := pa.AckSome(cctx, idx); err != nil {
				m.AckFailures.Inc()
			}
		}
	}
	countCommitted(cfg, m, stats, obs, added)
	return nil
}

// stopGated ends a gated run: what the gate still holds waits for a
// signature that has not come. A bus that redelivers gets those batches
// back (Nak: the next run sees them again, with what follows them); any
// other bus's are committed as failed, never dropped.
func stopGated(ctx context.Context, st store.Store, cfg Config, m *Metrics, stats *Stats, batches map[int]*heldBatch) error {
	redeliver := false
	for _, hb := range batches {
		if r, ok := hb.b.(redeliverer); ok && r.Redelivers() {
			redeliver = true
		}
	}
	if redeliver {
		nakAll(batches)
		return nil
	}
	rel := cfg.Gate.Expire(time.Now(), true)
	if cfg.OnGate != nil {
		cfg.OnGate(0, cfg.Gate.TakeFailures())
	}
	return commitReleased(ctx, st, cfg, m, stats, batches, rel)
}

// nakAll hands back every batch not yet acknowledged.
func nakAll(batches map[int]*heldBatch) {
	for tag, hb := range batches {
		hb.b.Nak()
		delete(batches, tag)
	}
}
