package evidence_test

import (
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence"
)

// TestParseSensorKeysTrailingComment: a --sensor-keys file of an earlier
// version may carry a comment after a key ("KEY # laptop"). That is no
// sensor name: binding the key to "# laptop" would store everything the
// sensor signs marked signature_failed.
func TestParseSensorKeysTrailingComment(t *testing.T) {
	a := strings.Repeat("ab", 32)
	keys, names, err := evidence.ParseSensorKeys("f", []byte(a+"  # laptop in room 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || names[string(keys[0])] != nil {
		t.Fatalf("keys %d, bound to %q: want the key unbound", len(keys), names[string(keys[0])])
	}
	for line, want := range map[string]string{a + " bittorrent-1 # laptop\n": "bittorrent-1", a + " lab#2\n": "lab#2"} {
		keys, names, err = evidence.ParseSensorKeys("f", []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		if got := names[string(keys[0])]; len(got) != 1 || got[0] != want {
			t.Errorf("%q: bound to %q, want %s", line, got, want)
		}
	}
}
