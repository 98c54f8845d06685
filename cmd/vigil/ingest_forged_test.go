package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-oss/vigil/internal/bus/jetstream"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// hubCollect is what a sensor's batch signer hands to the bus: here, to a
// hostile hub, which may change it before it publishes.
type hubCollect struct{ obs []observe.Observation }

func (c *hubCollect) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// signedProbes signs one probe at each address, an hour apart (one
// chain, batches of two), as a sensor publishes them.
func signedProbes(t *testing.T, key ed25519.PrivateKey, at time.Time, addrs ...string) []observe.Observation {
	t.Helper()
	c := &hubCollect{}
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 2, Interval: time.Hour})
	for i, a := range addrs {
		o := ispObs(observe.MethodPeerProbe, 51413, at.Add(time.Duration(i)*time.Hour))
		o.Endpoint.IP = netip.MustParseAddr(a)
		o.Place = observe.Place{} // a sensor places nothing
		// A sensor's probe carries the transcript its transcript_sha256
		// names (ispObs gives the hash only): in evidence form 2 the
		// gate fails a signed observation whose transcript is missing.
		o.Transcript.Bytes = []byte("transcript")
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

// TestIngestFromAHostileHub: a hub between the sensors and 'vigil ingest'
// changes a field of a signed batch, reorders one, replays one under new
// ids, and swaps the transcript of one in evidence form 2 (its
// transcript_sha256 kept). None of it may become sensor evidence: each is stored marked
// signature_failed, without its chain fields, and is in the annex of the
// ISP request, never a row; the valid batches around them (before and
// after) are stored signed and make their rows.
func TestIngestFromAHostileHub(t *testing.T) {
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

	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	at := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Millisecond)
	// Per chain: a valid batch, the batch the hub tampers with, a valid
	// batch after it (two sightings of an address make a row).
	changed := signedProbes(t, key, at, "192.0.2.50", "192.0.2.50", "192.0.2.44", "192.0.2.44", "192.0.2.51", "192.0.2.51")
	changed[3].Endpoint.Port = 6881 // the hub moves a sighting to another port
	reordered := signedProbes(t, key, at.Add(time.Minute), "192.0.2.52", "192.0.2.52", "192.0.2.45", "192.0.2.45", "192.0.2.53", "192.0.2.53")
	reordered[2].Chain.Seq, reordered[3].Chain.Seq = reordered[3].Chain.Seq, reordered[2].Chain.Seq
	reordered[2], reordered[3] = reordered[3], reordered[2]
	// The sensor saw 192.0.2.46 once (no row); the hub replays that
	// sighting a day later under a new id, to make it two.
	replayed := signedProbes(t, key, at.Add(2*time.Minute), "192.0.2.54", "192.0.2.54", "192.0.2.46", "192.0.2.55", "192.0.2.55", "192.0.2.56")
	r := replayed[2]
	r.Time = r.Time.Add(24 * time.Hour)
	r.ID = observe.NewID(r.Time)
	replayed = append(replayed, r)
	// A hub that signs its forgeries with a key of its own.
	ownKey := signedProbes(t, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)), at.Add(3*time.Minute), "192.0.2.47", "192.0.2.47")
	// Evidence form 2: the signature covers a transcript only through its
	// transcript_sha256; the hub swaps one's bytes.
	swapped := signedProbes(t, key, at.Add(4*time.Minute), "192.0.2.57", "192.0.2.57", "192.0.2.48", "192.0.2.48", "192.0.2.58", "192.0.2.58")
	swapped[3].Transcript.Bytes = []byte("forged transcript")
	forged := map[string]bool{changed[2].ID: true, changed[3].ID: true, reordered[2].ID: true, reordered[3].ID: true,
		r.ID: true, ownKey[0].ID: true, ownKey[1].ID: true, swapped[2].ID: true, swapped[3].ID: true}
	var sent []observe.Observation
	for _, obs := range [][]observe.Observation{changed, reordered, replayed, ownKey, swapped} {
		for _, o := range obs {
			if err := pub.Publish(ctx, o); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, o)
		}
	}
	keys := filepath.Join(t.TempDir(), "sensor-keys")
	if err := os.WriteFile(keys, []byte("# lab sensors\n"+hex.EncodeToString(key.Public().(ed25519.PublicKey))+" bt-lab-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	db := filepath.Join(t.TempDir(), "v.db")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"--db", db, "ingest", "--bus", url, "--key-dir", t.TempDir(),
			"--sensor-keys", keys, "--signature-wait", "1s", "--geo-db", writeLabGeo(t)},
			strings.NewReader(""), &out, &errb, func(string) string { return "" })
	}()
	exited := false // ingest's exit code was received from done
	defer func() {
		if t.Failed() {
			cancel()
			if !exited {
				<-done
			}
			t.Logf("ingest said:\n%s\n%s", out.String(), errb.String())
		}
	}()
	// Everything the hub sent is stored (what no signature covers, after
	// --signature-wait) before ingest is stopped: ingest acknowledges a
	// message only once it is committed.
	waitUntil(t, 60*time.Second, "every message acknowledged", ackedUpTo(ctx, url, len(sent)))
	cancel()
	code := <-done
	exited = true
	if code != exitOK {
		t.Fatalf("ingest: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	checkForgedFailed(t, db, sent, forged)

	// The ISP requests: rows only at the valid batches' addresses.
	code, list, errOut := vigilRun(t, nil, "", "--db", db, "targets", "--json")
	if code != exitOK {
		t.Fatalf("targets: %d %s", code, errOut)
	}
	var targets []map[string]any
	if err := json.Unmarshal([]byte(list), &targets); err != nil {
		t.Fatalf("%v:\n%s", err, list)
	}
	rows, annexed := map[string]bool{}, map[string]string{}
	for _, tg := range targets {
		id, _ := tg["id"].(string)
		code, out, errOut := vigilRun(t, nil, "", "--db", db, "isp-request", "--target", id, "--format", "json", "--case", "2026/0001")
		if code != exitOK {
			t.Fatalf("isp-request %s: exit %d %s", id, code, errOut)
		}
		var req struct {
			Groups []struct{ Rows []map[string]any }
			Annex  []map[string]any
		}
		if err := json.Unmarshal([]byte(out), &req); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		for _, g := range req.Groups {
			for _, r := range g.Rows {
				rows[r["ip"].(string)] = true
			}
		}
		for _, a := range req.Annex {
			annexed[a["observation_id"].(string)], _ = a["reason"].(string)
		}
	}
	for _, ip := range []string{"192.0.2.44", "192.0.2.45", "192.0.2.46", "192.0.2.47", "192.0.2.48"} {
		if rows[ip] {
			t.Errorf("a row at %s, whose sightings the hub forged", ip)
		}
	}
	for _, ip := range []string{"192.0.2.50", "192.0.2.51", "192.0.2.52", "192.0.2.53", "192.0.2.54", "192.0.2.55", "192.0.2.57", "192.0.2.58"} {
		if !rows[ip] {
			t.Errorf("no row at %s (valid batches before and after the forged ones): rows %v", ip, rows)
		}
	}
	for _, o := range sent {
		if forged[o.ID] && annexed[o.ID] != "signature_failed" {
			t.Errorf("forged observation %s at %s: annex reason %q, want signature_failed", o.ID, o.Endpoint.IP, annexed[o.ID])
		}
	}
}

// checkForgedFailed checks that every observation sent is stored, marked
// signature_failed and unsigned exactly when forged says so, and signed
// otherwise.
func checkForgedFailed(t *testing.T, db string, sent []observe.Observation, forged map[string]bool) {
	t.Helper()
	stored := map[string]observe.Observation{}
	for _, o := range storedObservations(t, db) {
		stored[o.ID] = o
	}
	for _, o := range sent {
		s, ok := stored[o.ID]
		if !ok {
			t.Errorf("observation %s (%s) not stored", o.ID, o.Endpoint.IP)
			continue
		}
		bad := forged[o.ID]
		if got := s.HasMark(observe.MarkSignatureFailed); got != bad {
			t.Errorf("observation %s at %s: marked signature_failed %v, want %v (marks %v)", o.ID, o.Endpoint.IP, got, bad, s.Marks)
		}
		if s.Signed() == bad {
			t.Errorf("observation %s at %s: stored signed %v", o.ID, o.Endpoint.IP, s.Signed())
		}
	}
}

// ackedUpTo says whether ingest's consumer on the JetStream server at url
// (the default stream and consumer) has acknowledged the first n
// messages and holds none pending.
func ackedUpTo(ctx context.Context, url string, n int) func() bool {
	return func() bool {
		nc, err := nats.Connect(url, nats.Timeout(500*time.Millisecond))
		if err != nil {
			return false
		}
		defer nc.Close()
		j, err := js.New(nc)
		if err != nil {
			return false
		}
		c, err := j.Consumer(ctx, jetstream.DefaultConfig(url).Stream, jetstream.DefaultConfig(url).Consumer)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= uint64(n) && ci.NumAckPending == 0
	}
}
