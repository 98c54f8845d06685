package analysis_test

import (
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A target's file rows carry the marks of the observations that gave each
// file its level (rule 3: marks travel with every level shown), not only
// the timeline: a partial level from a malformed bitfield says so, a file
// known only from a third party says so, and a record credited below what
// it recorded (unsigned_import) lends its mark only to the level it is
// credited with. Before the fix a file row had a level and no marks.
func TestFileRowsCarryTheMarksBehindTheirLevel(t *testing.T) {
	f := newFixture(t)
	f.now = t0.Add(24 * time.Hour)
	e := f.engine()
	const ep = "192.0.2.60:7000"
	bad := ob(ep, 1, observe.Partial, t0)
	bad.Mark(observe.MarkMalformedBitfield)
	told := ob(ep, 1, observe.Announced, t0.Add(time.Hour))
	told.Method = observe.MethodDHTGetPeers
	told.Mark(observe.MarkThirdParty)
	unsigned := ob(ep, 1, observe.Verified, t0.Add(2*time.Hour))
	unsigned.Mark(observe.MarkUnsigned)
	only := ob(ep, 2, observe.Announced, t0.Add(3*time.Hour))
	only.Method = observe.MethodDHTGetPeers
	only.Mark(observe.MarkThirdParty)
	f.ingest(e, bad, told, unsigned, only)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("%d targets, want 1", len(ts))
	}
	d := detail(t, e, ts[0].ID)
	want := map[string]struct {
		level observe.Level
		marks []string
	}{
		hashN(1).Hex(): {observe.Partial, []string{observe.MarkMalformedBitfield}},
		hashN(2).Hex(): {observe.Announced, []string{observe.MarkThirdParty}},
	}
	if len(d.Files) != len(want) {
		t.Fatalf("%d files, want %d", len(d.Files), len(want))
	}
	for _, fi := range d.Files {
		w := want[fi.Hex]
		if fi.MaxLevel != w.level || !slices.Equal(fi.Marks, w.marks) {
			t.Errorf("file %s: %v with marks %q, want %v with %q", fi.Hex, fi.MaxLevel, fi.Marks, w.level, w.marks)
		}
		if !fi.MarksComplete {
			t.Errorf("file %s: marks not complete, though the whole timeline was read", fi.Hex)
		}
		if len(fi.At) != 1 || !slices.Equal(fi.At[0].Marks, w.marks) {
			t.Errorf("file %s: at %+v, want the endpoint's level with marks %q", fi.Hex, fi.At, w.marks)
		}
	}
}
