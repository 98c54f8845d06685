// Package bustest is the contract every bus.Consumer must keep, run by
// each implementation's tests (inproc, jetstream), as storetest is for
// the stores.
package bustest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Factory makes a fresh, empty bus for one test: the publisher sensors
// write to, and open, which returns a consumer of what was published (a
// new one at each call where the bus has more than one; the same one
// in-process).
type Factory func(t *testing.T) (pub bus.Publisher, open func() bus.Consumer)

// Run checks the contract on buses made by f.
func Run(t *testing.T, f Factory) {
	t.Run("EverythingPublishedIsFetchedOnce", func(t *testing.T) { everythingOnce(t, f) })
	t.Run("EmptyFetchWaitsThenReturnsNothing", func(t *testing.T) { emptyFetch(t, f) })
	t.Run("FetchReturnsCtxErrWhenCtxEnds", func(t *testing.T) { ctxEnds(t, f) })
	t.Run("CloseLosesNothingPublished", func(t *testing.T) { closeLosesNothing(t, f) })
}

// Observations returns n synthetic observations with distinct ids.
func Observations(n int) []observe.Observation {
	r := rand.New(rand.NewPCG(11, 12))
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	out := make([]observe.Observation, n)
	for i := range out {
		out[i] = storetest.Observation(r, at.Add(time.Duration(i)*time.Millisecond), i)
	}
	return out
}

// fetchAll fetches from c, acknowledging each batch, until want distinct
// observations arrived or Fetch returns an error (returned, with
// ErrClosed as nil). A duplicate or an oversized batch fails the test.
func fetchAll(t *testing.T, c bus.Consumer, most, want int, got map[string]bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < want {
		b, err := c.Fetch(ctx, most, 50*time.Millisecond)
		if errors.Is(err, bus.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		obs := b.Observations()
		if len(obs) > most {
			t.Fatalf("Fetch(%d) returned %d observations", most, len(obs))
		}
		for _, o := range obs {
			if got[o.ID] {
				t.Fatalf("observation %s fetched twice", o.ID)
			}
			got[o.ID] = true
		}
		if err := b.Ack(ctx); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
	}
	return nil
}

func publishAll(ctx context.Context, pub bus.Publisher, obs []observe.Observation) error {
	for i := range obs {
		if err := pub.Publish(ctx, obs[i]); err != nil {
			return fmt.Errorf("publish %d: %w", i, err)
		}
	}
	return nil
}

func everythingOnce(t *testing.T, f Factory) {
	pub, open := f(t)
	obs := Observations(300)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- publishAll(ctx, pub, obs) }() // a bus may be smaller than 300
	got := map[string]bool{}
	if err := fetchAll(t, open(), 7, len(obs), got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		if !got[o.ID] {
			t.Fatalf("observation %s published, never fetched", o.ID)
		}
	}
}

func emptyFetch(t *testing.T, f Factory) {
	_, open := f(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := open().Fetch(ctx, 10, 20*time.Millisecond)
	if err != nil {
		t.Fatalf("Fetch on an empty bus: %v, want an empty batch", err)
	}
	if b == nil || len(b.Observations()) != 0 {
		t.Fatalf("Fetch on an empty bus returned %v", b)
	}
}

func ctxEnds(t *testing.T, f Factory) {
	_, open := f(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := open().Fetch(ctx, 10, time.Hour)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Fetch with an ended ctx: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch with an ended ctx waited")
	}
}

// Everything published before Close reaches ingest: from this consumer
// before it reports ErrClosed (in-process), or from the next one (a
// durable bus keeps what was not fetched).
func closeLosesNothing(t *testing.T, f Factory) {
	pub, open := f(t)
	obs := Observations(50)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := open()
	// Publish what the bus can take without a reader, then close.
	n := 0
	for ; n < len(obs); n++ {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := pub.Publish(pctx, obs[n])
		pcancel()
		if err != nil {
			break
		}
	}
	if n == 0 {
		t.Fatal("the bus accepted nothing")
	}
	c.Close()
	got := map[string]bool{}
	if err := fetchAll(t, c, 5, n, got); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(ctx, 8, 10*time.Millisecond); !errors.Is(err, bus.ErrClosed) {
		t.Fatalf("Fetch after Close and drain: %v, want bus.ErrClosed", err)
	}
	if len(got) < n {
		if err := fetchAll(t, open(), 5, n, got); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range obs[:n] {
		if !got[o.ID] {
			t.Fatalf("observation %s accepted before Close, never fetched", o.ID)
		}
	}
}
