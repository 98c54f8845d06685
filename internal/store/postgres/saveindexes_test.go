package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// indexDefs are the definitions of table's indexes, sorted, the schema's
// name left out.
func indexDefs(t *testing.T, st *Store, table string) []string {
	t.Helper()
	var out []string
	if err := eachRow(context.Background(), st.db(), `SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?`,
		func(r pgx.Rows) error {
			var d string
			if err := r.Scan(&d); err != nil {
				return err
			}
			out = append(out, strings.ReplaceAll(d, st.cfg.Schema+".", ""))
			return nil
		}, table); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// Every row version of targets and target_access that a save writes
// adds an entry to each of the table's indexes (score and times are
// indexed, so no update is HOT): neither keeps an index that another
// index already makes redundant (migration 0028): targets no unique seq
// beside the key on id (the id is TargetID(seq)), target_access no index
// on target beside a key that leads with target.
func TestSaveIndexesNoRedundantOne(t *testing.T) {
	st := openTest(t, DefaultConfig())
	want := map[string][]string{
		"targets": {
			"CREATE INDEX targets_first ON targets USING btree (first_ns, id) WHERE (merged_into IS NULL)",
			"CREATE INDEX targets_last ON targets USING btree (last_ns DESC, id) WHERE (merged_into IS NULL)",
			"CREATE INDEX targets_merged ON targets USING btree (merged_into, seq) WHERE (merged_into IS NOT NULL)",
			"CREATE INDEX targets_rank ON targets USING btree (score DESC, id) WHERE (merged_into IS NULL)",
			"CREATE INDEX targets_shared ON targets USING btree (last_ns) WHERE ((merged_into IS NULL) AND (shares <> '[]'::text))",
			"CREATE UNIQUE INDEX targets_pkey ON targets USING btree (id)",
		},
		"target_access": {
			"CREATE INDEX target_access_first ON target_access USING btree (agency, first_ns, target)",
			"CREATE INDEX target_access_last ON target_access USING btree (agency, last_ns DESC, target)",
			"CREATE INDEX target_access_rank ON target_access USING btree (agency, score DESC)",
			"CREATE UNIQUE INDEX target_access_pkey ON target_access USING btree (target, agency)",
		},
	}
	for table, w := range want {
		if got := indexDefs(t, st, table); !slices.Equal(got, w) {
			t.Errorf("%s's indexes:\n%s\nwant\n%s", table, strings.Join(got, "\n"), strings.Join(w, "\n"))
		}
	}
}

// A store made before migration 0028 keeps its access rows through it,
// and the saves after it rewrite them (ON CONFLICT (agency, target) on
// the key (target, agency)), share them and take them back.
func TestMigration0028KeepsAccess(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	row := func(seq int64, score float64, access ...string) analysis.TargetRow {
		return analysis.TargetRow{Seq: seq, Access: access, Summary: analysis.TargetSummary{ID: analysis.TargetID(seq), Jurisdiction: access[0],
			Score: score, FirstSeen: at, LastSeen: at.Add(time.Duration(score) * time.Minute)}}
	}
	version := int64(0)
	save := func(s *Store, rows ...analysis.TargetRow) {
		t.Helper()
		if err := s.AnalysisSave(ctx, &analysis.Changes{Version: version, Targets: rows}); err != nil {
			t.Fatal(err)
		}
		version++
	}
	access := func(s *Store) string {
		t.Helper()
		var out []string
		if err := eachRow(ctx, s.db(), `SELECT agency, target, score FROM target_access ORDER BY agency, target`, func(r pgx.Rows) error {
			var a, tg string
			var sc float64
			if err := r.Scan(&a, &tg, &sc); err != nil {
				return err
			}
			out = append(out, fmt.Sprintf("%s %s %g", a, tg, sc))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "; ")
	}
	save(st, row(1, 10, "fr-paris"), row(2, 20, "fr-lyon", "fr-paris"))
	runUndo(t, st, undo0028)
	before := access(st)
	again := reopen(t, st, cfg)
	if got := access(again); got != before {
		t.Fatalf("access after migration 0028: %s, before: %s", got, before)
	}
	// A new score (SameAccess: the update by target), a share taken back
	// and one given (the delete by target, the upsert on the key).
	t1 := row(1, 11, "fr-paris")
	t1.SameAccess = true
	save(again, t1, row(2, 21, "fr-lyon", "fr-lille"))
	want := "fr-lille " + analysis.TargetID(2) + " 21; fr-lyon " + analysis.TargetID(2) + " 21; fr-paris " + analysis.TargetID(1) + " 11"
	if got := access(again); got != want {
		t.Errorf("access after the saves: %s\nwant %s", got, want)
	}
}
