package isp

import (
	"net/netip"
	"testing"
	"time"
)

// TestASecondInstantMonthsLaterIsNoSecondInstant: addresses are
// reassigned, and the analysis takes an IP:port silent for longer than
// its endpoint window (24 hours by default) for another subscriber's
// endpoint; a target can still hold both (a device link joined them). One
// probe of an address in January and one in March are two single
// instants of what may be two households: neither is a row (seen_once),
// whereas two probes an hour apart are. A target's own window, when
// given, decides instead of the default.
func TestASecondInstantMonthsLaterIsNoSecondInstant(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.60")
	sg := func(id string, at time.Time) Sighting {
		return fh(Sighting{IP: ip, Port: 51413, Time: at, ObservationID: id, ASN: 64496, Org: "A", Country: "FR"})
	}
	jan := fixedNow.AddDate(0, -2, 0)
	tests := []struct {
		name   string
		window time.Duration
		s      []Sighting
		rows   int
	}{
		{"two months apart", 0, []Sighting{sg("jan", jan), sg("mar", fixedNow.Add(-time.Hour))}, 0},
		{"25 hours apart", 0, []Sighting{sg("a", jan), sg("b", jan.Add(25*time.Hour))}, 0},
		{"an hour apart", 0, []Sighting{sg("a", jan), sg("b", jan.Add(time.Hour))}, 2},
		{"two in January, one in March", 0, []Sighting{sg("a", jan), sg("b", jan.Add(time.Hour)), sg("mar", fixedNow.Add(-time.Hour))}, 2},
		{"the target's window", 90 * 24 * time.Hour, []Sighting{sg("jan", jan), sg("mar", fixedNow.Add(-time.Hour))}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := Build(Target{ID: "T", EndpointWindow: tc.window}, tc.s, fixedNow, DefaultRetention())
			if req.Kept != tc.rows {
				t.Fatalf("%d rows, want %d; annex %+v", req.Kept, tc.rows, req.Annex)
			}
			once := 0
			for _, a := range req.Annex {
				if a.Reason == AnnexSeenOnce {
					once++
				}
			}
			if once != len(tc.s)-tc.rows {
				t.Fatalf("%d seen-once annex entries, want %d: %+v", once, len(tc.s)-tc.rows, req.Annex)
			}
			if wantNote := once > 0; req.Has(NoteSeenOnce) != wantNote || (wantNote && req.SeenOnce != 1) {
				t.Fatalf("seen-once note %v, SeenOnce %d: want the note and one address when an entry is seen once", req.Has(NoteSeenOnce), req.SeenOnce)
			}
		})
	}
}
