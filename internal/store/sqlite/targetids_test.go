package sqlite

import (
	"context"
	"testing"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// TestMigration0010RewritesTargetIDs: a store made before the digits-only
// ids holds T-A (10) and T-10 (32, merged into T-A) and T-7; migration
// 0010 rewrites every stored id from its number, the old ids still
// resolve, and ties sort by number (T-10 came before T-7 as text).
func TestMigration0010RewritesTargetIDs(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	undoLater(ctx, t, st.db)
	for _, q := range []string{
		`INSERT INTO targets (id, seq, agency, score, last_ns) VALUES ('T-A', 10, 'ag-a', 5, 100), ('T-7', 7, 'ag-a', 5, 100)`,
		`INSERT INTO targets (id, seq, merged_into) VALUES ('T-10', 32, 'T-A')`,
		`INSERT INTO target_access (agency, target, score, last_ns, first_ns) VALUES ('ag-a', 'T-A', 5, 100, 0), ('ag-a', 'T-7', 5, 100, 0)`,
		`INSERT INTO target_categories (category, target) VALUES ('cat', 'T-A')`,
		`INSERT INTO analysis_endpoints (id, ip, port, gen, home, target, first_ns, last_ns, observations) VALUES (1, '192.0.2.1', 6881, 0, 10, 'T-A', 0, 100, 1), (2, '192.0.2.2', 6881, 0, 7, 'T-7', 0, 100, 1)`,
		`INSERT INTO analysis_decisions (at_ns, who, why, kind, subject, value) VALUES (1, 'a', 'b', 'flag', 'T-A', 'known_offender')`,
		`DROP VIEW observation_rows`,                                                                                                // 0013's
		`ALTER TABLE observations DROP COLUMN clock_uncertainty_ns`,                                                                 // 0013's
		`ALTER TABLE leads DROP COLUMN keywords`, `ALTER TABLE leads DROP COLUMN networks`, `ALTER TABLE leads DROP COLUMN sources`, // 0012's
		`ALTER TABLE agencies DROP COLUMN address`,          // 0011's
		`DELETE FROM schema_migrations WHERE version >= 10`, // what a store of schema 9 says
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	a, seven, ten := analysis.TargetID(10), analysis.TargetID(7), analysis.TargetID(32)
	for q, want := range map[string]int{
		`SELECT count(*) FROM targets WHERE id IN ('` + a + `', '` + seven + `', '` + ten + `')`:    3,
		`SELECT count(*) FROM targets WHERE merged_into = '` + a + `'`:                              1,
		`SELECT count(*) FROM target_access WHERE target IN ('` + a + `', '` + seven + `')`:         2,
		`SELECT count(*) FROM target_categories WHERE target = '` + a + `'`:                         1,
		`SELECT count(*) FROM analysis_endpoints WHERE target IN ('` + a + `', '` + seven + `')`:    2,
		`SELECT count(*) FROM targets WHERE id LIKE 'T-_' OR id LIKE 'T-__' OR merged_into = 'T-A'`: 0,
		`SELECT count(*) FROM analysis_decisions WHERE subject = 'T-A'`:                             1, // the analyst's record, as made
	} {
		var n int
		if err := again.db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", q, n, err, want)
		}
	}
	// Old ids, from notes and the audit trail, still resolve; the merged
	// one to its survivor.
	for _, old := range []string{"T-A", "T-10", ten} {
		d, err := again.Target(ctx, old, analysis.AllAgencies)
		if err != nil || d.ID != a {
			t.Fatalf("Target(%s) = %v, %v; want %s", old, d, err, a)
		}
	}
	ts, _, err := again.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{"ag-a"}}, Limit: 10})
	if err != nil || len(ts) != 2 || ts[0].ID != seven || ts[1].ID != a {
		t.Fatalf("tied targets in order %+v (%v), want %s then %s", ts, err, seven, a)
	}
	// Run 0010 again (a rolled-back schema_migrations): nothing changes.
	// Migrations apply from MAX(version), so 0011 is undone too.
	undoLater(ctx, t, again.db)
	for _, q := range []string{`DROP VIEW observation_rows`, `ALTER TABLE observations DROP COLUMN clock_uncertainty_ns`,
		`ALTER TABLE leads DROP COLUMN keywords`, `ALTER TABLE leads DROP COLUMN networks`, `ALTER TABLE leads DROP COLUMN sources`,
		`ALTER TABLE agencies DROP COLUMN address`, `DELETE FROM schema_migrations WHERE version >= 10`} {
		if _, err := again.db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := again.migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM targets WHERE id IN ('`+a+`', '`+seven+`', '`+ten+`')`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("after a second run: %d targets with new ids (%v)", n, err)
	}
}
