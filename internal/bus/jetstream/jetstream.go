// Package jetstream carries observations between machines over NATS
// JetStream: sensors publish (Bus is a bus.Publisher), one ingest consumes
// into the store (Consumer is a bus.Consumer).
//
// Delivery is at least once and nothing is lost on a crash. A sensor's
// Publish returns only when JetStream has stored the observation (a file
// stream by default) and acknowledged it; the observation id is the message
// id, so a sensor that re-publishes after a lost ack is de-duplicated by the
// server. The consumer acknowledges a batch only after ingest has placed,
// routed and committed it to the store (Batch.Ack); a crash before that
// redelivers the batch, and the store skips ids it already holds.
//
// Each message is one observation in the JSON Lines form of package observe
// (one flat object), so that what crosses the wire is what an analyst can
// read and what 'vigil observations import' accepts.
package jetstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Config names the stream and consumer.
type Config struct {
	// URL of the NATS server, e.g. nats://127.0.0.1:4222.
	URL string
	// Stream is the JetStream stream (created if missing), Subject the
	// subject prefix: observations go to Subject + "." + sensor id.
	Stream, Subject string
	// Consumer is the durable consumer ingest reads with.
	Consumer string
	// MaxAge bounds how long the stream keeps observations nobody consumed
	// (ingest down for a long time); 0 keeps them until consumed.
	MaxAge time.Duration
	// Dedupe is the server's duplicate window for message ids.
	Dedupe time.Duration
	// Batch is the most observations the consumer hands over at once.
	Batch int
}

// DefaultConfig is a file-backed stream "VIGIL_OBSERVATIONS" on subject
// "vigil.obs.>" with a durable consumer "ingest".
func DefaultConfig(url string) Config {
	return Config{URL: url, Stream: "VIGIL_OBSERVATIONS", Subject: "vigil.obs", Consumer: "ingest",
		Dedupe: 10 * time.Minute, Batch: 1000}
}

// Bus is a connection to the stream.
type Bus struct {
	cfg Config
	nc  *nats.Conn
	js  js.JetStream
	st  js.Stream
	log *slog.Logger
}

// Open connects and creates (or updates) the stream. The URL must be given:
// there is no default server.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Bus, error) {
	if cfg.URL == "" {
		return nil, errors.New("jetstream: no NATS URL")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	nc, err := nats.Connect(cfg.URL, nats.Name("vigil"), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("jetstream: connect %s: %w", cfg.URL, err)
	}
	j, err := js.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream %s: %w", cfg.URL, err)
	}
	st, err := j.CreateOrUpdateStream(ctx, js.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   []string{cfg.Subject + ".>"},
		Storage:    js.FileStorage,
		Retention:  js.WorkQueuePolicy, // a message goes once it is acknowledged by ingest
		MaxAge:     cfg.MaxAge,
		Duplicates: cfg.Dedupe,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream %s: stream %s: %w", cfg.URL, cfg.Stream, err)
	}
	return &Bus{cfg: cfg, nc: nc, js: j, st: st, log: log}, nil
}

// Close closes the connection.
func (b *Bus) Close() { b.nc.Close() }

// subjectToken makes a sensor id safe as one subject token.
func subjectToken(s string) string {
	if s == "" {
		return "unnamed"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f:
			return '_'
		}
		return r
	}, s)
}

