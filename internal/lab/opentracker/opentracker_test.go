package opentracker

import (
	"crypto/rand"
	"errors"
	"testing"

	"github.com/vigil-oss/vigil/internal/testenv"
)

// A whitelisted hash holding a 0x20 byte is accepted once the tracker is
// ready, and another one is refused: the readiness check must send each
// byte percent-encoded (form encoding writes 0x20 as '+', which
// opentracker reads as 0x2B, so one tracker in thirteen never looked
// ready).
func TestReadyWithASpaceInTheHash(t *testing.T) {
	var spaced, other [20]byte
	rand.Read(spaced[:])
	rand.Read(other[:])
	spaced[3], spaced[17] = 0x20, '+'
	tr, err := Start(t.TempDir(), [][20]byte{spaced})
	if errors.Is(err, ErrMissing) {
		testenv.Missing(t, "OPENTRACKER", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if !tr.allows(spaced) {
		t.Fatalf("the tracker refuses its whitelisted %x: %s", spaced, tr.refusal)
	}
	if tr.allows(other) {
		t.Fatal("the tracker accepts a torrent not on its list")
	}
	if got := percentEncode([]byte{0x20, '+', 'a', 0xff}); got != "%20%2B%61%FF" {
		t.Fatalf("percentEncode = %q", got)
	}
}
