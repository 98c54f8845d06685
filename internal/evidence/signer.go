package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// SignerConfig sets a sensor's batches.
type SignerConfig struct {
	// BatchSize is the most observations in one signed batch.
	BatchSize int
	// Interval publishes a batch that is not full after this long.
	Interval time.Duration
}

// DefaultSignerConfig returns batches of 256 observations or 250 ms,
// whichever comes first: one signature per batch keeps signing off the
// sensor's hot path, and the wait is below ingest's own flush.
func DefaultSignerConfig() SignerConfig {
	return SignerConfig{BatchSize: 256, Interval: 250 * time.Millisecond}
}

// BatchSigner is a sensor's Publisher that hash-chains and signs what it
// publishes (docs/evidence.md, "Signed sensor batches"). Each observation
// gets its place in the chain (observe.Chain: the sensor's key, the chain,
// its seq, the chain hash before it) and evidence form 2 (its transcript's
// SHA-256 is added when the sensor gave none); its sensor hash is SHA-256
// of the canonical form of its JSON line without the keys ingest adds and
// the transcript's bytes (canon.SensorDrop(2)); each chain step is
// verify.ChainStep. A batch is held
// until BatchSize observations or Interval, then its last observation gets
// the ed25519 signature of verify.BatchMessage and the batch is published
// in order, in one call when the next publisher takes batches
// (bus.BatchPublisher: a remote bus then carries it as one message). Publish therefore returns before the bus holds an observation:
// Run publishes what is held at each Interval and when it stops, and a
// batch the bus refused is returned by Flush (and Run) as an error.
type BatchSigner struct {
	next  bus.Publisher
	key   ed25519.PrivateKey
	pub   []byte
	chain string
	cfg   SignerConfig

	mu      sync.Mutex
	seq     uint64
	prev    [32]byte
	pending []observe.Observation
}

// NewBatchSigner returns a BatchSigner publishing to next, signing with key, on a
// new chain (a random id: each start of a sensor begins a chain at seq 1).
func NewBatchSigner(next bus.Publisher, key ed25519.PrivateKey, cfg SignerConfig) *BatchSigner {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultSignerConfig().BatchSize
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultSignerConfig().Interval
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &BatchSigner{next: next, key: key, pub: key.Public().(ed25519.PublicKey), chain: hex.EncodeToString(id), cfg: cfg}
}

// Chain is the signer's chain id.
func (s *BatchSigner) Chain() string { return s.chain }

// SensorHash is an observation's sensor hash: what a sensor's chain
// commits to.
func SensorHash(o *observe.Observation) ([32]byte, error) { return o.SensorHash() }

// Publish chains o and holds it for its batch; a full batch is signed
// and published before Publish returns.
func (s *BatchSigner) Publish(ctx context.Context, o observe.Observation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.Chain = observe.Chain{Key: s.pub, ID: s.chain, Seq: s.seq + 1, Prev: append([]byte(nil), s.prev[:]...), Form: observe.Form2}
	if len(o.Transcript.Bytes) > 0 && len(o.Transcript.SHA256) == 0 {
		// Evidence form 2 covers the transcript through its SHA-256.
		sum := sha256.Sum256(o.Transcript.Bytes)
		o.Transcript.SHA256 = sum[:]
	}
	h, err := SensorHash(&o)
	if err != nil {
		return err
	}
	s.seq++
	s.prev = verify.ChainStep(s.prev[:], h[:])
	s.pending = append(s.pending, o)
	if len(s.pending) >= s.cfg.BatchSize {
		return s.flushLocked(ctx)
	}
	return nil
}

// Flush signs and publishes what is held.
func (s *BatchSigner) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked(ctx)
}

func (s *BatchSigner) flushLocked(ctx context.Context) error {
	if len(s.pending) == 0 {
		return nil
	}
	last := &s.pending[len(s.pending)-1]
	last.Chain.BatchSig = ed25519.Sign(s.key, verify.BatchMessage(s.chain, s.seq, s.prev[:]))
	batch := s.pending
	s.pending = nil
	// One call for the batch: a remote bus carries it as one message (or
	// a few), not one message and one acknowledgement each.
	if err := bus.PublishBatch(ctx, s.next, batch); err != nil {
		return fmt.Errorf("signed batch of %d up to seq %d: %w", len(batch), s.seq, err)
	}
	return nil
}

// Run publishes the held batch every Interval until ctx ends, then once
// more (on a context that outlives ctx by 10 s), so that a stopped sensor
// leaves nothing held.
func (s *BatchSigner) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	var errs []error
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return errors.Join(append(errs, s.Flush(fctx))...)
		case <-t.C:
			if err := s.Flush(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
}
