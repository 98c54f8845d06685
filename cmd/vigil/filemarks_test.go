package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// TestTargetFilesCarryTheirMarks: 'targets --json', 'target show --json'
// and 'target show' give each file's level with the marks of the
// observations that gave it (rule 3), here the unsigned_import of an
// imported observation, which is why the file is at announced at most.
// Before, a file row had its level and no marks.
func TestTargetFilesCarryTheirMarks(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "USER": "tester"}
	importOne(t, env, dir, 4, "192.0.2.19")
	var ts []targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "targets", "--json")), &ts); err != nil || len(ts) != 1 {
		t.Fatalf("targets: %v %+v", err, ts)
	}
	var shown targetJSON
	if err := json.Unmarshal([]byte(mustRun(t, env, "", "target", "show", ts[0].ID, "--json")), &shown); err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]targetJSON{"targets --json": ts[0], "target show --json": shown} {
		if len(x.Files) != 1 {
			t.Fatalf("%s: %d files, want 1", name, len(x.Files))
		}
		f := x.Files[0]
		if f.MaxLevel > observe.Announced || !slices.Contains(f.Marks, observe.MarkUnsigned) || !f.MarksComplete {
			t.Errorf("%s: file at %v with marks %q (complete %v), want announced at most with unsigned_import", name, f.MaxLevel, f.Marks, f.MarksComplete)
		}
		if len(f.At) != 1 || !slices.Contains(f.At[0].Marks, observe.MarkUnsigned) {
			t.Errorf("%s: at %+v, want the endpoint's level with unsigned_import", name, f.At)
		}
	}
	if out := mustRun(t, env, "", "target", "show", ts[0].ID); !strings.Contains(out, "unsigned_import]") {
		t.Errorf("target show: no marks beside the file's level:\n%s", out)
	}
}
