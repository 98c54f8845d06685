package main

import (
	"archive/zip"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/vigil-oss/vigil/internal/isp"
)

// TestTargetShowJSONSaysLinksAreInferences: 'target show --json' prints
// the target's device links; beside them goes the sentence the page and
// the ISP request carry: a link is an inference, never an identification.
func TestTargetShowJSONSaysLinksAreInferences(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	importOne(t, env, dir, 3, "192.0.2.9")
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
