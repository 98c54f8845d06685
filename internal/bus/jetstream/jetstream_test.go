package jetstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// startServer runs a real NATS server with JetStream in-process, on a
// loopback port of its choosing, storing in a temporary directory.
func startServer(t *testing.T) string {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	s, err := server.NewServer(opts)
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

func observations(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(7, 7))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	out := make([]observe.Observation, n)
	for i := range out {
		out[i] = storetest.Observation(r, at.Add(time.Duration(i)*time.Millisecond), i)
	}
	return out
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func stored(t *testing.T, st store.Store) map[string]observe.Observation {
	t.Helper()
	out := map[string]observe.Observation{}
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		if _, dup := out[o.ID]; dup {
			t.Errorf("observation %s stored twice", o.ID)
		}
		out[o.ID] = *o
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// consumeUntil runs Consume into st until want observations are stored.
func consumeUntil(t *testing.T, b *Bus, st store.Store, want int, fail func(batch int) error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	got, batches := 0, 0
	err := b.Consume(ctx, func(ctx context.Context, batch []observe.Observation) error {
		mu.Lock()
		defer mu.Unlock()
		batches++
		if fail != nil {
			if err := fail(batches); err != nil {
				return err
			}
		}
		if err := st.InsertObservations(ctx, batch); err != nil {
			return err
		}
		got += len(batch)
		if got >= want {
			cancel()
		}
		return nil
	})
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("timed out with %d of %d observations stored", got, want)
	}
	return err
}

// Everything a sensor published reaches ingest exactly as it was, once,
// even when ingest fails on a batch and starts again. "Once" is counted
// at the handler, not in the store: the store's insert ignores an id it
// already holds, so a duplicate would not show there.
func TestPublishConsumeNothingLostNothingDoubled(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	cfg := DefaultConfig(url)
	cfg.Batch = 64
	pub, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	obs := observations(501)
	last := obs[500] // published once everything else has been accepted
	obs = obs[:500]
	for i := range obs {
		if err := pub.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	// A sensor that lost an ack publishes again: the server de-duplicates.
	for i := range 50 {
		if err := pub.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	var mu sync.Mutex
	accepted := map[string]int{} // by id: batches the handler accepted it in
	handled := 0
	lastSent := false
	boom := errors.New("disk full")
	// consume runs Consume into st, counting what the handler accepts,
	// until stop says so (or 30 s pass); fail, if set, fails a batch.
	consume := func(b *Bus, fail func(batch int) bool, stop func() bool) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := b.Consume(cctx, func(hctx context.Context, batch []observe.Observation) error {
			mu.Lock()
			defer mu.Unlock()
			handled++
			if fail != nil && fail(handled) {
				return boom
			}
			if err := st.InsertObservations(hctx, batch); err != nil {
				return err
			}
			for i := range batch {
				accepted[batch[i].ID]++
			}
			if stop() {
				cancel()
			}
			return nil
		})
		if cctx.Err() == context.DeadlineExceeded {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("timed out with %d of %d observations accepted", len(accepted), len(obs))
		}
		return err
	}
	ing, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The third batch fails (say the disk was full): Consume returns the
	// error and that batch is not acknowledged.
	err = consume(ing, func(n int) bool { return n == 3 }, func() bool { return false })
	if !errors.Is(err, boom) {
		t.Fatalf("Consume returned %v, want the handler's error", err)
	}
	ing.Close()
	// Ingest restarts: the rest, and the failed batch, arrive. Once all
	// are in, one more observation is published; everything the stream
	// held before it (a duplicate the server let through, say) reaches
	// the handler before it does.
	ing2, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ing2.Close()
	err = consume(ing2, nil, func() bool {
		if !lastSent && len(accepted) == len(obs) {
			lastSent = true
			if err := pub.Publish(ctx, last); err != nil {
				t.Error(err)
				return true
			}
		}
		return accepted[last.ID] > 0
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range obs {
		if n := accepted[obs[i].ID]; n != 1 {
			t.Errorf("observation %d (%s) accepted %d times, want once", i, obs[i].ID, n)
		}
	}
	if n := accepted[last.ID]; n != 1 {
		t.Errorf("the last observation accepted %d times, want once", n)
	}
	// Every message was acknowledged: the work queue is empty.
	info, err := ing2.st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("the stream still holds %d messages, want none unacknowledged", info.State.Msgs)
	}
	got := stored(t, st)
	if len(got) != len(obs)+1 {
		t.Fatalf("stored %d observations, want %d", len(got), len(obs)+1)
	}
	for i := range obs {
		g, ok := got[obs[i].ID]
		if !ok {
			t.Fatalf("observation %d (%s) lost", i, obs[i].ID)
		}
		if !g.Equal(&obs[i]) {
			t.Fatalf("observation %d changed on the way:\ngot  %+v\nwant %+v", i, g, obs[i])
		}
	}
}

// A message that is not an observation is dropped (and logged), not
// redelivered forever in front of good ones.
func TestBadMessageDoesNotBlockTheStream(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	cfg := DefaultConfig(url)
	b := openBus(t, cfg)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := b.js.Publish(ctx, cfg.Subject+".rogue", []byte(`{"id":"x","time":"yesterday"}`)); err != nil {
		t.Fatal(err)
	}
	obs := observations(3)
	for i := range obs {
		if err := b.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	st := openStore(t)
	if err := consumeUntil(t, b, st, 3, nil); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st); len(got) != 3 {
		t.Fatalf("stored %d, want the 3 good observations", len(got))
	}
}

func TestSubjectTokenIsOneToken(t *testing.T) {
	for in, want := range map[string]string{"bt-paris-1": "bt-paris-1", "a.b": "a_b", "x*>": "x__", "": "unnamed", "a b": "a_b"} {
		if got := subjectToken(in); got != want {
			t.Errorf("subjectToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenNeedsAURL(t *testing.T) {
	if _, err := Open(context.Background(), Config{}, nil); err == nil {
		t.Fatal("Open without a URL succeeded")
	}
}

// The Consumer keeps the bus.Consumer contract on a real JetStream
// server: each subtest has its own stream.
func TestContract(t *testing.T) {
	url := startServer(t)
	n := 0
	bustest.Run(t, func(t *testing.T) (bus.Publisher, func() bus.Consumer) {
		n++
		cfg := DefaultConfig(url)
		cfg.Stream, cfg.Subject, cfg.Consumer = fmt.Sprintf("CONTRACT_%d", n), fmt.Sprintf("contract%d", n), "ingest"
		ctx := context.Background()
		pub, err := Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pub.Close)
		return pub, func() bus.Consumer {
			b, err := Open(ctx, cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			c, err := b.Consumer(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	})
}

// TestSignatureTravels: a signed observation's chain and batch signature
// cross the bus unchanged (ingest checks them, and a bundle carries them).
func TestSignatureTravels(t *testing.T) {
	o := storetest.Observation(rand.New(rand.NewPCG(1, 1)), time.Date(2026, 11, 23, 13, 34, 13, 0, time.UTC), 1)
	o.Chain = observe.Chain{Key: make([]byte, 32), ID: "c0ffee", Seq: 3, Prev: make([]byte, 32), BatchSig: make([]byte, 64)}
	o.Chain.Key[0], o.Chain.BatchSig[63] = 1, 2
	b, err := Encode(&o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(&o) {
		t.Fatalf("chain after the bus: %+v, want %+v", got.Chain, o.Chain)
	}
}

// Names NATS would refuse, or that would make a subject of several
// tokens or a wildcard, are refused before connecting.
func TestValidateRefusesBadNames(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"stream with a dot":      func(c *Config) { c.Stream = "A.B" },
		"empty stream":           func(c *Config) { c.Stream = "" },
		"consumer with a space":  func(c *Config) { c.Consumer = "in gest" },
		"wildcard subject":       func(c *Config) { c.Subject = "vigil.*" },
		"subject ending in dot":  func(c *Config) { c.Subject = "vigil." },
		"subject with empty tok": func(c *Config) { c.Subject = "vigil..obs" },
	} {
		c := DefaultConfig("nats://127.0.0.1:1")
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := DefaultConfig("nats://127.0.0.1:1")
	if err := c.Validate(); err != nil {
		t.Fatalf("the default: %v", err)
	}
}

// Two deployments on one NATS, each with its own stream, subject and
// consumer, never see each other's observations.
func TestTwoDeploymentsShareOneNATS(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	obs := observations(20)
	for i, names := range [][3]string{{"PARIS_OBS", "paris.obs", "paris-ingest"}, {"LYON_OBS", "lyon.obs", "lyon-ingest"}} {
		cfg := DefaultConfig(url)
		cfg.Stream, cfg.Subject, cfg.Consumer = names[0], names[1], names[2]
		b, err := Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		for _, o := range obs[i*10 : i*10+10] {
			if err := b.Publish(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, names := range [][3]string{{"PARIS_OBS", "paris.obs", "paris-ingest"}, {"LYON_OBS", "lyon.obs", "lyon-ingest"}} {
		cfg := DefaultConfig(url)
		cfg.Stream, cfg.Subject, cfg.Consumer = names[0], names[1], names[2]
		b, err := Open(ctx, cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		c, err := b.Consumer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bt, err := c.Fetch(ctx, 100, 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		got := bt.Observations()
		if len(got) != 10 {
			t.Fatalf("%s: %d observations, want its own 10", names[0], len(got))
		}
		for j := range got {
			if got[j].ID != obs[i*10+j].ID {
				t.Fatalf("%s got %s, want %s", names[0], got[j].ID, obs[i*10+j].ID)
			}
		}
		if err := bt.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A lazily opened bus starts while NATS is away: publishes fail at once,
// and succeed once the server is there.
func TestOpenLazyStartsWithoutTheServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := DefaultConfig(fmt.Sprintf("nats://127.0.0.1:%d", port))
	b, err := OpenLazy(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	o := observations(1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.Publish(ctx, o); err == nil {
		t.Fatal("publish with no server succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a publish with no server took %s: it must fail at once", d)
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	defer s.Shutdown()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := b.Publish(pctx, o)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after the server came: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchThree publishes three observations to a consumer without a limit
// on unacknowledged messages and an hour's ack wait, and fetches them as
// one batch.
func fetchThree(t *testing.T) (*Consumer, bus.Batch) {
	t.Helper()
	cfg := DefaultConfig(startServer(t))
	cfg.AckWait, cfg.MaxAckPending = time.Hour, -1
	b, err := Open(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := context.Background()
	for _, o := range observations(3) {
		if err := b.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Fetch(ctx, 3, 5*time.Second)
	if err != nil || len(bt.Observations()) != 3 {
		t.Fatalf("fetch: %v, %d observations", err, len(bt.Observations()))
	}
	return c, bt
}

// TestAckSomeLeavesOnlyTheRestPending: ingest acknowledges each
// observation of a bus batch as it is stored while its gate still holds
// another; a Nak then hands back only that one, and only it counts
// against the consumer's limit of unacknowledged messages.
func TestAckSomeLeavesOnlyTheRestPending(t *testing.T) {
	ctx := context.Background()
	c, bt := fetchThree(t)
	held := bt.Observations()[1].ID
	pa := bt.(interface {
		AckSome(context.Context, []int) error
	})
	if err := pa.AckSome(ctx, []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	info, err := c.cons.Info(ctx)
	if err == nil && info.Config.MaxAckPending != -1 {
		t.Errorf("MaxAckPending %d, want -1 (no limit)", info.Config.MaxAckPending)
	}
	if err != nil || info.NumAckPending != 1 {
		t.Fatalf("after two of three acknowledged: %d unacknowledged (%v), want 1", info.NumAckPending, err)
	}
	bt.Nak()
	again, err := c.Fetch(ctx, 3, 5*time.Second)
	if err != nil || len(again.Observations()) != 1 || again.Observations()[0].ID != held {
		t.Fatalf("after the Nak: %v, %d observations, want only %s", err, len(again.Observations()), held)
	}
	if err := again.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestAckSomeLetsGoOfTheObservation: a bus batch stays in ingest's hands
// as long as its gate holds one observation of it (up to --head-wait, an
// hour): a publisher that slips one headless observation into every
// fetch must not keep every other observation fetched that hour in
// memory. What AckSome acknowledged is let go of.
func TestAckSomeLetsGoOfTheObservation(t *testing.T) {
	ctx := context.Background()
	_, bt := fetchThree(t)
	held := bt.Observations()[1].ID
	if err := bt.(*batch).AckSome(ctx, []int{0, 2}); err != nil {
		t.Fatal(err)
	}
	got := bt.(*batch)
	for _, i := range []int{0, 2} {
		if got.msgs[i] != nil {
			t.Errorf("message %d acknowledged, still held by its batch", i)
		}
	}
	if len(got.obs) != 0 {
		t.Errorf("the batch still holds its %d observations (ingest took them when fetched)", len(got.obs))
	}
	if meta, err := got.msgs[1].Metadata(); err != nil || meta.Sequence.Stream != 2 {
		t.Fatalf("the message not acknowledged (%s) was let go of: %v", held, err)
	}
	got.InProgress()
	bt.Nak()
	if err := bt.Ack(ctx); err != nil {
		t.Fatal(err)
	}
}

// A batch's Ack costs one round trip, not one a message: the messages'
// acks go without waiting and only the last waits for the server's
// answer, which confirms them all (the server processes a consumer's
// acks in order). When Ack returns, nothing of the batch is pending an
// ack and the work queue has let the messages go.
func TestAckOneRoundTripABatch(t *testing.T) {
	url := startServer(t)
	ctx := context.Background()
	cfg := DefaultConfig(url)
	b, err := Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	obs := observations(200)
	for i := range obs {
		if err := b.Publish(ctx, obs[i]); err != nil {
			t.Fatal(err)
		}
	}
	c, err := b.Consumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for got < len(obs) {
		bt, err := c.Fetch(ctx, 100, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		n := len(bt.Observations())
		if n == 0 {
			t.Fatalf("fetched nothing with %d of %d left", len(obs)-got, len(obs))
		}
		got += n
		before := b.nc.Stats()
		if err := bt.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		after := b.nc.Stats()
		if in := after.InMsgs - before.InMsgs; in > 1 {
			t.Errorf("acking %d messages took %d answers from the server, want 1", n, in)
		}
		if out := after.OutMsgs - before.OutMsgs; out != uint64(n) {
			t.Errorf("acking %d messages sent %d, want one ack each", n, out)
		}
		ci, err := c.cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending != 0 {
			t.Errorf("after Ack, %d messages still pending an ack", ci.NumAckPending)
		}
	}
	si, err := b.st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs != 0 {
		t.Errorf("the work queue still holds %d messages after every batch was acknowledged", si.State.Msgs)
	}
}
