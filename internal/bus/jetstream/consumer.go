package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Consumer reads the stream with the durable consumer, for one ingest. It
// is a bus.Consumer: a batch is acknowledged only when ingest says it is
// committed, and one that is not (Nak, or a crash) is handed over again.
// A message may hold several observations (PublishBatch, DecodeMessage):
// it is acknowledged only once every one of them is committed.
type Consumer struct {
	b    *Bus
	cons js.Consumer

	closed      atomic.Bool
	pending     atomic.Int64  // messages after the last one fetched, as the server last said
	perMsgMilli atomic.Int64  // observations a message held in the last fetch, × 1000
	carried     atomic.Int64  // observations in carry
	undecodable atomic.Uint64 // lines dropped because they were not observations
	fetchErrors atomic.Uint64 // fetches that failed while the server was away
	outage      atomic.Bool   // the last fetch failed (log the first of an outage only)

	mu    sync.Mutex // carry, between Fetch and Fetch after Close
	carry []fetched  // messages fetched from the server and not yet handed out
}

// fetched is a message and the observations it holds.
type fetched struct {
	m   js.Msg
	obs []observe.Observation
}

var (
	_ bus.Consumer       = (*Consumer)(nil)
	_ bus.BatchPublisher = (*Bus)(nil)
)

// Consumer returns the durable consumer, reading only the deployment's
// subjects (Subject + ".>"): one that exists as wanted is used as it is
// (ingest's NATS user needs no more than to read its info, fetch and
// acknowledge), as is one without a filter on a stream that takes those
// subjects alone (it reads the same messages), one that differs is
// updated and a missing one created.
// A NATS user without the right to do so gets an error that says so
// (ErrPermission), naming what differs.
func (b *Bus) Consumer(ctx context.Context) (*Consumer, error) {
	st, err := b.stream(ctx)
	if err != nil {
		return nil, err
	}
	gctx, done := b.guard(ctx)
	defer done()
	want := js.ConsumerConfig{
		Durable:       b.cfg.Consumer,
		AckPolicy:     js.AckExplicitPolicy,
		AckWait:       b.cfg.AckWait,
		MaxAckPending: b.cfg.MaxAckPending,
		FilterSubject: b.cfg.Subject + ".>",
	}
	cons, err := st.Consumer(gctx, b.cfg.Consumer)
	what := "does not exist"
	switch {
	case err == nil:
		have := cons.CachedInfo().Config
		reads := readsAll(have)
		if have.AckPolicy == want.AckPolicy && have.AckWait == want.AckWait && have.MaxAckPending == want.MaxAckPending && reads == "" &&
			len(have.FilterSubjects) == 0 && (have.FilterSubject == want.FilterSubject || have.FilterSubject == "" && onlySubject(st, want.FilterSubject)) {
			return b.newConsumer(cons), nil
		}
		what = fmt.Sprintf("exists with ack wait %v, max ack pending %d and filter %q where this ingest wants %v, %d and %q (--ack-wait, --subject)%s",
			have.AckWait, have.MaxAckPending, strings.Join(append([]string{have.FilterSubject}, have.FilterSubjects...), " "),
			want.AckWait, want.MaxAckPending, want.FilterSubject, reads)
	case !errors.Is(err, js.ErrConsumerNotFound):
		return nil, fmt.Errorf("jetstream consumer %s: %w", b.cfg.Consumer, refusal(gctx, err))
	}
	cons, err = st.CreateOrUpdateConsumer(gctx, want)
	if err != nil {
		err = refusal(gctx, err)
		if errors.Is(err, ErrPermission) {
			return nil, fmt.Errorf("jetstream %s: consumer %s of stream %s %s, and this NATS user may not create or update it (%w): have it made with an admin user (docs/deployment.md, NATS users and permissions)",
				b.url(), b.cfg.Consumer, b.cfg.Stream, what, err)
		}
		return nil, fmt.Errorf("jetstream consumer %s of stream %s %s, and NATS would not create or update it: %w", b.cfg.Consumer, b.cfg.Stream, what, err)
	}
	return b.newConsumer(cons), nil
}

