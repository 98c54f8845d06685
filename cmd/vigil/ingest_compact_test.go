package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// 'vigil ingest' on PostgreSQL compacts (--compact-after, on by
// default): the observations older than its settle time, once the
// analysis has read them and the evidence log holds them, are moved from
// rows into blocks while ingest runs, and the run is logged and counted
// (--metrics: vigil_compaction_rows_total, no failure). A short
// --compact-after (1s) stands for the default day.
func TestIngestCompactsSettledRows(t *testing.T) {
	db := postgresDB(t)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0c}, 32))
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Millisecond)
	obs := signedProbesAs(t, key, "sensor-c", at, "192.0.2.70", "192.0.2.71", "192.0.2.72", "192.0.2.73")
	bus, pub := jetStreamPublisher(t)
	ctx := context.Background()
	for _, o := range obs {
		if err := pub.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	keys := writeFile(t, dir, "sensors.keys", hex.EncodeToString(key.Public().(ed25519.PublicKey))+" sensor-c\n")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := ln.Addr().String()
	ln.Close()
	args := []string{"--db", db, "ingest", "--bus", bus, "--signature-wait", "1s", "--geo-db", writeLabGeo(t),
		"--sensor-keys", keys, "--key-dir", t.TempDir(), "--compact-after", "1s", "--metrics", metrics}
	go func() {
		done <- run(runCtx, args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	conn := pgSchemaConn(t, db)
	var rows, inBlocks int
	waitUntil(t, 60*time.Second, "every observation moved into blocks", func() bool {
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations), (SELECT COALESCE(sum(n), 0) FROM observation_blocks)`).Scan(&rows, &inBlocks); err != nil {
			return false // not migrated yet
		}
		return rows == 0 && inBlocks == len(obs)
	})
	want := fmt.Sprintf("vigil_compaction_rows_total %d\n", len(obs))
	var page string
	waitUntil(t, 10*time.Second, "the compaction counted", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		return strings.Contains(page, want) && strings.Contains(page, "vigil_compaction_failures_total 0\n")
	})
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	if log := out.String() + errb.String(); !strings.Contains(log, "ingest: compaction") {
		t.Errorf("the compaction is not logged:\n%s", log)
	}
}

// pgSchemaConn connects to the store of a postgresDB URL, in its schema.
func pgSchemaConn(t *testing.T, db string) *pgx.Conn {
	t.Helper()
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(context.Background(), `SET search_path TO `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// --compact-after is on by default (a day), and a negative one refused.
func TestIngestCompactAfterFlag(t *testing.T) {
	code, out, errOut := vigilRun(t, nil, "", "ingest", "--help")
	if code != exitOK || !strings.Contains(out+errOut, "-compact-after duration") || !strings.Contains(out+errOut, "(default 24h0m0s)") {
		t.Errorf("ingest --help: exit %d, no --compact-after defaulting to a day:\n%s%s", code, out, errOut)
	}
	if code, _, errOut := vigilRun(t, nil, "", "ingest", "--bus", "nats://127.0.0.1:1", "--compact-after", "-1h"); code != exitUsage || !strings.Contains(errOut, "--compact-after") {
		t.Errorf("a negative --compact-after: exit %d %s", code, errOut)
	}
}
