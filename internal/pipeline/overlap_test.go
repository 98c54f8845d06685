package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// heldSave holds the analysis's saves until released, as a database
// server that is slow to answer them; entered is closed at the first.
type heldSave struct {
	AnalysisStore
	release chan struct{}
	once    sync.Once
	entered chan struct{}
	mark    int64 // the first save's watermark: the last seq it scored
}

func (s *heldSave) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	s.once.Do(func() { s.mark = c.Watermark; close(s.entered) })
	<-s.release
	return s.AnalysisStore.AnalysisSave(ctx, c)
}

// neverBehind is a consumer that says nothing waits on it, so that the
// analysis saves at every batch rather than every few thousand.
type neverBehind struct{ bus.Consumer }

func (neverBehind) Len() int { return 0 }

// Ingest goes on committing while the analysis is still saving what came
// before (the two take turns on the database otherwise, and the second
// core idles), and by the time Run returns every committed batch is
// scored, in order: the saved watermark is the last observation's seq.
func TestIngestCommitsWhileTheAnalysisSaves(t *testing.T) {
	st := openStore(t)
	hs := &heldSave{AnalysisStore: st, release: make(chan struct{}), entered: make(chan struct{})}
	obs := bustest.Observations(100)
	done := runUntilHeldSave(t, st, hs, hs, obs)
	// Seqs are numbered from 1 in a new store: the first save scored
	// hs.mark observations, all that ingest had committed if it waits.
	first := int(hs.mark)
	if first <= 0 || first >= len(obs) {
		close(hs.release)
		<-done
		t.Fatalf("the first save scored up to seq %d: want a save between batches", first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(storedIDs(t, st)) <= first {
		if time.Now().After(deadline) {
			close(hs.release)
			<-done
			t.Fatalf("ingest stored nothing more (%d of %d) while the analysis's save was held: it waits for the analysis", first, len(obs))
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(hs.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(storedIDs(t, st)); got != len(obs) {
		t.Fatalf("stored %d, want %d", got, len(obs))
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
		t.Fatalf("the analysis saved watermark %d, the store's last observation is %d", snap.Watermark, maxSeq)
	}
}

// seqsCounted counts the analysis's seq lookups.
type seqsCounted struct {
	*heldSave
	lookups atomic.Int32
}

func (s *seqsCounted) AnalysisSeqs(ctx context.Context, ids []string) ([]int64, int64, error) {
	s.lookups.Add(1)
	return s.heldSave.AnalysisSeqs(ctx, ids)
}

// The seqs of the next committed batch are looked up (a round trip to
// the database) while the analysis is still scoring and saving the one
// before, and the analysis still scores every batch: the saved
// watermark is the last observation's seq.
func TestAnalysisLooksUpTheNextBatchWhileItSaves(t *testing.T) {
	st := openStore(t)
	hs := &seqsCounted{heldSave: &heldSave{AnalysisStore: st, release: make(chan struct{}), entered: make(chan struct{})}}
	obs := bustest.Observations(100)
	done := runUntilHeldSave(t, st, hs, hs.heldSave, obs)
	// Seqs are numbered from 1 in a new store, batches of 10: the save
	// held is of the first hs.mark/10 batches, each looked up before it
	// was scored; the next one's lookup need not wait for the save.
	scored := int32(hs.mark / heldBatch)
	deadline := time.Now().Add(10 * time.Second)
	for hs.lookups.Load() <= scored && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	lookups := hs.lookups.Load()
	close(hs.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if lookups <= scored {
		t.Fatalf("while the save of %d batches was held, %d lookups: the next batch's waits for the save", scored, lookups)
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
		t.Fatalf("the analysis saved watermark %d, the store's last observation is %d", snap.Watermark, maxSeq)
	}
}

// heldBatch is the ingest batch of runUntilHeldSave.
const heldBatch = 10

// runUntilHeldSave runs a pipeline over obs in batches of heldBatch, the
// analysis saving through as, and returns once held (as's own heldSave)
// has a save held; done has Run's result.
func runUntilHeldSave(t *testing.T, st *sqlite.Store, as AnalysisStore, held *heldSave, obs []observe.Observation) chan error {
	t.Helper()
	icfg := ingest.DefaultConfig()
	icfg.BatchSize = heldBatch
	p, err := New(context.Background(), Config{Store: st, Analysis: as, Consumer: neverBehind{inproc.NewSlice(obs)}, Ingest: icfg})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		close(held.release)
		t.Fatal("the analysis never saved")
	}
	return done
}
