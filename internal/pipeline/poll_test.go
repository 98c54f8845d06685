package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// awayStore fails the analysis's reads while away is set, as a database
// server that restarts.
type awayStore struct {
	AnalysisStore
	away         atomic.Bool
	failed, read atomic.Int32
}

func (s *awayStore) AnalysisObservations(ctx context.Context, after, upTo int64, fn func(int64, *observe.Observation) error) error {
	if s.away.Load() {
		s.failed.Add(1)
		return errors.New("connection refused")
	}
	s.read.Add(1)
	return s.AnalysisStore.AnalysisObservations(ctx, after, upTo, fn)
}

// The analysis's poll (a server's only way to follow what ingests store)
// survives a store that was away for a while: it tries again at the next
// poll instead of stopping for good.
func TestAnalysisPollOutlivesAnAbsentStore(t *testing.T) {
	st := openStore(t)
	as := &awayStore{AnalysisStore: st}
	p, err := New(context.Background(), Config{Store: st, Analysis: as, NoIngest: true, AnalysisPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	as.away.Store(true)
	wait(t, "a poll to fail", func() bool { return as.failed.Load() >= 2 })
	as.away.Store(false)
	n := as.read.Load()
	wait(t, "a poll to read the store again once it is back", func() bool { return as.read.Load() > n })
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
