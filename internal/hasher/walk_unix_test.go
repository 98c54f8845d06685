//go:build unix

package hasher

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWalkReportsBadPathsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"synthetic-001.bin": 5})
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	missing := filepath.Join(dir, "missing.bin")
	res := collect(t, []string{missing, fifo, filepath.Join(dir, "synthetic-001.bin")}, DefaultConfig())
	if got, want := len(res), 3; got != want {
		t.Fatalf("%d results, want %d", got, want)
	}
	byPath := map[string]Result{}
	for _, r := range res {
		byPath[r.Path] = r
	}
	if err := byPath[missing].Err; !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing.bin") {
		t.Fatalf("missing file: err %v, want not-exist naming the file", err)
	}
	if err := byPath[fifo].Err; !errors.Is(err, ErrNotRegular) {
		t.Fatalf("fifo: err %v, want ErrNotRegular", err)
	}
	if r := byPath[filepath.Join(dir, "synthetic-001.bin")]; r.Err != nil || len(r.Sums) != len(DefaultKinds()) {
		t.Fatalf("good file after bad ones: %+v", r)
	}
}