// readsAll says what in a consumer's settings makes it read other than
// every message of the stream, whole, at once and until acknowledged
// ("" if nothing): deliver policy and start, replay at the original
// rate, headers only (the observations dropped as undecodable), a
// number of deliveries after which a message is given up (left in the
// stream, never stored), a pause not yet over. Such a consumer is not used as it is.
func readsAll(c js.ConsumerConfig) string {
	var d []string
	if c.DeliverPolicy != js.DeliverAllPolicy || c.OptStartSeq != 0 || c.OptStartTime != nil {
		d = append(d, fmt.Sprintf("deliver policy %s", c.DeliverPolicy))
	}
	if c.ReplayPolicy != js.ReplayInstantPolicy {
		d = append(d, fmt.Sprintf("replay policy %s", c.ReplayPolicy))
	}
	if c.HeadersOnly {
		d = append(d, "headers only")
	}
	if c.MaxDeliver > 0 {
		d = append(d, fmt.Sprintf("max deliver %d", c.MaxDeliver))
	}
	// The nats tool (natscli 0.5) writes a zero pause_until into every
	// consumer it makes: a time already past pauses nothing.
	if c.PauseUntil != nil && c.PauseUntil.After(time.Now()) {
		d = append(d, "paused until "+c.PauseUntil.UTC().Format(time.RFC3339))
	}
	if len(d) == 0 {
		return ""
	}
	return "; it reads with " + strings.Join(d, ", ") + " where this ingest reads every message whole, at once, until acknowledged"
}

// onlySubject reports whether the stream takes subject alone, so that a
// consumer without a filter (made before ingest set one, or by hand)
// reads exactly what one filtered to subject reads: it is used as it is,
// since updating it needs rights ingest's NATS user may not have, and
// servers before 2.10 may refuse to change a consumer's filter.
func onlySubject(st js.Stream, subject string) bool {
	subs := st.CachedInfo().Config.Subjects
	return len(subs) == 1 && subs[0] == subject
}

func (b *Bus) newConsumer(cons js.Consumer) *Consumer {
	c := &Consumer{b: b, cons: cons}
	c.perMsgMilli.Store(1000)
	return c
}

// Fetch implements bus.Consumer. It hands out whole messages, up to most
// observations (or the one message, when it alone holds more): it asks
// the server for as many messages as most observations fill at the
// number a message held in the last fetch, and keeps what it got beyond
// most for the next Fetch (unacknowledged meanwhile, as ingest's batch
// is). A line of a message that does not decode is dropped, logged with
// the message's stream sequence and counted (Undecodable), as one
// observation each: the message's other lines go on; a message with no
// observation at all is terminated (never redelivered): a bad record must
// not block the stream. While the server is away (a restart) Fetch waits
// up to wait and returns what it has, possibly nothing, counting the
// failure (FetchErrors) and logging the first of an outage: ingest keeps
// running and resumes when the connection does. After Close, Fetch
// returns bus.ErrClosed at once; what it kept is handed back (Nak) by
// Close, or by the Fetch in progress as it returns: what was not handed
// out stays in the stream for another ingest.
func (c *Consumer) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.handBackIfClosed() // closed while this Fetch ran
	if c.closed.Load() {
		c.handBack()
		return nil, bus.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	most, wait = max(most, 1), max(wait, time.Millisecond)
	out := &batch{c: c}
	if c.handOut(out, most) {
		return out, nil
	}
	mb, err := c.cons.Fetch(c.messagesFor(most), js.FetchMaxWait(wait), js.FetchMaxBytes(c.maxBytes(most)))
	if err == nil {
		msgs, obs := 0, 0
		for m := range mb.Messages() {
			if f, ok := c.take(m); ok {
				c.carry = append(c.carry, f)
				msgs, obs = msgs+1, obs+len(f.obs)
			}
		}
		if msgs > 0 {
			c.perMsgMilli.Store(max(1000, int64(obs)*1000/int64(msgs)))
		}
		err = mb.Error()
		c.handOut(out, most)
	}
	switch {
	case ctx.Err() != nil && len(out.msgs) == 0:
		return nil, ctx.Err()
	case err == nil || errors.Is(err, js.ErrNoMessages) || errors.Is(err, nats.ErrTimeout) || ctx.Err() != nil:
		c.outage.Store(false)
		return out, nil
	case c.b.nc.IsClosed():
		out.Nak()
		c.handBack()
		return nil, fmt.Errorf("jetstream fetch: %w", err)
	}
	c.fetchErrors.Add(1)
	if !c.outage.Swap(true) {
		c.b.log.Warn("jetstream: fetch failed; ingest waits for NATS", "url", c.b.url(), "err", err)
	}
	if len(out.msgs) == 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	return out, nil
}

