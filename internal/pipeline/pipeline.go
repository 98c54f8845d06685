// Package pipeline wires Vigil's stages over one store and runs them as
// one system: the sensors publish to the bus, ingest (the only writer)
// places, routes and commits what the bus carries, and the analysis
// scores what ingest committed. A command builds a Config from its flags,
// calls New, adds its sensors and services, and calls Run; it holds no
// rule of the domain and starts no goroutine of its own.
//
// Run stops the stages in the order data flows, and says so in the log:
// the sensors and services stop, the bus closes, ingest drains and
// commits everything the bus accepted, and the analysis catches up with
// what other processes stored and flushes. The
// package must never start a goroutine that Run does not wait for, nor
// stop a stage before the one that feeds it.
//
// This package depends on nearly every part of Vigil; only cmd/vigil
// (and tests) may import it.
package pipeline

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/store"
)

// Config is what a command decided from its flags.
type Config struct {
	// Store holds the watch-lists the sensors watch and receives every
	// observation ingest commits. Required.
	Store store.Store
	// Analysis, if set, scores what ingest commits (and what other
	// processes stored, at start). Nil: no analysis in this process.
	Analysis AnalysisStore
	// AnalysisPoll, if positive, also catches the analysis up this often
	// with what other processes stored, and rescores every Rescore (a
	// server beside remote ingests).
	AnalysisPoll time.Duration
	// Rescore is how often a polling analysis rescores every target
	// (recency decays). Default 24 h.
	Rescore time.Duration
	// EndpointWindow is the analysis's endpoint window (0: its default).
	EndpointWindow time.Duration
	// IPv6 is the analysis's subscriber prefixes (nil: its default).
	IPv6 *analysis.IPv6Config
	// OnAlert, if set, receives the analysis's alerts (after they are
	// logged and stored).
	OnAlert func(analysis.Alert)

	// Geo places each observation at ingest (ingest.Enricher); nil
	// stores it without a place. The caller opens and closes it.
	Geo *geo.Locator
	// Rules route each observation to an agency at ingest; nil routes
	// none.
	Rules *jurisdiction.Rules
	// Ingest sets ingest's batching (BatchSize, FlushEvery); the
	// pipeline sets its hooks, metrics and log.
	Ingest ingest.Config
	// Consumer, if set, is what ingest reads (NATS JetStream, a file's
	// observations) instead of the in-process bus; the pipeline closes it
	// on shutdown.
	Consumer bus.Consumer
	// Remote, if set, is where the sensors publish (NATS JetStream):
	// nothing is ingested in this process. Exclusive with Consumer.
	Remote bus.Publisher
	// Queue, if set with Remote, puts a bounded on-disk queue (package
	// spool) between the sensors and Remote: the sensors write to it, its
	// drain publishes to Remote in order whenever Remote is reachable, and
	// Run closes it once the sensors have stopped and it has drained for
	// its CloseDrain.
	Queue *spool.Config
	// BusCapacity is the in-process bus's size (0: inproc's default).
	BusCapacity int
	// NoIngest runs no bus and no ingest in this process: it serves and
	// analyses what other processes store. Exclusive with Remote and
	// Consumer; no sensor can be added.
	NoIngest bool
	// OnCommit, if set, is called after each batch is committed and
	// scored (live views).
	OnCommit func([]observe.Observation)

	// FromSensors says that Consumer carries what sensors published
	// ('vigil ingest' from NATS JetStream). Every sensor signs what it
	// publishes, so an observation read without a sensor's signature was
	// made or stripped on the way (a tampering hub, anyone on the bus): it
	// is marked unsigned_import, never sensor evidence, never first-hand,
	// never an ISP row. A sensor never places or routes what it publishes
	// (its signature leaves place and agency out): a place or an agency
	// an observation brings is dropped, and ingest places and routes it.
	FromSensors bool
	// SensorKeys, with FromSensors, are the only sensor keys trusted
	// (ed25519 public keys): what another key signed is stored marked
	// signature_failed. Nil (and no SensorTrust) trusts any key whose
	// signature checks.
	SensorKeys [][]byte
	// SensorNames, with FromSensors, binds keys to the sensor names they
	// may sign for (evidence.GateConfig.Sensors): what a key signed under
	// another sensor's name is stored marked signature_failed. A key not
	// listed signs for any name.
	SensorNames map[string][]string
	// SensorTrust, with FromSensors, is asked about a key not in
	// SensorKeys, or bound to other names than the one an observation
	// gives (evidence.GateConfig.Trust): 'vigil ingest' reads its key
	// folder again, where a sensor's rotated key or new name appears.
	SensorTrust func(key []byte, sensor string) (bool, []string)
	// SignatureWait, with FromSensors, is how long ingest holds a signed
	// observation for the signature that covers it (0: the gate's
	// default, 30 s); keep it under the bus's redelivery delay.
	SignatureWait time.Duration
	// HeadWait, with FromSensors, is how long ingest holds the part of a
	// signed batch that came before its signed head, while nothing of its
	// chain after it has come (0: the gate's default, 1 h): a sensor cut
	// off from the bus mid-batch sends the rest when it returns.
	// Ingest.KeepAlive keeps the bus from handing it over meanwhile.
	HeadWait time.Duration

	// SensorKey, if set, signs what this process's sensors publish: an
	// evidence.BatchSigner between them and the bus hash-chains every
	// observation and signs each batch (docs/evidence.md).
	SensorKey ed25519.PrivateKey
	// Signer sets the signed batches (zero: evidence.DefaultSignerConfig).
	Signer evidence.SignerConfig

	// Own are the deployment's own addresses (package own,
	// --own-addresses): given to each sensor added whose configuration
	// names none (it records none of them and probes none), and to the
	// analysis (an observation of one makes no target; one a sensor
	// recorded before it was told is still stored: it is in its sensor's
	// signed chain, and the other observations of its batch are checked
	// through it). nil: none.
	Own *own.Set

	// Registry, if set, receives every stage's metrics.
	Registry prometheus.Registerer
	// Log receives what the pipeline does; nil discards it.
	Log *slog.Logger
}

