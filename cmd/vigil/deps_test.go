package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries keeps the one-way data flow of docs/architecture.md:
// protocol code imports neither storage nor HTTP, storage imports no
// protocol code, and the no-I/O parsers touch neither sockets nor files.
func TestImportBoundaries(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", "./...")
	cmd.Dir = "../.." // the module root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/vigil-oss/vigil/"
	type pkg struct {
		ImportPath string
		Imports    []string // direct
		Deps       []string // transitive
	}
	rules := []struct {
		pkgPrefix string
		forbidden []string
		why       string
	}{
		{mod + "internal/sensor/", []string{mod + "internal/store", mod + "internal/web", "net/http/httptest", mod + "internal/analysis"},
			"protocol code imports neither storage nor HTTP serving"},
		{mod + "internal/store", []string{mod + "internal/sensor", mod + "internal/web", mod + "internal/lab"},
			"storage imports no protocol code"},
		{mod + "internal/hashkind", []string{"net", "os", "io/fs", mod + "internal/store"}, "a parser does no I/O"},
		{mod + "internal/watchlist", []string{"net", mod + "internal/store", mod + "internal/sensor"}, "list formats do no network I/O and know no store"},
		{mod + "internal/observe", []string{mod + "internal/store", mod + "internal/sensor"}, "the Observation knows neither producers nor consumers"},
		{mod + "internal/sensor/bittorrent/krpc", []string{"net", "os"}, "wire parsers do no I/O"},
		{mod + "internal/sensor/bittorrent/peerwire", []string{"net", "os"}, "wire parsers do no I/O"},
		{mod + "internal/sensor/bittorrent/peerid", []string{"net", "os"}, "wire parsers do no I/O"},
		{mod + "internal/sensor/bittorrent/transcript", []string{"net", "os"}, "the transcript format does no I/O"},
		{mod + "internal/bep42", []string{"net", "os", mod + "internal/sensor", mod + "internal/analysis", mod + "internal/store"}, "BEP 42 arithmetic does no I/O and knows neither the sensor nor the analysis"},
		{mod + "internal/web/maps", []string{"net", "net/http"}, "map outlines are embedded, never fetched"},
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, r := range rules {
			if !strings.HasPrefix(p.ImportPath, r.pkgPrefix) || strings.HasSuffix(p.ImportPath, "test") {
				continue
			}
			for _, f := range r.forbidden {
				if !strings.HasPrefix(f, mod) {
					// A standard-library package: only direct imports count
					// (fmt itself imports os).
					for _, d := range p.Imports {
						if d == f {
							t.Errorf("%s imports %s: %s", p.ImportPath, d, r.why)
						}
					}
					continue
				}
				for _, d := range p.Deps {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s depends on %s: %s", p.ImportPath, d, r.why)
					}
				}
			}
		}
	}
	if n < 5 {
		t.Fatalf("go list found only %d packages", n)
	}
}
