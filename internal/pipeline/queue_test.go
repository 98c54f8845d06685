package pipeline

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/spool"
	"github.com/vigil-oss/vigil/internal/observe"
)

// hub is a remote bus that can be away.
type hub struct {
	away atomic.Bool
	mu   sync.Mutex
	got  []string
}

func (h *hub) Publish(_ context.Context, o observe.Observation) error {
	if h.away.Load() {
		return errors.New("nats: no servers available for connection")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, o.ID)
	return nil
}

func (h *hub) ids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// With a queue, a sensor cut off from the hub keeps observing: what it
// emits waits on disk, the health and the metrics say so, and it reaches
// the hub in order once the hub is back, before Run returns.
func TestSensorQueueHoldsObservationsWhileTheHubIsAway(t *testing.T) {
	h := &hub{}
	h.away.Store(true)
	qc := spool.DefaultConfig(t.TempDir())
	qc.RetryEvery = 10 * time.Millisecond
	reg := prometheus.NewRegistry()
	p, err := New(context.Background(), Config{Store: openStore(t), Remote: h, Queue: &qc, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	obs := bustest.Observations(50)
	emitted := make(chan struct{})
	back := make(chan struct{})
	if err := p.AddSensor("cut-off", func(ctx context.Context) error {
		for _, o := range obs {
			if err := p.Publisher().Publish(ctx, o); err != nil {
				return err
			}
		}
		close(emitted)
		<-back
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-emitted
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := p.QueueHealth(); ok; ok, _ = p.QueueHealth() {
		if time.Now().After(deadline) {
			t.Fatal("the queue's health never said the hub was away")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if d := p.Delivery(); d.Queue == nil || d.Queue.Pending != 50 || d.Queue.Published != 0 || d.Accepted != 50 {
		t.Fatalf("delivery while the hub is away: %+v %+v", d, d.Queue)
	}
	if got := gathered(t, reg); got["vigil_queue_depth"] != 50 || got["vigil_queue_bus_up"] != 0 {
		t.Fatalf("metrics while the hub is away: depth %v, bus up %v", got["vigil_queue_depth"], got["vigil_queue_bus_up"])
	}
	h.away.Store(false)
	close(back)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := h.ids()
	if len(got) != len(obs) {
		t.Fatalf("hub got %d observations, want %d", len(got), len(obs))
	}
	for i := range obs {
		if got[i] != obs[i].ID {
			t.Fatalf("hub got %s at %d, want %s", got[i], i, obs[i].ID)
		}
	}
	if d := p.Delivery(); d.Queue.Published != 50 || d.Queue.Pending != 0 || d.Queue.Dropped != 0 {
		t.Fatalf("delivery after the run: %+v", d.Queue)
	}
}
