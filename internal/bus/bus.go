// Package bus carries observations from sensors to ingest. The in-process
// bus here is the embedded default; a NATS JetStream transport carries the
// same records between machines.
//
// A bus never drops a watched observation: when ingest falls behind,
// Publish blocks (and the sensor's own bounded queues and counters take
// the strain), it does not discard.
package bus

import (
	"context"
	"errors"
	"sync"

	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("bus closed")

// Publisher is what a sensor writes observations to.
type Publisher interface {
	Publish(ctx context.Context, o observe.Observation) error
}

// InProc is a bounded in-process bus.
type InProc struct {
	ch     chan observe.Observation
	mu     sync.RWMutex
	closed bool
}

// NewInProc returns a bus holding at most capacity observations in flight.
func NewInProc(capacity int) *InProc {
	if capacity <= 0 {
		capacity = 1024
	}
	return &InProc{ch: make(chan observe.Observation, capacity)}
}

// Publish queues o, waiting while the bus is full.
func (b *InProc) Publish(ctx context.Context, o observe.Observation) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	select {
	case b.ch <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// C is the receiving end; it is closed by Close once publishers are done.
func (b *InProc) C() <-chan observe.Observation { return b.ch }

// Len is the number of observations waiting (a queue-depth gauge).
func (b *InProc) Len() int { return len(b.ch) }

// Close stops new publishes and closes C after those in progress finish, so
// that a consumer drains everything that was accepted.
func (b *InProc) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.ch)
	}
}
