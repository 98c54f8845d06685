package sqlite

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
	st, _ := openTemp(t, DefaultConfig())
	if _, err := st.db.ExecContext(ctx, `CREATE TABLE test_writes (tbl text NOT NULL, op text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range []string{"targets", "target_access", "target_categories", "analysis_endpoints", "analysis_endpoint_files"} {
		for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
			q := `CREATE TRIGGER test_count_` + tbl + `_` + op + ` AFTER ` + op + ` ON ` + tbl +
				` BEGIN INSERT INTO test_writes VALUES ('` + tbl + `', '` + op + `'); END`
			if _, err := st.db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	analysistest.SaveWritesOnlyChanges(t, st, func(t *testing.T) map[string]int {
		t.Helper()
		rows, err := st.db.QueryContext(ctx, `SELECT tbl, op, count(*) FROM test_writes GROUP BY tbl, op`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for rows.Next() {
			var tbl, op string
			var n int
			if err := rows.Scan(&tbl, &op, &n); err != nil {
				t.Fatal(err)
			}
			out[tbl+" "+op] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.db.ExecContext(ctx, `DELETE FROM test_writes`); err != nil {
			t.Fatal(err)
		}
		return out
	})
}
