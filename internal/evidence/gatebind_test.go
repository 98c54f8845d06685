package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// signedAs publishes obs as sensor name signs them with key (batches of
// 4) and returns what reached the bus.
func signedAs(t *testing.T, key ed25519.PrivateKey, name string, obs []observe.Observation) []observe.Observation {
	t.Helper()
	c := &collect{}
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	for _, o := range obs {
		o.Sensor.ID = name
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

// TestGateBindsKeysToSensorNames: two sensors, A and B, each with its
// key, both trusted. Sensor B (compromised, or run by a colleague) signs
// observations that name sensor A: its signature checks under a trusted
// key, but a court would read them as A's. With each key bound to its
// sensor, they are failed as under a key not trusted, naming both; A's
// own, and B's under its own name, still pass. A key given without a
// name signs for any sensor name, as before.
func TestGateBindsKeysToSensorNames(t *testing.T) {
	keyA := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xA}, 32))
	keyB := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xB}, 32))
	pubA, pubB := keyA.Public().(ed25519.PublicKey), keyB.Public().(ed25519.PublicKey)
	ownA := signedAs(t, keyA, "sensor-a", sample(4))
	ownB := signedAs(t, keyB, "sensor-b", sample(4))
	forged := signedAs(t, keyB, "sensor-a", sample(4))
	keys := []byte(strings.Join([]string{
		"# the deployment's sensors",
		"\t" + strings.ToLower(hex.EncodeToString(pubA)) + "  sensor-a",
		hex.EncodeToString(pubB) + "\tsensor-b",
	}, "\n"))
	k, names, err := evidence.ParseSensorKeys("sensors.keys", keys)
	if err != nil || len(k) != 2 || len(names) != 2 {
		t.Fatalf("ParseSensorKeys: %d keys, %v, %v", len(k), names, err)
	}
	cfg := evidence.DefaultGateConfig()
	cfg.Keys, cfg.Sensors = k, names
	all := append(append(clone(ownA), ownB...), forged...)
	g := evidence.NewGate(cfg)
	fate := gateRun(t, cfg, all)
	if ok, failed := covered(fate, append(clone(ownA), ownB...)); failed != 0 {
		t.Errorf("each sensor under its own key: %d covered, %d failed: %v", ok, failed, fate)
	}
	for _, o := range forged {
		why := fate[o.ID]
		if why == "" {
			t.Errorf("%s: signed by sensor-b's key, names sensor-a, yet released as sensor evidence", o.ID)
			continue
		}
		if !strings.Contains(why, `"sensor-b"`) || !strings.Contains(why, `"sensor-a"`) {
			t.Errorf("%s: failed %q, which does not name both sensors", o.ID, why)
		}
	}
	// The failures the gate reports name both too.
	for i, o := range forged {
		g.Add(o, i, time.Now())
	}
	fs := g.TakeFailures()
	if len(fs) != len(forged) || !strings.Contains(fs[0].Error(), `"sensor-a"`) || !strings.Contains(fs[0].Error(), `"sensor-b"`) {
		t.Errorf("failures: %v", fs)
	}
	// Without names, any sensor name passes (a keys file without notes).
	k, names, err = evidence.ParseSensorKeys("bare.keys", []byte(hex.EncodeToString(pubA)+"\n"+hex.EncodeToString(pubB)+"\n"))
	if err != nil || names != nil {
		t.Fatalf("bare keys: %v, %v", names, err)
	}
	cfg.Keys, cfg.Sensors = k, names
	if ok, failed := covered(gateRun(t, cfg, all), all); failed != 0 {
		t.Errorf("keys bound to no name: %d covered, %d failed", ok, failed)
	}
}

// TestGateAsksTrustAboutANameNotBound: a key trusted for one sensor name
// and then seen under another asks Trust again (a sensor of the key
// folder started under a new --id while ingest runs): what Trust binds
// now decides.
func TestGateAsksTrustAboutANameNotBound(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xC}, 32))
	pub := key.Public().(ed25519.PublicKey)
	obs := signedAs(t, key, "ed2k-1", sample(4))
	bound := []string{"bittorrent-1"}
	asked := 0
	cfg := evidence.DefaultGateConfig()
	cfg.Keys, cfg.Sensors = [][]byte{pub}, map[string][]string{string(pub): {"bittorrent-1"}}
	cfg.Trust = func(k []byte, sensor string) (bool, []string) {
		asked++
		return bytes.Equal(k, pub), bound
	}
	if _, failed := covered(gateRun(t, cfg, obs), obs); failed != len(obs) || asked == 0 {
		t.Errorf("name not bound: %d of %d failed, Trust asked %d times", failed, len(obs), asked)
	}
	bound = append(bound, "ed2k-1")
	if ok, _ := covered(gateRun(t, cfg, obs), obs); ok != len(obs) {
		t.Errorf("once Trust binds the name: %d of %d covered", ok, len(obs))
	}
}