// Validate reports a Config whose parts cannot work together.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("pipeline: no store")
	case c.Remote != nil && c.Consumer != nil:
		return errors.New("pipeline: a remote bus and a consumer: sensors publish to one, ingest reads the other; choose one")
	case c.Queue != nil && c.Remote == nil:
		return errors.New("pipeline: a sensor queue without a remote bus to drain it to")
	case c.Remote != nil && c.Analysis != nil:
		return errors.New("pipeline: an analysis with a remote bus: the analysis runs where ingest does")
	case c.FromSensors && c.Consumer == nil:
		return errors.New("pipeline: unsigned observations marked, but no consumer: only what ingest reads from a bus is marked")
	case c.NoIngest && (c.Remote != nil || c.Consumer != nil):
		return errors.New("pipeline: no ingest, yet a bus to publish to or read from")
	case c.AnalysisPoll < 0 || c.Rescore < 0 || c.EndpointWindow < 0:
		return errors.New("pipeline: negative analysis poll, rescore or endpoint window")
	}
	return nil
}

// AnalysisStore is the store the analysis runs over: its backend and the
// watch-lists its rules change.
type AnalysisStore interface {
	analysis.Backend
	analysis.ListStore
}

// Pipeline is a wired system, ready to Run.
type Pipeline struct {
	cfg Config
	log *slog.Logger

	engine   *analysis.Engine
	consumer bus.Consumer           // what ingest reads; nil with Remote
	pub      bus.Publisher          // what sensors publish to, counted
	signer   *evidence.BatchSigner  // between the sensors and pub, with SensorKey
	checker  *evidence.ChainChecker // checks sensors' signatures as ingest stores
	checkM   *checkMetrics
	checks   chan []observe.Observation // committed batches for the checker, while Run runs
	scores   chan []observe.Observation // committed batches for the analysis, while Run runs
	live     match.Live                 // the matcher, once a sensor needs it
	enricher *ingest.Enricher           // places and routes what ingest reads; nil with no ingest here
	queue    *spool.Spool               // between the sensors and Remote, if configured

	busM      *bus.Metrics
	ingestM   *ingest.Metrics
	analysisM *analysisMetrics

	sensors, services []part
	// bg carries Run's values without its end, for the analysis calls
	// made from ingest and the sensors' workers while they drain.
	bg    context.Context
	tally tally
	stats ingest.Stats
	ran   atomic.Bool
}

