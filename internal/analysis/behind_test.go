package analysis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// savesCounted is the store, counting the analysis's saves.
type savesCounted struct {
	*sqlite.Store
	saves int
}

func (s *savesCounted) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	s.saves++
	return s.Store.AnalysisSave(ctx, c)
}

// While the caller is behind (Config.Behind), Add saves as CatchUp does,
// every SaveEvery observations (or BehindInterval), not every
// SaveInterval; once it has caught up, every SaveInterval again. What
// is saved in the end is the same.
func TestAddSavesLessOftenWhileBehind(t *testing.T) {
	f := newFixture(t)
	st := &savesCounted{Store: f.st}
	behind := false
	cfg := f.cfg
	cfg.SaveInterval, cfg.SaveEvery, cfg.BehindInterval = 0, 5, time.Hour
	cfg.Behind = func() bool { return behind }
	e, err := analysis.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	add := func(i int) {
		t.Helper()
		o := ob(fmt.Sprintf("203.0.113.%d:6881", 1+i%3), i%4, observe.Complete, t0.Add(time.Duration(i)*time.Minute))
		if err := f.st.InsertObservations(context.Background(), []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(context.Background(), []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	add(0) // saves: SaveInterval 0
	start := st.saves
	behind = true
	for i := 1; i < 5; i++ {
		add(i)
	}
	if n := st.saves - start; n != 0 {
		t.Fatalf("behind, 4 observations with SaveEvery 5: %d saves, want none yet", n)
	}
	add(5)
	if n := st.saves - start; n != 1 {
		t.Fatalf("behind, the 5th observation: %d saves, want 1", n)
	}
	behind = false
	for i := 6; i < 9; i++ {
		add(i)
	}
	if n := st.saves - start; n != 4 {
		t.Fatalf("caught up, SaveInterval 0: %d saves after 3 more observations, want one each (4 in all)", n)
	}
	// The same targets as an engine that saved after every observation.
	got := targets(t, e, analysis.TargetQuery{})
	ref := newFixture(t)
	re := ref.engine()
	for i := range 9 {
		o := ob(fmt.Sprintf("203.0.113.%d:6881", 1+i%3), i%4, observe.Complete, t0.Add(time.Duration(i)*time.Minute))
		ref.ingest(re, o)
	}
	want := targets(t, re, analysis.TargetQuery{})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("targets saved while behind:\n%v\nsaving every time:\n%v", got, want)
	}
}

// CatchUp saves once SaveRows endpoints wait to be written, before
// SaveEvery observations: the span between two saves of a backlog is
// bounded by the rows it holds as well as by its observations, so that
// a large SaveEvery (a backlog's endpoints written once a span, not once
// every few thousand observations) does not make one save, and the
// memory it takes, as large as the backlog's endpoints.
func TestCatchUpSavesOnceSaveRowsEndpointsWait(t *testing.T) {
	f := newFixture(t)
	st := &savesCounted{Store: f.st}
	cfg := f.cfg
	cfg.SaveEvery, cfg.SaveRows = 1000, 4
	for i := range 10 { // 10 endpoints, 3 observations each, one after the other
		for k := range 3 {
			f.ingest(nil, ob(fmt.Sprintf("203.0.113.%d:6881", 1+i), k, observe.Complete, t0.Add(time.Duration(i*3+k)*time.Minute)))
		}
	}
	e, err := analysis.New(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := st.saves
	if err := e.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Saves at the first observation of the 4th endpoint (4 waiting),
	// of the 7th (the 4th's later ones, the 5th, 6th and 7th) and of the
	// 10th, then the rest at the end.
	if n := st.saves - start; n != 4 {
		t.Errorf("caught up 30 observations of 10 endpoints with SaveRows 4, SaveEvery 1000: %d saves, want 4", n)
	}
}
