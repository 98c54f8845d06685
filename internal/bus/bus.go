// Package bus carries observations from sensors to ingest. Publisher is
// what a sensor writes to and Consumer what ingest reads from; inproc/ is
// the embedded default (a bounded channel in the process), jetstream/
// carries the same records between machines over NATS JetStream. Every
// Consumer passes the contract in bustest.
//
// A bus never drops a watched observation: when ingest falls behind,
// Publish blocks (and the sensor's own bounded queues and counters take
// the strain), it does not discard. A Publish that fails is the
// publisher's to count (Counted does); it is never silent.
package bus

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// ErrClosed is returned by Publish after Close, and by Fetch once the
// consumer is closed and holds nothing more to hand out.
var ErrClosed = errors.New("bus closed")

// Publisher is what a sensor writes observations to.
type Publisher interface {
	// Publish hands o to the bus, waiting while it is full. A nil error
	// means the bus holds o: it will reach a Consumer.
	Publish(ctx context.Context, o observe.Observation) error
}

// Consumer is what ingest reads observations from, in batches it
// acknowledges once they are committed.
type Consumer interface {
	// Fetch waits up to wait for up to most observations and returns them
	// as one Batch, possibly empty (never nil with a nil error). After
	// Close it first hands out what the consumer must still deliver
	// (in-process: everything that was accepted), then returns
	// ErrClosed. When ctx ends before anything arrived it returns
	// ctx.Err().
	Fetch(ctx context.Context, most int, wait time.Duration) (Batch, error)
	// Len is the number of observations waiting for ingest (a
	// queue-depth gauge).
	Len() int
	// Close stops the consumer: nothing new is accepted or fetched
	// beyond what Fetch must still hand out.
	Close()
}

// Batch is observations handed to ingest by a Consumer.
type Batch interface {
	// Observations are the batch's observations, in the bus's order.
	Observations() []observe.Observation
	// Ack says the batch is committed to the store: the bus may forget
	// it.
	Ack(ctx context.Context) error
	// Nak says the batch was not committed: a durable bus hands it over
	// again later.
	Nak()
}

// Delivered is a Batch of an in-process consumer: nothing to
// acknowledge, nothing to hand over again.
type Delivered []observe.Observation

// Observations implements Batch.
func (d Delivered) Observations() []observe.Observation { return d }

// Ack implements Batch; there is nothing to acknowledge.
func (Delivered) Ack(context.Context) error { return nil }

// Nak implements Batch; an in-process batch cannot be handed over again.
func (Delivered) Nak() {}
