package pages

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// byAgency is an AlertFeed of fixed rows per agency.
type byAgency map[string][]AlertRow

func (f byAgency) Recent(_ context.Context, u *User, n int) ([]AlertRow, error) {
	return f[u.Agency], nil
}

// The overview's Alerts block lists the feed's rows for the viewer, in
// the viewer's language, and the page's audit record names each alert
// shown and its target.
func TestOverviewShowsAndAuditsTheAgencysAlerts(t *testing.T) {
	feed := byAgency{agencyA: {
		{ID: "A-1", Kind: "score_passed", Rule: "high", Target: "T-A1", Detail: "61.5", Level: observe.Complete, Created: testNow},
		{ID: "A-2", Kind: "list_seen", Rule: "nat", Detail: "national/1", Created: testNow, Held: true},
	}}
	env := fakeEnvWith(t, func(c *Config) { c.Alerts = feed })
	_, body := login(t, env, "alice").get("/")
	for _, want := range []string{"Target passed the score", `<a href="/targets/T-A1">T-A1</a>`, "61.5", "national/1", "held (not sent)", `class="level complete"`} {
		if !strings.Contains(body, want) {
			t.Errorf("alice's overview lacks %q", want)
		}
	}
	if strings.Contains(body, "No alerts.") {
		t.Error("alice's overview says No alerts.")
	}
	var detail string
	for _, r := range env.Records() {
		if r.Actor == "alice" && r.Action == ActionListTargets && r.Object == "overview" {
			detail = r.Detail
		}
	}
	if !strings.Contains(detail, `"alerts":["A-1","A-2"]`) || !strings.Contains(detail, "T-A1") {
		t.Fatalf("overview audit detail %s: want the alerts shown and their target", detail)
	}
	_, body = login(t, env, "bob").get("/")
	if !strings.Contains(body, "Aucune alerte.") || strings.Contains(body, "T-A1") {
		t.Fatal("bob's overview shows agency A's alerts")
	}
}
