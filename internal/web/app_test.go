package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/observe"
)

// client is a cookie-keeping HTTP client that does not follow redirects.
type client struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string // the session's token, read from the last page
}

func newBrowser(t *testing.T, e *env) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func (b *client) do(method, path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.URL+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(data); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(data), resp.Header
}

func (b *client) get(path string) (int, string) {
	b.t.Helper()
	code, body, _ := b.do("GET", path, nil)
	return code, body
}

// login signs in through the form with the real password.
func (b *client) login(user string) {
	b.t.Helper()
	if code, _ := b.get("/login?next=/targets"); code != http.StatusOK || b.csrf == "" {
		b.t.Fatalf("login page: %d, token %q", code, b.csrf)
	}
	code, _, h := b.do("POST", "/login", url.Values{"name": {user}, "password": {b.e.Password[user]}, "next": {"/targets"}, "csrf_token": {b.csrf}})
	if code != http.StatusSeeOther || h.Get("Location") != "/targets" {
		b.t.Fatalf("login %s: %d to %q", user, code, h.Get("Location"))
	}
	if code, body := b.get("/targets"); code != http.StatusOK || !strings.Contains(body, `id="whoami"`) || !strings.Contains(body, user) {
		b.t.Fatalf("after login as %s: %d", user, code)
	}
}

var targetLinkRE = regexp.MustCompile(`href="/targets/(T-[0-9A-Z-]+)"`)

