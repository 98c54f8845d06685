package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestIngestTrustsOnlyTheDeploymentsKeysByDefault: 'vigil ingest' with
// default settings (no --sensor-keys) takes as sensor evidence only what
// a key of its key folder signed: the deployment's sensor.key, a key
// retired by 'vigil sensor key rotate', and a key made there after
// ingest started (a sensor rotated and restarted). A hub that signs
// forgeries with a key of its own, under a chain id and a sensor name of
// its own or of a real sensor, gets them stored marked signature_failed,
// never signed.
func TestIngestTrustsOnlyTheDeploymentsKeysByDefault(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	defer srv.Shutdown()
	url := srv.ClientURL()
	ctx := context.Background()
	pub, err := jetstream.Open(ctx, jetstream.DefaultConfig(url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	keyDir := t.TempDir()
	seedFile := func(name string, b byte) ed25519.PrivateKey {
		seed := bytes.Repeat([]byte{b}, ed25519.SeedSize)
		if err := os.WriteFile(filepath.Join(keyDir, name), []byte(hex.EncodeToString(seed)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return ed25519.NewKeyFromSeed(seed)
	}
	own := seedFile("sensor.key", 3)
	retired := seedFile("sensor-20261101T000000.000000000Z.key.retired", 5)
	hub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Millisecond)
	ownObs := signedProbes(t, own, at, "192.0.2.50", "192.0.2.50")
	retiredObs := signedProbes(t, retired, at.Add(time.Minute), "192.0.2.51", "192.0.2.51")
	hubObs := signedProbes(t, hub, at.Add(2*time.Minute), "192.0.2.47", "192.0.2.47")
	// The hub names a real sensor as its sensor too.
	named := signedProbes(t, hub, at.Add(3*time.Minute), "192.0.2.48", "192.0.2.48")
	for i := range named {
		named[i].Sensor.ID = ownObs[0].Sensor.ID
	}
	forged := map[string]bool{}
	var sent []observe.Observation
	publish := func(obs []observe.Observation, bad bool) {
		for _, o := range obs {
			if err := pub.Publish(ctx, o); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, o)
			forged[o.ID] = bad
		}
	}
	publish(ownObs, false)
	publish(retiredObs, false)
	publish(hubObs, true)
	publish(named, true)

	db := filepath.Join(t.TempDir(), "v.db")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"--db", db, "ingest", "--bus", url, "--key-dir", keyDir,
			"--signature-wait", "1s", "--geo-db", writeLabGeo(t)},
			strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	exited := false
	defer func() {
		if t.Failed() {
			cancel()
			if !exited {
				<-done
			}
			t.Logf("ingest said:\n%s\n%s", out.String(), errb.String())
		}
	}()
	acked := func(n int) func() bool { return ackedUpTo(ctx, url, n) }
	waitUntil(t, 60*time.Second, "every message acknowledged", acked(len(sent)))
	// The sensor's key is rotated while ingest runs; the sensor, restarted,
	// signs with the new key.
	if err := os.Rename(filepath.Join(keyDir, "sensor.key"), filepath.Join(keyDir, "sensor-20261201T000000.000000000Z.key.retired")); err != nil {
		t.Fatal(err)
	}
	rotated := seedFile("sensor.key", 6)
	publish(signedProbes(t, rotated, at.Add(4*time.Minute), "192.0.2.52", "192.0.2.52"), false)
	waitUntil(t, 60*time.Second, "every message acknowledged", acked(len(sent)))
	cancel()
	code := <-done
	exited = true
	if code != exitOK {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	checkForgedFailed(t, db, sent, forged)
}
