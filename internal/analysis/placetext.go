package analysis

import "github.com/vigil-oss/vigil/internal/observe"

// placeText is p with its text (country, subdivisions, city,
// organisation) written by observe.EscapeText, as the analysis holds it
// (an endpoint's org and city, a target's country and subdivision, the
// figures' roll-ups). A geo database is a file from outside, as hostile
// as a peer's text: a NUL byte or bytes that are not UTF-8 in one of its
// strings made PostgreSQL refuse the analysis's saves (docs/evidence.md,
// "Peer text"). The observation keeps its place as it was placed.
func placeText(p observe.Place) observe.Place {
	p.Country, p.City, p.Org = observe.EscapeText(p.Country), observe.EscapeText(p.City), observe.EscapeText(p.Org)
	for _, s := range p.Subdivisions {
		if observe.EscapeText(s) != s {
			subs := make([]string, len(p.Subdivisions))
			for j, s := range p.Subdivisions {
				subs[j] = observe.EscapeText(s)
			}
			p.Subdivisions = subs
			break
		}
	}
	return p
}

// lastSubdivision is the most precise subdivision of p, written by
// observe.EscapeText ("" when p names none).
func lastSubdivision(p *observe.Place) string {
	if n := len(p.Subdivisions); n > 0 {
		return observe.EscapeText(p.Subdivisions[n-1])
	}
	return ""
}
