package inproc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/observe"
)

func TestContract(t *testing.T) {
	bustest.Run(t, func(t *testing.T) (bus.Publisher, func() bus.Consumer) {
		b := New(16)
		return b, func() bus.Consumer { return b }
	})
}

// A sensor that stops still hands over what it saw last: with room on the
// bus, a publish with an ended context is accepted, not lost.
func TestPublishWithEndedContextIsAcceptedWhenThereIsRoom(t *testing.T) {
	b := New(2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i, o := range bustest.Observations(2) {
		if err := b.Publish(ctx, o); err != nil {
			t.Fatalf("publish %d with room on the bus: %v", i, err)
		}
	}
	if err := b.Publish(ctx, bustest.Observations(3)[2]); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish to a full bus with an ended context: %v, want context.Canceled", err)
	}
	b.Close()
	if err := b.Publish(context.Background(), bustest.Observations(1)[0]); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("publish after Close: %v, want bus.ErrClosed", err)
	}
	got, err := b.Fetch(context.Background(), 10, time.Hour)
	if err != nil || len(got.Observations()) != 2 {
		t.Fatalf("Fetch after Close: %v, %v; want the 2 accepted", got, err)
	}
}

// A Slice hands a file's observations out in order, at most most at a
// time, then reports ErrClosed.
func TestSliceHandsOutEverythingInOrderThenCloses(t *testing.T) {
	obs := bustest.Observations(10)
	s := NewSlice(obs)
	var ids []string
	for {
		b, err := s.Fetch(context.Background(), 4, 0)
		if errors.Is(err, bus.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := len(b.Observations()); n == 0 || n > 4 {
			t.Fatalf("batch of %d", n)
		}
		for _, o := range b.Observations() {
			ids = append(ids, o.ID)
		}
	}
	if len(ids) != len(obs) {
		t.Fatalf("%d handed out, want %d", len(ids), len(obs))
	}
	for i := range obs {
		if ids[i] != obs[i].ID {
			t.Fatalf("observation %d is %s, want %s", i, ids[i], obs[i].ID)
		}
	}
	if s.Len() != 0 {
		t.Fatalf("Len %d after all was fetched", s.Len())
	}
}

// A publish blocked on a full bus returns when the bus is closed or its
// consumer fails, and Close itself never waits on the consumer.
func TestBlockedPublishReturnsOnCloseAndFail(t *testing.T) {
	for _, how := range []string{"close", "fail"} {
		b := New(1)
		if err := b.Publish(context.Background(), observe.Observation{ID: "a"}); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- b.Publish(context.Background(), observe.Observation{ID: "b"}) }()
		// The second publish is blocked (the bus holds one): it cannot
		// have returned, since nothing fetched.
		closed := make(chan struct{})
		go func() {
			if how == "close" {
				b.Close()
			} else {
				b.Fail(errors.New("disk full"))
			}
			close(closed)
		}()
		select {
		case err := <-got:
			if !errors.Is(err, bus.ErrClosed) {
				t.Fatalf("%s: blocked publish returned %v, want bus.ErrClosed", how, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the blocked publish never returned", how)
		}
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: did not return", how)
		}
		// What was accepted is still there for Fetch.
		batch, err := b.Fetch(context.Background(), 10, time.Millisecond)
		if err != nil || len(batch.Observations()) != 1 {
			t.Fatalf("%s: fetch after: %v, %v; want the one accepted observation", how, batch, err)
		}
	}
}
