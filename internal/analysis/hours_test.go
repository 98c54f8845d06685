package analysis_test

import (
	"math"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// docs/scoring.md: repetition counts sightings, "a distinct clock hour in
// which the file was seen first-hand". Observations arrive out of time
// order (a sensor's delayed batch, two sensors on one bus): a file seen
// in two clock hours is two sightings, whatever the order in which its
// observations arrive, never one per change of hour.
func TestRepetitionCountsDistinctHoursWhateverTheArrivalOrder(t *testing.T) {
	f := newFixture(t)
	e := f.engine()
	h10, h11 := t0.Add(5*time.Minute), t0.Add(time.Hour+5*time.Minute)
	f.ingest(e,
		ob("192.0.2.70:41000", 1, observe.Complete, h10),
		ob("192.0.2.70:41000", 1, observe.Complete, h11),
		ob("192.0.2.70:41000", 1, observe.Complete, h10.Add(time.Minute)), // late: an hour already counted
		ob("192.0.2.70:41000", 1, observe.Complete, h11.Add(time.Minute)),
		ob("192.0.2.70:41000", 1, observe.Complete, h10.Add(2*time.Minute)),
	)
	ts := targets(t, e, analysis.TargetQuery{})
	if len(ts) != 1 {
		t.Fatalf("targets %+v, want one", ts)
	}
	w := analysis.DefaultWeights()
	want := math.Round(w.RepetitionPoints*math.Log2(2)*100) / 100 // two distinct hours, one file
	if got := ts[0].Parts[analysis.PartRepetition]; got != want {
		t.Errorf("repetition %.2f, want %.2f: one file seen in two distinct clock hours (parts %v)", got, want, ts[0].Parts)
	}
}
