package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Unavailable tells a server that is away (restarting, crashed,
// unreachable) from one that refused the request: an ingest waits for
// the first and stops on the second.
func TestUnavailableTellsAnAbsentServerFromARefusal(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, true},
		{&pgconn.PgError{Code: "57P02", Message: "terminating connection because of crash of another server process"}, true},
		{&pgconn.PgError{Code: "57P03", Message: "the database system is starting up"}, true},
		{&pgconn.PgError{Code: "08006", Message: "connection failure"}, true},
		{fmt.Errorf("observations: %w", pgconn.ErrConnClosed), true},
		{&pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint"}, false},
		{&pgconn.PgError{Code: "28P01", Message: "password authentication failed"}, false},
		{&pgconn.PgError{Code: "42P01", Message: "relation does not exist"}, false},
		{errors.New("observation 1: bad level"), false},
		{nil, false},
	} {
		if got := Unavailable(c.err); got != c.want {
			t.Errorf("Unavailable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	// A server that does not listen: what pgx really returns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = pgx.Connect(ctx, "postgres://postgres@"+addr+"/test?sslmode=disable")
	if err == nil || !Unavailable(err) {
		t.Errorf("connecting to %s where nothing listens: %v; Unavailable says %v, want true", addr, err, Unavailable(err))
	}
	// A request the server refuses.
	requirePostgres(t)
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT * FROM vigil_no_such_table")
	if err == nil || Unavailable(err) {
		t.Errorf("a query of a missing table: %v; Unavailable says %v, want false", err, Unavailable(err))
	}
}