// part is a sensor or a service: something Run runs until its context
// ends.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// New checks cfg, starts the analysis (loading its state and catching up
// with what other processes stored) and builds the bus. Nothing runs
// until Run.
func New(ctx context.Context, cfg Config) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Rescore <= 0 {
		cfg.Rescore = 24 * time.Hour
	}
	p := &Pipeline{cfg: cfg, log: cfg.Log, bg: context.WithoutCancel(ctx), busM: bus.NewMetrics(), ingestM: ingest.NewMetrics(), analysisM: newAnalysisMetrics(),
		checker: evidence.NewChainChecker(), checkM: newCheckMetrics()}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Remote != nil && cfg.Queue != nil:
		q, err := spool.Open(*cfg.Queue, cfg.Remote, p.log)
		if err != nil {
			return nil, err
		}
		p.queue, p.pub = q, p.tally.counting(q)
	case cfg.Remote != nil:
		p.pub = p.tally.counting(bus.Counted(cfg.Remote, p.busM))
	case cfg.Consumer != nil:
		p.consumer = cfg.Consumer
	case cfg.NoIngest:
	default:
		b := inproc.New(cfg.BusCapacity)
		p.consumer, p.pub = b, bus.Counted(b, p.busM)
	}
	if cfg.SensorKey != nil && p.pub != nil {
		p.signer = evidence.NewBatchSigner(p.pub, cfg.SensorKey, cfg.Signer)
		p.pub = p.signer
		// The first service: it stops last, and Run flushes it again once
		// every sensor has returned.
		p.services = append(p.services, part{"batch signer", p.signer.Run})
	}
	if p.consumer != nil {
		p.enricher = ingest.NewEnricher(cfg.Geo, cfg.Rules)
	}
	if cfg.Analysis != nil {
		e, err := StartAnalysis(ctx, cfg.Analysis, AnalysisConfig{EndpointWindow: cfg.EndpointWindow, IPv6: cfg.IPv6,
			Watched: func(h hashkind.Hash) bool { return p.live.Load().Contains(h) }, OnAlert: cfg.OnAlert, Log: p.log,
			Behind: p.behind, Own: cfg.Own})
		if err != nil {
			return nil, err
		}
		p.engine = e
	}
	if err := p.register(); err != nil {
		p.closeQueue()
		return nil, err
	}
	return p, nil
}

// closeQueue closes the sensor queue, if any, saying what it left.
func (p *Pipeline) closeQueue() {
	if p.queue == nil {
		return
	}
	if err := p.queue.Close(); err != nil {
		p.log.Error("pipeline: closing the sensor queue", "err", err)
	}
}

// Publisher is what this process's sensors publish to: the in-process
// bus, or the remote one, counted either way, behind the batch signer
// when Config.SensorKey is set; nil with NoIngest or a Consumer.
func (p *Pipeline) Publisher() bus.Publisher { return p.pub }

// Engine is the analysis, or nil when this process runs none.
func (p *Pipeline) Engine() *analysis.Engine { return p.engine }

// Tally returns the observations committed so far (with a remote bus:
// accepted by it), by method and possession level.
func (p *Pipeline) Tally() Tally { return p.tally.snapshot() }

// Stats is what ingest did, once Run has returned.
func (p *Pipeline) Stats() ingest.Stats { return p.stats }

// AddSensor adds a sensor: run publishes to Publisher until its context
// ends. Call before Run.
func (p *Pipeline) AddSensor(name string, run func(ctx context.Context) error) error {
	if p.pub == nil {
		return fmt.Errorf("pipeline: sensor %s: this pipeline has no bus to publish to", name)
	}
	p.sensors = append(p.sensors, part{name, run})
	return nil
}

