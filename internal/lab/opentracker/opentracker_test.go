package opentracker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Start's fallback, when the tracker keeps refusing its list, is SIGHUP:
// this checks that a running opentracker reads its list again on it, and
// survives it.
func TestSIGHUPReloadsTheList(t *testing.T) {
	var first, second [20]byte
	rand.Read(first[:])
	rand.Read(second[:])
	dir := t.TempDir()
	tr, err := Start(dir, [][20]byte{first})
	if errors.Is(err, ErrMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.allows(second) {
		t.Fatal("the tracker accepts a torrent not on its list")
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), []byte(hex.EncodeToString(second[:])+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tr.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !tr.allows(second); {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the tracker still refuses the new list's torrent: %s", tr.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
