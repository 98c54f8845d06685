package access_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
)

// server mounts the access routes and a few protected handlers the way
// the web package is meant to.
func (f *fixture) server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	f.svc.Mount(mux, nil)
	whoami := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := access.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "%s %s %s csrf=%s", p.Name, p.Role, p.Via, access.CSRFToken(r.Context()))
	})
	mux.Handle("GET /me", f.svc.RequireLogin(whoami))
	mux.Handle("POST /change", f.svc.RequireLogin(whoami))
	mux.Handle("GET /users", f.svc.RequirePermission(access.PermManageUsers)(whoami))
	mux.Handle("GET /targets/{id}", f.svc.RequirePermission(access.PermViewTargets)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := access.PrincipalFrom(r.Context())
		targetAgency := map[string]string{"1": "fr-a", "2": "fr-b"}[r.PathValue("id")]
		if !p.Scope().Allows(targetAgency) {
			f.svc.NotFound(w, r, "target:"+r.PathValue("id"))
			return
		}
		_ = f.svc.AuditRequest(r, audit.ActionViewTarget, "target:"+r.PathValue("id"), "", nil)
		fmt.Fprint(w, "target ", r.PathValue("id"))
	})))
	srv := httptest.NewServer(f.svc.Wrap(mux))
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// rd reads a response: rd(t)(c.Get(u)) -> status, body.
func rd(t *testing.T) func(*http.Response, error) (int, string) {
	return func(resp *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
}

var tokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func loginForm(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	_, page := rd(t)(c.Get(base + "/login"))
	m := tokenRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the login form:\n%s", page)
	}
	return m[1]
}