// Go adds a service (a web server, a checkpointer, a report): run works
// until its context ends, which happens when the sensors stop; services
// stop in the reverse order they were added. Call before Run.
func (p *Pipeline) Go(name string, run func(ctx context.Context) error) {
	p.services = append(p.services, part{name, run})
}

// Run runs every stage until ctx ends, a stage fails, or the input is
// exhausted (every sensor returned, or the consumer was drained), then
// stops them in order: sensors and services, the bus, ingest (which
// commits everything the bus accepted), the analysis (which flushes). It
// returns the errors of the stages that failed.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.ran.Swap(true) {
		return errors.New("pipeline: Run called twice")
	}
	p.bg = context.WithoutCancel(ctx)
	p.log.Info("pipeline starting", "sensors", len(p.sensors), "services", len(p.services),
		"ingest", p.consumer != nil, "analysis", p.engine != nil)
	g, gctx := errgroup.WithContext(ctx)
	frontCtx, stopFront := context.WithCancel(gctx)
	defer stopFront()
	backCtx, stopBack := context.WithCancel(context.WithoutCancel(gctx))
	defer stopBack()
	front := p.runFront(frontCtx, stopFront)

	g.Go(func() error {
		err := front.Wait()
		stopFront()
		p.log.Info("pipeline: sensors and services stopped")
		if p.signer != nil {
			// Every sensor has returned: sign and publish what is held.
			if ferr := p.signer.Flush(p.bg); ferr != nil {
				err = errors.Join(err, fmt.Errorf("batch signer: %w", ferr))
			}
		}
		if p.consumer != nil {
			p.consumer.Close()
			p.log.Info("pipeline: bus closed; ingest drains what it accepted", "waiting", p.consumer.Len())
		} else {
			stopBack()
		}
		return err
	})
	if p.consumer != nil {
		checks := make(chan []observe.Observation, 4)
		if !p.gated() {
			// The sensors' signatures (of this process's own sensors:
			// read from another party's bus, the gate checks them before
			// they are stored) are checked on a goroutine of their own,
			// beside ingest (on another core), in the order committed; it
			// ends when ingest has returned and it has checked every batch.
			p.checks = checks
			g.Go(func() error {
				for batch := range checks {
					p.check(batch)
				}
				return nil
			})
		}
		scores := make(chan []observe.Observation, scoreQueue)
		if p.engine != nil {
			// The analysis scores committed batches on a goroutine of its
			// own, in the order committed, while ingest reads, checks and
			// commits the next ones (the two wait on the database in
			// turn: one core's work overlaps the other's). A full queue
			// holds ingest back; the goroutine ends when ingest has
			// returned and every batch it committed is scored, before
			// the last catch-up below.
			p.scores = scores
			// The seqs the store gave the next batch are looked up (a
			// round trip to the database) while the analysis scores the
			// one before; one goroutine each, in the order committed.
			looked := make(chan lookedUp)
			g.Go(func() error {
				defer close(looked)
				for batch := range scores {
					seqs, err := p.engine.Seqs(p.bg, batch)
					looked <- lookedUp{batch, seqs, err}
				}
				return nil
			})
			g.Go(func() error {
				for l := range looked {
					p.scored(l)
				}
				return nil
			})
		}
		g.Go(func() error {
			// Ingest outlives ctx: it stops when the bus is closed and
			// drained, so that nothing the bus accepted is lost.
			defer close(scores)
			defer close(checks)
			defer stopBack()
			defer stopFront() // an exhausted consumer (a file) ends the run
			err := p.ingest(backCtx)
			if f, ok := p.consumer.(interface{ Fail(error) }); ok && err != nil {
				// Nothing will fetch again: publishers waiting for room
				// (some publish without a deadline) get an error now.
				f.Fail(err)
			}
			return err
		})
	}
	if p.engine != nil && p.cfg.AnalysisPoll > 0 {
		g.Go(func() error { p.poll(backCtx); return nil })
	}
	if p.queue != nil {
		// The drain outlives the sensors: it stops once they have, and
		// drains a while longer (spool.Config.CloseDrain).
		g.Go(func() error { return p.queue.Run(backCtx) })
	}
	err := g.Wait()
	p.closeQueue()
	if p.engine != nil {
		// Other processes (ingests sharing the store) may have committed
		// after this one's last batch: the flushed state includes them.
		if cerr := p.engine.CatchUp(context.WithoutCancel(ctx)); cerr != nil {
			p.analysisM.errors.Inc()
			err = errors.Join(err, fmt.Errorf("analysis: last catch-up: %w", cerr))
		}
		if ferr := p.engine.Flush(context.WithoutCancel(ctx)); ferr != nil {
			p.analysisM.errors.Inc()
			err = errors.Join(err, fmt.Errorf("analysis: last flush: %w", ferr))
		} else {
			p.log.Info("pipeline: analysis flushed", "watermark", p.engine.Watermark())
		}
		if d, _ := p.engine.Dropped(); d[analysis.DropDeploymentAddress] > 0 {
			// Counted, never named: the addresses are the deployment's.
			p.log.Info("pipeline: observations of the deployment's own addresses (--own-addresses) stored but made no target",
				"observations", d[analysis.DropDeploymentAddress])
		}
	}
	p.log.Info("pipeline stopped", "committed", p.stats.Committed, "err", err)
	return err
}

