package web

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
)

// The fixture's stored targets do not depend on how many observations
// the analysis reads between two saves (fixtureConfig.SaveEvery): the
// 50-million PostgreSQL fill saves every 250,000 where the 1M and 10M
// stores it is compared with saved every 20,000 (docs/benchmarks.md, "50
// million observations in PostgreSQL: the pages"). Two SQLite stores of
// the same fixture, one saved every 777 observations (an endpoint's 20 straddle two saves) and one saved
// once, hold the same targets, routed to the same agencies.
func TestFixtureTargetsWhateverTheSaveChunk(t *testing.T) {
	ctx := context.Background()
	summaries := func(saveEvery int) []string {
		t.Helper()
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "vigil.db"), sqlite.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		fillStore(t, ctx, st, fixtureConfig{Observations: 20000, Seed: 1, SaveEvery: saveEvery})
		var out []string
		for _, sc := range []analysis.Scope{analysis.AllAgencies, {Agencies: []string{agencyParis}}, {Agencies: []string{agencySud}}} {
			ts, n, err := st.Targets(ctx, analysis.TargetQuery{Scope: sc, Limit: 100000})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("scope %v: %d targets", sc, n))
			var rows []string
			for _, x := range ts {
				// Not the id (numbered in the order of creation), times
				// or score (both relative to the fill's clock).
				rows = append(rows, fmt.Sprintf("%s to %s %v eps=%d files=%d obs=%d levels=%v max=%v cats=%v sev=%d flags=%v %s/%s",
					x.Label, x.Jurisdiction, x.Agencies, x.Endpoints, x.Files, x.Observations, x.Levels, x.MaxLevel,
					x.Categories, x.MaxSeverity, x.Flags, x.Country, x.Subdivision))
			}
			slices.Sort(rows)
			out = append(out, rows...)
		}
		return out
	}
	chunked, once := summaries(777), summaries(1_000_000)
	if len(once) < 1000 {
		t.Fatalf("%d lines: the fixture made too few targets to compare", len(once))
	}
	if !slices.Equal(chunked, once) {
		for i := range min(len(chunked), len(once)) {
			if chunked[i] != once[i] {
				t.Fatalf("saved every 777 observations and saved once differ (%d and %d lines), first at line %d:\n%s\n%s",
					len(chunked), len(once), i, chunked[i], once[i])
			}
		}
		t.Fatalf("saved every 777: %d lines, saved once: %d:\n%s", len(chunked), len(once), strings.Join(chunked[:3], "\n"))
	}
	t.Logf("%d lines the same (targets of three scopes)", len(once))
}
