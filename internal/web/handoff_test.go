package web

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/casework"
)

// A pending hand-off proposal is on the target's page for the agency that
// holds the claim and for the agency it is proposed to, each in its own
// language; another agency that may see the target (a share) is not told
// of it, and a declined proposal is shown to nobody.
func TestTargetPageShowsPendingHandOff(t *testing.T) {
	e := newEnv(t, "", 3000)
	ctx := context.Background()
	const other = "fr-szpj-nord"
	cli := access.CLIActor("fixture")
	if err := e.Access.AddAgency(ctx, cli, access.Agency{ID: other, Name: other, Country: "FR"}); err != nil {
		t.Fatal(err)
	}
	e.Password["nord"] = randomPassword()
	if _, err := e.Access.AddUser(ctx, cli, access.User{Name: "nord", Agency: other, Role: access.RoleInvestigator, Lang: access.LangEN, TimeZone: "Europe/Paris"}, e.Password["nord"]); err != nil {
		t.Fatal(err)
	}
	eng := newTestEngine(t, ctx, e.Store)
	// Paris holds A (routed there); sud and nord may see it by a share.
	for _, ag := range []string{agencySud, other} {
		if err := eng.Share(ctx, e.TargetA, ag, true, "cli:test", "joint inquiry"); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	claims := &casework.Claims{Store: e.Store, Config: casework.DefaultConfig()}
	if _, err := claims.Claim(ctx, e.TargetA, agencyParis, "lt-martin", "Lt. Martin 01 00 00 00 00"); err != nil {
		t.Fatal(err)
	}
	users := map[string]*client{}
	for _, u := range []string{"paris", "sud", "nord", "analyst"} {
		users[u] = newBrowser(t, e)
		users[u].login(u)
	}
	proposalOf := func(u string) string {
		t.Helper()
		code, body := users[u].get("/targets/" + e.TargetA)
		if code != 200 {
			t.Fatalf("%s: target page %d", u, code)
		}
		m := regexp.MustCompile(`(?s)<section id="handoff"[^>]*>(.*?)</section>`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		if strings.Contains(m[1], "[handoff.") {
			t.Fatalf("%s: a message missing from the catalog: %s", u, m[1])
		}
		return m[1]
	}
	for u := range users {
		if p := proposalOf(u); p != "" {
			t.Fatalf("%s sees a proposal before any: %q", u, p)
		}
	}
	ok, err := e.Store.ProposeHandOff(ctx, casework.Proposal{Target: e.TargetA, From: agencyParis, To: agencySud, At: time.Now().UTC(), State: casework.Pending,
		Reason: "newest first-hand observation (2026-12-06T10:00:00Z) routed to " + agencySud + ", the claim is " + agencyParis + "'s"})
	if err != nil || !ok {
		t.Fatalf("propose: %v %v", ok, err)
	}
	if p := proposalOf("paris"); !strings.Contains(p, "Hand-off proposed") || !strings.Contains(p, agencySud) || !strings.Contains(p, "vigil claim handoff") {
		t.Fatalf("the holder's page: %q", p)
	}
	if p := proposalOf("analyst"); !strings.Contains(p, agencySud) {
		t.Fatalf("the national office's page: %q", p)
	}
	// sud reads French (its account's language).
	if p := proposalOf("sud"); !strings.Contains(p, "Transfert proposé") || !strings.Contains(p, agencyParis) {
		t.Fatalf("the proposed service's page: %q", p)
	}
	if p := proposalOf("nord"); p != "" {
		t.Fatalf("a third agency sharing the target is told of the proposal: %q", p)
	}
	if _, err := e.Store.DecideHandOff(ctx, e.TargetA, casework.Declined, "cli:test", "search planned", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	for u := range users {
		if p := proposalOf(u); p != "" {
			t.Fatalf("%s sees a declined proposal: %q", u, p)
		}
	}
}
