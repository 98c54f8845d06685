package ingest

// Enrichment: ingest places each observation (where its address was:
// country, subdivisions, city, coordinates, ASN and organisation, from the
// geo databases in force, named with their build date) and routes it to
// the agency with jurisdiction (from the rules file). What is known at
// ingest is written into the observation once; later database updates
// never rewrite it.
//
// An Enricher never fails an observation: an address no database knows is
// stored without a place and routed by the rules' default, and the reason
// is counted.
//
// A 6to4 (2002::/16), Teredo (2001::/32) or NAT64 (64:ff9b::/96,
// 64:ff9b:1::/48) address is placed as it is seen, at the relay's or
// translator's operator, not by the IPv4 address inside it: observe.Place
// has no field that could say the place came from another address than
// the endpoint's, and a place must never claim more than it rests on. The
// ISP request (internal/isp) makes no row of such an address and names the
// IPv4 address inside in its annex; the analysis never joins such
// addresses by prefix.

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/geo"
	"github.com/vigil-oss/vigil/internal/jurisdiction"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Enricher fills Observation.Place and Observation.Jurisdiction. Either
// part may be nil: without a Locator only the rules' default routes; without
// Rules nothing is routed. It is safe for concurrent use.
type Enricher struct {
	loc   *geo.Locator
	rules *jurisdiction.Rules

	placed, unplaced, routed atomic.Uint64
}

// NewEnricher returns an Enricher over loc and rules (either may be nil).
func NewEnricher(loc *geo.Locator, rules *jurisdiction.Rules) *Enricher {
	return &Enricher{loc: loc, rules: rules}
}

// EnrichStats counts what the Enricher did.
type EnrichStats struct {
	Placed   uint64 // observations a database placed
	Unplaced uint64 // observations no database knew (or of a family none covers)
	Routed   uint64 // observations given an agency
}

// Stats returns the counts so far.
func (e *Enricher) Stats() EnrichStats {
	return EnrichStats{Placed: e.placed.Load(), Unplaced: e.unplaced.Load(), Routed: e.routed.Load()}
}

// Enrich places and routes o. An observation that already carries a place
// or an agency (one imported from another Vigil, or re-ingested) keeps it:
// what was known when it was seen is never rewritten.
func (e *Enricher) Enrich(o *observe.Observation) {
	if e == nil {
		return
	}
	if !o.Place.Found() && e.loc != nil {
		p, err := e.loc.Lookup(o.Endpoint.IP)
		switch {
		case err == nil:
			o.Place = p.Observed()
			e.placed.Add(1)
		case errors.Is(err, geo.ErrNoRecord), errors.Is(err, geo.ErrNotCovered), errors.Is(err, geo.ErrInvalidAddr):
			e.unplaced.Add(1)
		default:
			// A read error of the database file: the observation is kept
			// without a place rather than lost.
			e.unplaced.Add(1)
		}
	}
	if e.rules != nil && o.Jurisdiction.Agency == "" {
		// An unplaced observation's Place is empty where routing reads it
		// (country, subdivisions, city, ASN): the rules' default.
		r := e.rules.Route(o.Place)
		o.Jurisdiction = observe.Jurisdiction{Agency: r.Agency, Rule: r.Reason}
		e.routed.Add(1)
	}
}

// Collectors exports the Enricher's counts: vigil_ingest_placed_total,
// vigil_ingest_unplaced_total and vigil_ingest_routed_total.
func (e *Enricher) Collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("vigil_ingest_placed_total", "Observations a geo database placed at ingest.", &e.placed),
		counter("vigil_ingest_unplaced_total", "Observations no geo database knew (stored without a place).", &e.unplaced),
		counter("vigil_ingest_routed_total", "Observations routed to an agency at ingest.", &e.routed),
	}
}
