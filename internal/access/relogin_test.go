package access_test

import (
	"net/http"
	"testing"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// Signing in on a browser that holds another session (a shared
// workstation: alice left without logging out, bob signs in) ends that
// session, as a logout would: its cookie value, replayed, and the live
// feeds it opened (which re-check it) stop; it does not linger until it
// idles out behind the new one.
func TestLoginEndsTheBrowsersPreviousSession(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	f.user(t, "bob", "fr-b", access.RoleInvestigator)
	srv := f.server(t)
	c := client(t)
	resp := login(t, c, srv.URL, "alice", goodPW)
	var alice string
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-vigil_session" {
			alice = ck.Value
		}
	}
	if alice == "" {
		t.Fatal("no session cookie for alice")
	}
	if resp := login(t, c, srv.URL, "bob", goodPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's login: %d", resp.StatusCode)
	}
	if code, me := rd(t)(c.Get(srv.URL + "/me")); code != 200 || me[:4] != "bob " {
		t.Fatalf("/me after bob's login: %d %q", code, me)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/me", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-vigil_session", Value: alice})
	if code, me := rd(t)(client(t).Do(req)); code != http.StatusSeeOther {
		t.Fatalf("alice's session still holds after bob signed in on her browser: %d %q", code, me)
	}
	if len(f.records(t, audit.Filter{Actor: "alice", Action: audit.ActionLogout})) != 1 {
		t.Error("the end of alice's session is not in the trail")
	}
}