func linkedTargets(body string) []string {
	var out []string
	for _, m := range targetLinkRE.FindAllStringSubmatch(body, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// records returns the audit records matching f.
func records(t *testing.T, e *env, f audit.Filter) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := e.Back.AuditRecords(context.Background(), f, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func agencyOf(t *testing.T, e *env, id string) string {
	t.Helper()
	ag, _, err := e.Back.TargetAgencies(context.Background(), id)
	if err != nil {
		t.Fatalf("target %s: %v", id, err)
	}
	return ag
}

func TestRealBackendPages(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { realBackendPages(t, newEnv(t, "", 3000)) })
	t.Run("postgres", func(t *testing.T) { realBackendPages(t, newTestPGEnv(t, "web_real_pages", 3000, nil)) })
}

func realBackendPages(t *testing.T, e *env) {
	for _, c := range []struct {
		name string
		f    func(*testing.T, *env)
	}{
		{"LoginRefusesWrongPassword", realLoginRefusesWrongPassword},
		{"TargetsOnlyOwnAgency", realTargetsOnlyOwnAgency},
		{"OtherAgencyTargetIsNotFound", realOtherAgencyTargetIsNotFound},
		{"ISPRequestNeedsCaseNumberAndIsAudited", realISPRequestNeedsCaseNumberAndIsAudited},
		{"PostWithoutCSRFIsRefused", realPostWithoutCSRFIsRefused},
		{"LanguageIsStoredOnTheAccount", realLanguageIsStoredOnTheAccount},
		{"BearerTokenOnAPI", realBearerTokenOnAPI},
		{"OverviewMapInScope", realOverviewMapInScope},
		{"AuditTrailForAuditorOnly", realAuditTrailForAuditorOnly},
		{"ListsVersionsAndDiff", realListsVersionsAndDiff},
		{"LiveEventsInScope", realLiveEventsInScope},
		{"TargetPageShowsWhoHoldsIt", realTargetPageShowsWhoHoldsIt},
	} {
		t.Run(c.name, func(t *testing.T) { c.f(t, e) })
	}
}

func realLoginRefusesWrongPassword(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.get("/login")
	code, body, _ := b.do("POST", "/login", url.Values{"name": {"paris"}, "password": {"not the password"}, "csrf_token": {b.csrf}})
	if code != http.StatusUnauthorized || !strings.Contains(body, `id="login-form"`) {
		t.Fatalf("wrong password: %d", code)
	}
	if code, _ := b.get("/targets"); code != http.StatusSeeOther {
		t.Fatalf("targets after a failed login: %d, want a redirect to the login page", code)
	}
	if len(records(t, e, audit.Filter{Action: audit.ActionLoginFailed, Object: "user:paris"})) == 0 {
		t.Fatal("the failed login is not in the audit trail")
	}
}

func realTargetsOnlyOwnAgency(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	code, body := b.get("/targets")
	if code != http.StatusOK {
		t.Fatalf("targets: %d", code)
	}
	ids := linkedTargets(body)
	if len(ids) == 0 || !slices.Contains(ids, e.TargetA) {
		t.Fatalf("paris's targets page lists %v, not %s", ids, e.TargetA)
	}
	for _, id := range ids {
		if ag := agencyOf(t, e, id); ag != agencyParis {
			t.Errorf("paris sees %s of %s", id, ag)
		}
	}
	// Every filter and sort goes through the same scope.
	for _, q := range []string{"?sort=last", "?sort=first", "?sort=score&asc=1", "?level=complete", "?vpn=no", "?page=2"} {
		code, body := b.get("/targets" + q)
		if code != http.StatusOK {
			t.Fatalf("targets%s: %d", q, code)
		}
		for _, id := range linkedTargets(body) {
			if ag := agencyOf(t, e, id); ag != agencyParis {
				t.Errorf("targets%s: paris sees %s of %s", q, id, ag)
			}
		}
	}
	// Searching for B's target by id or by address finds nothing.
	d, err := e.Back.Target(context.Background(), e.TargetB, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{e.TargetB, d.Endpoints[0].IP.String(), netip.AddrPortFrom(d.Endpoints[0].IP, d.Endpoints[0].Port).String(), d.Files[0].Hex} {
		_, body := b.get("/targets?q=" + url.QueryEscape(q))
		if ids := linkedTargets(body); slices.Contains(ids, e.TargetB) {
			t.Errorf("search %q shows B's target to paris", q)
		}
	}
	// While B's investigator finds it by the same searches.
	bs := newBrowser(t, e)
	bs.login("sud")
	for _, q := range []string{e.TargetB, d.Endpoints[0].IP.String(), d.Files[0].Hex} {
		_, body := bs.get("/targets?q=" + url.QueryEscape(q))
		if ids := linkedTargets(body); !slices.Contains(ids, e.TargetB) {
			t.Errorf("search %q: sud does not find its own target %s (%v)", q, e.TargetB, ids)
		}
	}
}

func realOtherAgencyTargetIsNotFound(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	codeB, bodyB := b.get("/targets/" + e.TargetB)
	codeX, bodyX := b.get("/targets/T-ZZZZZZZ")
	if codeB != http.StatusNotFound || codeX != http.StatusNotFound {
		t.Fatalf("B's target: %d, a missing one: %d; want 404 for both", codeB, codeX)
	}
	// The pages differ only in the path they were asked at (the
	// language form's "next") and the time they were made.
	norm := func(s, id string) string {
		s = strings.ReplaceAll(s, id, "ID")
		return regexp.MustCompile(`Generated [^<]*`).ReplaceAllString(s, "")
	}
	if norm(bodyB, e.TargetB) != norm(bodyX, "T-ZZZZZZZ") {
		t.Fatalf("B's target answers differently from a missing one:\n%s\n---\n%s", bodyB, bodyX)
	}
	if codeB, _ := b.get("/targets/" + e.TargetB + "/isp"); codeB != http.StatusNotFound {
		t.Fatalf("B's ISP form: %d", codeB)
	}
	denied := records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionDenied, Object: "target:" + e.TargetB})
	if len(denied) == 0 {
		t.Fatal("the refused read of B's target is not audited")
	}
	// A missing target is recorded as B's is, with the same detail: the
	// trail (which a supervisor reads for the service's staff) does not
	// tell them apart, nor does the time an answer takes (the record is
	// an append either way).
	missing := records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionDenied, Object: "target:T-ZZZZZZZ"})
	if len(missing) != 1 || string(missing[0].Detail) != string(denied[0].Detail) {
		t.Fatalf("a missing target is recorded as %+v, another service's as %+v", missing, denied)
	}
	// Own target: shown, with levels, and the view is audited.
	code, body := b.get("/targets/" + e.TargetA)
	if code != http.StatusOK || !strings.Contains(body, `id="timeline"`) || !strings.Contains(body, `id="score-parts"`) {
		t.Fatalf("own target: %d", code)
	}
	for _, want := range []string{"lab-watchlist", "synthetic-", `id="devices"`} {
		if !strings.Contains(body, want) {
			t.Errorf("target page lacks %q", want)
		}
	}
	if len(records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionViewTarget, Object: "target:" + e.TargetA})) == 0 {
		t.Fatal("the view of A's target is not audited")
	}
}