// TestParseSensorKeysNames: the note column is the sensor's name; a key
// on several lines signs for each name given; a key given with and
// without a name is refused.
func TestParseSensorKeysNames(t *testing.T) {
	a, b := strings.Repeat("aa", 32), strings.Repeat("bb", 32)
	keys, names, err := evidence.ParseSensorKeys("f", []byte(a+" bittorrent-1\n"+a+" ed2k-1\n"+b+"\n"+a+"   bittorrent-1  \n"))
	if err != nil || len(keys) != 2 {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	ka := string(bytes.Repeat([]byte{0xaa}, 32))
	if got := names[ka]; len(got) != 2 || got[0] != "bittorrent-1" || got[1] != "ed2k-1" {
		t.Errorf("names of a: %q", got)
	}
	if _, ok := names[string(bytes.Repeat([]byte{0xbb}, 32))]; ok {
		t.Errorf("b given without a name is bound: %q", names)
	}
	if _, _, err := evidence.ParseSensorKeys("f", []byte(a+" bittorrent-1\n"+a+"\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a key with and without a name: %v", err)
	}
}

// TestVerifyTiesAKeyToItsSensor: keys.json lists each sensor key with
// the sensor whose chain the store holds under it. A chain begun in one
// sensor's name whose later observations name another (a sensor signing
// in another's name, stored by an ingest that did not bind names) is
// refused by 'vigil verify', naming both; so is an observation whose key
// the examiner bound (--sensor-keys with a name) to another sensor.
func TestVerifyTiesAKeyToItsSensor(t *testing.T) {
	obs := sample(4)
	for i := range obs {
		obs[i].Sensor.ID = "sensor-a"
	}
	obs[0].Sensor.ID = "sensor-b" // the chain's first: keys.json names sensor-b
	f := newFixture(t, signed(t, obs))
	f.checkpoint(t)
	b := f.bundle(t, f.ids)
	rep := check(t, b)
	if rep.OK() || !hasProblem(rep, `"sensor-a"`, `"sensor-b"`) {
		t.Errorf("observations naming sensor-a under a key keys.json gives sensor-b: ok %v, problems %v", rep.OK(), rep.Problems)
	}

	honest := sample(4)
	for i := range honest {
		honest[i].Sensor.ID = "sensor-a"
	}
	f = newFixture(t, signed(t, honest))
	f.checkpoint(t)
	b = f.bundle(t, f.ids)
	if rep := check(t, b); !rep.OK() {
		t.Fatalf("one sensor's chain: %v", rep.Problems)
	}
	key := hex.EncodeToString(sensorKey.Public().(ed25519.PublicKey))
	for names, ok := range map[string]bool{"sensor-a": true, "sensor-b": false} {
		rep, err := verify.Verify(bytes.NewReader(b), int64(len(b)), verify.Options{SensorKeys: []string{key},
			SensorNames: map[string][]string{key: {names}}})
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() != ok || (!ok && !hasProblem(rep, `"sensor-a"`, `"sensor-b"`, "--sensor-keys")) {
			t.Errorf("key given for %s: ok %v, want %v: %v", names, rep.OK(), ok, rep.Problems)
		}
	}
}

// hasProblem says whether one problem of rep says each of want.
func hasProblem(rep *verify.Report, want ...string) bool {
	for _, p := range rep.Problems {
		all := true
		for _, w := range want {
			all = all && strings.Contains(p.String(), w)
		}
		if all {
			return true
		}
	}
	return false
}

// FuzzParseSensorKeys: whatever the file, every key read is an ed25519
// public key's length, every name is a trimmed line's rest, never empty,
// and every key bound to names is one of the keys read.
func FuzzParseSensorKeys(f *testing.F) {
	a := strings.Repeat("aa", 32)
	for _, s := range []string{a + "\n", a + " bittorrent-1\n" + a + "\ted2k-1\r\n", "# c\n\n" + a + "  two words \n", a + " x\n" + a + "\n", "zz\n", a + "\u00a0x\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, names, err := evidence.ParseSensorKeys("f", data)
		if err != nil {
			return
		}
		read := map[string]bool{}
		for _, k := range keys {
			if len(k) != ed25519.PublicKeySize || read[string(k)] {
				t.Fatalf("key %x read (twice: %v)", k, read[string(k)])
			}
			read[string(k)] = true
		}
		for k, ns := range names {
			if !read[k] || len(ns) == 0 {
				t.Fatalf("names %q of a key not read, or none", ns)
			}
			for _, n := range ns {
				if n == "" || n != strings.TrimSpace(n) || strings.Contains(n, "\n") {
					t.Fatalf("name %q", n)
				}
			}
		}
	})
}
