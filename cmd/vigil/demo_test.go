package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoRunsTheWholeJob runs the README's first command on a small lab
// and checks that the sensor stored observations of each kind it should.
func TestDemoRunsTheWholeJob(t *testing.T) {
	if testing.Short() {
		t.Skip("demo test skipped in -short mode")
	}
	dir := t.TempDir()
	code, out, errOut := vigilRun(t, nil, "", "demo", "--dir", dir, "--addr", "127.0.0.1:0", "--duration", "12s",
		"--dht-nodes", "12", "--seeders", "3", "--leechers", "0", "--torrents", "4", "--watched", "2",
		"--move-peers", "0", "--report-every", "1h", "--log-level", "warn")
	if code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	final := out[strings.Index(out, "final summary:"):]
	for _, method := range []string{"dht_get_peers", "peer_probe"} {
		m := regexp.MustCompile(`(?m)^\s*` + method + `(\s+\d+){5}\s+(\d+)\s*$`).FindStringSubmatch(final)
		if m == nil {
			t.Fatalf("no %s row in the final summary:\n%s", method, final)
		}
		if n, _ := strconv.Atoi(m[2]); n == 0 {
			t.Fatalf("no %s observation stored:\n%s", method, final)
		}
	}
	// The store is in the demo directory and holds what the summary says.
	code, exported, errOut := vigilRun(t, nil, "", "--db", filepath.Join(dir, "vigil.db"), "observations", "export", "--format", "jsonl")
	if code != exitOK || !strings.Contains(exported, `"method":"peer_probe"`) {
		t.Fatalf("export from the demo store: exit %d %s", code, errOut)
	}
	// Every lab peer lives in a placed lab range: observations were placed
	// and routed at ingest (a Paris peer to the Préfecture de police's PJ).
	for _, want := range []string{`"country":"FR"`, `"agency":"fr-`, `"geo_db":"lab-city-ipv4.mmdb"`} {
		if !strings.Contains(exported, want) {
			t.Errorf("no exported observation has %s: not enriched at ingest", want)
		}
	}
	// Round trip through JSON Lines into a fresh store gives the same export.
	file := writeFile(t, dir, "obs.jsonl", exported)
	other := filepath.Join(dir, "other.db")
	if code, _, errOut := vigilRun(t, nil, "", "--db", other, "observations", "import", "--format", "jsonl", file); code != exitOK {
		t.Fatalf("import: exit %d %s", code, errOut)
	}
	_, again, _ := vigilRun(t, nil, "", "--db", other, "observations", "export", "--format", "jsonl")
	if again != exported {
		t.Fatal("export after import differs from the original export")
	}
	bad := writeFile(t, dir, "bad.jsonl", strings.SplitN(exported, "\n", 2)[0]+"\n{\"id\":\"x\"}\n")
	code, _, errOut = vigilRun(t, nil, "", "--db", filepath.Join(dir, "third.db"), "observations", "import", "--format", "jsonl", bad)
	if code != exitRejected || !strings.Contains(errOut, "line 2") {
		t.Fatalf("bad line: exit %d, stderr %q", code, errOut)
	}
}
