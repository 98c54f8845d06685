package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var errDown = errors.New("connection refused")

// downStore refuses inserts while down is set, as a database server
// that restarts; then it stores them.
type downStore struct {
	store.Store
	down     atomic.Bool
	refusals atomic.Int32
}

func (d *downStore) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	if d.down.Load() {
		d.refusals.Add(1)
		return errDown
	}
	return d.Store.InsertObservations(ctx, obs)
}

// handingBack hands out its batch until it is acknowledged, as a durable
// bus redelivers a batch that was handed back (Nak), then closes. As
// JetStream, it hands the batch out again only once handed back: while
// ingest holds it (fetching the next batch while it commits this one),
// a Fetch finds nothing.
type handingBack struct {
	obs   []observe.Observation
	acked atomic.Bool
	out   atomic.Bool // handed out, neither acknowledged nor handed back
	naks  atomic.Int32
}

func (c *handingBack) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if c.acked.Load() {
		return nil, bus.ErrClosed
	}
	if c.out.Swap(true) {
		time.Sleep(time.Millisecond)
		return bus.Delivered(nil), nil
	}
	return &handedBatch{c: c, obs: append([]observe.Observation(nil), c.obs...)}, nil
}
func (c *handingBack) Len() int { return len(c.obs) }
func (c *handingBack) Close()   {}

type handedBatch struct {
	c   *handingBack
	obs []observe.Observation
}

func (b *handedBatch) Observations() []observe.Observation { return b.obs }
func (b *handedBatch) Ack(context.Context) error           { b.c.acked.Store(true); return nil }
func (b *handedBatch) Nak()                                { b.c.naks.Add(1); b.c.out.Store(false) }

// While the store is unavailable (Config.Unavailable says so of its
// error: a database restarting), ingest hands the batch back and waits
// for the store instead of exiting; once it is back, the batch is stored.
func TestIngestWaitsForAnUnavailableStore(t *testing.T) {
	st := &downStore{Store: openStore(t)}
	st.down.Store(true)
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &handingBack{obs: []observe.Observation{storetest.Observation(r, at, 0), storetest.Observation(r, at, 1)}}
	cfg := DefaultConfig()
	cfg.Metrics = NewMetrics()
	cfg.Unavailable = func(err error) bool { return errors.Is(err, errDown) }
	cfg.RetryEvery = 10 * time.Millisecond
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() { s, err := Run(context.Background(), c, st, cfg); done <- result{s, err} }()
	deadline := time.Now().Add(10 * time.Second)
	for st.refusals.Load() < 3 {
		select {
		case res := <-done:
			t.Fatalf("ingest stopped while the store was unavailable: %+v, %v", res.st, res.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest did not try the store again")
		}
		time.Sleep(time.Millisecond)
	}
	st.down.Store(false)
	var res result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ingest did not finish once the store was back")
	}
	if res.err != nil || res.st.Committed != 2 || !c.acked.Load() || c.naks.Load() < 3 {
		t.Fatalf("Run: %+v, %v; acked %v, handed back %d times: want 2 committed and acknowledged, handed back while the store was away",
			res.st, res.err, c.acked.Load(), c.naks.Load())
	}
	n := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("stored %d (%v), want 2", n, err)
	}
}

// An error the classifier does not call unavailable (a refusal of the
// data, a full disk) still ends ingest, and a stop during an outage ends
// it without losing the batch (handed back, never acknowledged).
func TestIngestStopsOnOtherStoreErrorsAndOnStopDuringAnOutage(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Unavailable = func(err error) bool { return errors.Is(err, errDown) }
	cfg.RetryEvery = 10 * time.Millisecond
	boom := errors.New("disk full")
	c := &recordingConsumer{obs: []observe.Observation{storetest.Observation(r, at, 0)}}
	if _, err := Run(context.Background(), c, failingStore{err: boom}, cfg); !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the store's error", err)
	}

	st := &downStore{Store: openStore(t)}
	st.down.Store(true)
	hb := &handingBack{obs: []observe.Observation{storetest.Observation(r, at, 1)}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, hb, st, cfg); done <- err }()
	deadline := time.Now().Add(10 * time.Second)
	for st.refusals.Load() < 2 {
		select {
		case err := <-done:
			t.Fatalf("ingest stopped at the outage's first refusal: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("ingest did not try the store again")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, errDown) {
			t.Fatalf("Run stopped during an outage: %v, want the store's error (the batch is not stored)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ingest did not stop during an outage")
	}
	if hb.acked.Load() {
		t.Fatal("a batch the store refused was acknowledged")
	}
}