// runFront starts the sensors and services. It stops them all when every
// sensor has returned (a finite input), and keeps them running until ctx
// ends otherwise.
func (p *Pipeline) runFront(ctx context.Context, stop context.CancelFunc) *errgroup.Group {
	front, fctx := errgroup.WithContext(ctx)
	var sensors sync.WaitGroup
	for _, s := range p.sensors {
		sensors.Add(1)
		front.Go(func() error {
			defer sensors.Done()
			if err := s.run(fctx); err != nil && !stopped(err) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			p.log.Info("pipeline: sensor stopped", "sensor", s.name)
			return nil
		})
	}
	p.runServices(front, fctx)
	front.Go(func() error {
		if len(p.sensors) > 0 {
			sensors.Wait()
			stop()
		}
		<-fctx.Done()
		return nil
	})
	return front
}

// runServices starts the services in g. They stop in the reverse order
// they were added, as deferred calls run: each is told to stop once ctx
// has ended and the service added after it has returned (a server stops
// before the audit checkpointer added before it signs its last
// checkpoint). A service that returns on its own before ctx ends (the
// demo's story, once told) stops no other.
func (p *Pipeline) runServices(g *errgroup.Group, ctx context.Context) {
	var doneAfter <-chan struct{}
	for i := len(p.services) - 1; i >= 0; i-- {
		s := p.services[i]
		sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		previous := doneAfter
		g.Go(func() error {
			<-ctx.Done()
			if previous != nil {
				<-previous
			}
			cancel()
			return nil
		})
		g.Go(func() error {
			defer close(done)
			defer cancel()
			if err := s.run(sctx); err != nil && !stopped(err) {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			p.log.Info("pipeline: service stopped", "service", s.name)
			return nil
		})
		doneAfter = done
	}
}

// stopped reports whether err only says that the part was told to stop.
func stopped(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// ingest runs ingest over the consumer until it is closed and drained.
func (p *Pipeline) ingest(ctx context.Context) error {
	cfg := p.cfg.Ingest
	cfg.Metrics, cfg.Log = p.ingestM, p.log
	if p.enricher != nil {
		cfg.Enrich = p.enricher.Enrich
	}
	if p.gated() {
		// Nothing is stored as a sensor's that the sensor did not sign:
		// the gate holds each signed observation until a signature of a
		// trusted key covers it, and marks what none covers.
		gcfg := evidence.GateConfig{Keys: p.cfg.SensorKeys, Sensors: p.cfg.SensorNames, Trust: p.cfg.SensorTrust, MaxHold: p.cfg.SignatureWait, HeadWait: p.cfg.HeadWait}
		if ls, ok := p.cfg.Store.(store.LogStore); ok {
			// Another ingest on the same bus may hold the rest of a batch.
			gcfg.Stored = func(chain string, seq uint64) (prev, key []byte, found bool) {
				err := ls.ChainObservations(p.bg, chain, seq, seq, func(o *observe.Observation) error {
					prev, key, found = o.Chain.Prev, o.Chain.Key, o.Signed()
					return nil
				})
				return prev, key, err == nil && found
			}
		}
		cfg.Gate = evidence.NewGate(gcfg)
		cfg.OnGate = p.gateFound
		enrich := cfg.Enrich
		cfg.Enrich = func(o *observe.Observation) {
			if !o.Signed() {
				o.Mark(observe.MarkUnsigned)
			}
			// A sensor never places or routes what it publishes, and its
			// signature leaves place and agency out: whatever the bus
			// brings of them was set on the way, and is not kept.
			o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{}
			if enrich != nil {
				enrich(o)
			}
		}
	}
	cfg.OnCommit = p.committed
	st, err := ingest.Run(ctx, p.consumer, p.cfg.Store, cfg)
	p.stats = st
	return err
}

// scoreQueue is how many committed batches may wait for the analysis
// while ingest goes on (a batch of 1,000 is about 1 MB).
const scoreQueue = 2

// behind says that ingest has a backlog: its bus holds at least another
// full batch beyond the one in hand (the analysis then saves less often,
// analysis.Config.Behind).
func (p *Pipeline) behind() bool {
	if p.consumer == nil {
		return false
	}
	batch := p.cfg.Ingest.BatchSize
	if batch <= 0 {
		batch = ingest.DefaultConfig().BatchSize
	}
	return p.consumer.Len() >= batch
}

// gated says that ingest checks sensors' signatures before it stores
// (evidence.Gate): what ingest reads comes from a bus another party runs.
func (p *Pipeline) gated() bool { return p.cfg.FromSensors && p.cfg.Consumer != nil }

// gateFound counts and logs what the gate checked and what did not check.
func (p *Pipeline) gateFound(checked int, failures []error) {
	p.checkM.batches.Add(float64(checked))
	if len(failures) > 0 {
		p.checkM.failures.Add(float64(len(failures)))
		for _, err := range failures {
			p.log.Error("ingest: sensor evidence that does not check; stored marked signature_failed", "err", err)
		}
	}
}

// committed follows each committed batch: the sensors' signatures are
// checked (handed to check, on its own goroutine), the analysis scores
// it and then the live views see it (scored, on a goroutine of its own
// while Run runs), the tally counts it.
func (p *Pipeline) committed(batch []observe.Observation) {
	if p.checks != nil {
		p.checks <- slices.Clone(batch) // the bus may reuse its slice
	}
	if p.scores != nil {
		p.scores <- slices.Clone(batch) // the bus may reuse its slice
	} else {
		p.scored(lookedUp{batch: batch})
	}
	p.tally.add(batch)
}

// lookedUp is a committed batch with the seqs the store gave it
// (analysis.Engine.Seqs), or the error looking them up.
type lookedUp struct {
	batch []observe.Observation
	seqs  []int64
	err   error
}

// scored has the analysis score a committed batch, then shows it to the
// live views (Config.OnCommit), which so find its targets stored.
func (p *Pipeline) scored(l lookedUp) {
	if p.engine != nil {
		p.score(l)
	}
	if p.cfg.OnCommit != nil {
		p.cfg.OnCommit(l.batch)
	}
}

// check runs evidence.ChainChecker over a committed batch: what does not
// check is counted and logged; nothing is changed.
func (p *Pipeline) check(batch []observe.Observation) {
	r := p.checker.Check(batch)
	p.checkM.batches.Add(float64(r.Batches))
	if len(r.Failures) > 0 {
		p.checkM.failures.Add(float64(len(r.Failures)))
		for _, err := range r.Failures {
			p.log.Error("ingest: a sensor batch does not check; stored as it came", "err", err)
		}
	}
}
