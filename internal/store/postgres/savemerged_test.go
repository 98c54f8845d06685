package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// A save that merges many targets writes them a chunk at a time, not a
// statement each: each statement on targets runs its counting triggers
// (web_targets_count_*) once, and one statement a merged target made
// these 40 % of PostgreSQL's time in a catch-up from nothing
// (docs/benchmarks.md, "The analysis's catch-up in PostgreSQL"). The
// merged targets still redirect to the one they joined, lose their
// access and category rows, and leave the lists.
func TestSaveMergesTargetsAChunkAtATime(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	for _, q := range []string{
		`CREATE TABLE test_statements (tbl text NOT NULL, op text NOT NULL)`,
		`CREATE FUNCTION test_count_statement() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
		BEGIN INSERT INTO test_statements VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$`,
		`CREATE TRIGGER test_count_statement AFTER INSERT OR UPDATE OR DELETE ON targets FOR EACH STATEMENT EXECUTE FUNCTION test_count_statement()`,
		`CREATE TRIGGER test_count_statement AFTER INSERT OR UPDATE OR DELETE ON target_access FOR EACH STATEMENT EXECUTE FUNCTION test_count_statement()`,
	} {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const n = 300 // targets 2..n are merged into target 1
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := &analysis.Changes{Watermark: n, NextSeq: n + 1}
	for i := 1; i <= n; i++ {
		id := analysis.TargetID(int64(i))
		c.Targets = append(c.Targets, analysis.TargetRow{Seq: int64(i), Access: []string{"agency-a"}, Summary: analysis.TargetSummary{
			ID: id, Label: fmt.Sprintf("192.0.2.%d:6881", i%250), Jurisdiction: "agency-a", Score: float64(i), Endpoints: 1, Files: 1,
			Observations: 1, FirstSeen: at, LastSeen: at, Categories: []string{"1"}}})
	}
	if err := st.AnalysisSave(ctx, c); err != nil {
		t.Fatal(err)
	}
	root := analysis.TargetID(1)
	c = &analysis.Changes{Version: 1, Watermark: n + 1, Merged: map[string]string{}}
	c.Targets = []analysis.TargetRow{{Seq: 1, Access: []string{"agency-a"}, Summary: analysis.TargetSummary{ID: root,
		Label: "192.0.2.1:6881", Jurisdiction: "agency-a", Score: 1000, Endpoints: n, Files: 1, Observations: n, FirstSeen: at, LastSeen: at,
		Categories: []string{"1"}}, SameAccess: true, SameCategories: true}}
	for i := 2; i <= n; i++ {
		c.Merged[analysis.TargetID(int64(i))] = root
	}
	if _, err := st.pool.Exec(ctx, `DELETE FROM test_statements`); err != nil {
		t.Fatal(err)
	}
	if err := st.AnalysisSave(ctx, c); err != nil {
		t.Fatal(err)
	}
	var stmts int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM test_statements`).Scan(&stmts); err != nil {
		t.Fatal(err)
	}
	// The live target's upsert (insert and update: 2), the merged rows'
	// upsert (2), their access rows deleted (1), the live target's access
	// rows updated (1).
	if stmts > 8 {
		t.Errorf("a save merging %d targets ran %d statements on targets and target_access; want at most 8", n-1, stmts)
	}
	var merged, access, cats int
	if err := st.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM targets WHERE merged_into = $1),
		(SELECT count(*) FROM target_access),
		(SELECT count(*) FROM target_categories)`, root).Scan(&merged, &access, &cats); err != nil {
		t.Fatal(err)
	}
	if merged != n-1 || access != 1 || cats != 1 {
		t.Errorf("after the merge: %d targets merged into %s, %d access rows, %d category rows; want %d, 1, 1", merged, root, access, cats, n-1)
	}
	got, total, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{"agency-a"}}, Limit: 10})
	if err != nil || total != 1 || len(got) != 1 || got[0].ID != root {
		t.Errorf("targets of agency-a after the merge: %d of %d (%v); want %s alone", len(got), total, err, root)
	}
	d, err := st.Target(ctx, analysis.TargetID(n), analysis.AllAgencies)
	if err != nil || d == nil || d.ID != root {
		t.Errorf("target %s after the merge: %+v, %v; want %s", analysis.TargetID(n), d, err, root)
	}
}
