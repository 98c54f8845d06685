package analysis_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// filesSaved is the store, noting each save's file rows: "endpoint
// file-hex new|stored".
type filesSaved struct {
	*sqlite.Store
	rows []string
}

func (s *filesSaved) AnalysisSave(ctx context.Context, c *analysis.Changes) error {
	if err := s.Store.AnalysisSave(ctx, c); err != nil {
		return err // refused (another process saved first): nothing written
	}
	for _, f := range c.Files {
		state := "stored"
		if f.New {
			state = "new"
		}
		s.rows = append(s.rows, fmt.Sprintf("%d %s %s", f.Endpoint, f.File.Hex[:8], state))
	}
	return nil
}

// A save marks New only the file rows that the engine has neither
// replayed at load nor written in an earlier save (the PostgreSQL store
// inserts those without an upsert's probe first).
func TestSaveMarksOnlyUnwrittenFilesNew(t *testing.T) {
	f := newFixture(t)
	st := &filesSaved{Store: f.st}
	ctx := context.Background()
	add := func(e *analysis.Engine, file int, at time.Duration) {
		t.Helper()
		o := ob("203.0.113.7:6881", file, observe.Complete, t0.Add(at))
		if err := f.st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
		if err := e.Add(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	hex := func(file int) string { return hashN(file).Hex()[:8] }
	check := func(what string, want ...string) {
		t.Helper()
		got := st.rows
		st.rows = nil
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: saved files %q, want %q", what, got, want)
		}
	}
	e, err := analysis.New(ctx, st, f.cfg) // SaveInterval 0: a save each Add
	if err != nil {
		t.Fatal(err)
	}
	st.rows = nil
	add(e, 0, 0)
	check("first sighting of file 0", "1 "+hex(0)+" new")
	add(e, 0, time.Minute)
	check("file 0 again, written by the save before", "1 "+hex(0)+" stored")
	add(e, 1, 2*time.Minute)
	check("file 1, new to the endpoint", "1 "+hex(1)+" new")

	// A restarted engine replays what the store holds: those rows are
	// stored, and a file it never saw is new.
	e2, err := analysis.New(ctx, st, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.rows = nil
	add(e2, 1, 3*time.Minute)
	check("file 1 after a restart", "1 "+hex(1)+" stored")
	add(e2, 2, 4*time.Minute)
	check("file 2 after a restart", "1 "+hex(2)+" new")
}

// An engine whose save finds that another process saved first forgets
// which file rows it thought new: the other may have written them (two
// ingests analyse each other's observations), and a row marked New that
// is stored costs the PostgreSQL store a failed INSERT before its upsert.
func TestSaveAfterAnotherProcessMarksNoFileNew(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := &filesSaved{Store: f.st}
	b := &filesSaved{Store: f.st}
	ea, err := analysis.New(ctx, a, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := analysis.New(ctx, b, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	a.rows, b.rows = nil, nil
	o := ob("203.0.113.7:6881", 0, observe.Complete, t0)
	if err := f.st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*analysis.Engine{ea, eb} {
		if err := e.Add(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	hex := hashN(0).Hex()[:8]
	if want := []string{"1 " + hex + " new"}; !slices.Equal(a.rows, want) {
		t.Errorf("the first process saved %q, want %q", a.rows, want)
	}
	if want := []string{"1 " + hex + " stored"}; !slices.Equal(b.rows, want) {
		t.Errorf("the second process, after the first saved, saved %q, want %q", b.rows, want)
	}
}
