package pages

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestMemo runs in a synctest bubble, so that it can wait until every
// concurrent request is blocked inside get instead of sleeping.
func TestMemo(t *testing.T) {
	synctest.Test(t, testMemo)
}

func testMemo(t *testing.T) {
	ctx := context.Background()
	m := newMemo(ctx, time.Minute, 10)
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var calls atomic.Int32
	release := make(chan struct{})
	slow := func(context.Context) (any, error) {
		<-release
		return int(calls.Add(1)), nil
	}
	// Concurrent first requests share one computation.
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = m.get(ctx, "k", t0, slow)
		}()
	}
	synctest.Wait() // every request is in get: one computing, the others waiting for it
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != 1 {
			t.Fatalf("request %d got %v, want the one computation's 1", i, v)
		}
	}
	// Fresh: kept.
	if v, _ := m.get(ctx, "k", t0.Add(30*time.Second), slow); v != 1 || calls.Load() != 1 {
		t.Fatalf("fresh: %v after %d calls", v, calls.Load())
	}
	// Stale: served as is, refreshed in the background.
	if v, _ := m.get(ctx, "k", t0.Add(2*time.Minute), slow); v != 1 {
		t.Fatalf("stale: %v, want the kept 1", v)
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() != 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for {
		v, _ := m.get(ctx, "k", t0.Add(2*time.Minute), slow)
		if v == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refresh never replaced the answer: %v", v)
		}
		time.Sleep(time.Millisecond)
	}
	// Too old: recomputed before answering.
	if v, _ := m.get(ctx, "k", t0.Add(time.Hour), slow); v != 3 {
		t.Fatalf("too old: %v, want a new computation (3)", v)
	}
	// Errors are not kept.
	boom := errors.New("boom")
	if _, err := m.get(ctx, "e", t0, func(context.Context) (any, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
	if v, err := m.get(ctx, "e", t0, func(context.Context) (any, error) { return 7, nil }); err != nil || v != 7 {
		t.Fatalf("after an error: %v, %v", v, err)
	}
}