// messagesFor is how many messages to ask for to fill most observations,
// at the number a message held in the last fetch (rounded down: what
// would go past most waits in the carry).
func (c *Consumer) messagesFor(most int) int {
	return max(1, int(int64(most)*1000/max(1000, c.perMsgMilli.Load())))
}

// maxBytes bounds one fetch's bytes, so that a guess of messagesFor that
// is far too high (old messages of one observation, then batches) cannot
// fetch hundreds of megabytes: room for most observations of 8 KiB,
// and never less than twice the largest message the server takes (a
// message larger than a fetch's bytes would never be delivered).
func (c *Consumer) maxBytes(most int) int {
	mp := int(c.b.nc.MaxPayload())
	if mp <= 0 {
		mp = 1 << 20
	}
	return max(2*mp, most*8<<10)
}

// handOut moves whole messages from the carry to out while they fit in
// most observations (the first always): it reports whether out got any.
func (c *Consumer) handOut(out *batch, most int) bool {
	n := 0
	for n < len(c.carry) {
		f := c.carry[n]
		if len(out.msgs) > 0 && len(out.obs)+len(f.obs) > most {
			break
		}
		out.add(f)
		c.carried.Add(-int64(len(f.obs)))
		c.carry[n] = fetched{}
		n++
	}
	c.carry = c.carry[n:]
	if len(c.carry) == 0 {
		c.carry = nil
	}
	return len(out.msgs) > 0
}

// handBack hands the carry back to the server for redelivery.
func (c *Consumer) handBack() {
	for _, f := range c.carry {
		_ = f.m.Nak()
		c.carried.Add(-int64(len(f.obs)))
	}
	c.carry = nil
}

// take decodes m; a message with no observation in it is terminated and
// ok is false. Each line that is not an observation is counted and
// logged (one line for the message).
func (c *Consumer) take(m js.Msg) (f fetched, ok bool) {
	meta, _ := m.Metadata()
	if meta != nil {
		c.pending.Store(int64(meta.NumPending))
	}
	obs, bad, dropped := DecodeMessage(m.Data())
	if dropped > 0 {
		var seq uint64
		if meta != nil {
			seq = meta.Sequence.Stream
		}
		c.undecodable.Add(uint64(dropped))
		c.b.log.Error("jetstream: message lines that are not observations; dropped", "stream_seq", seq, "subject", m.Subject(),
			"dropped", dropped, "kept", len(obs), "err", bad[0])
	}
	if len(obs) == 0 {
		_ = m.Term()
		return f, false
	}
	c.carried.Add(int64(len(obs)))
	return fetched{m: m, obs: obs}, true
}

// FetchErrors is the number of fetches that failed because the server
// was away or did not answer.
func (c *Consumer) FetchErrors() uint64 { return c.fetchErrors.Load() }

// Len estimates the observations waiting for this ingest: the messages
// the server last said were waiting beyond those fetched, times the
// observations a message held in the last fetch, and those fetched and
// not yet handed out.
func (c *Consumer) Len() int {
	return int(c.pending.Load()*c.perMsgMilli.Load()/1000 + c.carried.Load())
}

// Undecodable is the number of message lines dropped because they were
// not observations (each counted once a delivery: a message that also
// held good lines and is handed over again counts its bad ones again).
func (c *Consumer) Undecodable() uint64 { return c.undecodable.Load() }

// Close stops fetching; the connection stays open (Bus.Close closes it)
// so that the batch in hand can still be acknowledged. Messages fetched
// and not yet handed out are handed back (Nak) at once, or by a Fetch
// in progress as it returns: another ingest gets them without waiting
// for the ack wait, though no Fetch follows (an ingest that stopped on
// an error).
func (c *Consumer) Close() {
	c.closed.Store(true)
	if c.mu.TryLock() {
		c.handBack()
		c.mu.Unlock()
	}
}

// handBackIfClosed hands the carry back once the consumer is closed.
func (c *Consumer) handBackIfClosed() {
	if c.closed.Load() {
		c.handBack()
	}
}

