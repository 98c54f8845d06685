package main

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// --own-addresses from the command line: a bad line is a usage error
// naming the file and the line; observations of the deployment's own
// addresses (a fellow sensor's host, a fellow's socket) are stored but
// make no target, while a peer that claims to be a sensor (a Vigil peer
// id, a sensor_address of the deployment's) in an unsigned observation
// stays a target. Without the file every one is a target.
func TestOwnAddressesFromTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.txt", "192.0.2.50\n10.0.0.0/8\n")
	code, _, errOut := vigilRun(t, map[string]string{"VIGIL_DB": filepath.Join(dir, "x.db")}, "", "--own-addresses", bad, "targets", "--json")
	if code != exitUsage || !strings.Contains(errOut, "bad.txt line 2") {
		t.Fatalf("a bad line: exit %d, %q; want a usage error naming bad.txt line 2", code, errOut)
	}

	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	for i, ep := range []string{"192.0.2.50:51413", "198.51.100.60:6881", "203.0.113.9:51413"} {
		o := storetest.Observation(rand.New(rand.NewPCG(16, uint64(i))), time.Now().UTC().Add(-time.Hour), 1)
		ap := netip.MustParseAddrPort(ep)
		o.Endpoint.IP, o.Endpoint.Port = ap.Addr(), ap.Port()
		if i == 2 { // the hostile peer's claims
			o.Endpoint.Local = netip.MustParseAddrPort("192.0.2.50:6881")
			o.Sensor.Vantage = "192.0.2.50"
			o.Client.PeerID = []byte("-VG0001-abcdefghijkl")
		}
		if err := enc.Encode(&o); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	obs := writeFile(t, dir, "obs.jsonl", buf.String())
	ownFile := writeFile(t, dir, "own.txt", "# the deployment's sensors\n192.0.2.50\n198.51.100.60:6881\n")
	targetsOf := func(env map[string]string, args ...string) []targetJSON {
		t.Helper()
		mustRun(t, env, "", append(args, "observations", "import", "--format", "jsonl", obs)...)
		var ts []targetJSON
		if err := json.Unmarshal([]byte(mustRun(t, env, "", append(args, "targets", "--json")...)), &ts); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	if ts := targetsOf(map[string]string{"VIGIL_DB": filepath.Join(dir, "without.db")}); len(ts) != 3 {
		t.Fatalf("without the file: %d targets, want 3", len(ts))
	}
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "with.db"), "VIGIL_OWN_ADDRESSES": ownFile}
	ts := targetsOf(env)
	if len(ts) != 1 {
		t.Fatalf("with the file: %d targets, want 1 (the peer that claims to be a sensor): %+v", len(ts), ts)
	}
	out := mustRun(t, env, "", "observations", "export", "--format", "jsonl", "--case", "2026/0001")
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("%d observations stored, want 3 (a fellow's are stored, only never a target)", n)
	}
}
