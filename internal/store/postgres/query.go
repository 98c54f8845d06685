package postgres

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The analysis, access, audit and page queries are the SQLite store's,
// ported: they are written with ? placeholders and read through sqlDB, in
// the same call shapes as there, so that the two stores can be read side
// by side and kept alike. rebind numbers the placeholders for PostgreSQL.

// pgQuerier is what sqlDB runs on: the pool or a transaction.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// sqlDB runs queries written with ? placeholders.
type sqlDB struct{ q pgQuerier }

func (d sqlDB) QueryContext(ctx context.Context, q string, args ...any) (pgx.Rows, error) {
	return d.q.Query(ctx, rebind(q), args...)
}

func (d sqlDB) QueryRowContext(ctx context.Context, q string, args ...any) pgx.Row {
	return d.q.QueryRow(ctx, rebind(q), args...)
}

func (d sqlDB) ExecContext(ctx context.Context, q string, args ...any) (pgconn.CommandTag, error) {
	return d.q.Exec(ctx, rebind(q), args...)
}

// db is the pool as an sqlDB.
func (s *Store) db() sqlDB { return sqlDB{s.pool} }

// sqlTx runs fn in one transaction (writeTx), as an sqlDB.
func (s *Store) sqlTx(ctx context.Context, fn func(tx sqlDB) error) error {
	return s.writeTx(ctx, func(tx pgx.Tx) error { return fn(sqlDB{tx}) })
}

// rebound caches rebind's answers: the queries are few and built from
// constants, an IN list's length aside; past maxRebound entries (lists of
// many lengths) new answers are no longer kept.
var (
	rebound  sync.Map
	reboundN atomic.Int64
)

const maxRebound = 4096

// rebind replaces each ? outside quotes with $1, $2, ... in order.
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	if reboundN.Load() < maxRebound {
		if _, had := rebound.LoadOrStore(q, out); !had {
			reboundN.Add(1)
		}
	}
	return out
}

// eachRow calls fn for each row of q.
func eachRow(ctx context.Context, db sqlDB, q string, fn func(pgx.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// placeholders is "(?,?,...)" for n values (at least one).
func placeholders(n int) string {
	return `(?` + strings.Repeat(",?", max(n, 1)-1) + `)`
}
