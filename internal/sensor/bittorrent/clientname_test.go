package bittorrent

import (
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
)

// "VG" is Vagaa's client code as well as Vigil's. A DHT node's "v" is its
// own word for its client: only the exact bytes Vigil's nodes send
// (dhtnode.ClientVersion) read as Vigil; any other "VG" version is shown
// as Vagaa or another client, never as Vigil (a third party misnamed as
// the police tool in an observation's client name).
func TestClientFromVNeverNamesAThirdPartyVigil(t *testing.T) {
	for _, c := range []struct {
		v    []byte
		want string
	}{
		{dhtnode.ClientVersion(), "Vigil"},
		{[]byte("VG\x02\x05"), "VG (Vagaa or other)"},
		{[]byte("VG\x00\x00"), "VG (Vagaa or other)"},
		{[]byte("VG\x00\x01\x00"), "v=5647000100"}, // not the 4-byte form
		{[]byte("LT\x01\x02"), "libtorrent"},
		{[]byte("UT\x01\x02"), "uTorrent"},
		{nil, ""},
	} {
		if got := clientFromV(c.v); got != c.want {
			t.Errorf("clientFromV(%q) = %q, want %q", c.v, got, c.want)
		}
	}
}
