package jetstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
)

// startServerWith is startServer with a max_payload of its own.
func startServerWith(t *testing.T, maxPayload int32) string {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true, MaxPayload: maxPayload})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// body is obs's lines, as one message body.
func body(t *testing.T, obs ...observe.Observation) []byte {
	t.Helper()
	var b []byte
	for i := range obs {
		line, err := Encode(&obs[i])
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, line...)
	}
	return b
}

// fetchN fetches and acknowledges until n observations came, in order.
func fetchN(t *testing.T, c *Consumer, most, n int) []observe.Observation {
	t.Helper()
	ctx := context.Background()
	var got []observe.Observation
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			t.Fatalf("fetched %d of %d observations", len(got), n)
		}
		bt, err := c.Fetch(ctx, most, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, bt.Observations()...)
		if err := bt.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func streamMsgs(t *testing.T, b *Bus) uint64 {
	t.Helper()
	st, err := b.stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// A batch travels as few messages as fit under the server's max_payload
// (half of it, at most MaxMessageBytes), and comes out whole, in order,
// unchanged.
func TestBatchRoundTripsInFewMessages(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxPayload int32
		n          int
	}{{"default max_payload", 0, 600}, {"64 KiB max_payload", 64 << 10, 200}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := Open(ctx, DefaultConfig(startServerWith(t, tc.maxPayload)), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			obs := observations(tc.n)
			size := len(body(t, obs...))
			if err := b.PublishBatch(ctx, obs); err != nil {
				t.Fatal(err)
			}
			limit := min(MaxMessageBytes, int(b.nc.MaxPayload())/2)
			msgs := streamMsgs(t, b)
			if want := uint64(size/limit + 1); msgs > want+1 || msgs < want {
				t.Fatalf("%d observations (%d bytes) in %d messages, want about %d of at most %d bytes", len(obs), size, msgs, want, limit)
			}
			c, err := b.Consumer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got := fetchN(t, c, 1000, len(obs))
			if len(got) != len(obs) {
				t.Fatalf("got %d observations, want %d", len(got), len(obs))
			}
			for i := range obs {
				if !got[i].Equal(&obs[i]) {
					t.Fatalf("observation %d changed on the way or out of order:\ngot  %+v\nwant %+v", i, got[i], obs[i])
				}
			}
			for seq := uint64(1); seq <= msgs; seq++ {
				st, _ := b.stream(ctx)
				if m, err := st.GetMsg(ctx, seq); err == nil && len(m.Data) > limit {
					t.Errorf("message %d holds %d bytes, more than %d", seq, len(m.Data), limit)
				}
			}
		})
	}
}

