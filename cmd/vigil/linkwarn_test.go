package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// TestTargetShowJSONSaysLinksAreInferences: 'target show --json' prints
// the target's device links; beside them goes the sentence the page and
// the ISP request carry: a link is an inference, never an identification.
func TestTargetShowJSONSaysLinksAreInferences(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	var buf bytes.Buffer
	enc := observe.NewEncoder(&buf)
	o := storetest.Observation(rand.New(rand.NewPCG(15, 3)), time.Now().UTC().Add(-time.Hour), 1)
	o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr("192.0.2.9"), 51413
	if err := enc.Encode(&o); err != nil {
		t.Fatal(err)
	}
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "", "observations", "import", "--format", "jsonl", writeFile(t, dir, "obs.jsonl", buf.String()))
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	var d struct {
		ID           string    `json:"id"`
		LinksWarning *isp.Note `json:"links_warning"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "target", "show", ts[0].ID, "--json")), &d); err != nil {
		t.Fatal(err)
	}
	if d.ID != ts[0].ID || d.LinksWarning == nil || d.LinksWarning.EN != isp.ForgeryWarningEN || d.LinksWarning.FR != isp.ForgeryWarningFR {
		t.Errorf("target show --json of %s: links_warning %+v", ts[0].ID, d.LinksWarning)
	}

	// An evidence bundle's links.json: the links and the same warning.
	env["VIGIL_KEY_DIR"] = filepath.Join(dir, "keys")
	bundle := filepath.Join(dir, "b.zip")
	mustRun(t, env, "", "evidence", "export", "--target", ts[0].ID, "--out", bundle)
	zr, err := zip.OpenReader(bundle)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := zr.Open("links.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var l struct {
		Warning *isp.Note         `json:"warning"`
		Links   []json.RawMessage `json:"links"`
	}
	if err := json.NewDecoder(f).Decode(&l); err != nil || l.Warning == nil || l.Warning.EN != isp.ForgeryWarningEN || l.Links == nil {
		t.Errorf("links.json: %v, warning %+v, links %v", err, l.Warning, l.Links)
	}
}
