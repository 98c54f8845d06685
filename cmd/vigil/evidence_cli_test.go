package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSensorKeyRotateKeepsTheOldKey(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := vigilRun(t, nil, "", "sensor", "key", "rotate", "--key-dir", dir)
	if code != exitOK {
		t.Fatalf("rotate: exit %d %s", code, errOut)
	}
	keys := regexp.MustCompile(`public key ([0-9a-f]{64})`).FindAllStringSubmatch(out, -1)
	if len(keys) != 2 || keys[0][1] == keys[1][1] {
		t.Fatalf("rotate printed %q", out)
	}
	retired, _ := filepath.Glob(filepath.Join(dir, "sensor-*.key.retired"))
	if len(retired) != 1 {
		t.Fatalf("retired keys: %v", retired)
	}
	if _, err := os.Stat(filepath.Join(dir, "sensor.key")); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyExitCodes(t *testing.T) {
	if code, _, _ := vigilRun(t, nil, "", "verify"); code != exitUsage {
		t.Fatalf("no bundle: exit %d, want %d", code, exitUsage)
	}
	bad := filepath.Join(t.TempDir(), "bad.zip")
	os.WriteFile(bad, []byte("not a zip"), 0o600)
	if code, _, errOut := vigilRun(t, nil, "", "verify", bad); code != exitRejected || !strings.Contains(errOut, "not a zip") {
		t.Fatalf("not a zip: exit %d %s", code, errOut)
	}
}
