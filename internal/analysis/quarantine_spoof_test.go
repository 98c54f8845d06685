package analysis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestQuarantineIgnoresWhatThirdPartiesNamed: a held hash stops scoring
// for every target. Someone who shares a watched file could have it held
// by forging, in one hour, DHT replies, tracker answers or PEX lists that
// name 40 addresses with it: nothing but a forged packet each. Only
// endpoints that showed the file themselves count towards a burst.
func TestQuarantineIgnoresWhatThirdPartiesNamed(t *testing.T) {
	f := newFixture(t)
	f.cfg.Quarantine.MinPeers = 20
	e := f.engine()
	var obs []observe.Observation
	for h := range 72 { // one peer an hour for three days
		obs = append(obs, ob(fmt.Sprintf("10.2.%d.%d:6000", h/200, h%200+1), 100, observe.Complete, t0.Add(time.Duration(h)*time.Hour)))
	}
	f.ingest(e, obs...)
	obs = obs[:0]
	methods := []string{observe.MethodDHTGetPeers, observe.MethodTracker, observe.MethodPEX}
	// Public addresses (TEST-NET-3): a third party's non-public address
	// is held apart anyway.
	for i := range 40 {
		o := ob(fmt.Sprintf("203.0.113.%d:6000", i+1), 100, observe.Announced, t0.Add(80*time.Hour+time.Duration(i)*time.Minute))
		obs = append(obs, thirdParty(o, methods[i%len(methods)]))
	}
	f.ingest(e, obs...)
	qs, err := e.Quarantined(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 0 {
		t.Fatalf("quarantine %+v after 40 endpoints that only third parties named", qs)
	}
	// The same burst, each endpoint showing the file itself, is held.
	obs = obs[:0]
	for i := range 40 {
		obs = append(obs, ob(fmt.Sprintf("10.5.0.%d:6000", i+1), 100, observe.Complete, t0.Add(90*time.Hour+time.Duration(i)*time.Minute)))
	}
	f.ingest(e, obs...)
	if qs, _ = e.Quarantined(context.Background()); len(qs) != 1 || qs[0].State != analysis.QuarantineHeld {
		t.Fatalf("quarantine %+v after a first-hand burst, want hash 100 held", qs)
	}
}

// TestQuarantineCountsAnEndpointOnceAnHour: 15 endpoints seen in one
// hour, then in the next, then (a sensor's late batch) in the first hour
// again are 15 in the first hour, not 30: arrival order must not make a
// burst.
func TestQuarantineCountsAnEndpointOnceAnHour(t *testing.T) {
	f := newFixture(t)
	f.cfg.Quarantine.MinPeers = 20
	e := f.engine()
	h0 := t0.Add(80 * time.Hour)
	for _, at := range []time.Time{h0, h0.Add(time.Hour), h0.Add(10 * time.Minute)} {
		var obs []observe.Observation
		for i := range 15 {
			obs = append(obs, ob(fmt.Sprintf("10.6.0.%d:6000", i+1), 100, observe.Complete, at.Add(time.Duration(i)*time.Second)))
		}
		f.ingest(e, obs...)
	}
	if qs, _ := e.Quarantined(context.Background()); len(qs) != 0 {
		t.Fatalf("quarantine %+v: 15 endpoints an hour counted twice", qs)
	}
}
