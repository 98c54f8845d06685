package opentracker

import (
	"crypto/rand"
	"errors"
	"testing"
)

// A tracker that keeps refusing its whitelisted torrent is replaced by
// another: here the first attempt's list misses the torrent (as when the
// tracker's one load of its list at start is missed), and Start still
// returns a tracker that accepts it.
func TestStartReplacesATrackerThatRefusesItsList(t *testing.T) {
	var listed, other [20]byte
	rand.Read(listed[:])
	rand.Read(other[:])
	defer func(f func(int, [][20]byte) [][20]byte) { listFor = f }(listFor)
	attempts := 0
	listFor = func(attempt int, hashes [][20]byte) [][20]byte {
		attempts = attempt
		if attempt == 1 {
			return [][20]byte{other}
		}
		return hashes
	}
	tr, err := Start(t.TempDir(), [][20]byte{listed})
	if errors.Is(err, ErrMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if attempts != 2 {
		t.Fatalf("Start made %d attempts, want 2", attempts)
	}
	if !tr.allows(listed) {
		t.Fatal("the tracker Start returned refuses its whitelisted torrent")
	}
	if tr.allows(other) {
		t.Fatal("the tracker Start returned accepts a torrent not on its list")
	}
}
