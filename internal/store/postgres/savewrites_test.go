package postgres

import (
	"context"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis/analysistest"
)

// The analysis's save writes only the rows whose content changed
// (analysistest.SaveWritesOnlyChanges), counted by row triggers the test
// adds to the tables the save rewrites.
func TestAnalysisSaveWritesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	tables := []string{"targets", "target_access", "target_categories", "analysis_endpoints", "analysis_endpoint_files"}
	for _, q := range []string{
		`CREATE TABLE test_writes (tbl text NOT NULL, op text NOT NULL)`,
		`CREATE FUNCTION test_count_write() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
		BEGIN INSERT INTO test_writes VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $$`,
	} {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, tbl := range tables {
		q := `CREATE TRIGGER test_count_write AFTER INSERT OR UPDATE OR DELETE ON ` + tbl + ` FOR EACH ROW EXECUTE FUNCTION test_count_write()`
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	analysistest.SaveWritesOnlyChanges(t, st, func(t *testing.T) map[string]int {
		t.Helper()
		rows, err := st.pool.Query(ctx, `DELETE FROM test_writes RETURNING tbl, op`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]int{}
		for rows.Next() {
			var tbl, op string
			if err := rows.Scan(&tbl, &op); err != nil {
				t.Fatal(err)
			}
			out[tbl+" "+op]++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	})
}
