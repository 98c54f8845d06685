package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// maxCachedStmts bounds the statements a readDB keeps prepared; queries
// past it (texts that vary, such as IN lists of unusual lengths) are
// prepared each time, as database/sql does.
const maxCachedStmts = 512

// readDB is the pool with its read statements prepared once and kept:
// preparing (parsing and planning) a statement on every query cost the
// pages 5-10 % of their CPU (docs/benchmarks.md). database/sql prepares a
// kept statement again on each connection that first runs it, and SQLite
// re-prepares one whose schema changed, so keeping them changes nothing
// but the cost. Writes and everything else go straight to the pool.
type readDB struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newReadDB(db *sql.DB) *readDB { return &readDB{DB: db, stmts: map[string]*sql.Stmt{}} }

// stmt returns q prepared, or nil when q is not a read or the cache is
// full.
func (d *readDB) stmt(ctx context.Context, q string) *sql.Stmt {
	head := strings.TrimLeft(q, " \t\r\n")
	if len(head) < 6 || !(strings.EqualFold(head[:6], "SELECT") || strings.EqualFold(head[:4], "WITH")) {
		return nil
	}
	d.mu.Lock()
	st := d.stmts[q]
	full := len(d.stmts) >= maxCachedStmts
	d.mu.Unlock()
	if st != nil || full {
		return st
	}
	st, err := d.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil // the query itself will report it
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if prev := d.stmts[q]; prev != nil {
		st.Close()
		return prev
	}
	d.stmts[q] = st
	return st
}

// QueryContext runs q through its kept statement when it has one.
func (d *readDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := d.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return d.DB.QueryContext(ctx, q, args...)
}

// QueryRowContext runs q through its kept statement when it has one.
func (d *readDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := d.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return d.DB.QueryRowContext(ctx, q, args...)
}

// Close closes the kept statements, then the pool.
func (d *readDB) Close() error {
	d.mu.Lock()
	for q, st := range d.stmts {
		st.Close()
		delete(d.stmts, q)
	}
	d.mu.Unlock()
	return d.DB.Close()
}