// Encode is the message body of o: one JSON Lines line.
func Encode(o *observe.Observation) ([]byte, error) {
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode reads a message body.
func Decode(b []byte) (observe.Observation, error) {
	var o observe.Observation
	err := observe.NewDecoder(bytes.NewReader(b)).Decode(&o)
	return o, err
}

// Publish stores o in the stream and waits for the server's ack. An
// observation without an id is given one first, so that a retry is
// recognised as the same message.
func (b *Bus) Publish(ctx context.Context, o observe.Observation) error {
	if o.ID == "" {
		o.ID = observe.NewID(o.Time)
	}
	body, err := Encode(&o)
	if err != nil {
		return err
	}
	_, err = b.js.PublishMsg(ctx, &nats.Msg{Subject: b.cfg.Subject + "." + subjectToken(o.Sensor.ID), Data: body},
		js.WithMsgID(o.ID), js.WithExpectStream(b.cfg.Stream))
	if err != nil {
		return fmt.Errorf("jetstream publish %s: %w", o.ID, err)
	}
	return nil
}

// Consumer reads the stream with the durable consumer, for one ingest. It
// is a bus.Consumer: a batch is acknowledged only when ingest says it is
// committed, and one that is not (Nak, or a crash) is handed over again.
type Consumer struct {
	b    *Bus
	cons js.Consumer

	closed      atomic.Bool
	pending     atomic.Int64  // messages after the last one fetched, as the server last said
	undecodable atomic.Uint64 // messages terminated because they were not observations
}

var _ bus.Consumer = (*Consumer)(nil)

// Consumer creates (or updates) the durable consumer and returns it.
func (b *Bus) Consumer(ctx context.Context) (*Consumer, error) {
	cons, err := b.st.CreateOrUpdateConsumer(ctx, js.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		AckPolicy:     js.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 4 * b.cfg.Batch,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream consumer %s: %w", b.cfg.Consumer, err)
	}
	return &Consumer{b: b, cons: cons}, nil
}

// Fetch implements bus.Consumer. A message that does not decode is
// terminated (never redelivered), logged with its stream sequence and
// counted (Undecodable): a bad record must not block the stream. After
// Close, Fetch returns bus.ErrClosed at once: what was not fetched stays
// in the stream for the next ingest.
func (c *Consumer) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if c.closed.Load() {
		return nil, bus.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mb, err := c.cons.Fetch(max(most, 1), js.FetchMaxWait(max(wait, time.Millisecond)))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("jetstream fetch: %w", err)
	}
	out := &batch{c: c}
	for m := range mb.Messages() {
		meta, _ := m.Metadata()
		if meta != nil {
			c.pending.Store(int64(meta.NumPending))
		}
		o, err := Decode(m.Data())
		if err != nil {
			var seq uint64
			if meta != nil {
				seq = meta.Sequence.Stream
			}
			c.undecodable.Add(1)
			c.b.log.Error("jetstream: message is not an observation; dropped", "stream_seq", seq, "subject", m.Subject(), "err", err)
			_ = m.Term()
			continue
		}
		out.obs, out.msgs = append(out.obs, o), append(out.msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, js.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
		out.Nak()
		return nil, fmt.Errorf("jetstream fetch: %w", err)
	}
	return out, nil
}

// Len is the number of messages the server last said were waiting for
// this consumer beyond those fetched.
func (c *Consumer) Len() int { return int(c.pending.Load()) }

// Undecodable is the number of messages dropped because they were not
// observations.
func (c *Consumer) Undecodable() uint64 { return c.undecodable.Load() }

// Close stops fetching; the connection stays open (Bus.Close closes it)
// so that the batch in hand can still be acknowledged.
func (c *Consumer) Close() { c.closed.Store(true) }

// batch is a fetched batch with its messages, to acknowledge or hand back.
type batch struct {
	c    *Consumer
	obs  []observe.Observation
	msgs []js.Msg
}

func (b *batch) Observations() []observe.Observation { return b.obs }

// Ack acknowledges every message, waiting for the server's confirmation.
// An ack that is lost is logged, not returned: the observation is stored,
// it will come back and the store skips its id.
func (b *batch) Ack(ctx context.Context) error {
	for i, m := range b.msgs {
		if err := m.DoubleAck(ctx); err != nil {
			b.c.b.log.Warn("jetstream: ack lost; the observation will be redelivered and skipped", "id", b.obs[i].ID, "err", err)
		}
	}
	return nil
}

// Nak hands every message back for redelivery.
func (b *batch) Nak() {
	for _, m := range b.msgs {
		_ = m.Nak()
	}
}

// Consume hands batches of observations to handle until ctx ends,
// acknowledging each batch only when handle returned nil. On an error the
// batch is not acknowledged (JetStream redelivers it) and Consume returns
// the error. It is Consumer's Fetch, Ack and Nak in a loop.
func (b *Bus) Consume(ctx context.Context, handle func(ctx context.Context, batch []observe.Observation) error) error {
	c, err := b.Consumer(ctx)
	if err != nil {
		return err
	}
	for ctx.Err() == nil {
		bt, err := c.Fetch(ctx, b.cfg.Batch, 250*time.Millisecond)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		obs := bt.Observations()
		if len(obs) == 0 {
			continue
		}
		if err := handle(context.WithoutCancel(ctx), obs); err != nil {
			bt.Nak()
			return err
		}
		_ = bt.Ack(context.WithoutCancel(ctx))
	}
	return nil
}
