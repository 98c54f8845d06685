package pipeline

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "v.db"), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// storedIDs returns the ids of every stored observation; a duplicate
// fails the test.
func storedIDs(t *testing.T, st store.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		if out[o.ID] {
			t.Errorf("observation %s stored twice", o.ID)
		}
		out[o.ID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// flood is a sensor that publishes as fast as the bus takes, and records
// what the bus accepted. When told to stop it publishes one last
// observation, as a sensor does with what it saw last: the bus must still
// be open for it.
type flood struct {
	pub      bus.Publisher
	obs      []observe.Observation
	mu       sync.Mutex
	accepted map[string]bool
	n        chan int // each acceptance's count
	last     error    // the last publish's error
}

func newFlood(pub bus.Publisher, n int) *flood {
	return &flood{pub: pub, obs: bustest.Observations(n), accepted: map[string]bool{}, n: make(chan int, n)}
}

func (f *flood) accept(o observe.Observation) {
	f.mu.Lock()
	f.accepted[o.ID] = true
	n := len(f.accepted)
	f.mu.Unlock()
	f.n <- n
}

func (f *flood) run(ctx context.Context) error {
	for _, o := range f.obs[:len(f.obs)-1] {
		if err := f.pub.Publish(ctx, o); err != nil {
			break
		}
		f.accept(o)
	}
	<-ctx.Done()
	o := f.obs[len(f.obs)-1]
	if f.last = f.pub.Publish(context.WithoutCancel(ctx), o); f.last == nil {
		f.accept(o)
	}
	return nil
}

// waitAccepted waits until the flood's bus accepted at least n.
func (f *flood) waitAccepted(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case got := <-f.n:
			if got >= n {
				return
			}
		case <-deadline:
			t.Fatalf("the bus accepted fewer than %d observations in 30 s", n)
		}
	}
}

