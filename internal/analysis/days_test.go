package analysis_test

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestDaysActiveWhateverTheOrder: an endpoint's days_active counts each
// UTC day with a first-hand observation once, whether its observations
// arrive in time order or not (a late one of an earlier day, of a day
// already counted, of another file the same day).
func TestDaysActiveWhateverTheOrder(t *testing.T) {
	// t0 is 10:00 UTC: +10h and +20h are two days, +30h and +50h the
	// next two; every gap is within the endpoint window (one endpoint).
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	const ep = "10.7.7.7:7000"
	inOrder := []observe.Observation{
		ob(ep, 1, observe.Complete, at(10)), ob(ep, 2, observe.Complete, at(12)),
		ob(ep, 1, observe.Complete, at(20)), ob(ep, 1, observe.Complete, at(30)),
		ob(ep, 1, observe.Complete, at(48)), ob(ep, 1, observe.Complete, at(50)),
	}
	// The same sightings, latest day first, then earlier ones.
	shuffled := []observe.Observation{inOrder[5], inOrder[3], inOrder[0], inOrder[2], inOrder[4], inOrder[1]}
	days := func(obs []observe.Observation) (float64, int) {
		f := newFixture(t)
		e := f.engine()
		f.ingest(e, obs...)
		ts := targets(t, e, analysis.TargetQuery{})
		if len(ts) != 1 {
			t.Fatalf("%d targets, want one", len(ts))
		}
		return ts[0].Parts[analysis.PartDays], ts[0].Endpoints
	}
	want, eps := days(inOrder)
	if eps != 1 {
		t.Fatalf("in order: %d endpoints, want one", eps)
	}
	// Three days against one: the part grows with the days.
	one, _ := days(inOrder[:2])
	if want <= one {
		t.Fatalf("days_active %v over three days, %v over one", want, one)
	}
	if got, eps := days(shuffled); got != want || eps != 1 {
		t.Fatalf("out of order: days_active %v at %d endpoints, in order %v at one", got, eps, want)
	}
}
