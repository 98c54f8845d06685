package analysis

import (
	"maps"
	"math"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

func TestIntentClassifiesEveryMethod(t *testing.T) {
	for _, c := range []struct {
		method, transport string
		level             observe.Level
		want              IntentKind
	}{
		{observe.MethodDHTGetPeers, "udp", observe.Announced, Looking},
		{observe.MethodDHTGetPeers, "tcp", observe.Announced, Sharing},
		{observe.MethodDHTAnnounce, "tcp", observe.Announced, Sharing},
		{observe.MethodDHTAnnounce, "udp", observe.Announced, Sharing},
		{observe.MethodTracker, "tcp", observe.Announced, Sharing},
		{observe.MethodPEX, "tcp", observe.Announced, Sharing},
		{observe.MethodPeerProbe, "tcp", observe.Acknowledged, Sharing},
		{observe.MethodPeerProbe, "utp", observe.Complete, Sharing},
		// eD2K and Kad source lists name clients that offer the file as a
		// source: a third party's claim of sharing, never a search.
		{observe.MethodED2KServerSources, "tcp", observe.Announced, Sharing},
		{observe.MethodKadSources, "tcp", observe.Announced, Sharing},
		{"kad_search", "udp", observe.Announced, Looking},
		{"ed2k_source_probe", "tcp", observe.Partial, Sharing},
	} {
		o := observe.Observation{Method: c.method, Endpoint: observe.Endpoint{Transport: c.transport}, Possession: observe.Possession{Level: c.level}}
		if got := Intent(&o); got != c.want {
			t.Errorf("Intent(%s over %s at %s) = %s, want %s", c.method, c.transport, c.level, got, c.want)
		}
	}
}

// Each part is worked out by hand from the tables of docs/scoring.md, and
// the score is their sum: neither Total nor Score is used to compute what
// they are compared with.
func TestScoreIsTheSumOfItsParts(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	in := ScoreInput{
		Files: []FileFacts{
			{Severity: 5, Level: observe.Complete, Offered: true},  // 10 x 1.0; possession 2; offered
			{Severity: 4, Level: observe.Partial, Confidence: 0.5}, // 7 x 0.6 x 0.5; possession 1 x 0.5
			{Severity: 5, Level: observe.Announced, Looking: true}, // 10 x 0.1 x 0.3; looking: no possession
		},
		SecondHand:     []FileFacts{{Severity: 5}, {Severity: 5}}, // 10 x 0.1 each, capped at 1
		Days:           11,                                        // 0.5 x (11 - 1)
		Sightings:      12,                                        // 2 x log2(12 / 3)
		LastSeen:       now.Add(-14 * 24 * time.Hour),             // one half-life: 0.25 x files x 0.5
		ConfirmedLeads: 2,                                         // 5 each
		Flags:          []string{FlagKnownOffender, FlagChildAccess},
	}
	want := Parts{
		PartFiles:         12.4, // 10 + 2.1 + 0.3
		PartPossession:    2.5,  // 2 + 0.5
		PartDays:          5,
		PartRepetition:    4,
		PartRecency:       1.55, // 0.25 x 12.4 x 0.5
		PartSharing:       1,
		PartSecondHand:    1,
		PartNewMaterial:   10,
		PartKnownOffender: 50,
		PartChildAccess:   100,
	}
	const wantTotal = 12.4 + 2.5 + 5 + 4 + 1.55 + 1 + 1 + 10 + 50 + 100 // 187.45
	p := Score(in, DefaultWeights(), now)
	for name, v := range want {
		if math.Abs(p[name]-v) > 1e-9 {
			t.Errorf("part %s = %v, want %v by the documented formula", name, p[name], v)
		}
	}
	for name, v := range p {
		if _, ok := want[name]; !ok {
			t.Errorf("part %s = %v: not a documented part of this score", name, v)
		}
	}
	if got := p.Total(); math.Abs(got-wantTotal) > 1e-9 {
		t.Fatalf("Total() = %v, want the sum of the parts %v (parts %v)", got, wantTotal, p)
	}
}

// The two examples of docs/scoring.md.
func TestScoreSingleAnnounceLowCollectorHigh(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	w := DefaultWeights()
	single := Score(ScoreInput{Files: []FileFacts{{Severity: 5, Level: observe.Announced}}, Days: 1, Observations: 1, LastSeen: now}, w, now)
	if got := single.Total(); got != 1.25 {
		t.Errorf("one gravest file announced once: %v (%v), want 1.25 as documented", got, single)
	}
	var files []FileFacts
	for range 40 {
		files = append(files, FileFacts{Severity: 5, Level: observe.Complete, Offered: true})
	}
	coll := Score(ScoreInput{Files: files, Days: 90, Observations: 320, Sightings: 320, LastSeen: now.Add(-24 * time.Hour)}, w, now)
	// docs/scoring.md, "Worked examples": every part and the total.
	wantColl := Parts{PartFiles: 400, PartPossession: 80, PartDays: 44.5,
		PartRepetition: 6, PartRecency: 95.17, PartSharing: 40}
	if !maps.Equal(coll, wantColl) || coll.Total() != 665.67 {
		t.Errorf("collector: %v (%v), want the documented 665.67 (%v)", coll.Total(), coll, wantColl)
	}
	if want := (Parts{PartFiles: 1, PartRecency: 0.25}); !maps.Equal(single, want) {
		t.Errorf("one gravest file announced once: parts %v, want the documented %v", single, want)
	}
	if coll.Total() < 100*single.Total() {
		t.Errorf("collector %v is not far above a single announce %v", coll.Total(), single.Total())
	}
	// The level matters: announced counts a tenth of complete.
	one := func(l observe.Level) float64 {
		return Score(ScoreInput{Files: []FileFacts{{Severity: 5, Level: l}}, Days: 1, Observations: 1}, w, now).Total()
	}
	if a, c := one(observe.Announced), one(observe.Complete); a*5 > c {
		t.Errorf("announced %v vs complete %v: announced must count far less", a, c)
	}
	if l := Score(ScoreInput{Files: []FileFacts{{Severity: 5, Level: observe.Announced, Looking: true}}, Days: 1, Observations: 1}, w, now).Total(); l >= one(observe.Announced) {
		t.Errorf("looking %v must count less than sharing %v", l, one(observe.Announced))
	}
}

func TestTargetIDRoundTrip(t *testing.T) {
	for _, n := range []int64{1, 31, 32, 1 << 40} {
		id := TargetID(n)
		got, ok := ParseTargetID(id)
		if !ok || got != n {
			t.Errorf("ParseTargetID(%q) = %d, %v; want %d", id, got, ok, n)
		}
	}
	for _, bad := range []string{"", "T-", "X-1", "T-!", "T-0"} {
		if _, ok := ParseTargetID(bad); ok {
			t.Errorf("ParseTargetID(%q) accepted", bad)
		}
	}
}
