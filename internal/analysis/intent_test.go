package analysis

import (
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
		{"kad_search", "udp", observe.Announced, Looking},
		{"ed2k_source_probe", "tcp", observe.Partial, Sharing},
	} {
		o := observe.Observation{Method: c.method, Endpoint: observe.Endpoint{Transport: c.transport}, Possession: observe.Possession{Level: c.level}}
		if got := Intent(&o); got != c.want {
			t.Errorf("Intent(%s over %s at %s) = %s, want %s", c.method, c.transport, c.level, got, c.want)
		}
	}
}

func TestScoreIsTheSumOfItsParts(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	w := DefaultWeights()
	in := ScoreInput{Days: 30, Observations: 200, Sightings: 200, LastSeen: now.Add(-72 * time.Hour), ConfirmedLeads: 2, Flags: []string{FlagKnownOffender}}
	for i := range 12 {
		in.Files = append(in.Files, FileFacts{Severity: i % 6, Level: observe.Level(1 + i%5), Looking: i%4 == 0, Offered: i%3 == 0})
	}
	p := Score(in, w, now)
	var sum float64
	for _, v := range p {
		sum += v
	}
	if got := p.Total(); got != round2(sum) {
		t.Fatalf("Total %v, sum of parts %v", got, sum)
	}
	for _, name := range []string{PartFiles, PartPossession, PartDays, PartRepetition, PartRecency, PartSharing, PartNewMaterial, PartKnownOffender} {
		if p[name] <= 0 {
			t.Errorf("part %s = %v, want > 0 (parts %v)", name, p[name], p)
		}
	}
	if p[PartKnownOffender] != 50 || p[PartNewMaterial] != 10 {
		t.Errorf("flag %v, new material %v: want the documented 50 and 2x5", p[PartKnownOffender], p[PartNewMaterial])
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
	if got := coll.Total(); got < 500 || got > 700 {
		t.Errorf("collector: %v (%v), want the documented ~665", got, coll)
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
