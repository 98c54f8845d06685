package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WitnessCheckpoint signs the head of the chain (MakeCheckpoint), stores
// the checkpoint, and hands its signed note to every witness. The
// checkpoint is stored before any witness sees it, so that a witness
// never holds a checkpoint the store did not: one the store lacks was
// deleted. It returns the checkpoint and the witnesses' errors joined
// (the checkpoint stands in the store even when a witness failed).
func WitnessCheckpoint(ctx context.Context, st Store, cs CheckpointStore, key ed25519.PrivateKey, now time.Time, ws ...Witness) (Checkpoint, error) {
	c, err := MakeCheckpoint(ctx, st, cs, key, now)
	if err != nil {
		return Checkpoint{}, err
	}
	return c, witnessAll(ctx, c, key, ws)
}

func witnessAll(ctx context.Context, c Checkpoint, key ed25519.PrivateKey, ws []Witness) error {
	if len(ws) == 0 {
		return nil
	}
	n, err := CheckpointNote(c, key)
	if err != nil {
		return err
	}
	var errs []error
	for _, w := range ws {
		if err := w.Witness(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("checkpoint at seq %d: %w", c.Seq, err))
		}
	}
	return errors.Join(errs...)
}

// CheckpointerConfig says how often a Checkpointer signs the chain.
type CheckpointerConfig struct {
	// Every signs once this many records were added since the last
	// checkpoint (0: DefaultCheckpointEvery).
	Every int64
	// Interval signs at least this often while records are added (0:
	// DefaultCheckpointInterval).
	Interval time.Duration
	// Poll is how often the chain's head is read (0: 5 s).
	Poll time.Duration
}

// Defaults of CheckpointerConfig.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 5 * time.Minute
)

// Checkpointer signs the chain's head on its own schedule: after Every
// new records or Interval, whichever comes first, and once more when it
// stops, so that a cleanly stopped server leaves no unsigned tail. Each
// checkpoint goes to the store and to every witness; a witness that
// failed is sent the next checkpoint even when no record was added.
type Checkpointer struct {
	Store       Store
	Checkpoints CheckpointStore
	Key         ed25519.PrivateKey
	Witnesses   []Witness
	Config      CheckpointerConfig
	Now         func() time.Time // nil: time.Now
	Log         *slog.Logger     // nil: discard

	mu        sync.Mutex
	last      int64     // seq of the last checkpoint made or found
	lastAt    time.Time // when it was made
	unwitness bool      // a witness missed the last checkpoint
	started   bool

	made, failed prometheus.Counter
}

// NewCheckpointer returns a Checkpointer with its counters
// (vigil_audit_checkpoints_total, vigil_audit_witness_failures_total),
// which Collectors returns for registration.
func NewCheckpointer(st Store, cs CheckpointStore, key ed25519.PrivateKey, ws []Witness, cfg CheckpointerConfig) *Checkpointer {
	return &Checkpointer{Store: st, Checkpoints: cs, Key: key, Witnesses: ws, Config: cfg,
		made: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_audit_checkpoints_total",
			Help: "Signed checkpoints of the audit chain made by this process."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_audit_witness_failures_total",
			Help: "Checkpoints a witness (file or URL) did not take; the next checkpoint is sent again."}),
	}
}

// Collectors returns the Checkpointer's metrics.
func (c *Checkpointer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{c.made, c.failed}
}

func (c *Checkpointer) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Checkpointer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (c *Checkpointer) head(ctx context.Context) (int64, error) {
	var seq int64
	err := c.Store.AuditRecords(ctx, Filter{Desc: true, Limit: 1}, func(r Record) error { seq = r.Seq; return nil })
	return seq, err
}

func (c *Checkpointer) start(ctx context.Context) error {
	if c.started {
		return nil
	}
	cps, err := c.Checkpoints.AuditCheckpoints(ctx)
	if err != nil {
		return fmt.Errorf("audit checkpoints: %w", err)
	}
	kid := KeyID(c.Key.Public().(ed25519.PublicKey))
	for _, cp := range cps {
		if cp.KeyID == kid && cp.Seq > c.last {
			c.last, c.lastAt = cp.Seq, cp.Time
		}
	}
	// The store's last checkpoint may never have reached the witnesses
	// (another process, a crash): send the next one whatever happens.
	c.unwitness = len(c.Witnesses) > 0
	c.started = true
	return nil
}

// Tick makes a checkpoint if one is due (force: whenever a record was
// added since the last, or a witness missed it). It reports whether it
// made one.
func (c *Checkpointer) Tick(ctx context.Context, force bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.start(ctx); err != nil {
		return false, err
	}
	head, err := c.head(ctx)
	if err != nil {
		return false, fmt.Errorf("audit head: %w", err)
	}
	every, interval := c.Config.Every, c.Config.Interval
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	if interval <= 0 {
		interval = DefaultCheckpointInterval
	}
	now := c.now()
	due := head > c.last && (force || head-c.last >= every || now.Sub(c.lastAt) >= interval)
	if !due && !(c.unwitness && head > 0 && (force || now.Sub(c.lastAt) >= interval/4)) {
		return false, nil
	}
	cp, err := MakeCheckpoint(ctx, c.Store, c.Checkpoints, c.Key, now)
	if err != nil {
		return false, err
	}
	c.made.Inc()
	c.last, c.lastAt = cp.Seq, now
	if err := witnessAll(ctx, cp, c.Key, c.Witnesses); err != nil {
		c.failed.Inc()
		c.unwitness = true
		return true, err
	}
	c.unwitness = false
	return true, nil
}

// Run checkpoints on the schedule until ctx ends, then makes the last
// checkpoint (under a context of its own, bounded to 10 s).
func (c *Checkpointer) Run(ctx context.Context) error {
	poll := c.Config.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := c.Tick(fctx, true); err != nil {
				c.log().Error("audit: last checkpoint", "err", err)
				return err
			}
			return nil
		case <-t.C:
			if made, err := c.Tick(ctx, false); err != nil && ctx.Err() == nil {
				c.log().Error("audit checkpoint", "made", made, "err", err)
			}
		}
	}
}
