package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// journalBus is a durable bus of numbered batches, as JetStream is: a
// batch handed out is handed out again only once handed back (Nak), then
// before any later one; it closes once every batch is acknowledged. It
// writes what ingest does, and what journalStore does, in one journal.
type journalBus struct {
	mu      sync.Mutex
	batches [][]observe.Observation
	of      map[string]int // an observation's batch
	queue   []int          // batches to hand out, in order
	acked   map[int]int
	journal []string
	fetches int
}

func newJournalBus(batches, size int) *journalBus {
	obs := bustest.Observations(batches * size)
	j := &journalBus{of: map[string]int{}, acked: map[int]int{}}
	for i := range batches {
		j.batches = append(j.batches, obs[i*size:(i+1)*size])
		j.queue = append(j.queue, i)
		for _, o := range obs[i*size : (i+1)*size] {
			j.of[o.ID] = i
		}
	}
	return j
}

func (j *journalBus) write(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.journal = append(j.journal, fmt.Sprintf(format, args...))
}

func (j *journalBus) fetched() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.fetches
}

func (j *journalBus) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.queue) == 0 {
		if len(j.acked) == len(j.batches) {
			return nil, bus.ErrClosed
		}
		j.mu.Unlock()
		time.Sleep(time.Millisecond)
		j.mu.Lock()
		return bus.Delivered(nil), nil
	}
	i := j.queue[0]
	j.queue = j.queue[1:]
	j.fetches++
	j.journal = append(j.journal, fmt.Sprintf("fetch %d", i))
	return &journalBatch{j: j, i: i, obs: slices.Clone(j.batches[i])}, nil
}
func (j *journalBus) Len() int { j.mu.Lock(); defer j.mu.Unlock(); return len(j.queue) }
func (j *journalBus) Close()   {}

type journalBatch struct {
	j   *journalBus
	i   int
	obs []observe.Observation
}

func (b *journalBatch) Observations() []observe.Observation { return b.obs }
func (b *journalBatch) Ack(context.Context) error {
	b.j.mu.Lock()
	defer b.j.mu.Unlock()
	b.j.acked[b.i]++
	b.j.journal = append(b.j.journal, fmt.Sprintf("ack %d", b.i))
	return nil
}
func (b *journalBatch) Nak() {
	b.j.mu.Lock()
	defer b.j.mu.Unlock()
	b.j.journal = append(b.j.journal, fmt.Sprintf("nak %d", b.i))
	b.j.queue = append(b.j.queue, b.i)
	slices.Sort(b.j.queue)
}

// journalStore writes each commit's batches in its bus's journal;
// before the nth insert (from 0) it calls hold, which may wait, or
// refuse it. It notes inserts that overlap (one store, one writer).
type journalStore struct {
	store.Store
	j        *journalBus
	hold     func(n int) error
	calls    atomic.Int32
	inFlight atomic.Int32
	overlap  atomic.Bool
}

func (s *journalStore) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	if s.inFlight.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.inFlight.Add(-1)
	var batches []int
	for _, o := range obs {
		if i := s.j.of[o.ID]; !slices.Contains(batches, i) {
			batches = append(batches, i)
		}
	}
	if err := s.hold(int(s.calls.Add(1) - 1)); err != nil {
		s.j.write("refused %v", batches)
		return err
	}
	if err := s.Store.InsertObservations(ctx, obs); err != nil {
		return err
	}
	for _, i := range batches {
		s.j.write("commit %d", i)
	}
	return nil
}

// waitFetches waits until j has handed out n batches, or 10 s.
func waitFetches(j *journalBus, n int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for j.fetched() < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// checkJournal fails t unless every batch was committed once, in the
// bus's order, one insert at a time, and acknowledged once, after its
// commit.
func checkJournal(t *testing.T, j *journalBus, s *journalStore) {
	t.Helper()
	j.mu.Lock()
	defer j.mu.Unlock()
	var order []int
	committed := map[int]bool{}
	for _, e := range j.journal {
		var i int
		if _, err := fmt.Sscanf(e, "commit %d", &i); err == nil {
			order = append(order, i)
			committed[i] = true
		}
		if _, err := fmt.Sscanf(e, "ack %d", &i); err == nil && !committed[i] {
			t.Fatalf("batch %d acknowledged before it was committed; journal: %q", i, j.journal)
		}
	}
	for i := range j.batches {
		if i >= len(order) || order[i] != i {
			t.Fatalf("committed batches %v, want 0 to %d in the bus's order once each; journal: %q", order, len(j.batches)-1, j.journal)
		}
		if j.acked[i] != 1 {
			t.Fatalf("batch %d acknowledged %d times, want once; journal: %q", i, j.acked[i], j.journal)
		}
	}
	if len(order) != len(j.batches) {
		t.Fatalf("committed batches %v, want each once; journal: %q", order, j.journal)
	}
	if s.overlap.Load() {
		t.Fatalf("two inserts at once; journal: %q", j.journal)
	}
}

// gateConfigs runs a test without a gate and with one (unsigned
// observations: it lets them through as they come).
var gateConfigs = []struct {
	name string
	gate func() *evidence.Gate
}{
	{"plain", func() *evidence.Gate { return nil }},
	{"gated", func() *evidence.Gate { return evidence.NewGate(evidence.GateConfig{}) }},
}

// Ingest fetches (decodes, checks) the next batch while the store
// commits one, so that the process and the store work at once; yet it
// acknowledges each batch only once committed, and commits them one at a
// time in the bus's order.
func TestIngestFetchesTheNextBatchWhileOneCommits(t *testing.T) {
	for _, gc := range gateConfigs {
		t.Run(gc.name, func(t *testing.T) {
			j := newJournalBus(6, 5)
			overlapped := true
			s := &journalStore{Store: openStore(t), j: j, hold: func(n int) error {
				if n == 0 && !waitFetches(j, 2) {
					overlapped = false
				}
				return nil
			}}
			cfg := DefaultConfig()
			cfg.BatchSize, cfg.Gate = 5, gc.gate()
			st, err := Run(context.Background(), j, s, cfg)
			if err != nil || st.Committed != 30 {
				t.Fatalf("Run: %+v, %v; want 30 committed", st, err)
			}
			if !overlapped {
				t.Fatalf("the next batch was not fetched while the first one committed; journal: %q", j.journal)
			}
			checkJournal(t, j, s)
		})
	}
}

// When a commit fails because the store is away, the batches fetched
// after it are handed back, not committed: once the store answers,
// every batch is committed in the bus's order and acknowledged once,
// after its commit.
func TestIngestCommitsNothingAfterABatchThatFailed(t *testing.T) {
	for _, gc := range gateConfigs {
		t.Run(gc.name, func(t *testing.T) {
			j := newJournalBus(6, 5)
			s := &journalStore{Store: openStore(t), j: j, hold: func(n int) error {
				if n == 0 {
					// The next batch waits for the committer, and the one
					// after it for room: both were fetched.
					waitFetches(j, 3)
					return errDown
				}
				return nil
			}}
			cfg := DefaultConfig()
			cfg.BatchSize, cfg.Gate = 5, gc.gate()
			cfg.Unavailable = func(err error) bool { return errors.Is(err, errDown) }
			cfg.RetryEvery = time.Millisecond
			st, err := Run(context.Background(), j, s, cfg)
			if err != nil || st.Committed != 30 {
				t.Fatalf("Run: %+v, %v; want 30 committed", st, err)
			}
			checkJournal(t, j, s)
		})
	}
}