func realISPRequestNeedsCaseNumberAndIsAudited(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	if code, _ := b.get("/targets/" + e.TargetA + "/isp"); code != http.StatusOK {
		t.Fatalf("ISP form: %d", code)
	}
	code, _, _ := b.do("POST", "/targets/"+e.TargetA+"/isp", url.Values{"format": {"csv"}, "purpose": {""}, "csrf_token": {b.csrf}})
	if code != http.StatusBadRequest {
		t.Fatalf("ISP request without a case number: %d", code)
	}
	code, body, h := b.do("POST", "/targets/"+e.TargetA+"/isp", url.Values{"format": {"csv"}, "purpose": {"PV 2026/00123"}, "csrf_token": {b.csrf}})
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
		t.Fatalf("ISP request: %d %s %s", code, h.Get("Content-Type"), h.Get("Content-Disposition"))
	}
	d, err := e.Back.Target(context.Background(), e.TargetA, analysis.AllAgencies)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, d.Endpoints[0].IP.String()) || !strings.HasPrefix(body, "request_id,") {
		t.Fatalf("ISP CSV does not list the target's address %s:\n%.500s", d.Endpoints[0].IP, body)
	}
	for _, f := range []string{"json", "pdf"} {
		code, body, _ := b.do("POST", "/targets/"+e.TargetA+"/isp", url.Values{"format": {f}, "purpose": {"PV 2026/00124"}, "csrf_token": {b.csrf}})
		if code != http.StatusOK || (f == "pdf" && !strings.HasPrefix(body, "%PDF-")) || (f == "json" && !strings.Contains(body, "PV 2026/00124")) {
			t.Fatalf("ISP request %s: %d %.80q", f, code, body)
		}
	}
	exp := records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionExport, Object: "target:" + e.TargetA})
	if !slices.ContainsFunc(exp, func(r audit.Record) bool { return r.Purpose == "PV 2026/00123" }) {
		t.Fatalf("the export is not audited with its case number: %+v", exp)
	}
	// B's target: the same 404 as a missing one, audited as denied.
	code, _, _ = b.do("POST", "/targets/"+e.TargetB+"/isp", url.Values{"format": {"csv"}, "purpose": {"PV 2026/00125"}, "csrf_token": {b.csrf}})
	if code != http.StatusNotFound {
		t.Fatalf("ISP request for B's target: %d", code)
	}
	if len(records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionDenied, Object: "target:" + e.TargetB})) == 0 {
		t.Fatal("the refused export is not audited")
	}
}

func realPostWithoutCSRFIsRefused(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	for _, path := range []string{"/lang", "/targets/" + e.TargetA + "/isp", "/logout"} {
		code, _, _ := b.do("POST", path, url.Values{"lang": {"fr"}, "format": {"csv"}, "purpose": {"PV 2026/00126"}})
		if code != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token: %d, want 403", path, code)
		}
	}
	code, _, _ := b.do("POST", "/lang", url.Values{"lang": {"fr"}, "csrf_token": {"wrong"}})
	if code != http.StatusForbidden {
		t.Errorf("POST /lang with a wrong token: %d", code)
	}
	// Still signed in, still English.
	if code, body := b.get("/targets"); code != http.StatusOK || !strings.Contains(body, `<html lang="en"`) {
		t.Fatalf("after refused posts: %d", code)
	}
}

func realLanguageIsStoredOnTheAccount(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("analyst")
	b.get("/targets")
	code, _, h := b.do("POST", "/lang", url.Values{"lang": {"fr"}, "next": {"/targets"}, "csrf_token": {b.csrf}})
	if code != http.StatusSeeOther || h.Get("Location") != "/targets" {
		t.Fatalf("switch language: %d %q", code, h.Get("Location"))
	}
	if _, body := b.get("/targets"); !strings.Contains(body, `<html lang="fr"`) {
		t.Fatal("the page is not in French after the switch")
	}
	u, err := e.Back.UserByName(context.Background(), "analyst")
	if err != nil || u.Lang != "fr" {
		t.Fatalf("stored language: %q %v", u.Lang, err)
	}
	// A new session (another browser) starts in French too.
	b2 := newBrowser(t, e)
	b2.login("analyst")
	if _, body := b2.get("/targets"); !strings.Contains(body, `<html lang="fr"`) {
		t.Fatal("a new session is not in the stored language")
	}
}

