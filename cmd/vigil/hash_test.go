package main

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWatchlistHashCSVContract(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 70_000)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "synthetic-001.bin")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := vigilRun(t, nil, "", "watchlist", "hash", "--format", "csv", dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[0] != "path,size,md5,sha1,sha256,ed2k,tth,btv2" {
		t.Fatalf("csv:\n%s", out)
	}
	f := strings.Split(lines[1], ",")
	m, s := md5.Sum(data), sha256.Sum256(data)
	if f[0] != p || f[1] != "70000" || f[2] != hex.EncodeToString(m[:]) || f[4] != hex.EncodeToString(s[:]) {
		t.Fatalf("row %q", lines[1])
	}
	if len(f[6]) != 39 || strings.ToUpper(f[6]) != f[6] || len(f[7]) != 64 {
		t.Fatalf("tth %q or btv2 %q not in their customary form", f[6], f[7])
	}
	// Only the kinds asked for.
	_, out, _ = vigilRun(t, nil, "", "watchlist", "hash", "--kinds", "sha256", "--format", "csv", p)
	row := strings.Split(strings.Split(strings.TrimSpace(out), "\n")[1], ",")
	if row[2] != "" || row[4] != hex.EncodeToString(s[:]) || row[6] != "" {
		t.Fatalf("--kinds sha256 row %q", row)
	}
	if code, _, _ := vigilRun(t, nil, "", "watchlist", "hash", "--kinds", "crc32", p); code != exitUsage {
		t.Fatalf("unknown kind: exit %d, want %d", code, exitUsage)
	}
	code, _, errOut = vigilRun(t, nil, "", "watchlist", "hash", filepath.Join(dir, "missing.bin"))
	if code != exitRejected || !strings.Contains(errOut, "missing.bin") {
		t.Fatalf("missing file: exit %d, stderr %q", code, errOut)
	}
}