func login(t *testing.T, c *http.Client, base, name, pw string) *http.Response {
	t.Helper()
	tok := loginForm(t, c, base)
	resp, err := c.PostForm(base+"/login", url.Values{"name": {name}, "password": {pw}, "csrf_token": {tok}, "next": {"/me"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestLoginFlowSetsAHardenedSessionCookie(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	srv := f.server(t)
	c := client(t)

	// Without the form's token, even the right password is refused.
	resp, _ := c.PostForm(srv.URL+"/login", url.Values{"name": {"alice"}, "password": {goodPW}})
	if code, _ := rd(t)(resp, nil); code != http.StatusForbidden {
		t.Fatalf("login without CSRF token: %d", code)
	}
	if resp := login(t, c, srv.URL, "alice", "wrong password"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp = login(t, c, srv.URL, "alice", goodPW)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/me" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-vigil_session" {
			sc = ck
		}
	}
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Path != "/" || sc.Domain != "" || len(sc.Value) != 43 {
		t.Fatalf("session cookie %+v", sc)
	}
	// Go's cookie jar sends the Secure cookie back to http://127.0.0.1.
	code, me := rd(t)(c.Get(srv.URL + "/me"))
	if code != 200 || !strings.HasPrefix(me, "alice investigator session csrf=") {
		t.Fatalf("/me: %d %q", code, me)
	}
	csrf := strings.TrimPrefix(me, "alice investigator session csrf=")

	// A change needs the session's CSRF token.
	code, _ = rd(t)(c.Post(srv.URL+"/change", "application/x-www-form-urlencoded", strings.NewReader("x=1")))
	if code != http.StatusForbidden {
		t.Fatalf("POST without CSRF token: %d", code)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/change", nil)
	req.Header.Set(access.CSRFHeader, csrf)
	if code, _ := rd(t)(c.Do(req)); code != 200 {
		t.Fatalf("POST with CSRF header: %d", code)
	}
	code, _ = rd(t)(c.PostForm(srv.URL+"/change", url.Values{"csrf_token": {csrf}}))
	if code != 200 {
		t.Fatalf("POST with CSRF field: %d", code)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/change", nil)
	req.Header.Set(access.CSRFHeader, csrf)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if code, _ := rd(t)(c.Do(req)); code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", code)
	}

	// Logout needs the token too, then ends the session.
	code, _ = rd(t)(c.PostForm(srv.URL+"/logout", url.Values{}))
	if code != http.StatusForbidden {
		t.Fatalf("logout without token: %d", code)
	}
	code, _ = rd(t)(c.PostForm(srv.URL+"/logout", url.Values{"csrf_token": {csrf}}))
	if code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	resp, _ = c.Get(srv.URL + "/me")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("after logout /me: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp.Body.Close()
	// The old cookie value is dead even if replayed.
	req, _ = http.NewRequest("GET", srv.URL+"/me", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-vigil_session", Value: sc.Value})
	resp, err := client(t).Do(req)
	if code, _ := rd(t)(resp, err); code != http.StatusSeeOther {
		t.Fatalf("replayed cookie after logout: %d", code)
	}
	acts := f.records(t, audit.Filter{Actor: "alice"})
	var names []string
	for _, r := range acts {
		names = append(names, r.Action)
	}
	if got := strings.Join(names, ","); got != "login_failed,login,denied,denied,denied,logout" {
		t.Fatalf("alice's trail: %s", got)
	}
}

func TestBearerTokenIsExemptFromCSRFAndBadTokensAreRefused(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "bot", "fr-nat", access.RoleAnalyst)
	tok, _, _ := f.svc.CreateToken(context.Background(), f.admin, "bot", "", time.Hour)
	srv := f.server(t)
	req, _ := http.NewRequest("POST", srv.URL+"/change", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if code, b := rd(t)(http.DefaultClient.Do(req)); code != 200 || !strings.HasPrefix(b, "bot analyst token") {
		t.Fatalf("bearer POST: %d %q", code, b)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok+"x")
	if code, _ := rd(t)(http.DefaultClient.Do(req)); code != http.StatusUnauthorized {
		t.Fatalf("bad bearer: %d", code)
	}
	if rs := f.records(t, audit.Filter{Action: audit.ActionLoginFailed}); len(rs) != 1 {
		t.Fatalf("bad token not audited: %v", reasons(rs))
	}
}

func TestNeedToKnowAnswers404AndAudits(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	f.user(t, "root", "fr-nat", access.RoleAdmin)
	srv := f.server(t)
	c := client(t)
	login(t, c, srv.URL, "alice", goodPW)
	if code, b := rd(t)(c.Get(srv.URL + "/targets/1")); code != 200 || b != "target 1" {
		t.Fatalf("own target: %d %q", code, b)
	}
	code, b := rd(t)(c.Get(srv.URL + "/targets/2"))
	if code != http.StatusNotFound || strings.Contains(b, "fr-b") {
		t.Fatalf("another agency's target: %d %q", code, b)
	}
	den := f.records(t, audit.Filter{Action: audit.ActionDenied, Object: "target:2"})
	if len(den) != 1 || den[0].Actor != "alice" || den[0].ActorAgency != "fr-a" || !strings.HasPrefix(den[0].Remote, "127.0.0.1:") {
		t.Fatalf("denial audit %+v", den)
	}
	if v := f.records(t, audit.Filter{Action: audit.ActionViewTarget}); len(v) != 1 || v[0].Object != "target:1" {
		t.Fatalf("view audit %+v", v)
	}
	// The admin manages users but sees no target.
	c2 := client(t)
	login(t, c2, srv.URL, "root", goodPW)
	if code, _ := rd(t)(c2.Get(srv.URL + "/targets/1")); code != http.StatusForbidden {
		t.Fatalf("admin reading a target: %d", code)
	}
	if code, _ := rd(t)(c2.Get(srv.URL + "/users")); code != 200 {
		t.Fatalf("admin managing users: %d", code)
	}
	if code, _ := rd(t)(c.Get(srv.URL + "/users")); code != http.StatusForbidden {
		t.Fatalf("investigator managing users: %d", code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, nil)
	srv := f.server(t)
	resp, err := http.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP allows inline script: %q", csp)
	}
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
}

func TestInsecureCookiesDropTheHostPrefix(t *testing.T) {
	f := newFixture(t, func(c *access.Config) { c.SecureCookies = false })
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	srv := f.server(t)
	resp := login(t, client(t), srv.URL, "alice", goodPW)
	var names []string
	for _, ck := range resp.Cookies() {
		names = append(names, ck.Name)
		if ck.Secure {
			t.Errorf("cookie %s is Secure with SecureCookies off", ck.Name)
		}
	}
	if !strings.Contains(strings.Join(names, ","), "vigil_session") || strings.Contains(strings.Join(names, ","), "__Host-") {
		t.Fatalf("cookies %v", names)
	}
}

func TestCookieSecureFor(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "[::1]:80": true, "localhost:80": true, "0.0.0.0:8080": false, "192.0.2.1:80": false, ":8080": false} {
		if got := access.CookieSecureFor(addr, false); got != want {
			t.Errorf("CookieSecureFor(%q, false) = %v", addr, got)
		}
	}
	if !access.CookieSecureFor("192.0.2.1:443", true) {
		t.Error("TLS must mean Secure")
	}
}

func TestLoginRedirectStaysOnSite(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "alice", "fr-a", access.RoleInvestigator)
	srv := f.server(t)
	for next, want := range map[string]string{"/me?x=1": "/me?x=1", "//evil.example/": "/", "https://evil.example/": "/", "/\\evil": "/", "": "/"} {
		c := client(t)
		tok := loginForm(t, c, srv.URL)
		resp, err := c.PostForm(srv.URL+"/login", url.Values{"name": {"alice"}, "password": {goodPW}, "csrf_token": {tok}, "next": {next}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Location"); got != want {
			t.Errorf("next %q: redirected to %q, want %q", next, got, want)
		}
	}
}

// Confine keeps a platform account to the routes it is given (and
// logging out), refusing the rest with 403 before any handler runs,
// audited; other roles pass untouched.
func TestConfineKeepsAPlatformToItsRoutes(t *testing.T) {
	f := newFixture(t, nil)
	f.user(t, "plat", "fr-nat", access.RolePlatform)
	f.user(t, "bot", "fr-nat", access.RoleAnalyst)
	ctx := context.Background()
	platTok, _, _ := f.svc.CreateToken(ctx, f.admin, "plat", "", time.Hour)
	botTok, _, _ := f.svc.CreateToken(ctx, f.admin, "bot", "", time.Hour)
	var reached atomic.Int32
	srv := httptest.NewServer(f.svc.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = io.WriteString(w, "reached")
	}), "POST /check"))
	t.Cleanup(srv.Close)
	do := func(tok, method, path string) int {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		code, _ := rd(t)(http.DefaultClient.Do(req))
		return code
	}
	for _, c := range []struct{ method, path string }{{"GET", "/check"}, {"POST", "/check/"}, {"POST", "/checks"}, {"GET", "/"}, {"GET", "/api/v1/whoami"}, {"POST", "/change"}} {
		if code := do(platTok, c.method, c.path); code != http.StatusForbidden {
			t.Errorf("%s %s as a platform: %d, want 403", c.method, c.path, code)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("a refused platform request reached the handler %d times", n)
	}
	if rs := f.records(t, audit.Filter{Actor: "plat", Action: audit.ActionDenied}); len(rs) != 6 {
		t.Fatalf("%d refusals recorded, want 6: %v", len(rs), reasons(rs))
	}
	if code := do(platTok, "POST", "/check"); code != 200 || reached.Load() != 1 {
		t.Fatalf("POST /check as a platform: %d, want it served", code)
	}
	if code := do(botTok, "GET", "/"); code != 200 || reached.Load() != 2 {
		t.Fatalf("an analyst: %d, want it served", code)
	}
}