// A message of several observations is acknowledged only once every one
// of them is committed: AckSome of some of them (the others held by
// ingest's signature gate) leaves it unacknowledged, and a Nak hands
// back all of it.
func TestMessageIsAckedOnlyWhenAllItsObservationsAre(t *testing.T) {
	cfg := DefaultConfig(startServer(t))
	cfg.AckWait, cfg.MaxAckPending = time.Hour, -1
	ctx := context.Background()
	b := openBus(t, cfg)
	obs := observations(4)
	// Sent as a sensor of this release sends them, written out by hand:
	// three observations in one message, then one alone.
	for _, bd := range [][]byte{body(t, obs[:3]...), body(t, obs[3])} {
		if _, err := b.js.Publish(ctx, cfg.Subject+".s", bd); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Fetch(ctx, 10, 5*time.Second)
	if err != nil || len(bt.Observations()) != 4 {
		t.Fatalf("fetch: %v, %d observations, want 4 from 2 messages", err, len(bt.Observations()))
	}
	pa := bt.(interface {
		AckSome(context.Context, []int) error
	})
	unacked := func() int {
		t.Helper()
		info, err := c.cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending
	}
	// Observation 1 waits in the gate; 0, 2 and 3 are committed.
	if err := pa.AckSome(ctx, []int{0, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if n := unacked(); n != 1 {
		t.Fatalf("with observation 1 of the first message held: %d messages unacknowledged, want 1 (that message)", n)
	}
	bt.Nak()
	again, err := c.Fetch(ctx, 10, 5*time.Second)
	if err != nil || len(again.Observations()) != 3 {
		t.Fatalf("after the Nak: %v, %d observations, want the whole first message (3)", err, len(again.Observations()))
	}
	pa = again.(interface {
		AckSome(context.Context, []int) error
	})
	if err := pa.AckSome(ctx, []int{0, 1}); err != nil {
		t.Fatal(err)
	}
	if n := unacked(); n != 1 {
		t.Fatalf("two of three committed: %d unacknowledged, want 1", n)
	}
	if err := pa.AckSome(ctx, []int{2, 2}); err != nil {
		t.Fatal(err)
	}
	if n := unacked(); n != 0 {
		t.Fatalf("all three committed: %d unacknowledged, want 0", n)
	}
	if n := streamMsgs(t, b); n != 0 {
		t.Fatalf("the work queue holds %d messages, want 0", n)
	}
}

// Messages of the previous release (one observation each, as 'vigil
// observations publish' and older sensors send them), messages of one
// from Publish and batches from PublishBatch, mixed on one stream, all
// arrive, in order.
func TestOldAndNewMessagesMix(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig(startServer(t))
	b := openBus(t, cfg)
	obs := observations(40)
	old := func(o observe.Observation) {
		// Exactly what the previous release's Publish sent.
		if _, err := b.js.PublishMsg(ctx, &nats.Msg{Subject: cfg.Subject + ".old", Data: body(t, o)}); err != nil {
			t.Fatal(err)
		}
	}
	old(obs[0])
	if err := b.PublishBatch(ctx, obs[1:11]); err != nil {
		t.Fatal(err)
	}
	old(obs[11])
	if err := b.Publish(ctx, obs[12]); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishBatch(ctx, obs[13:14]); err != nil { // a batch of one
		t.Fatal(err)
	}
	for _, o := range obs[14:20] {
		old(o)
	}
	if err := b.PublishBatch(ctx, obs[20:]); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b); n != 12 {
		t.Fatalf("the stream holds %d messages, want 12", n)
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := fetchN(t, c, 7, len(obs))
	if len(got) != len(obs) {
		t.Fatalf("got %d, want %d", len(got), len(obs))
	}
	for i := range obs {
		if got[i].ID != obs[i].ID {
			t.Fatalf("observation %d is %s, want %s", i, got[i].ID, obs[i].ID)
		}
	}
}

// A batch published again (an ack that was lost) is the same messages
// with the same ids: the server's duplicate window drops them.
func TestBatchPublishedAgainIsDeduplicated(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, DefaultConfig(startServer(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	obs := observations(30)
	for range 2 {
		if err := b.PublishBatch(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	if n := streamMsgs(t, b); n != 1 {
		t.Fatalf("the stream holds %d messages, want the one batch", n)
	}
}

// A line that does not decode is dropped and counted as one bad
// observation, as a bad message of one was; the good lines of its
// message are stored, and the message is acknowledged once they are. A
// message of nothing but bad lines is terminated, each line counted.
func TestBadLineDropsOnlyItself(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig(startServer(t))
	b := openBus(t, cfg)
	obs := observations(5)
	mixed := slicesConcat(body(t, obs[0]), []byte("{\"id\":\"x\",\"time\":\"yesterday\"}\n"), body(t, obs[1], obs[2]), []byte("not json\n"))
	for _, bd := range [][]byte{mixed, []byte("{}\n\nnot json\n"), body(t, obs[3:]...)} {
		if _, err := b.js.Publish(ctx, cfg.Subject+".rogue", bd); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st := openStore(t)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stats, err := ingest.Run(rctx, &closing{c: c, want: 5}, st, ingest.DefaultConfig())
	if err != nil || stats.Committed != 5 {
		t.Fatalf("ingest: %+v, %v; want the 5 good observations", stats, err)
	}
	if got := stored(t, st); len(got) != 5 {
		t.Fatalf("stored %d, want 5", len(got))
	}
	if n := c.Undecodable(); n != 4 {
		t.Errorf("Undecodable %d, want 4 (two bad lines beside good ones, two in a message of only bad lines)", n)
	}
	if n := streamMsgs(t, b); n != 0 {
		t.Errorf("the work queue holds %d messages, want 0 (acknowledged, or terminated)", n)
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// closing is a Consumer that closes once want observations were fetched,
// so that ingest.Run returns.
type closing struct {
	c    *Consumer
	want int
	got  int
}

func (c *closing) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if c.got >= c.want {
		c.c.Close()
	}
	bt, err := c.c.Fetch(ctx, most, wait)
	if err == nil {
		c.got += len(bt.Observations())
	}
	return bt, err
}
func (c *closing) Len() int { return c.c.Len() }
func (c *closing) Close()   { c.c.Close() }

// An ingest that dies (its connection gone, nothing acknowledged) after
// committing part of what it fetched: the messages come back to the next
// ingest whole, and the store holds every observation exactly once.
func TestRedeliveryAfterAKillStoresOnce(t *testing.T) {
	ctx := context.Background()
	url := startServer(t)
	cfg := DefaultConfig(url)
	cfg.AckWait = time.Second
	pub := openBus(t, cfg)
	obs := observations(300)
	for i := 0; i < len(obs); i += 60 {
		if err := pub.PublishBatch(ctx, obs[i:i+60]); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	first, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	c1, err := first.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c1.Fetch(ctx, 150, 5*time.Second)
	if err != nil || len(bt.Observations()) != 120 {
		t.Fatalf("first ingest fetched %d (%v), want 120: two whole messages of 60 within 150", len(bt.Observations()), err)
	}
	// It commits a message and a half, then is killed before any ack.
	if err := st.InsertObservations(ctx, bt.Observations()[:90]); err != nil {
		t.Fatal(err)
	}
	first.Close()
	c2, err := pub.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stats, err := ingest.Run(rctx, &closing{c: c2, want: len(obs)}, st, ingest.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Committed-stats.Duplicates != len(obs)-90 || stats.Duplicates != 90 {
		t.Errorf("second ingest: %+v; want %d added and the 90 the first committed skipped", stats, len(obs)-90)
	}
	got := stored(t, st)
	if len(got) != len(obs) {
		t.Fatalf("stored %d, want %d", len(got), len(obs))
	}
	for i := range obs {
		if g, ok := got[obs[i].ID]; !ok || !g.Equal(&obs[i]) {
			t.Fatalf("observation %d lost or changed", i)
		}
	}
	if n := streamMsgs(t, pub); n != 0 {
		t.Errorf("the work queue holds %d messages, want 0", n)
	}
}

// Fetch hands out whole messages up to most observations (one message
// when it alone holds more), keeping the rest for the next Fetch: a
// store transaction stays about ingest's --batch whatever a message
// holds.
func TestFetchKeepsToMost(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig(startServer(t))
	b := openBus(t, cfg)
	obs := observations(400)
	// 100 old messages of one, then 6 batches of 50.
	for i := range 100 {
		if err := b.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 100; i < 400; i += 50 {
		if err := b.PublishBatch(ctx, obs[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < len(obs) {
		bt, err := c.Fetch(ctx, 80, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n := len(bt.Observations())
		if n == 0 {
			t.Fatalf("fetched nothing with %d left", len(obs)-len(got))
		}
		if n > 80 {
			t.Fatalf("Fetch(80) handed out %d observations", n)
		}
		for _, o := range bt.Observations() {
			got = append(got, o.ID)
		}
		if err := bt.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := range obs {
		if got[i] != obs[i].ID {
			t.Fatalf("observation %d is %s, want %s", i, got[i], obs[i].ID)
		}
	}
	// A message larger than most comes whole.
	if err := b.PublishBatch(ctx, observations(30)); err != nil {
		t.Fatal(err)
	}
	bt, err := c.Fetch(ctx, 10, 5*time.Second)
	if err != nil || len(bt.Observations()) != 30 {
		t.Fatalf("Fetch(10) of a message of 30: %d (%v), want the whole message", len(bt.Observations()), err)
	}
	// After Close, what Fetch kept goes back to the stream.
	_ = bt.Ack(ctx)
}

// A batch whose observations cannot all be encoded publishes the others
// and says which failed.
func TestPublishBatchNamesWhatFailed(t *testing.T) {
	ctx := context.Background()
	b, err := Open(ctx, DefaultConfig(startServer(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	obs := observations(5)
	obs[2].Time = time.Time{} // invalid: not encoded
	err = b.PublishBatch(ctx, obs)
	var be *bus.BatchError
	if !errors.As(err, &be) || fmt.Sprint(be.Failed) != "[2]" {
		t.Fatalf("PublishBatch: %v, want a BatchError naming observation 2", err)
	}
	if n := streamMsgs(t, b); n != 2 {
		t.Fatalf("the stream holds %d messages, want 2 (the runs before and after the bad one)", n)
	}
	if !strings.Contains(err.Error(), obs[2].ID) {
		t.Errorf("the error %q does not name the observation", err)
	}
}

// What a Fetch kept beyond most goes back to the stream when the
// consumer closes, though no Fetch follows (an ingest that stopped on a
// store error): another ingest gets it at once, not after the ack wait.
func TestCloseHandsBackWhatFetchKept(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig(startServer(t))
	cfg.AckWait = time.Minute
	b := openBus(t, cfg)
	obs := observations(150)
	for i := 0; i < len(obs); i += 50 {
		if err := b.PublishBatch(ctx, obs[i:i+50]); err != nil {
			t.Fatal(err)
		}
	}
	c1, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c1.Fetch(ctx, 50, 2*time.Second)
	if err != nil || len(bt.Observations()) != 50 {
		t.Fatalf("Fetch(50): %d (%v)", len(bt.Observations()), err)
	}
	if c1.Len() < 100 {
		t.Fatalf("the first fetch kept %d observations, want the other two messages", c1.Len())
	}
	if err := bt.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	c1.Close()
	other, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c2, err := other.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for deadline := time.Now().Add(5 * time.Second); got < 100 && time.Now().Before(deadline); {
		bt, err := c2.Fetch(ctx, 100, 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got += len(bt.Observations())
		_ = bt.Ack(ctx)
	}
	if got != 100 {
		t.Fatalf("another consumer got %d of the 100 observations the closed one kept, within 5 s (ack wait %s)", got, cfg.AckWait)
	}
}

// openBus opens a bus on cfg for the test, closed when it ends.
func openBus(t *testing.T, cfg Config) *Bus {
	t.Helper()
	b, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if _, err := b.stream(context.Background()); err != nil { // as ingest makes it
		t.Fatal(err)
	}
	return b
}
