package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A remote sensor's observations, published on a real (in-process) NATS
// JetStream server, are stored by 'vigil ingest --bus', placed and routed
// there, and exported as they were sent.
func TestIngestFromJetStream(t *testing.T) {
	ingestFromJetStream(t, filepath.Join(t.TempDir(), "v.db"))
}

// The same into PostgreSQL, with the analysis's rules (--rules): the
// issue's "vigil --db postgres://… ingest --bus nats://… --rules
// example:france" that stopped with "keeps no targets".
func TestIngestFromJetStreamIntoPostgres(t *testing.T) {
	ingestFromJetStream(t, postgresDB(t))
}

// jetStreamPublisher starts an in-process NATS JetStream server for the
// test's length and returns its URL and a publisher on the default stream.
func jetStreamPublisher(t *testing.T) (string, *jetstream.Bus) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(srv.Shutdown)
	pub, err := jetstream.Open(context.Background(), jetstream.DefaultConfig(srv.ClientURL()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	return srv.ClientURL(), pub
}

func ingestFromJetStream(t *testing.T, db string) {
	url, pub := jetStreamPublisher(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	var sent []observe.Observation
	for i := range 40 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{} // as a sensor sends them
		o.Endpoint.IP = o.Endpoint.IP.Unmap()
		if err := pub.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, o)
	}

	runCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(runCtx, []string{"--db", db, "ingest", "--bus", url, "--rules", "example:france", "--geo-db", writeLabGeo(t), "--key-dir", t.TempDir()},
		strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != exitOK || !strings.Contains(out.String(), "40 observations stored") {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	code, exported, errOut := vigilRun(t, nil, "", "--db", db, "observations", "export", "--case", "2026/0001", "--format", "jsonl")
	if code != exitOK {
		t.Fatalf("export: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(exported), "\n")
	if len(lines) != len(sent) {
		t.Fatalf("exported %d observations, want %d", len(lines), len(sent))
	}
	dec := observe.NewDecoder(strings.NewReader(exported))
	for i := range sent {
		var o observe.Observation
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		if o.ID != sent[i].ID || o.Jurisdiction.Agency == "" {
			t.Fatalf("observation %d: id %s agency %q; want id %s, routed at ingest", i, o.ID, o.Jurisdiction.Agency, sent[i].ID)
		}
		if o.Endpoint.IP.Is4() && !o.Place.Found() {
			t.Errorf("observation %d (%s) not placed at ingest", i, o.Endpoint.IP)
		}
		// Published with no sensor's signature: not sensor evidence.
		if !o.HasMark(observe.MarkUnsigned) {
			t.Errorf("observation %d arrived unsigned and was stored without the unsigned_import mark: %v", i, o.Marks)
		}
	}
}

// writeLabGeo writes the lab's loopback geo database and returns the city
// file (it places every 127.0.0.0/8 address).
func writeLabGeo(t testing.TB) string {
	t.Helper()
	files, err := lab.WriteGeo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return files.City
}

// Observations whose time cannot be true (before 1999, or hours ahead of
// ingest's clock) are stored with the rest, marked time_implausible, and
// the line 'vigil ingest' prints when it stops says how many of those
// stored were marked so. (Before, they were refused and gone.)
func TestIngestSaysHowManyTimesItMarked(t *testing.T) {
	url, pub := jetStreamPublisher(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{time.Now().Add(-time.Hour), time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now().Add(-2 * time.Hour), time.Now().Add(6 * time.Hour), time.Now().Add(-3 * time.Hour)}
	for i, at := range times {
		o := storetest.Observation(r, at.UTC(), i)
		o.Place, o.Jurisdiction = observe.Place{}, observe.Jurisdiction{}
		if err := pub.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	db := filepath.Join(t.TempDir(), "v.db")
	code := run(runCtx, []string{"--db", db, "ingest", "--bus", url, "--key-dir", t.TempDir()},
		strings.NewReader(""), &out, &errb, func(string) string { return "" })
	if code != exitOK || !strings.Contains(out.String(), "5 observations stored; 2 of them marked time_implausible, as their time cannot be true") {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}
