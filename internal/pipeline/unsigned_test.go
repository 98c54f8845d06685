package pipeline

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/bustest"
	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestUnsignedFromTheBusIsNeverSensorEvidence: every sensor signs what it
// publishes, so an observation that reaches 'vigil ingest' from the bus
// without a sensor's signature was made or stripped on the way (a
// tampering hub): it is stored marked unsigned_import, not first-hand,
// never an ISP row. A signed one is stored as it came.
func TestUnsignedFromTheBusIsNeverSensorEvidence(t *testing.T) {
	st := openStore(t)
	obs := bustest.Observations(4)
	obs[1].Chain = observe.Chain{Key: bytes.Repeat([]byte{1}, 32), ID: "ab", Seq: 1, Prev: make([]byte, 32)}
	for i := range obs {
		if obs[i].HasMark(observe.MarkUnsigned) {
			t.Fatalf("observation %d already marked", i)
		}
	}
	icfg := ingest.DefaultConfig()
	icfg.BatchSize = len(obs)
	p, err := New(context.Background(), Config{Store: st, Consumer: inproc.NewSlice(obs), Ingest: icfg, FromSensors: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := stored(t, st)
	if len(got) != len(obs) {
		t.Fatalf("stored %d of %d", len(got), len(obs))
	}
	for i, o := range got {
		if i == 1 {
			// Chain fields but no signature covers them (a hub's forgery):
			// stored marked signature_failed, its chain fields dropped.
			if o.Signed() || !o.HasMark(observe.MarkSignatureFailed) || o.FirstHand() {
				t.Errorf("%s: forged chain stored signed %v, marks %v", o.ID, o.Signed(), o.Marks)
			}
			continue
		}
		if marked := o.HasMark(observe.MarkUnsigned); !marked || o.FirstHand() {
			t.Errorf("%s: unsigned, marked unsigned_import %v", o.ID, marked)
		}
	}
}

// TestAPlaceOrAgencyFromTheBusIsNotKept: a sensor never places or routes
// what it publishes, and its signature does not cover place and agency
// (ingest adds them); a hub that sets them on a signed observation must not
// route it to another agency (showing it to that service, hiding it from
// the right one): ingest places and routes it itself.
func TestAPlaceOrAgencyFromTheBusIsNotKept(t *testing.T) {
	loc, rules := labEnrichment(t)
	st := openStore(t)
	obs := bustest.Observations(3)
	var want []observe.Observation
	for i := range obs {
		obs[i].Place, obs[i].Jurisdiction = observe.Place{}, observe.Jurisdiction{}
		obs[i].Chain = observe.Chain{Key: bytes.Repeat([]byte{1}, 32), ID: "ab", Seq: uint64(i + 1), Prev: make([]byte, 32)}
		w := obs[i]
		ingest.NewEnricher(loc, rules).Enrich(&w)
		want = append(want, w)
		obs[i].Place = observe.Place{Country: "DE", City: "Forged", DB: "hub"}
		obs[i].Jurisdiction = observe.Jurisdiction{Agency: "another-service", Rule: "set by the hub"}
	}
	icfg := ingest.DefaultConfig()
	icfg.BatchSize = len(obs)
	p, err := New(context.Background(), Config{Store: st, Geo: loc, Rules: rules, Consumer: inproc.NewSlice(obs), Ingest: icfg, FromSensors: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	got := stored(t, st)
	if len(got) != len(want) {
		t.Fatalf("stored %d of %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Jurisdiction != want[i].Jurisdiction || got[i].Place.Country != want[i].Place.Country || got[i].Place.City != want[i].Place.City {
			t.Errorf("%s: stored agency %+v place %s/%s; ingest's own: %+v %s/%s", got[i].ID, got[i].Jurisdiction, got[i].Place.Country, got[i].Place.City,
				want[i].Jurisdiction, want[i].Place.Country, want[i].Place.City)
		}
	}
}
