package api

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestRefusalsAfterTheStopAreNotLeftToATimer: once the server has
// flushed the refusal summaries (FlushRefusals, it stops), a refusal that
// a request still in flight makes is recorded on its own, not counted for
// a summary that a timer would try to write against a closed store every
// minute for as long as the process lives; and no timer is armed.
func TestRefusalsAfterTheStopAreNotLeftToATimer(t *testing.T) {
	h := &handler{cfg: Config{Now: time.Now, Check: CheckConfig{RefusalRecords: 1}}, limits: &checkLimiter{}}
	r, _ := http.NewRequest("POST", "/api/v1/check", http.NoBody)
	now := time.Now()
	if !h.limits.refuse("plat", now, 1, http.StatusTooManyRequests, r) {
		t.Fatal("the first refusal of the minute is not recorded on its own")
	}
	if err := h.flushRefusals(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if !h.countRefusal(r, "plat", now.Add(time.Duration(i)*time.Second), http.StatusTooManyRequests) {
			t.Errorf("refusal %d after the stop is only counted, for a summary nothing will write", i)
		}
	}
	h.limits.mu.Lock()
	armed := h.limits.timer
	h.limits.mu.Unlock()
	if armed {
		t.Error("a summary timer is armed after the stop")
	}
}
