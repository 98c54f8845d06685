package analysis

import "github.com/vigil-oss/vigil/internal/observe"

// epPlace is what the analysis keeps of an endpoint's place: its text
// (country, most precise subdivision, city, organisation) written by
// observe.PlaceText, as the analysis holds it (an endpoint's org and
// city, a target's country and subdivision, the figures' roll-ups): the
// same whether the analysis had the observation from ingest or read it
// back from a store. A geo database is a file from outside, as hostile as
// a peer's text: a NUL byte or bytes that are not UTF-8 in one of its
// strings made PostgreSQL refuse the analysis's saves (docs/evidence.md,
// "Peer text"). The observation keeps its place as it was placed. One
// copy of each is kept (Engine.placeOf): endpoints share it.
type epPlace struct {
	country, sub, city, org string
	asn                     uint32
}

// noPlace is the place of an endpoint never placed.
var noPlace = &epPlace{}

// placeOf is the engine's copy of place p's text.
func (e *Engine) placeOf(p *observe.Place) *epPlace {
	k := epPlace{country: observe.PlaceText(p.Country), sub: lastSubdivision(p), city: observe.PlaceText(p.City), org: observe.PlaceText(p.Org), asn: p.ASN}
	if x := e.places[k]; x != nil {
		return x
	}
	if e.places == nil {
		e.places = map[epPlace]*epPlace{}
	}
	x := &k
	e.places[k] = x
	return x
}

// intern is the engine's copy of s: the strings endpoints keep (agency,
// network, transport) are few and the same for many of them, where each
// observation brings its own copy.
func (e *Engine) intern(s string) string {
	if x, ok := e.strs[s]; ok {
		return x
	}
	if e.strs == nil {
		e.strs = map[string]string{}
	}
	e.strs[s] = s
	return s
}

// lastSubdivision is the most precise subdivision of p, as placeText
// writes it ("" when p names none).
func lastSubdivision(p *observe.Place) string {
	if n := len(p.Subdivisions); n > 0 {
		return observe.PlaceText(p.Subdivisions[n-1])
	}
	return ""
}

// noList is the list of an endpoint that has none yet.
var noList = new([]string)

// listWith is the engine's copy of list l with s added at its end. An
// endpoint's lists change seldom (a new agency, a new network) and most
// endpoints have the same: each kept a slice of its own and the
// observation's strings.
func (e *Engine) listWith(l *[]string, s string) *[]string {
	n := make([]string, len(*l)+1)
	copy(n, *l)
	n[len(*l)] = s
	k := joinExact(n)
	if x := e.lists[k]; x != nil {
		return x
	}
	if e.lists == nil {
		e.lists = map[string]*[]string{}
	}
	n[len(*l)] = e.intern(s)
	e.lists[k] = &n
	return &n
}
