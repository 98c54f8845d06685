package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/observe"
)

// batchUpstream is an upstream that takes batches, and keeps each
// batch's size.
type batchUpstream struct {
	upstream
	bmu     sync.Mutex
	batches []int
}

func (u *batchUpstream) PublishBatch(ctx context.Context, obs []observe.Observation) error {
	if u.down.Load() {
		return errDown
	}
	u.bmu.Lock()
	u.batches = append(u.batches, len(obs))
	u.bmu.Unlock()
	for i := range obs {
		if err := u.upstream.Publish(ctx, obs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (u *batchUpstream) sizes() string {
	u.bmu.Lock()
	defer u.bmu.Unlock()
	return fmt.Sprint(u.batches)
}

func ids(obs []observe.Observation) []string {
	out := make([]string, len(obs))
	for i := range obs {
		out[i] = obs[i].ID
	}
	return out
}

// Signed batches queued while the bus is away stay whole: each is one
// record on disk and one PublishBatch to the bus, in order; the counts
// are of observations; a queue opened again counts them the same.
func TestQueueKeepsBatchesWhole(t *testing.T) {
	dir := t.TempDir()
	up := &batchUpstream{}
	up.down.Store(true)
	cfg := testConfig(dir)
	cfg.SegmentBytes = 64 << 10 // batches across several segments
	s, err := Open(cfg, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	obs := observations(300)
	for i := 0; i < 300; i += 100 {
		if err := s.PublishBatch(context.Background(), obs[i:i+100]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Publish(context.Background(), obs[0]); err != nil { // one alone, as Publish queues it
		t.Fatal(err)
	}
	if st := s.Stats(); st.Queued != 301 || st.Pending != 301 || st.Published != 0 {
		t.Fatalf("queued: %+v, want 301 observations", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(cfg, up, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Pending != 301 {
		t.Fatalf("reopened: %d pending, want 301 observations", st.Pending)
	}
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), append(ids(obs), obs[0].ID))
	if got := up.sizes(); got != "[100 100 100 1]" {
		t.Fatalf("the bus got batches of %s, want [100 100 100 1]", got)
	}
	if st := s.Stats(); st.Published != 301 || st.Dropped != 0 {
		t.Fatalf("after the drain: %+v", st)
	}
}

// A batch that does not fit in a full queue keeps what fits, in order,
// and drops the rest: each dropped observation counted, and named.
func TestFullQueueDropsTheRestOfABatch(t *testing.T) {
	up := &batchUpstream{}
	up.down.Store(true)
	cfg := testConfig(t.TempDir())
	cfg.MaxBytes = 40 << 10
	s, err := Open(cfg, up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	obs := observations(100)
	var kept []string
	dropped := 0
	for i := 0; i < 100; i += 25 {
		err := s.PublishBatch(context.Background(), obs[i:i+25])
		failed := bus.FailedOf(err, 25)
		if err != nil && !errors.Is(err, ErrFull) {
			t.Fatal(err)
		}
		for j, f := 0, 0; j < 25; j++ {
			if f < len(failed) && failed[f] == j {
				f++
				continue
			}
			if f > 0 {
				t.Fatalf("batch %d: observation %d kept after %d dropped: what fits is a prefix", i/25, j, f)
			}
			kept = append(kept, obs[i+j].ID)
		}
		dropped += len(failed)
	}
	st := s.Stats()
	if dropped == 0 || len(kept) == 0 || st.Dropped != uint64(dropped) || st.Queued != uint64(len(kept)) || st.Pending != len(kept) || st.Bytes > cfg.MaxBytes {
		t.Fatalf("kept %d, dropped %d; stats %+v", len(kept), dropped, st)
	}
	up.down.Store(false)
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), kept)
}

// A record of a batch with a line that is not an observation (damaged by
// hand): the line is skipped and counted, the rest of the batch goes.
func TestBadLineInABatchRecordSkipsOnlyItself(t *testing.T) {
	dir := t.TempDir()
	obs := observations(3)
	var payload []byte
	for i := range obs {
		line, err := encode(&obs[i])
		if err != nil {
			t.Fatal(err)
		}
		payload = append(payload, line...)
		if i == 0 {
			payload = append(payload, "not an observation\n"...)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, segName(0)), appendRecord(nil, payload), 0o600); err != nil {
		t.Fatal(err)
	}
	up := &batchUpstream{}
	s, err := Open(testConfig(dir), up, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Stats(); st.Pending != 4 {
		t.Fatalf("%d pending, want the record's 4 lines", st.Pending)
	}
	stop := run(s)
	defer stop()
	waitFor(t, "the drain", func() bool { return s.Stats().Pending == 0 })
	sameOrder(t, up.ids(), ids(obs))
	if st := s.Stats(); st.Torn != 1 || st.Published != 3 {
		t.Fatalf("after the drain: %+v, want 1 skipped and 3 published", st)
	}
}
