package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestIngestBindsSensorKeysToSensorNames: two sensors, sensor-a and
// sensor-b, each with its own key, both trusted by 'vigil ingest'. Sensor
// b (compromised, or a colleague's) signs observations that name sensor
// a: its signature checks under a trusted key, but the store would hold
// them as sensor a's evidence. With the keys bound to their sensors
// (--sensor-keys with each key's sensor name; by default the key folder's
// names files, which each sensor writes) they are stored marked
// signature_failed, and the log names both sensors; each sensor's own
// observations are stored signed.
func TestIngestBindsSensorKeysToSensorNames(t *testing.T) {
	keyA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0a}, 32))
	keyB := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x0b}, 32))
	hexA := hex.EncodeToString(keyA.Public().(ed25519.PublicKey))
	hexB := hex.EncodeToString(keyB.Public().(ed25519.PublicKey))
	for _, mode := range []string{"sensor-keys", "key-dir"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var trust []string
			if mode == "sensor-keys" {
				trust = []string{"--sensor-keys", writeFile(t, dir, "sensors.keys", "# key sensor\n"+hexA+" sensor-a\n"+hexB+"\tsensor-b\n"),
					"--key-dir", t.TempDir()}
			} else {
				// sensor-a's key is the folder's own; sensor-b's public key
				// and names copied in from its host, as a retired key's are.
				if err := os.Chmod(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				writePubKey(t, filepath.Join(dir, sensorPubFile), keyA.Public().(ed25519.PublicKey))
				writePubKey(t, filepath.Join(dir, "sensor-b.pub.retired"), keyB.Public().(ed25519.PublicKey))
				for name, sensor := range map[string]string{"sensor.names": "sensor-a", "sensor-b.names.retired": "sensor-b"} {
					if err := os.WriteFile(filepath.Join(dir, name), []byte(sensor+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				trust = []string{"--key-dir", dir}
			}
			at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Millisecond)
			ownA := signedProbesAs(t, keyA, "sensor-a", at, "192.0.2.60", "192.0.2.60")
			ownB := signedProbesAs(t, keyB, "sensor-b", at.Add(time.Minute), "192.0.2.61", "192.0.2.61")
			asA := signedProbesAs(t, keyB, "sensor-a", at.Add(2*time.Minute), "192.0.2.62", "192.0.2.62")
			forged := map[string]bool{}
			var sent []observe.Observation
			for _, set := range []struct {
				obs []observe.Observation
				bad bool
			}{{ownA, false}, {ownB, false}, {asA, true}} {
				for _, o := range set.obs {
					sent = append(sent, o)
					forged[o.ID] = set.bad
				}
			}
			out := ingestOnce(t, sent, trust)
			checkForgedFailed(t, filepath.Join(out.dir, "v.db"), sent, forged)
			if !strings.Contains(out.log, `\"sensor-b\"`) || !strings.Contains(out.log, `\"sensor-a\"`) {
				t.Errorf("the log does not name both sensors:\n%s", out.log)
			}
		})
	}
}

// signedProbesAs is signedProbes with every observation naming sensor.
func signedProbesAs(t *testing.T, key ed25519.PrivateKey, sensor string, at time.Time, addrs ...string) []observe.Observation {
	t.Helper()
	c := &hubCollect{}
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 2, Interval: time.Hour})
	for i, a := range addrs {
		o := ispObs(observe.MethodPeerProbe, 51413, at.Add(time.Duration(i)*time.Hour))
		o.Endpoint.IP = netip.MustParseAddr(a)
		o.Place = observe.Place{}
		o.Transcript.Bytes = []byte("transcript")
		o.Sensor.ID = sensor
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

type ingestOutput struct {
	dir, log string
}

// ingestOnce publishes obs on an in-process NATS server, runs 'vigil
// ingest' with trust (its key flags) until every message is acknowledged,
// and returns where its store is and what it logged.
func ingestOnce(t *testing.T, obs []observe.Observation, trust []string) ingestOutput {
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
	defer srv.Shutdown()
	url := srv.ClientURL()
	ctx := context.Background()
	pub, err := jetstream.Open(ctx, jetstream.DefaultConfig(url), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, o := range obs {
		if err := pub.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	args := append([]string{"--db", filepath.Join(dir, "v.db"), "ingest", "--bus", url, "--signature-wait", "1s", "--geo-db", writeLabGeo(t)}, trust...)
	go func() {
		done <- run(runCtx, args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	waitUntil(t, 60*time.Second, "every message acknowledged", ackedUpTo(ctx, url, len(obs)))
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	return ingestOutput{dir: dir, log: out.String() + errb.String()}
}
