package postgres

import (
	"context"
	"slices"
	"testing"
)

// The endpoint rows a save rewrites in place during ingest (their times
// and counts) can be HOT updates: the table leaves room in its pages and
// indexes no column those updates change (an endpoint's target moves
// only when targets merge); and targets keeps no index that nothing
// reads (migration 0025 of h-pgcost, docs/benchmarks.md "PostgreSQL's
// share of ingest").
func TestSaveRewritesCanStayInPlace(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	// Columns an index may hold: keys that never change, and target.
	stable := map[string][]string{
		"analysis_endpoints": {"id", "ip", "port", "gen", "target"},
	}
	for tbl, keep := range stable {
		var opts []string
		if err := st.pool.QueryRow(ctx, `SELECT COALESCE(reloptions, '{}') FROM pg_class WHERE oid = $1::regclass`, tbl).Scan(&opts); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		if !slices.Contains(opts, "fillfactor=70") {
			t.Errorf("%s: options %v, want fillfactor=70 (room for HOT updates)", tbl, opts)
		}
		rows, err := st.pool.Query(ctx, `SELECT i.indexrelid::regclass::text, a.attname FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = $1::regclass`, tbl)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var idx, col string
			if err := rows.Scan(&idx, &col); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(keep, col) {
				t.Errorf("%s: index %s holds %s, which a save changes: its updates could not be HOT", tbl, idx, col)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'targets_agency_rank'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("targets_agency_rank is still there: no query reads it, every target row written adds to it")
	}
}
