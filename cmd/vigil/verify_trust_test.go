package main

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zipFixtureBundle zips the checked-in bundle of internal/evidence/verify.
func zipFixtureBundle(t *testing.T) (path, logKey string) {
	t.Helper()
	dir := filepath.Join("..", "..", "internal", "evidence", "verify", "testdata", "bundle-v1")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "bundle.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		w, err := zw.Create(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	k, err := os.ReadFile(dir + ".logkey")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(k))
}

// TestVerifySaysWhichLogKeyItTrusts: without --log-key, a forger who
// rewrote every file and signed with a key of their own gets the same
// "OK" as the real bundle; the report must say that the key is the
// bundle's own, not compared with a published one, and what to do.
func TestVerifySaysWhichLogKeyItTrusts(t *testing.T) {
	path, key := zipFixtureBundle(t)
	code, out, errOut := vigilRun(t, nil, "", "verify", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"NOT compared with a published key", "--log-key"} {
		if !strings.Contains(out, want) {
			t.Errorf("unpinned report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "OK: everything checks\n") {
		t.Errorf("unpinned report says plainly that everything checks:\n%s", out)
	}
	code, out, errOut = vigilRun(t, nil, "", "verify", "--log-key", key, path)
	if code != exitOK {
		t.Fatalf("pinned: exit %d: %s %s", code, out, errOut)
	}
	if strings.Contains(out, "NOT compared") || !strings.Contains(out, "the key given with --log-key") {
		t.Errorf("pinned report:\n%s", out)
	}
	code, out, _ = vigilRun(t, nil, "", "verify", "--json", path)
	if code != exitOK || !strings.Contains(out, `"log_key_pinned": false`) {
		t.Errorf("json report (exit %d):\n%s", code, out)
	}
}

// TestVerifyNamesTheSensorKeysItTrusted: sensor keys come from the
// bundle's keys.json, which the store's log gives: whoever can write to the
// database can add observations signed with a key of their own. The report
// names each key that signed, with its sensor and how many observations,
// for the examiner to compare with the keys the sensors published.
func TestVerifyNamesTheSensorKeysItTrusted(t *testing.T) {
	path, key := zipFixtureBundle(t)
	const sensorKey = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
	code, out, errOut := vigilRun(t, nil, "", "verify", "--log-key", key, path)
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "bt-lab-1 "+sensorKey+": 5 observations") || !strings.Contains(out, "compare each") {
		t.Errorf("report does not name the sensor key that signed:\n%s", out)
	}
	code, out, _ = vigilRun(t, nil, "", "verify", "--json", "--log-key", key, path)
	if code != exitOK || !strings.Contains(out, `"public_key": "`+sensorKey+`"`) {
		t.Errorf("json report (exit %d):\n%s", code, out)
	}
}

// TestVerifyPinsTheSensorKeys: with --sensor-keys FILE (the sensors'
// published keys, as 'vigil ingest --sensor-keys' reads them), a bundle
// signed by those keys checks and the report says the keys were given; a
// file of other keys makes every signed observation fail, naming the key.
func TestVerifyPinsTheSensorKeys(t *testing.T) {
	path, key := zipFixtureBundle(t)
	const sensorKey = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
	dir := t.TempDir()
	good := writeFile(t, dir, "good.keys", "# the lab sensor\n"+sensorKey+" bt-lab-1\n")
	code, out, errOut := vigilRun(t, nil, "", "verify", "--log-key", key, "--sensor-keys", good, path)
	if code != exitOK || !strings.Contains(out, "the keys given with --sensor-keys") || !strings.Contains(out, "OK: everything checks") {
		t.Fatalf("pinned to the sensor's key: exit %d\n%s%s", code, out, errOut)
	}
	other := writeFile(t, dir, "other.keys", strings.Repeat("ab", 32)+"\n")
	code, out, _ = vigilRun(t, nil, "", "verify", "--log-key", key, "--sensor-keys", other, path)
	if code == exitOK || !strings.Contains(out, sensorKey+" is not among the sensor keys given") {
		t.Errorf("pinned to another key: exit %d\n%s", code, out)
	}
	code, out, _ = vigilRun(t, nil, "", "verify", "--log-key", key, path)
	if code != exitOK || !strings.Contains(out, "--sensor-keys") {
		t.Errorf("unpinned report does not say how to pin the sensor keys (exit %d):\n%s", code, out)
	}
	bad := writeFile(t, dir, "bad.keys", "not-a-key\n")
	if code, _, errOut := vigilRun(t, nil, "", "verify", "--sensor-keys", bad, path); code == exitOK || !strings.Contains(errOut, "bad.keys line 1") {
		t.Errorf("a bad keys file: exit %d: %s", code, errOut)
	}
}

// TestVerifySensorKeysBindNames: a line of --sensor-keys may give the
// sensor's name after its key. The fixture's observations name bt-lab-1:
// under its key given for bt-lab-1 they check; given for another sensor
// only, each fails, naming both (a key of one sensor that signed in
// another's name).
func TestVerifySensorKeysBindNames(t *testing.T) {
	path, key := zipFixtureBundle(t)
	const sensorKey = "6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1"
	dir := t.TempDir()
	own := writeFile(t, dir, "own.keys", sensorKey+" ed2k-1\n"+sensorKey+" bt-lab-1\n")
	if code, out, errOut := vigilRun(t, nil, "", "verify", "--log-key", key, "--sensor-keys", own, path); code != exitOK {
		t.Fatalf("key given for its own sensor: exit %d\n%s%s", code, out, errOut)
	}
	other := writeFile(t, dir, "other.keys", sensorKey+" bt-lab-2\n")
	code, out, _ := vigilRun(t, nil, "", "verify", "--log-key", key, "--sensor-keys", other, path)
	if code == exitOK || !strings.Contains(out, `"bt-lab-1"`) || !strings.Contains(out, `"bt-lab-2"`) {
		t.Errorf("key given for another sensor: exit %d\n%s", code, out)
	}
}
