package sqlite

import (
	"context"
	"fmt"
	"testing"
)

func TestReadDBKeepsReadStatements(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	d := st.db
	before := len(d.stmts)
	q := `SELECT count(*) FROM observations WHERE time_ns >= ?`
	for i := range 3 {
		var n int
		if err := d.QueryRowContext(ctx, q, i).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%s: %d, %v", q, n, err)
		}
	}
	if len(d.stmts) != before+1 || d.stmts[q] == nil {
		t.Fatalf("after three runs of one query: %d statements kept (from %d), this one %v", len(d.stmts), before, d.stmts[q])
	}
	// Not reads: straight to the pool.
	if _, err := d.ExecContext(ctx, `CREATE TABLE scratch (x)`); err != nil {
		t.Fatal(err)
	}
	if d.stmt(ctx, `INSERT INTO scratch VALUES (1)`) != nil || d.stmt(ctx, `PRAGMA user_version`) != nil {
		t.Fatal("a write or a pragma was kept prepared")
	}
	// A statement that does not prepare is not kept; its error comes back.
	if _, err := d.QueryContext(ctx, `SELECT nope FROM nowhere`); err == nil {
		t.Fatal("a bad query ran")
	}
	if d.stmts[`SELECT nope FROM nowhere`] != nil {
		t.Fatal("a bad query was kept")
	}
	// Bounded: past the limit, queries still run, unkept.
	for i := 0; len(d.stmts) < maxCachedStmts; i++ {
		d.stmt(ctx, fmt.Sprintf(`SELECT %d`, i))
	}
	var v int
	if err := d.QueryRowContext(ctx, `SELECT 4242`).Scan(&v); err != nil || v != 4242 {
		t.Fatalf("past the limit: %d, %v", v, err)
	}
	if len(d.stmts) != maxCachedStmts {
		t.Fatalf("%d statements kept, limit %d", len(d.stmts), maxCachedStmts)
	}
}
