package analysis_test

import (
	"net/netip"
	"sort"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
)

// fellowObs are observations a sensor made before it was told its
// deployment's addresses: of a fellow sensor's host (every port), of a
// fellow's socket on a shared host, and of others, among them a hostile
// peer that claims to be a sensor every way an observation can: a Vigil
// peer id, and (in an observation of its own address) a sensor_address
// and vantage of the deployment's.
func fellowObs() []observe.Observation {
	hostile := withPeerID(ob("203.0.113.9:51413", 1, observe.Complete, t0.Add(2*time.Hour)), "-VG0001-abcdefghijkl")
	hostile.Endpoint.Local = netip.MustParseAddrPort("192.0.2.50:6881")
	hostile.Sensor.Vantage = "192.0.2.50"
	return []observe.Observation{
		ob("192.0.2.50:51413", 1, observe.Announced, t0),
		ob("192.0.2.50:40001", 2, observe.Complete, t0.Add(time.Hour)),
		ob("198.51.100.60:6881", 1, observe.Announced, t0),
		ob("198.51.100.60:6882", 1, observe.Complete, t0.Add(time.Hour)), // another port of the shared host
		hostile,
	}
}

func targetAddrs(t *testing.T, e *analysis.Engine) []string {
	t.Helper()
	var out []string
	for _, ts := range targets(t, e, analysis.TargetQuery{}) {
		out = append(out, endpointsOf(detail(t, e, ts.ID))...)
	}
	sort.Strings(out)
	return out
}

// The analysis makes no target of a fellow sensor (--own-addresses), as
// observations come (Add) and when another process catches up with the
// store (CatchUp), and counts what it left out; what an observation
// claims of its sensor or its peer id hides no one.
func TestFellowSensorsMakeNoTarget(t *testing.T) {
	f := newFixture(t)
	set, err := own.Parse("own.txt", []byte("192.0.2.50\n198.51.100.60:6881\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Own = set
	e := f.engine()
	f.ingest(e, fellowObs()...)
	want := []string{"198.51.100.60:6882", "203.0.113.9:51413"}
	if got := targetAddrs(t, e); !equalStrings(got, want) {
		t.Fatalf("targets at %v, want %v", got, want)
	}
	if d, _ := e.Dropped(); d[analysis.DropDeploymentAddress] != 3 {
		t.Errorf("dropped %v, want 3 deployment_address", d)
	}
	// Another process's engine, catching up with what it did not ingest.
	f2 := newFixture(t)
	f2.cfg.Own = set
	f2.ingest(nil, fellowObs()...)
	e2 := f2.engine()
	if err := e2.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := targetAddrs(t, e2); !equalStrings(got, want) {
		t.Fatalf("after a catch-up: targets at %v, want %v", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
