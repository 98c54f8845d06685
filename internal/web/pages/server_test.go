package pages

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// client is a browser-like HTTP client: a cookie jar, no redirects
// followed automatically unless asked.
type client struct {
	t    testing.TB
	env  *testEnv
	hc   *http.Client
	csrf string
}

func newClient(t testing.TB, env *testEnv) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, env: env, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp, string(b)
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.env.URL+path, nil)
	return c.do(req)
}

// post sends a form; withCSRF adds the token last seen on a page.
func (c *client) post(path string, form url.Values, withCSRF bool) (*http.Response, string) {
	c.t.Helper()
	if withCSRF {
		form.Set("csrf_token", c.csrf)
	}
	req, _ := http.NewRequest("POST", c.env.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

func login(t testing.TB, env *testEnv, user string) *client {
	t.Helper()
	c := newClient(t, env)
	c.get("/login")
	resp, _ := c.post("/login", url.Values{"name": {user}, "password": {env.Password[user]}, "next": {"/"}}, true)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login %s: %d %s", user, resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := c.get("/"); resp.StatusCode != 200 || !strings.Contains(body, user) {
		t.Fatalf("after login %s: %d", user, resp.StatusCode)
	}
	return c
}

func countAudit(recs []AuditRecord, actor, action, object string) int {
	n := 0
	for _, r := range recs {
		if r.Actor == actor && r.Action == action && (object == "" || r.Object == object) {
			n++
		}
	}
	return n
}

// Without an access layer's user, pages send to the login page, which
// says when signing in is impossible. (/healthz, /metrics, the assets and
// the headers are internal/web's: its TestHealthMetricsAndSecurityHeaders.)
func TestPagesWithoutAUserSendToTheLoginPage(t *testing.T) {
	c := newClient(t, &testEnv{URL: newTestHTTP(t, New(Config{}))})
	if resp, _ := c.get("/targets"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("page without user: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := c.get("/login"); !strings.Contains(body, i18n.T("en", "login.none")) {
		t.Fatalf("login page without account store does not say so:\n%s", body)
	}
}

// The embedded assets are served, their folder is not listed.
func TestStaticFolderIsNotListed(t *testing.T) {
	ts := newTestHTTP(t, http.StripPrefix("/static/", Static()))
	for path, want := range map[string]int{"/static/": 404, "/static/vigil.css": 200, "/static/vigil.js": 200} {
		resp, err := http.Get(ts + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 404 && strings.Contains(string(b), "vigil.css")) {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestTemplatesHaveNoInlineScriptOrStyle(t *testing.T) {
	files, err := filepath.Glob("templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	bad := regexp.MustCompile(`(?i)<script>|<script [^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|https?://[a-z]`)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: %q breaks the CSP or loads from elsewhere", f, m)
		}
	}
}

func TestEveryMessageKeyExistsInEveryLanguage(t *testing.T) {
	files, _ := filepath.Glob("templates/*.html")
	goFiles, _ := filepath.Glob("*.go")
	keyRE := regexp.MustCompile(`\.T "([a-z0-9.]+)"|"([a-z]+\.[a-z0-9]+)"`)
	seen := 0
	for _, f := range append(files, goFiles...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, _ := os.ReadFile(f)
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			k := m[1]
			if k == "" {
				k = m[2]
				// Go files: only strings that look like catalog keys.
				if !strings.Contains("app nav login level overview common col targets target isp lists sensors audit error lang none part mark source lead strength rule health role flag file purpose", strings.SplitN(k, ".", 2)[0]) {
					continue
				}
			}
			seen++
			if i18n.Has(k+".one") && i18n.Has(k+".other") {
				continue // a plural's base (view.plural)
			}
			if !i18n.Has(k) {
				t.Errorf("%s: message key %q missing in some language", f, k)
			}
		}
	}
	for _, dyn := range []string{"level.announced", "level.acknowledged", "level.partial", "level.complete", "level.verified", "level.unknown",
		"lists.running", "lists.done", "lists.failed", "lang.en", "lang.fr"} {
		if !i18n.Has(dyn) {
			t.Errorf("dynamic key %q missing", dyn)
		}
	}
	if seen < 100 {
		t.Fatalf("only %d keys found in the templates: the scan is broken", seen)
	}
	if got := i18n.T("fr", "nav.targets"); got != "Cibles" {
		t.Fatalf("fr nav.targets = %q", got)
	}
	if got := i18n.T("fr", "no.such.key"); got != "[no.such.key]" {
		t.Fatalf("missing key shows %q", got)
	}
}

func TestPagesNeedSignInAndLoginFailureIsShown(t *testing.T) {
	env := buildEnv(t)
	c := newClient(t, env)
	for _, p := range []string{"/", "/targets", "/targets/" + env.TargetA, "/lists", "/sensors", "/audit"} {
		resp, _ := c.get(p)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("GET %s without session: %d %s", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	c.get("/login")
	resp, _ := c.post("/login", url.Values{"name": {"alice"}, "password": {"wrong"}}, true)
	if loc := resp.Header.Get("Location"); loc != "/login?failed=1" {
		t.Fatalf("bad password: %d %s", resp.StatusCode, loc)
	}
	if _, body := c.get("/login?failed=1"); !strings.Contains(body, `id="login-failed"`) {
		t.Fatal("login page does not show the failure")
	}
}

func TestTargetsListIsScopedAndAudited(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	resp, body := alice.get("/targets")
	if resp.StatusCode != 200 {
		t.Fatalf("targets: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `href="/targets/`+env.TargetA+`"`) || strings.Contains(body, env.TargetB) {
		t.Fatalf("alice's list: want %s and not %s\n%s", env.TargetA, env.TargetB, body)
	}
	if !strings.Contains(body, `class="level complete"`) {
		t.Fatal("targets list does not show the level")
	}
	// Search by B's id: nothing, and the search is audited.
	_, body = alice.get("/targets?q=" + env.TargetB)
	if strings.Contains(body, `href="/targets/`+env.TargetB) || !strings.Contains(body, i18n.T("en", "targets.none")) {
		t.Fatalf("search finds B's target for alice")
	}
	if countAudit(env.Records(), "alice", ActionSearch, "targets") != 1 || countAudit(env.Records(), "alice", ActionListTargets, "targets") != 1 {
		t.Fatalf("audit: %+v", env.Records())
	}
	// Filters and sort reach the backend.
	_, body = alice.get("/targets?vpn=yes")
	if strings.Contains(body, `href="/targets/T-A1"`) || !strings.Contains(body, `href="/targets/T-A2"`) {
		t.Fatal("vpn=yes filter not applied")
	}
	_, body = alice.get("/targets?sort=score&order=asc")
	if strings.Index(body, `href="/targets/T-A2"`) > strings.Index(body, `href="/targets/T-A1"`) {
		t.Fatal("ascending score: T-A2 (42) should come before T-A1 (87.5)")
	}
	resp, body = alice.get("/targets?level=huge")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "level=") {
		t.Fatalf("bad filter: %d", resp.StatusCode)
	}
	// The analyst with national scope sees both.
	claire := login(t, env, "claire")
	if _, body := claire.get("/targets"); !strings.Contains(body, env.TargetA) || !strings.Contains(body, env.TargetB) {
		t.Fatal("analyst does not see every target")
	}
}

func TestTargetOutsideScopeAnswersAsNonexistentAndIsAuditedDenied(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	r1, denied := alice.get("/targets/" + env.TargetB)
	r2, missing := alice.get("/targets/T-NOPE")
	if r1.StatusCode != 404 || r2.StatusCode != 404 {
		t.Fatalf("status %d and %d, want 404 for both", r1.StatusCode, r2.StatusCode)
	}
	if strings.ReplaceAll(denied, env.TargetB, "ID") != strings.ReplaceAll(missing, "T-NOPE", "ID") {
		t.Fatalf("the denied page differs from the missing page: it leaks existence")
	}
	if strings.Contains(denied, "Verified") || strings.Contains(denied, "127.0.2.20") {
		t.Fatal("denied page shows B's data")
	}
	recs := env.Records()
	if countAudit(recs, "alice", ActionDenied, "target:"+env.TargetB) != 1 || countAudit(recs, "alice", ActionViewTarget, "target:"+env.TargetB) != 0 {
		t.Fatalf("audit after denied read: %+v", recs)
	}
	// Same through the ISP form and download.
	if r, _ := alice.get("/targets/" + env.TargetB + "/isp"); r.StatusCode != 404 {
		t.Fatalf("ISP form of B's target: %d", r.StatusCode)
	}
	alice.get("/targets/" + env.TargetA) // refresh the token
	if r, _ := alice.post("/targets/"+env.TargetB+"/isp", url.Values{"purpose": {"PV 2026/001"}, "format": {"csv"}}, true); r.StatusCode != 404 {
		t.Fatalf("ISP download of B's target: %d", r.StatusCode)
	}
	if n := countAudit(env.Records(), "alice", ActionDenied, "target:"+env.TargetB); n != 3 {
		t.Fatalf("%d denied records, want 3", n)
	}
	// A missing id leaves the same trace, through the same work: were only
	// the refusal of another service's target written to the trail, its
	// 404 would take an audit append longer than a missing one's, and
	// the time would tell that the target exists.
	alice.get("/targets/T-NOPE/isp")
	alice.get("/targets/" + env.TargetA) // refresh the token
	alice.post("/targets/T-NOPE/isp", url.Values{"purpose": {"PV 2026/001"}, "format": {"csv"}}, true)
	if n := countAudit(env.Records(), "alice", ActionDenied, "target:T-NOPE"); n != 3 {
		t.Fatalf("%d denied records of a missing target, want 3 as for another service's", n)
	}
	// A hostile id is recorded cut, without its NUL.
	if r, _ := alice.get("/targets/" + strings.Repeat("A", 3000) + "%00"); r.StatusCode != 404 {
		t.Fatalf("a hostile id: %d", r.StatusCode)
	}
	recs = env.Records()
	last := recs[len(recs)-1]
	if last.Action != ActionDenied || len(last.Object) > len("target:")+maxAuditedID+len("…") || strings.Contains(last.Object, "\x00") {
		t.Fatalf("a hostile id is recorded as %s %q", last.Action, last.Object)
	}
}

func TestTargetPageShowsLevelsInUserZoneAndIsAudited(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	resp, body := alice.get("/targets/" + env.TargetA)
	if resp.StatusCode != 200 {
		t.Fatalf("target: %d", resp.StatusCode)
	}
	for _, want := range []string{`class="level announced"`, `class="level acknowledged"`, `class="level complete"`,
		">complete<", "12/12", "Lab Telecom", "AS64500", "same DHT node id", "synthetic-T-A1.bin", "lab-watchlist (1)",
		`id="isp-button"`, "<svg class=\"map map-france\"", `data-key="78"`, "CET"} {
		if !strings.Contains(body, want) {
			t.Errorf("target page lacks %q", want)
		}
	}
	// 2026-11-23 13:00 UTC is 14:00 in Paris (CET).
	if !strings.Contains(body, "2026-11-23 14:00:00.000 CET") {
		t.Errorf("times not in the user's zone")
	}
	if countAudit(env.Records(), "alice", ActionViewTarget, "target:"+env.TargetA) != 1 {
		t.Fatalf("view not audited: %+v", env.Records())
	}
}

// A file row's level carries the marks of the observations that gave it,
// at the file's level and at each endpoint's, in the viewer's language,
// and says when they are only those of the observations read (rule 3:
// marks travel with every level shown). Before, only the timeline showed
// marks.
func TestTargetPageShowsTheMarksBehindEachFileLevel(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	for _, c := range []struct{ lang, partial string }{{"en", "marks of the observations read only"}, {"fr", "marques des seules observations lues"}} {
		if c.lang != "en" {
			alice.get("/")
			if r, _ := alice.post("/lang", url.Values{"lang": {c.lang}, "next": {"/"}}, true); r.StatusCode != http.StatusSeeOther {
				t.Fatalf("switch to %s: %d", c.lang, r.StatusCode)
			}
		}
		resp, body := alice.get("/targets/" + env.TargetA)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: target: %d", c.lang, resp.StatusCode)
		}
		i := strings.Index(body, `id="files"`)
		if i < 0 {
			t.Fatalf("%s: no file table", c.lang)
		}
		files := body[i:]
		files = files[:strings.Index(files, "</table>")]
		rows := strings.Split(files, "<tr>")
		if len(rows) < 4 {
			t.Fatalf("%s: %d file rows, want 2", c.lang, len(rows)-2)
		}
		first, second := rows[2], rows[3]
		if strings.Count(first, `data-mark="malformed_bitfield"`) != 2 || !strings.Contains(first, `data-mark="third_party"`) {
			t.Errorf("%s: first file row lacks its level's marks (the file's and each endpoint's): %s", c.lang, first)
		}
		if strings.Contains(first, c.partial) {
			t.Errorf("%s: first file row says its marks are partial, though complete", c.lang)
		}
		if !strings.Contains(second, `data-mark="third_party"`) || !strings.Contains(second, c.partial) {
			t.Errorf("%s: second file row lacks its mark or the note that it is only the observations read: %s", c.lang, second)
		}
	}
}

// With RequireViewPurpose a target's page asks for the case number first
// and shows nothing of the target before it; the view's record carries it,
// with every address the page shows.
func TestTargetViewCanRequireAPurpose(t *testing.T) {
	env := fakeEnvWith(t, func(c *Config) { c.RequireViewPurpose = true })
	alice := login(t, env, "alice")
	for _, path := range []string{"/targets/" + env.TargetA, "/targets/" + env.TargetA + "?purpose=x"} {
		resp, body := alice.get(path)
		if !strings.Contains(body, `id="purpose-form"`) || strings.Contains(body, "127.0.1.10") || strings.Contains(body, `id="timeline"`) {
			t.Fatalf("%s: %d, no purpose form or target data shown", path, resp.StatusCode)
		}
	}
	if n := countAudit(env.Records(), "alice", ActionViewTarget, ""); n != 0 {
		t.Fatalf("%d views audited before a purpose was given", n)
	}
	resp, body := alice.get("/targets/" + env.TargetA + "?purpose=" + url.QueryEscape("PV 2026/00099"))
	if resp.StatusCode != 200 || !strings.Contains(body, "127.0.1.10") {
		t.Fatalf("target with a purpose: %d", resp.StatusCode)
	}
	for _, r := range env.Records() {
		if r.Action == ActionViewTarget && r.Object == "target:"+env.TargetA {
			if r.Purpose != "PV 2026/00099" || !strings.Contains(r.Detail, "127.0.1.10") {
				t.Fatalf("the view's record: %+v", r)
			}
			return
		}
	}
	t.Fatal("the view is not audited")
}

// The ISP request form reads the target too (the rows its request would
// hold, for the purged transcripts it warns of) and is recorded as a view
// of it: with RequireViewPurpose it asks the case number first, as the
// target's page does, and its record carries it; the target's page links
// to it with the purpose it was given.
func TestISPFormCanRequireAPurpose(t *testing.T) {
	env := fakeEnvWith(t, func(c *Config) { c.RequireViewPurpose = true })
	alice := login(t, env, "alice")
	resp, body := alice.get("/targets/" + env.TargetA + "/isp")
	if !strings.Contains(body, `id="purpose-form"`) || strings.Contains(body, `id="isp-form"`) {
		t.Fatalf("ISP form without a purpose: %d, want the purpose form", resp.StatusCode)
	}
	if n := countAudit(env.Records(), "alice", ActionViewTarget, "target:"+env.TargetA); n != 0 {
		t.Fatalf("%d views of the ISP form audited before a purpose was given", n)
	}
	_, page := alice.get("/targets/" + env.TargetA + "?purpose=" + url.QueryEscape("PV 2026/00099"))
	if !strings.Contains(page, `href="/targets/`+env.TargetA+`/isp?purpose=PV%202026%2f00099"`) {
		t.Fatalf("the target page's ISP link does not carry the purpose:\n%s", page)
	}
	resp, body = alice.get("/targets/" + env.TargetA + "/isp?purpose=" + url.QueryEscape("PV 2026/00099"))
	if resp.StatusCode != 200 || !strings.Contains(body, `id="isp-form"`) || !strings.Contains(body, `value="PV 2026/00099"`) {
		t.Fatalf("ISP form with a purpose: %d\n%s", resp.StatusCode, body)
	}
	n := 0
	for _, r := range env.Records() {
		if r.Action == ActionViewTarget && strings.Contains(r.Detail, "isp_form") {
			if n++; r.Purpose != "PV 2026/00099" {
				t.Fatalf("the ISP form's record: %+v", r)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d records of the ISP form, want 1", n)
	}
}

func TestUnauditableReadIsNotServed(t *testing.T) {
	env := buildEnv(t)
	if env.backend == nil {
		t.Skip("needs the fake backend to break the audit trail")
	}
	alice := login(t, env, "alice")
	env.backend.mu.Lock()
	env.backend.failAudit = true
	env.backend.mu.Unlock()
	resp, body := alice.get("/targets/" + env.TargetA)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "127.0.1.10") {
		t.Fatalf("target served without audit: %d", resp.StatusCode)
	}
}

func TestISPRequestNeedsPurposeAndIsAudited(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	resp, body := alice.get("/targets/" + env.TargetA + "/isp")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="purpose"`) {
		t.Fatalf("ISP form: %d", resp.StatusCode)
	}
	resp, body = alice.post("/targets/"+env.TargetA+"/isp", url.Values{"purpose": {"  "}, "format": {"csv"}}, true)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Disposition") != "" || !strings.Contains(body, `id="isp-problem"`) {
		t.Fatalf("no purpose: %d %q", resp.StatusCode, resp.Header.Get("Content-Disposition"))
	}
	if countAudit(env.Records(), "alice", ActionDenied, "target:"+env.TargetA) != 1 {
		t.Fatal("refused export not audited")
	}
	resp, body = alice.post("/targets/"+env.TargetA+"/isp", url.Values{"purpose": {"PV 2026/00123"}, "format": {"csv"}}, true)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, "127.0.1.10,51413,tcp") {
		t.Fatalf("download: %d %q\n%s", resp.StatusCode, resp.Header.Get("Content-Disposition"), body)
	}
	var rec *AuditRecord
	for _, r := range env.Records() {
		if r.Action == ActionExport {
			rec = &r
		}
	}
	if rec == nil || rec.Purpose != "PV 2026/00123" || rec.Object != "target:"+env.TargetA || !strings.Contains(rec.Detail, `"format":"csv"`) {
		t.Fatalf("export audit: %+v", rec)
	}
}

func TestPostWithoutCSRFTokenIsRefused(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	for _, p := range []struct {
		path string
		form url.Values
	}{
		{"/lang", url.Values{"lang": {"fr"}, "next": {"/"}}},
		{"/targets/" + env.TargetA + "/isp", url.Values{"purpose": {"PV 1/2026"}, "format": {"csv"}}},
		{"/logout", url.Values{}},
	} {
		resp, _ := alice.post(p.path, p.form, false)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without CSRF token: %d, want 403", p.path, resp.StatusCode)
		}
	}
	if countAudit(env.Records(), "alice", ActionExport, "") != 0 {
		t.Fatal("an export went through without a CSRF token")
	}
	// A cross-site POST is refused even with the token.
	alice.get("/")
	form := url.Values{"lang": {"fr"}, "csrf_token": {alice.csrf}}
	req, _ := http.NewRequest("POST", env.URL+"/lang", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := alice.do(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", resp.StatusCode)
	}
}

func TestLanguageSwitchChangesPagesAndIsPerUser(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	if _, body := alice.get("/targets"); !strings.Contains(body, ">Targets</h1>") {
		t.Fatal("alice's page is not in English")
	}
	resp, _ := alice.post("/lang", url.Values{"lang": {"fr"}, "next": {"/targets"}}, true)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/targets" {
		t.Fatalf("switch: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, body := alice.get("/targets")
	if !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, ">Cibles</h1>") || !strings.Contains(body, ">complet<") {
		t.Fatal("page not in French after the switch")
	}
	if _, body := login(t, env, "claire").get("/targets"); !strings.Contains(body, ">Targets</h1>") {
		t.Fatal("alice's choice changed another user's language")
	}
	if r, _ := alice.post("/lang", url.Values{"lang": {"de"}}, true); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown language: %d", r.StatusCode)
	}
	if r, _ := alice.post("/lang", url.Values{"lang": {"en"}, "next": {"//evil.example/"}}, true); r.Header.Get("Location") != "/" {
		t.Fatalf("open redirect: %s", r.Header.Get("Location"))
	}
}

func TestOverviewIsScoped(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	resp, body := alice.get("/")
	if resp.StatusCode != 200 {
		t.Fatalf("overview: %d", resp.StatusCode)
	}
	for _, want := range []string{`data-key="78"`, `class="level complete"`, "<svg class=\"chart\"", `id="live-rows"`, "sensor demo-bittorrent", "120 routing nodes, 3 watched, 8 lookups, 1,234 observations"} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	if strings.Contains(body, `data-key="13"`) || strings.Contains(body, env.TargetB) || strings.Contains(body, "127.0.2.20") {
		t.Fatal("alice's overview shows agency B's activity")
	}
}

func TestAuditPageIsForAuditorsOnly(t *testing.T) {
	env := buildEnv(t)
	alice := login(t, env, "alice")
	alice.get("/targets/" + env.TargetA)
	if resp, _ := alice.get("/audit"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("investigator reads the audit trail: %d", resp.StatusCode)
	}
	if countAudit(env.Records(), "alice", ActionDenied, "audit") != 1 {
		t.Fatal("refused audit read not audited")
	}
	audrey := login(t, env, "audrey")
	resp, body := audrey.get("/audit?actor=alice")
	if resp.StatusCode != 200 || !strings.Contains(body, "target:"+env.TargetA) || !strings.Contains(body, ActionViewTarget) {
		t.Fatalf("auditor's page: %d\n%s", resp.StatusCode, body)
	}
	if countAudit(env.Records(), "audrey", ActionReadAudit, "audit") != 1 {
		t.Fatal("audit read not audited")
	}
}

func TestListImportWithProgressVersionsAndDiff(t *testing.T) {
	env := buildEnv(t)
	if env.backend == nil {
		t.Skip("needs the fake backend")
	}
	gate := make(chan struct{})
	env.backend.importGo = gate
	claire := login(t, env, "claire")
	_, body := claire.get("/lists")
	if !strings.Contains(body, "lab-watchlist") || !strings.Contains(body, `id="import-form"`) {
		t.Fatal("lists page")
	}
	_, body = claire.get("/lists/lab-watchlist")
	if !strings.Contains(body, "btih:dd") || !strings.Contains(body, "btih:cc") {
		t.Fatalf("default diff (v1 to v2) missing:\n%s", body)
	}
	// Upload, watch it stop halfway, release it, see it done.
	pr, pw := io.Pipe()
	mwDone := make(chan string, 1)
	go func() {
		w := multipartWriter(pw, map[string]string{"name": "new-list", "csrf_token": claire.csrf}, "file", "new.txt", "btih:01 btih:02 btih:03 btih:04")
		mwDone <- w
	}()
	req, _ := http.NewRequest("POST", env.URL+"/lists/import", pr)
	req.Header.Set("Content-Type", <-mwDone)
	resp, _ := claire.do(req)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/lists/import/") {
		t.Fatalf("upload: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	job := strings.TrimPrefix(resp.Header.Get("Location"), "/lists/import/")
	waitState := func(want string) string {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			_, body := claire.get("/api/v1/imports/" + job)
			if strings.Contains(body, `"state":"`+want+`"`) && (want != "running" || strings.Contains(body, `"done":3`)) {
				return body
			}
		}
		t.Fatalf("import never reached %s", want)
		return ""
	}
	body = waitState("running")
	if !strings.Contains(body, `"total":4`) {
		t.Fatalf("progress: %s", body)
	}
	if _, page := claire.get("/lists/import/" + job); !strings.Contains(page, `data-state="running"`) {
		t.Fatal("progress page does not say running")
	}
	close(gate)
	waitState("done")
	if _, page := claire.get("/lists/import/" + job); !strings.Contains(page, "+4") {
		t.Fatalf("done page:\n%s", page)
	}
	// A file with invalid lines: every one is listed with its line, not
	// only the first.
	pr, pw = io.Pipe()
	go func() {
		mwDone <- multipartWriter(pw, map[string]string{"name": "bad-list", "csrf_token": claire.csrf}, "file", "bad.txt", "btih:01 junk-a btih:02 junk-b junk-c")
	}()
	req, _ = http.NewRequest("POST", env.URL+"/lists/import", pr)
	req.Header.Set("Content-Type", <-mwDone)
	resp, _ = claire.do(req)
	job = strings.TrimPrefix(resp.Header.Get("Location"), "/lists/import/")
	waitState("failed")
	_, page := claire.get("/lists/import/" + job)
	for _, want := range []string{`id="import-rejected"`, "junk-a", "junk-b", "junk-c", "<td class=\"num\">5</td>"} {
		if !strings.Contains(page, want) {
			t.Fatalf("failed import page lacks %q:\n%s", want, page)
		}
	}
	// Alice may neither import nor follow claire's job.
	alice := login(t, env, "alice")
	if r, _ := alice.get("/api/v1/imports/" + job); r.StatusCode != 404 {
		t.Fatalf("another user's job: %d", r.StatusCode)
	}
	if countAudit(env.Records(), "claire", ActionChange, "list:new-list") != 1 {
		t.Fatal("import not audited")
	}
}

func multipartWriter(w *io.PipeWriter, fields map[string]string, fileField, fileName, content string) string {
	mw := newMultipart(w)
	ct := mw.FormDataContentType()
	go func() {
		for k, v := range fields {
			_ = mw.WriteField(k, v)
		}
		fw, _ := mw.CreateFormFile(fileField, fileName)
		_, _ = io.WriteString(fw, content)
		_ = mw.Close()
		_ = w.Close()
	}()
	return ct
}

func TestEveryPageRendersInBothLanguages(t *testing.T) {
	env := buildEnv(t)
	for _, user := range []string{"alice", "claire", "audrey"} {
		c := login(t, env, user)
		for _, lang := range []string{"en", "fr"} {
			c.get("/")
			c.post("/lang", url.Values{"lang": {lang}, "next": {"/"}}, true)
			pages := []string{"/", "/targets", "/targets?sort=first&page=1", "/targets/" + env.TargetA, "/targets/" + env.TargetA + "/isp", "/lists", "/lists/lab-watchlist", "/sensors"}
			if user == "audrey" {
				pages = []string{"/audit", "/sensors", "/lists"}
			}
			for _, p := range pages {
				resp, body := c.get(p)
				if resp.StatusCode != 200 || !strings.Contains(body, `<html lang="`+lang+`">`) || strings.Contains(body, "[") && regexp.MustCompile(`\[[a-z]+\.[a-z.]+\]`).MatchString(body) {
					t.Errorf("%s %s %s: %d (missing message or wrong language)", user, lang, p, resp.StatusCode)
				}
			}
		}
	}
}

func TestLoginHandlerRendersThisPackagesForm(t *testing.T) {
	a := newFakeAccess()
	srv := New(Config{Who: a.Who, // the injected handler checks its own token
		LoginHandler: func(render RenderLogin) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					render(w, r, LoginForm{CSRFToken: "tok123", Next: r.FormValue("next"), OIDC: true})
					return
				}
				render(w, r, LoginForm{CSRFToken: "tok456", Next: "//elsewhere", Error: "Wrong user name or password.", Status: http.StatusUnauthorized})
			})
		}})
	env := &testEnv{URL: newTestHTTP(t, srv)}
	c := newClient(t, env)
	resp, body := c.get("/login?next=/targets")
	if resp.StatusCode != 200 || c.csrf != "tok123" || !strings.Contains(body, `name="next" value="/targets"`) || !strings.Contains(body, "/login/oidc") {
		t.Fatalf("GET /login: %d csrf %q\n%s", resp.StatusCode, c.csrf, body)
	}
	resp, body = c.post("/login", url.Values{"name": {"alice"}, "password": {"x"}}, true)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong user name or password.") || c.csrf != "tok456" ||
		!strings.Contains(body, `name="next" value="/"`) {
		t.Fatalf("POST /login: %d\n%s", resp.StatusCode, body)
	}
}