func realBearerTokenOnAPI(t *testing.T, e *env) {
	get := func(user, path string) (int, []byte) {
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.Token[user])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("paris", "/api/v1/targets?limit=1000")
	var list struct {
		Total   int `json:"total"`
		Targets []struct {
			ID           string `json:"id"`
			Jurisdiction string `json:"jurisdiction"`
		} `json:"targets"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || list.Total == 0 {
		t.Fatalf("api targets: %d %.200s", code, body)
	}
	for _, tg := range list.Targets {
		if tg.Jurisdiction != agencyParis {
			t.Errorf("api: paris sees %s of %s", tg.ID, tg.Jurisdiction)
		}
	}
	if code, _ := get("paris", "/api/v1/targets/"+e.TargetB); code != http.StatusNotFound {
		t.Errorf("api: B's target for paris: %d", code)
	}
	if code, _ := get("paris", "/api/v1/targets/"+e.TargetA); code != http.StatusOK {
		t.Errorf("api: A's target for paris: %d", code)
	}
	if code, body := get("paris", "/api/v1/whoami"); code != http.StatusOK || !strings.Contains(string(body), agencyParis) {
		t.Errorf("whoami: %d %s", code, body)
	}
	if code, _ := get("paris", "/api/v1/observations"); code != http.StatusForbidden {
		t.Errorf("raw observations for an investigator: %d, want 403 (the API serves the route)", code)
	}
	// A bearer-token POST needs no CSRF token (it is no ambient credential).
	req, _ := http.NewRequest("POST", e.URL+"/lang", strings.NewReader("lang=en&next=/"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+e.Token["paris"])
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("token POST /lang: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", e.URL+"/api/v1/targets", nil)
	req.Header.Set("Authorization", "Bearer vgt_not-a-token")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
}

func realOverviewMapInScope(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	code, body := b.get("/")
	if code != http.StatusOK || !strings.Contains(body, `id="fig-obs"`) {
		t.Fatalf("overview: %d", code)
	}
	if !strings.Contains(body, `data-key="75"`) {
		t.Error("paris's overview map has no dot for Paris (75)")
	}
	for _, k := range []string{"13", "31", "69", "BE"} {
		if strings.Contains(body, `data-key="`+k+`"`) {
			t.Errorf("paris's overview map shows %s", k)
		}
	}
	for _, id := range linkedTargets(body) {
		if ag := agencyOf(t, e, id); ag != agencyParis {
			t.Errorf("overview shows paris %s of %s", id, ag)
		}
	}
	a := newBrowser(t, e)
	a.login("analyst")
	_, body = a.get("/")
	for _, k := range []string{"75", "13", "31", "BE", "DE"} {
		if !strings.Contains(body, `data-key="`+k+`"`) {
			t.Errorf("the analyst's overview map has no dot for %s", k)
		}
	}
}

func realAuditTrailForAuditorOnly(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("auditor")
	code, body := b.get("/audit")
	if code != http.StatusOK || !strings.Contains(body, "view_target") {
		t.Fatalf("audit page for the auditor: %d", code)
	}
	if code, _ := b.get("/targets/" + e.TargetA); code != http.StatusNotFound {
		t.Errorf("the auditor reads a target: %d", code)
	}
	p := newBrowser(t, e)
	p.login("paris")
	if code, _ := p.get("/audit"); code == http.StatusOK {
		t.Error("an investigator reads the audit trail")
	}
}

func realListsVersionsAndDiff(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("analyst")
	code, body := b.get("/lists")
	if code != http.StatusOK || !strings.Contains(body, "lab-watchlist") {
		t.Fatalf("lists: %d", code)
	}
	code, body = b.get("/lists/lab-watchlist")
	if code != http.StatusOK {
		t.Fatalf("list page: %d", code)
	}
	// Version 2 dropped the first 5% of the items and added the last 20%.
	first := "btih:" + e.Info.Items[0].Hex()
	last := "btih:" + e.Info.Items[len(e.Info.Items)-1].Hex()
	mid := "btih:" + e.Info.Items[len(e.Info.Items)/2].Hex()
	if !strings.Contains(body, first) || !strings.Contains(body, last) || strings.Contains(body, mid) {
		t.Fatalf("diff 1..2 lacks the removed %s or the added %s, or lists the unchanged %s", first, last, mid)
	}
	if code, _ := b.get("/lists/no-such-list"); code != http.StatusNotFound {
		t.Errorf("unknown list: %d", code)
	}
}

func realLiveEventsInScope(t *testing.T, e *env) {
	req, _ := http.NewRequest("GET", e.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.Token["paris"])
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for deadline := time.Now().Add(5 * time.Second); e.App.Hub().Len() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	dA, _ := e.Back.Target(context.Background(), e.TargetA, analysis.AllAgencies)
	dB, _ := e.Back.Target(context.Background(), e.TargetB, analysis.AllAgencies)
	mk := func(d *analysis.TargetDetail, agency string) observe.Observation {
		return observe.Observation{ID: observe.NewID(time.Now()), Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe,
			Time: time.Now().UTC(), Item: observe.Item{Hash: d.Files[0].Hash},
			Endpoint:     observe.Endpoint{IP: d.Endpoints[0].IP, Port: d.Endpoints[0].Port, Transport: "tcp"},
			Possession:   observe.Possession{Level: observe.Complete, PiecesHave: 64, PiecesTotal: 64},
			Jurisdiction: observe.Jurisdiction{Agency: agency}}
	}
	e.App.Publish([]observe.Observation{mk(dB, agencySud), mk(dA, agencyParis)})
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if strings.Contains(data, dB.Endpoints[0].IP.String()+":") {
			t.Fatalf("paris received B's event: %s", data)
		}
		var ev struct {
			Level  string `json:"level"`
			Target string `json:"target"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		// An IP:port is several endpoints over time (one per silence
		// longer than the analysis's window): the event names the
		// target of the one in effect at its time (the latest begun by
		// then; generation numbers follow arrival, not time).
		apA := netip.AddrPortFrom(dA.Endpoints[0].IP, dA.Endpoints[0].Port)
		var evAt struct {
			Time time.Time `json:"time"`
		}
		_ = json.Unmarshal([]byte(data), &evAt)
		owners, err := e.Back.EndpointTargetsAt(context.Background(), []netip.AddrPort{apA}, []time.Time{evAt.Time}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Target != owners[0] || ev.Level != "complete" {
			t.Fatalf("live event %s: want target %s, level complete", data, owners[0])
		}
		return
	}
	t.Fatalf("no live event: %v", sc.Err())
}

// The target page says who holds the target (vigil claim), since when and
// whom to call, in the viewer's language; and that nobody does otherwise.
func realTargetPageShowsWhoHoldsIt(t *testing.T, e *env) {
	b := newBrowser(t, e)
	b.login("paris")
	claimOf := func(body string) string {
		m := regexp.MustCompile(`(?s)<dd id="claim">(.*?)</dd>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("the target page has no claim:\n%s", body)
		}
		return m[1]
	}
	if _, body := b.get("/targets/" + e.TargetA); !strings.Contains(claimOf(body), "nobody") {
		t.Fatalf("an unclaimed target: %q", claimOf(body))
	}
	claims := &casework.Claims{Store: e.Back, Config: casework.DefaultConfig()}
	if _, err := claims.Claim(context.Background(), e.TargetA, "fr-brigade-x", "lt-martin", "Lt. Martin 01 00 00 00 00"); err != nil {
		t.Fatal(err)
	}
	_, body := b.get("/targets/" + e.TargetA)
	if c := claimOf(body); !strings.Contains(c, "fr-brigade-x") || !strings.Contains(c, "since") || !strings.Contains(c, "Lt. Martin 01 00 00 00 00") {
		t.Fatalf("a claimed target: %q", c)
	}
	b.get("/targets")
	b.do("POST", "/lang", url.Values{"lang": {"fr"}, "next": {"/targets"}, "csrf_token": {b.csrf}})
	_, body = b.get("/targets/" + e.TargetA)
	if c := claimOf(body); !strings.Contains(body, "Prise en charge") || !strings.Contains(c, "depuis le") || !strings.Contains(c, "fr-brigade-x") {
		t.Fatalf("in French: %q", c)
	}
	b.do("POST", "/lang", url.Values{"lang": {"en"}, "next": {"/targets"}, "csrf_token": {b.csrf}})
}