// Shutdown keeps the order data flows in: the sensor stops (and its last
// publish is still accepted), the bus closes, ingest commits everything
// the bus accepted, and the analysis flushes after ingest's last batch.
// Asserted on the store, not the logs.
func TestShutdownCommitsEverythingAcceptedThenFlushesTheAnalysis(t *testing.T) {
	st := openStore(t)
	icfg := ingest.DefaultConfig()
	icfg.BatchSize, icfg.FlushEvery = 5, 5*time.Millisecond
	p, err := New(context.Background(), Config{Store: st, Analysis: st, Ingest: icfg, BusCapacity: 8})
	if err != nil {
		t.Fatal(err)
	}
	f := newFlood(p.Publisher(), 2000)
	addSensor(t, p, "flood", f.run)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.waitAccepted(t, 100) // well in flight: batches of 5 through a bus of 8
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30 s after ctx ended: a stage waits on one stopped before it")
	}
	if f.last != nil {
		t.Fatalf("the sensor's last publish, made as it stopped, was refused (%v): the bus closed before the sensor stopped", f.last)
	}
	got := storedIDs(t, st)
	if len(got) != len(f.accepted) {
		t.Fatalf("stored %d observations, the bus accepted %d", len(got), len(f.accepted))
	}
	for id := range f.accepted {
		if !got[id] {
			t.Fatalf("observation %s accepted by the bus, never stored", id)
		}
	}
	snap, err := st.AnalysisLoad(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, maxSeq, err := st.AnalysisSeqs(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Watermark != maxSeq {
		t.Fatalf("the analysis saved watermark %d, the store's last observation is %d: it flushed before ingest drained", snap.Watermark, maxSeq)
	}
	if tot := p.Tally().Total(); tot != len(got) {
		t.Fatalf("tally %d, stored %d", tot, len(got))
	}
}

// A file's observations (a consumer that runs dry) end the run by
// themselves, all committed in one transaction.
func TestExhaustedConsumerEndsTheRun(t *testing.T) {
	st := openStore(t)
	obs := bustest.Observations(40)
	icfg := ingest.DefaultConfig()
	icfg.BatchSize = len(obs)
	p, err := New(context.Background(), Config{Store: st, Consumer: inproc.NewSlice(obs), Ingest: icfg})
	if err != nil {
		t.Fatal(err)
	}
	p.Go("a service that runs until told to stop", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for ctx with its input exhausted")
	}
	if s := p.Stats(); s.Committed != len(obs) || s.Batches != 1 {
		t.Fatalf("ingest %+v, want %d in 1 batch", s, len(obs))
	}
	if got := storedIDs(t, st); len(got) != len(obs) {
		t.Fatalf("stored %d, want %d", len(got), len(obs))
	}
}

// A sensor that fails stops the others and the services, and what the bus
// accepted before is still committed; Run returns the sensor's error.
func TestFailingSensorStopsTheRunAndKeepsWhatWasAccepted(t *testing.T) {
	st := openStore(t)
	p, err := New(context.Background(), Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	obs := bustest.Observations(30)
	boom := errors.New("socket gone")
	addSensor(t, p, "failing", func(ctx context.Context) error {
		for _, o := range obs {
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
		}
		return boom
	})
	addSensor(t, p, "steady", func(ctx context.Context) error { <-ctx.Done(); return nil })
	p.Go("web", func(ctx context.Context) error { <-ctx.Done(); return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); !errors.Is(err, boom) {
		t.Fatalf("Run: %v, want the sensor's error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run went on until ctx ended after a sensor failed")
	}
	if got := storedIDs(t, st); len(got) != len(obs) {
		t.Fatalf("stored %d, want the %d accepted before the failure", len(got), len(obs))
	}
}

// refusing is a remote bus that refuses everything.
type refusing struct{}

func (refusing) Publish(context.Context, observe.Observation) error {
	return errors.New("no route to NATS")
}

// A publish the bus refused is counted where operators look
// (vigil_bus_publish_errors_total) and returned to the sensor; it is not
// tallied as sent.
func TestFailedPublishIsCountedAndReturned(t *testing.T) {
	reg := prometheus.NewRegistry()
	p, err := New(context.Background(), Config{Store: openStore(t), Remote: refusing{}, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, o := range bustest.Observations(3) {
		if p.Publisher().Publish(context.Background(), o) != nil {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("%d publishes returned an error, want 3", failed)
	}
	if got := gathered(t, reg)["vigil_bus_publish_errors_total"]; got != 3 {
		t.Fatalf("vigil_bus_publish_errors_total = %v, want 3", got)
	}
	if n := p.Tally().Total(); n != 0 {
		t.Fatalf("tally %d after refused publishes, want 0", n)
	}
}

// Every stage's metrics are registered, named vigil_<part>_<what>_<unit>.
func TestEveryStageRegistersItsMetrics(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	p, err := New(context.Background(), Config{Store: st, Analysis: st, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	addSensor(t, p, "three", func(ctx context.Context) error {
		for _, o := range bustest.Observations(3) {
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := gathered(t, reg)
	for name, want := range map[string]float64{
		"vigil_bus_published_total": 3, "vigil_bus_publish_errors_total": 0,
		"vigil_ingest_received_total": 3, "vigil_ingest_committed_total": 3, "vigil_ingest_errors_total": 0,
		"vigil_ingest_lag_seconds": 3, "vigil_ingest_queue_depth": 0,
		"vigil_analysis_received_total": 3, "vigil_analysis_processed_total": 3, "vigil_analysis_errors_total": 0,
		"vigil_analysis_held": 0, "vigil_ingest_unplaced_total": 0,
	} {
		v, ok := got[name]
		if !ok {
			t.Errorf("%s not registered", name)
		} else if v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
}

// gathered returns each metric's value (a histogram's sample count), by
// name, summed over labels.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] += 0
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

func addSensor(t *testing.T, p *Pipeline, name string, run func(context.Context) error) {
	t.Helper()
	if err := p.AddSensor(name, run); err != nil {
		t.Fatal(err)
	}
}

// A pipeline without ingest (a server) has no bus: a sensor added to it
// is refused, not left publishing nowhere.
func TestNoIngestRefusesSensors(t *testing.T) {
	st := openStore(t)
	p, err := New(context.Background(), Config{Store: st, Analysis: st, NoIngest: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Publisher() != nil {
		t.Fatal("a pipeline without ingest has a publisher")
	}
	if err := p.AddSensor("orphan", func(context.Context) error { return nil }); err == nil {
		t.Fatal("a sensor was added to a pipeline without ingest")
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	p.Go("web", func(ctx context.Context) error { close(ran); <-ctx.Done(); return nil })
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-ran
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
}

// Services stop in the reverse order they were added: the checkpointer
// added before the web server is told to stop only after the server has
// returned (its last requests' audit records are in the last checkpoint).
func TestServicesStopInReverseOrder(t *testing.T) {
	p, err := New(context.Background(), Config{Store: openStore(t), NoIngest: true})
	if err != nil {
		t.Fatal(err)
	}
	cpTold := make(chan struct{})
	p.Go("checkpointer", func(ctx context.Context) error {
		<-ctx.Done()
		close(cpTold)
		return nil
	})
	early := false
	p.Go("web", func(ctx context.Context) error {
		<-ctx.Done()
		// Shutting down: the checkpointer must not be told to stop
		// meanwhile. Unordered, it is told at once.
		select {
		case <-cpTold:
			early = true
		case <-time.After(100 * time.Millisecond):
		}
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if early {
		t.Fatal("the checkpointer was told to stop while the web server was still stopping")
	}
}

// A service that ends on its own (the demo's story, once told) leaves the
// services added before it running until the run is told to stop: the
// demo's web server, checkpointer and batch signer stopped when its story
// ended, a few minutes in, while the sensor went on.
func TestAServiceThatEndsLeavesTheOthersRunning(t *testing.T) {
	p, err := New(context.Background(), Config{Store: openStore(t), NoIngest: true})
	if err != nil {
		t.Fatal(err)
	}
	webStopped := make(chan struct{})
	p.Go("web", func(ctx context.Context) error {
		<-ctx.Done()
		close(webStopped)
		return nil
	})
	storyDone := make(chan struct{})
	p.Go("story", func(ctx context.Context) error { close(storyDone); return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-storyDone
	select {
	case <-webStopped:
		t.Fatal("the web server was told to stop when the story ended")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after ctx ended")
	}
	select {
	case <-webStopped:
	default:
		t.Fatal("Run returned with the web server still running")
	}
}

func TestValidateRefusesPartsThatCannotWorkTogether(t *testing.T) {
	st := openStore(t)
	for name, c := range map[string]Config{
		"no store":                 {},
		"remote bus and consumer":  {Store: st, Remote: refusing{}, Consumer: inproc.New(1)},
		"analysis with remote bus": {Store: st, Remote: refusing{}, Analysis: st},
		"no ingest with a bus":     {Store: st, NoIngest: true, Consumer: inproc.New(1)},
		"negative poll":            {Store: st, AnalysisPoll: -time.Second},
		"queue without remote bus": {Store: st, Queue: &spool.Config{Dir: t.TempDir()}},
	} {
		if _, err := New(context.Background(), c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// failingStore refuses every insert, as a full disk would.
type failingStore struct{ *sqlite.Store }

func (failingStore) InsertObservations(context.Context, []observe.Observation) error {
	return errors.New("disk full")
}

// InsertObservationsCounted fails too: ingest uses it where the store has
// it (store.NewCounter), and the embedded store's would succeed.
func (failingStore) InsertObservationsCounted(context.Context, []observe.Observation) (int, error) {
	return 0, errors.New("disk full")
}

// When ingest fails for good, a sensor that publishes without a deadline
// (the eD2K sensor's context.WithoutCancel) must not wait forever on a
// full bus: its publish fails, counted, and Run returns the ingest error
// (found in review: Run hung, and Close deadlocked on the bus's lock).
func TestIngestFailureDoesNotHangTheRun(t *testing.T) {
	p, err := New(context.Background(), Config{Store: failingStore{openStore(t)}, BusCapacity: 4, Ingest: ingest.Config{BatchSize: 1}})
	if err != nil {
		t.Fatal(err)
	}
	obs := bustest.Observations(64)
	published := make(chan error, 1)
	addSensor(t, p, "ed2k-like", func(ctx context.Context) error {
		var err error
		for _, o := range obs {
			if err = p.Publisher().Publish(context.WithoutCancel(ctx), o); err != nil {
				break
			}
		}
		published <- err
		<-ctx.Done()
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Run: %v, want the ingest error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return 20 s after ingest failed")
	}
	if err := <-published; !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("the blocked publish returned %v, want an error wrapping bus.ErrClosed", err)
	}
}

// TestSignedSensorsAreCheckedAtIngest: with a sensor key, what the sensors
// publish is hash-chained and signed, the batch held when they stop is
// still published (the last observation, sent as the sensor stopped,
// included), and ingest checks every batch.
func TestSignedSensorsAreCheckedAtIngest(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	p, err := New(context.Background(), Config{Store: st, SensorKey: key, Signer: evidence.SignerConfig{BatchSize: 7, Interval: time.Hour},
		Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	f := newFlood(p.Publisher(), 50)
	addSensor(t, p, "flood", f.run)
	n := runUntilAccepted(t, p, f, st, 49)
	m := gathered(t, reg)
	if n != 50 || m["vigil_ingest_signed_batches_total"] != 8 || m["vigil_ingest_signature_failures_total"] != 0 {
		t.Fatalf("stored %d (want 50); signed batches %v (want 8: 7 of 7 and the last 1), failures %v",
			n, m["vigil_ingest_signed_batches_total"], m["vigil_ingest_signature_failures_total"])
	}
}

// runUntilAccepted runs p until f's bus accepted n observations, stops it
// (the flood publishes its last one as it stops), and returns how many
// observations st holds, each of which must be signed.
func runUntilAccepted(t *testing.T, p *Pipeline, f *flood, st store.Store, n int) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f.waitAccepted(t, n)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stored := 0
	if err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		stored++
		if !o.Signed() {
			t.Errorf("observation %s stored unsigned", o.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return stored
}
