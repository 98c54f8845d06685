package analysis

import "github.com/vigil-oss/vigil/internal/observe"

// placeText is p with its text (country, subdivisions, city,
// organisation) written by observe.PlaceText, as the analysis holds it
// (an endpoint's org and city, a target's country and subdivision, the
// figures' roll-ups): the same whether the analysis had the observation
// from ingest or read it back from a store. A geo database is a file
// from outside, as hostile as a peer's text: a NUL byte or bytes that
// are not UTF-8 in one of its strings made PostgreSQL refuse the
// analysis's saves (docs/evidence.md, "Peer text"). The observation
// keeps its place as it was placed.
func placeText(p observe.Place) observe.Place {
	p.Country, p.City, p.Org = observe.PlaceText(p.Country), observe.PlaceText(p.City), observe.PlaceText(p.Org)
	for _, s := range p.Subdivisions {
		if observe.PlaceText(s) != s {
			subs := make([]string, len(p.Subdivisions))
			for j, s := range p.Subdivisions {
				subs[j] = observe.PlaceText(s)
			}
			p.Subdivisions = subs
			break
		}
	}
	return p
}

// lastSubdivision is the most precise subdivision of p, as placeText
// writes it ("" when p names none).
func lastSubdivision(p *observe.Place) string {
	if n := len(p.Subdivisions); n > 0 {
		return observe.PlaceText(p.Subdivisions[n-1])
	}
	return ""
}
