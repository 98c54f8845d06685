package analysis_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// A link names the observations it rests on by their ids, exactly as they
// were stored: ids in canonical form (kept by the engine as 16 bytes) and
// any other (an import's, an upper-case UUID: kept as written).
func TestLinkNamesItsObservationsByID(t *testing.T) {
	for _, ids := range [][3]string{
		{"", "", ""}, // observe.NewID's, canonical
		{"import-7", strings.ToUpper(observe.NewID(t0)), "00000000-0000-0000-0000-000000000000"},
	} {
		f := newFixture(t)
		e := f.engine()
		a := withSecureNode(ob("192.0.2.3:51000", 1, observe.Complete, t0), 7, "192.0.2.3")
		b := withSecureNode(ob("192.0.2.3:52000", 2, observe.Complete, t0.Add(48*time.Hour)), 7, "192.0.2.3")
		for i, o := range []*observe.Observation{&a, &b} {
			if ids[i] != "" {
				o.ID = ids[i]
			}
		}
		f.ingest(e, a, b)
		ts := targets(t, e, analysis.TargetQuery{})
		if len(ts) != 1 {
			t.Fatalf("%d targets, want 1: %+v", len(ts), ts)
		}
		d := detail(t, e, ts[0].ID)
		if len(d.Links) != 1 || !slices.Equal(d.Links[0].Obs, []string{a.ID, b.ID}) {
			t.Errorf("links %+v: want one naming %q and %q", d.Links, a.ID, b.ID)
		}
	}
}

// The announce_listen_port link names the announce's last observation and
// the first probe of the declared port, whatever the order they arrive in.
func TestDeclaredLinkNamesItsObservationsByID(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	a1 := announceFrom("198.51.100.7:40001", 2, 51413, t0)
	a2 := announceFrom("198.51.100.7:40001", 2, 51413, t0.Add(time.Minute))
	a2.ID = "announce-2"
	v1 := ob("198.51.100.7:51413", 1, observe.Complete, t0.Add(2*time.Minute))
	v1.ID = "probe-1"
	v2 := ob("198.51.100.7:51413", 1, observe.Complete, t0.Add(3*time.Minute))
	f.ingest(e, v2, a2, a1, v1)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("%d targets, want 1: %+v", len(ts), ts)
	}
	d := detail(t, e, ts[0].ID)
	if len(d.Links) != 1 || !slices.Equal(d.Links[0].Obs, []string{a2.ID, v2.ID}) {
		t.Errorf("links %+v: want one naming %q and %q", d.Links, a2.ID, v2.ID)
	}
}
