package analysistest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Writes says, by "table op" (op INSERT, UPDATE or DELETE), how many rows
// of the analysis's tables a store wrote since the last call.
type Writes func(t *testing.T) map[string]int

// SaveWritesOnlyChanges checks that a save writes only the rows whose
// content changed, counted by writes (a store's own counter: its
// triggers, or its row versions): a rescore at an unchanged clock
// rewrites no target, access row or endpoint; a file of a new category at
// an endpoint updates its target, endpoint and access row in place and
// adds the one category, deleting nothing. Every save writes a whole row
// of each target and endpoint it names (a large part of what an ingest
// of many endpoints costs PostgreSQL): a row rewritten unchanged costs its
// indexes and its trigger for nothing. The pages read the same targets
// and scores either way.
func SaveWritesOnlyChanges(t *testing.T, st Store, writes Writes) {
	ctx := context.Background()
	e := engine(t, st)
	a, b := "192.0.2.10:6881", "192.0.2.11:6881"
	first := ob(a, 1, observe.Complete, t0, versailles)
	second := ob(b, 2, observe.Complete, t0.Add(time.Minute), versailles)
	second.Item.Matched[0].Category = "2"
	ingest(t, st, e, first, second)
	writes(t)

	if err := e.Rescore(ctx); err != nil {
		t.Fatal(err)
	}
	if w := writes(t); len(w) > 0 {
		t.Errorf("a rescore at an unchanged clock wrote %v; want nothing (no row changed)", sorted(w))
	}

	before := targets(t, st, analysis.TargetQuery{Scope: scopeOf(versailles)})
	third := ob(a, 3, observe.Complete, t0.Add(2*time.Minute), versailles)
	third.Item.Matched[0].Category = "3"
	ingest(t, st, e, third)
	w := writes(t)
	want := map[string]int{"targets UPDATE": 1, "target_access UPDATE": 1, "target_categories INSERT": 1, "analysis_endpoints UPDATE": 1}
	for k, n := range want {
		if w[k] != n {
			t.Errorf("a new category at %s: %s %d rows; want %d (all: %v)", a, k, w[k], n, sorted(w))
		}
	}
	for _, k := range []string{"target_access DELETE", "target_access INSERT", "target_categories DELETE", "targets INSERT", "analysis_endpoints INSERT"} {
		if w[k] != 0 {
			t.Errorf("a new category at %s: %s %d rows; want none (all: %v)", a, k, w[k], sorted(w))
		}
	}

	// What the pages read follows: the scope's list and the target's
	// summary carry the new score and categories.
	after := targets(t, st, analysis.TargetQuery{Scope: scopeOf(versailles)})
	all := targets(t, st, analysis.TargetQuery{Scope: analysis.AllAgencies})
	if len(after) != 2 || len(before) != 2 || len(all) != 2 {
		t.Fatalf("targets before %d, after %d, of every agency %d; want 2", len(before), len(after), len(all))
	}
	id := byLabel(t, st, a)
	for _, x := range after {
		if x.ID != id {
			continue
		}
		if !slices.Equal(x.Categories, []string{"1", "3"}) {
			t.Errorf("target %s categories %v, want [1 3]", id, x.Categories)
		}
		for _, y := range before {
			if y.ID == id && !(x.Score > y.Score) {
				t.Errorf("target %s score %v after a third file, %v before; want higher", id, x.Score, y.Score)
			}
		}
		for _, y := range all {
			if y.ID == id && y.Score != x.Score {
				t.Errorf("target %s score %v in the agency's list, %v in the list of all", id, x.Score, y.Score)
			}
		}
	}
	got, n, err := st.Targets(ctx, analysis.TargetQuery{Scope: scopeOf(versailles), Category: "3", Limit: 10})
	if err != nil || n != 1 || len(got) != 1 || got[0].ID != id {
		t.Errorf("targets of category 3: %v (%d, %v); want %s", ids(got), n, err, id)
	}
}

func sorted(m map[string]int) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, fmt.Sprintf("%s %d", k, m[k]))
	}
	return out
}
