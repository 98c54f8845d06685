package analysis_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// tornLoad is a store whose AnalysisLoad reads its state (watermark,
// next target number, version) before another process's save and its
// endpoints after it, as a load table by table may while others save.
type tornLoad struct {
	analysis.Views
	state *analysis.Snapshot
}

func (b tornLoad) AnalysisLoad(ctx context.Context) (*analysis.Snapshot, error) {
	snap, err := b.Views.AnalysisLoad(ctx)
	if err != nil {
		return nil, err
	}
	snap.Watermark, snap.NextSeq, snap.Version = b.state.Watermark, b.state.NextSeq, b.state.Version
	return snap, nil
}

// An engine whose load saw endpoints another process made after the
// watermark it loaded gives new endpoints numbers after theirs, never
// one of theirs again.
func TestATornLoadNumbersNewTargetsAfterTheOthers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.engine()
	f.ingest(a, ob("198.51.100.1:6881", 1, observe.Complete, t0))
	before, err := f.st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.ingest(a, ob("198.51.100.2:6881", 2, observe.Complete, t0.Add(time.Minute)), ob("198.51.100.3:6881", 3, observe.Complete, t0.Add(2*time.Minute)))
	b, err := analysis.New(ctx, tornLoad{f.st, before}, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.ingest(b, ob("198.51.100.4:6881", 4, observe.Complete, t0.Add(3*time.Minute)))
	got := map[string]string{}
	for _, x := range targets(t, b, analysis.TargetQuery{}) {
		got[x.ID] = x.Label
	}
	for n, label := range []string{"198.51.100.1:6881", "198.51.100.2:6881", "198.51.100.3:6881", "198.51.100.4:6881"} {
		if id := analysis.TargetID(int64(n + 1)); got[id] != label {
			t.Errorf("target %s is %q, want %s (all: %v)", id, got[id], label, got)
		}
	}
}
