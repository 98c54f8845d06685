package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestSensorED2KWritesObservationsOfTheWatchList: the watch-list's ed2k
// links are watched, the lab's server and Kad are asked, and the JSON
// Lines on standard output carry the probed client's user hash; a file
// not on the list is never named.
func TestSensorED2KWritesObservationsOfTheWatchList(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 21, Server: true, KadNodes: 12, Files: 2, Clients: 2,
		Base: netip.MustParseAddr("127.99.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db")}
	f := lab.Files[0] // only file 0 is watched
	list := writeFile(t, dir, "lab.ed2k", fmt.Sprintf("ed2k://|file|%s|%d|%s|/\n", f.Name, f.Size, hex.EncodeToString(f.Hash[:])))
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "lab", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	srv := lab.Server.Addr().String()
	var boot []string
	for _, a := range lab.Bootstrap(2) {
		boot = append(boot, a.String())
	}
	code, out, errOut := vigilRun(t, env, "", "sensor", "ed2k", "--server", srv, "--kad-bootstrap", strings.Join(boot, ","),
		"--listen", "127.99.255.1", "--lab", "--duration", "4s")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dec := observe.NewDecoder(strings.NewReader(out))
	want := map[string]bool{}
	for _, tr := range lab.Truth() {
		if tr.File == f.Hash {
			want[hex.EncodeToString(tr.UserHash[:])] = true
		}
	}
	methods := map[string]int{}
	var o observe.Observation
	for dec.Decode(&o) == nil {
		if [16]byte(o.Item.Hash.Bytes()) != f.Hash {
			t.Fatalf("an unwatched file left the sensor: %s", o.Item.Hash)
		}
		methods[o.Network+" "+o.Method]++
		if o.Method == observe.MethodPeerProbe {
			delete(want, hex.EncodeToString(o.Client.UserHash))
		}
	}
	if len(want) != 0 || methods["ed2k ed2k_server_sources"] == 0 || methods["kad kad_sources"] == 0 {
		t.Fatalf("methods %v; user hashes not seen %v\nstderr: %s", methods, want, errOut)
	}
	if !strings.Contains(out, `"user_hash":"`) || !strings.Contains(errOut, "observations") {
		t.Fatalf("output lacks user_hash or the summary:\n%s", errOut)
	}
}
