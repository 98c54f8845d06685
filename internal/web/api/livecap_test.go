package api

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
)

// TestLiveStreamsPerUserAreBounded: every open stream holds a goroutine
// and re-checks its credential against the account store every
// RecheckEvery; one token opening thousands of streams would make the
// server do that thousands of times a second. A user holds at most
// MaxStreamsPerUser streams at once: one more is refused (429, audited as
// denied), and a stream that ends frees its place.
func TestLiveStreamsPerUserAreBounded(t *testing.T) {
	hub := NewHub(8)
	url, m := liveEnv(t, LiveConfig{Hub: hub, MaxStreamsPerUser: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cancels []context.CancelFunc
	for range 3 {
		c, stop := context.WithCancel(ctx)
		cancels = append(cancels, stop)
		if resp := openEvents(t, c, url); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream within the bound: %d", resp.StatusCode)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); hub.Len() != 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams subscribed, want 3", hub.Len())
		}
	}
	resp := openEvents(t, ctx, url)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a fourth stream of the same user: %d, want 429", resp.StatusCode)
	}
	_, _ = io.ReadAll(resp.Body)
	if m.count("alice", audit.ActionDenied) != 1 {
		t.Errorf("the refused stream is not audited as denied: %+v", m.recs)
	}
	cancels[0]()
	for deadline := time.Now().Add(5 * time.Second); hub.Len() != 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams after one ended, want 2", hub.Len())
		}
	}
	if resp := openEvents(t, ctx, url); resp.StatusCode != http.StatusOK {
		t.Fatalf("a stream after one ended: %d, want 200", resp.StatusCode)
	}
	for _, c := range cancels {
		c()
	}
}