// batch is a fetched batch with its messages, to acknowledge or hand back.
type batch struct {
	c    *Consumer
	obs  []observe.Observation
	msgs []js.Msg // nil once acknowledged by AckSome
	of   []int32  // by observation: the index of its message
	left []int    // by message: its observations AckSome has not yet had
	done []bool   // by observation: had by AckSome (nil before)
}

// add appends f's message and observations.
func (b *batch) add(f fetched) {
	m := int32(len(b.msgs))
	b.msgs = append(b.msgs, f.m)
	b.left = append(b.left, len(f.obs))
	b.obs = append(b.obs, f.obs...)
	for range f.obs {
		b.of = append(b.of, m)
	}
}

// AckSome says that the observations at idx are committed (while
// another of the batch waits in ingest's gate), and acknowledges each
// message all of whose observations now are, as Ack does: each sent
// without waiting, the last one waiting for the server's confirmation. A
// message with an observation not yet committed stays unacknowledged. It
// lets go of those messages, and of every observation of the batch
// (Observations is then empty; ingest took them when fetched): the batch
// may stay in ingest's hands up to --head-wait for one of them.
func (b *batch) AckSome(ctx context.Context, idx []int) error {
	if b.done == nil {
		b.done = make([]bool, len(b.of))
	}
	var ms []js.Msg
	for _, i := range idx {
		if i < 0 || i >= len(b.of) || b.done[i] {
			continue
		}
		b.done[i] = true
		m := b.of[i]
		if b.left[m]--; b.left[m] == 0 && b.msgs[m] != nil {
			ms = append(ms, b.msgs[m])
			b.msgs[m] = nil
		}
	}
	b.obs = nil
	if len(ms) == 0 {
		return nil
	}
	var first error
	for _, m := range ms[:len(ms)-1] {
		first = cmp.Or(first, m.Ack())
	}
	first = cmp.Or(ms[len(ms)-1].DoubleAck(ctx), first)
	if first != nil {
		b.c.b.log.Warn("jetstream: acks lost or unconfirmed; those observations will be redelivered and skipped", "acks", len(ms), "err", first)
	}
	return first
}

func (b *batch) Observations() []observe.Observation { return b.obs }

// MessageOf gives the message observation i came in (its index in the
// batch) and its bytes, which the batch keeps until that message is
// acknowledged (0 once it is).
func (b *batch) MessageOf(i int) (msg, bytes int) {
	m := int(b.of[i])
	if b.msgs[m] == nil {
		return m, 0
	}
	return m, len(b.msgs[m].Data())
}

// Ack acknowledges every message: each with its own ack (the consumer's
// AckExplicit policy: an AckAll would also acknowledge what other ingests
// sharing the consumer fetched and have not committed), sent without
// waiting, and the last one waits for the server's confirmation. The
// server processes a consumer's acks in the order a connection sent
// them, so that one answer confirms the whole batch: one round trip a
// batch, not one a message. Acks that are lost are logged (one line for
// the batch), not returned: the observations are stored, they will come
// back and the store skips their ids.
func (b *batch) Ack(ctx context.Context) error {
	var todo []js.Msg
	for _, m := range b.msgs {
		if m != nil {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	lost, first := 0, error(nil)
	for _, m := range todo[:len(todo)-1] {
		if err := m.Ack(); err != nil {
			lost, first = lost+1, cmp.Or(first, err)
		}
	}
	if err := todo[len(todo)-1].DoubleAck(ctx); err != nil {
		// Unconfirmed: any of them may be lost.
		lost, first = len(todo), cmp.Or(first, err)
	}
	if lost > 0 {
		b.c.b.log.Warn("jetstream: acks lost or unconfirmed; those observations will be redelivered and skipped", "lost", lost, "batch", len(b.msgs), "err", first)
	}
	return nil
}

// Redelivers says that a Nak hands the batch over again (ingest's gate
// hands back what it still holds at a stop, rather than failing it).
func (b *batch) Redelivers() bool { return true }

// InProgress puts off every message's redelivery by the ack wait: ingest
// still holds one of them (waiting for its batch's signature).
func (b *batch) InProgress() {
	for _, m := range b.msgs {
		if m != nil {
			_ = m.InProgress()
		}
	}
}

// Nak hands every message not yet acknowledged back for redelivery,
// with all its observations (those already committed come again, and the
// store skips their ids).
func (b *batch) Nak() {
	for _, m := range b.msgs {
		if m != nil {
			_ = m.Nak()
		}
	}
}
