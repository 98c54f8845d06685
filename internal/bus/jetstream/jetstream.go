// Package jetstream carries observations between machines over NATS
// JetStream: sensors publish, one ingest consumes into the store.
//
// Delivery is at least once and nothing is lost on a crash. A sensor's
// Publish returns only when JetStream has stored the observation (a file
// stream by default) and acknowledged it; the observation id is the message
// id, so a sensor that re-publishes after a lost ack is de-duplicated by the
// server. The consumer acknowledges a batch only after the handler (ingest:
// place, route, commit to the store) returned nil; a crash before that
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
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

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

// Consume hands batches of observations to handle until ctx ends,
// acknowledging each batch only when handle returned nil. On an error the
// batch is not acknowledged (JetStream redelivers it) and Consume returns
// the error. A message that does not decode is terminated (never
// redelivered) and logged with its stream sequence: a bad record must not
// block the stream.
func (b *Bus) Consume(ctx context.Context, handle func(ctx context.Context, batch []observe.Observation) error) error {
	cons, err := b.st.CreateOrUpdateConsumer(ctx, js.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		AckPolicy:     js.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 4 * b.cfg.Batch,
	})
	if err != nil {
		return fmt.Errorf("jetstream consumer %s: %w", b.cfg.Consumer, err)
	}
	batch := make([]observe.Observation, 0, b.cfg.Batch)
	msgs := make([]js.Msg, 0, b.cfg.Batch)
	for ctx.Err() == nil {
		mb, err := cons.Fetch(b.cfg.Batch, js.FetchMaxWait(250*time.Millisecond))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("jetstream fetch: %w", err)
		}
		batch, msgs = batch[:0], msgs[:0]
		for m := range mb.Messages() {
			o, err := Decode(m.Data())
			if err != nil {
				meta, _ := m.Metadata()
				var seq uint64
				if meta != nil {
					seq = meta.Sequence.Stream
				}
				b.log.Error("jetstream: message is not an observation; dropped", "stream_seq", seq, "subject", m.Subject(), "err", err)
				_ = m.Term()
				continue
			}
			batch, msgs = append(batch, o), append(msgs, m)
		}
		if err := mb.Error(); err != nil && !errors.Is(err, js.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("jetstream fetch: %w", err)
		}
		if len(batch) == 0 {
			continue
		}
		if err := handle(context.WithoutCancel(ctx), batch); err != nil {
			for _, m := range msgs {
				_ = m.Nak()
			}
			return err
		}
		for i, m := range msgs {
			if err := m.DoubleAck(context.WithoutCancel(ctx)); err != nil {
				// Stored but not acknowledged: it comes back and the store skips it.
				b.log.Warn("jetstream: ack lost; the observation will be redelivered and skipped", "id", batch[i].ID, "err", err)
			}
		}
	}
	return nil
}
