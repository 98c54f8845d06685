// Package inproc is the embedded bus: a bounded channel between the
// sensors and ingest of one process.
//
// It must never drop what it accepted: Publish blocks while the bus is
// full, and after Close, Fetch hands out everything accepted before it
// reports bus.ErrClosed.
package inproc

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// DefaultCapacity is the observations in flight of a bus made with
// capacity 0.
const DefaultCapacity = 1024

// Bus is a bounded in-process bus. It is both a bus.Publisher and a
// bus.Consumer.
type Bus struct {
	ch       chan observe.Observation
	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup // publishes past the closed check
	done     chan struct{}  // closed by Close: blocked publishes give up
	failed   chan struct{}  // closed by Fail: the consumer is gone
	failErr  error
	failOnce sync.Once
}

var (
	_ bus.Publisher = (*Bus)(nil)
	_ bus.Consumer  = (*Bus)(nil)
)

// New returns a bus holding at most capacity observations in flight.
func New(capacity int) *Bus {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	return &Bus{ch: make(chan observe.Observation, capacity), done: make(chan struct{}), failed: make(chan struct{})}
}

// Publish queues o, waiting while the bus is full. An observation the bus
// has room for is accepted even when ctx has just ended: a sensor that
// stops keeps what it saw last. A publish waiting for room gives up with
// an error, never silently, when ctx ends, when the bus is closed, or
// when its consumer has failed (Fail): then nothing will ever make room,
// and a sensor that publishes without a deadline must not wait forever.
func (b *Bus) Publish(ctx context.Context, o observe.Observation) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return bus.ErrClosed
	}
	b.inflight.Add(1)
	b.mu.Unlock()
	defer b.inflight.Done()
	select {
	case <-b.failed:
		return b.failure()
	default:
	}
	select {
	case b.ch <- o:
		return nil
	default:
	}
	select {
	case b.ch <- o:
		return nil
	case <-b.failed:
		return b.failure()
	case <-b.done:
		return bus.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Fail records that the consumer has stopped for good (ingest failed to
// commit): publishes waiting for room, and every later one, return an
// error naming err, which their sensors count. What the bus holds stays
// for Fetch.
func (b *Bus) Fail(err error) {
	b.failOnce.Do(func() {
		b.failErr = err
		close(b.failed)
	})
}

func (b *Bus) failure() error {
	return fmt.Errorf("%w: its consumer failed: %w", bus.ErrClosed, b.failErr)
}

// Fetch implements bus.Consumer: it returns as soon as it holds most
// observations, when wait has passed, or when the bus is closed and
// empty.
func (b *Bus) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	most = max(most, 1)
	var out bus.Delivered
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for len(out) < most {
		select {
		case o, ok := <-b.ch:
			if !ok {
				if len(out) == 0 {
					return nil, bus.ErrClosed
				}
				return out, nil
			}
			out = append(out, o)
		case <-timer.C:
			return out, nil
		case <-ctx.Done():
			if len(out) == 0 {
				return nil, ctx.Err()
			}
			return out, nil
		}
	}
	return out, nil
}

// Len is the number of observations waiting.
func (b *Bus) Len() int { return len(b.ch) }

// Close stops new publishes, makes those still waiting for room give up
// (bus.ErrClosed), and once every publish in progress has returned lets
// Fetch drain what was accepted and then report bus.ErrClosed. It never
// waits on the consumer.
func (b *Bus) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	close(b.done)
	b.mu.Unlock()
	b.inflight.Wait()
	close(b.ch)
}

// Slice is a closed bus holding a fixed set of observations, such as a
// file's: Fetch hands them out in order, at most max at a time, then
// reports bus.ErrClosed. Ingest given a batch size of len(obs) commits
// them in one transaction: all or nothing.
type Slice struct {
	mu  sync.Mutex
	obs []observe.Observation
}

var _ bus.Consumer = (*Slice)(nil)

// NewSlice returns a Slice over obs (not copied).
func NewSlice(obs []observe.Observation) *Slice { return &Slice{obs: obs} }

// Fetch implements bus.Consumer; it never waits.
func (s *Slice) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.obs) == 0 {
		return nil, bus.ErrClosed
	}
	n := min(max(most, 1), len(s.obs))
	out := bus.Delivered(s.obs[:n:n])
	s.obs = s.obs[n:]
	return out, nil
}

// Len is the number of observations not yet fetched.
func (s *Slice) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.obs)
}

// Close does nothing: a Slice is closed from the start.
func (s *Slice) Close() {}
