package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
)

// The route census: every route the interface registers (single
// sign-on's, the pages' and the API's), asked as each role against the
// real backend
// (SQLite store, real access layer, real audit trail). A route fails the
// census when it shows a target, or an address of one, that the role may
// not see now, or shows one that no audit record of the request names. A
// route registered without a census entry fails it too: a new route is
// covered from the day it is added.

// censusReq is one request of a route. Placeholders in path and form:
// {A} {B} targets of agencies A and B, {EPA} {EPB} one endpoint of each
// ("ip:port"), {IPB} its address, {HB} the hex of one of B's files.
type censusReq struct {
	method, path string
	form         url.Values
	kind         string // "" pages and API reads; "trail": the audit trail; "bulk": a bulk export; "stream": the live feed
}

var census = map[string][]censusReq{
	"GET /login":                           {{method: "GET", path: "/login?next=/targets/{B}"}},
	"GET /login/oidc":                      {{method: "GET", path: "/login/oidc?next=/targets/{B}"}},
	"GET /login/oidc/callback":             {{method: "GET", path: "/login/oidc/callback?state=census&code=census"}},
	"POST /login":                          {{method: "POST", path: "/login", form: url.Values{"name": {"paris"}, "password": {"wrong"}}}},
	"GET /{$}":                             {{method: "GET", path: "/"}},
	"GET /targets":                         {{method: "GET", path: "/targets"}, {method: "GET", path: "/targets?sort=last&page=2"}, {method: "GET", path: "/targets?q={B}"}, {method: "GET", path: "/targets?q={EPB}"}, {method: "GET", path: "/targets?q={IPB}"}, {method: "GET", path: "/targets?q={HB}"}, {method: "GET", path: "/targets?q={A}"}},
	"GET /targets/{id}":                    {{method: "GET", path: "/targets/{A}"}, {method: "GET", path: "/targets/{B}"}},
	"GET /targets/{id}/isp":                {{method: "GET", path: "/targets/{A}/isp"}, {method: "GET", path: "/targets/{B}/isp"}},
	"POST /targets/{id}/isp":               {{method: "POST", path: "/targets/{A}/isp", form: url.Values{"format": {"csv"}, "purpose": {"PV 2026/00042"}}}, {method: "POST", path: "/targets/{B}/isp", form: url.Values{"format": {"json"}, "purpose": {"PV 2026/00042"}}}, {method: "POST", path: "/targets/{A}/isp", form: url.Values{"format": {"csv"}}}},
	"GET /lists":                           {{method: "GET", path: "/lists"}},
	"GET /lists/{name}":                    {{method: "GET", path: "/lists/lab-watchlist"}, {method: "GET", path: "/lists/lab-watchlist?from=1&to=2"}},
	"POST /lists/import":                   {{method: "POST", path: "/lists/import", form: url.Values{"name": {"x"}}}},
	"GET /lists/import/{job}":              {{method: "GET", path: "/lists/import/0123456789abcdef"}},
	"GET /sensors":                         {{method: "GET", path: "/sensors"}},
	"GET /audit":                           {{method: "GET", path: "/audit", kind: "trail"}},
	"GET /operations":                      {{method: "GET", path: "/operations"}},
	"GET /operations/{id}":                 {{method: "GET", path: "/operations/1"}, {method: "GET", path: "/operations/2"}},
	"POST /lang":                           {{method: "POST", path: "/lang", form: url.Values{"lang": {"en"}, "next": {"/"}}}},
	"GET /figures":                         {{method: "GET", path: "/figures"}, {method: "GET", path: "/figures?by=week&group=subdivision"}},
	"GET /figures/export":                  {{method: "GET", path: "/figures/export?format=csv&group=country"}, {method: "GET", path: "/figures/export?format=json&publish=1&k=5"}},
	"GET /api/v1/events":                   {{method: "GET", path: "/api/v1/events", kind: "stream"}},
	"GET /api/v1/imports/{job}":            {{method: "GET", path: "/api/v1/imports/0123456789abcdef"}},
	"/":                                    {{method: "GET", path: "/no/such/page"}},
	"GET /api/v1/targets":                  {{method: "GET", path: "/api/v1/targets?limit=1000"}, {method: "GET", path: "/api/v1/targets?jurisdiction=" + agencySud}},
	"GET /api/v1/targets/{id}":             {{method: "GET", path: "/api/v1/targets/{A}"}, {method: "GET", path: "/api/v1/targets/{B}"}},
	"GET /api/v1/targets/{id}/isp-request": {{method: "GET", path: "/api/v1/targets/{A}/isp-request?format=csv&purpose=PV+2026%2F00042"}, {method: "GET", path: "/api/v1/targets/{B}/isp-request?format=json&purpose=PV+2026%2F00042"}},
	"GET /api/v1/observations":             {{method: "GET", path: "/api/v1/observations?purpose=PV+2026%2F00042", kind: "bulk"}, {method: "GET", path: "/api/v1/observations", kind: "bulk"}},
	"GET /api/v1/whoami":                   {{method: "GET", path: "/api/v1/whoami"}},
	"POST /api/v1/check":                   {{method: "POST", path: "/api/v1/check", form: url.Values{"purpose": {"PV 2026/00042"}, "address": {"{IPB}"}}}},
	// Last: it ends the role's session.
	"POST /logout": {{method: "POST", path: "/logout"}},
}

// censusRoles are the roles walked; "" is anonymous.
var censusRoles = []string{"analyst", "paris", "sud", "auditor", "admin", ""}

// knowledge is what the census knows of the store: every live target and
// the target of every address.
type knowledge struct {
	targets map[string]bool
	byIP    map[string]string
}

var (
	targetIDRE = regexp.MustCompile(`T-[0-9]{6,}-[0-9]{2}|T-[0-9A-Z]{1,13}`)
	addrRE     = regexp.MustCompile(`127\.\d{1,3}\.\d{1,3}\.\d{1,3}`)
)

func learnStore(t *testing.T, e *env) knowledge {
	t.Helper()
	k := knowledge{targets: map[string]bool{}, byIP: map[string]string{}}
	list, _, err := e.Back.Targets(context.Background(), analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		k.targets[s.ID] = true
		d, err := e.Back.Target(context.Background(), s.ID, analysis.AllAgencies)
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range d.Endpoints {
			k.byIP[ep.IP.String()] = s.ID
		}
	}
	return k
}

// shown returns the targets a body shows, by id or by address, leaving out
// those the request itself named (a page repeats its path and query).
func (k knowledge) shown(body, asked string) (ids, ips []string) {
	echo := map[string]bool{}
	for _, m := range append(targetIDRE.FindAllString(asked, -1), addrRE.FindAllString(asked, -1)...) {
		echo[m] = true
	}
	for _, m := range targetIDRE.FindAllString(body, -1) {
		if k.targets[m] && !echo[m] && !slices.Contains(ids, m) {
			ids = append(ids, m)
		}
	}
	for _, m := range addrRE.FindAllString(body, -1) {
		if k.byIP[m] != "" && !echo[m] && !slices.Contains(ips, m) {
			ips = append(ips, m)
		}
	}
	return ids, ips
}

func scopeOfRole(role string) analysis.Scope {
	switch role {
	case "analyst":
		return analysis.AllAgencies
	case "paris":
		return analysis.Scope{Agencies: []string{agencyParis}}
	case "sud":
		return analysis.Scope{Agencies: []string{agencySud}}
	}
	return analysis.Scope{}
}

func lastSeq(t *testing.T, e *env) int64 {
	t.Helper()
	var last int64
	if err := e.Back.AuditRecords(context.Background(), audit.Filter{Desc: true, Limit: 1}, func(r audit.Record) error {
		last = r.Seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return last
}

// trailSince is the text of the records actor wrote after seq.
func trailSince(t *testing.T, e *env, actor string, seq int64) (string, []audit.Record) {
	t.Helper()
	var b strings.Builder
	var recs []audit.Record
	if err := e.Back.AuditRecords(context.Background(), audit.Filter{AfterSeq: seq}, func(r audit.Record) error {
		if r.Actor == actor {
			recs = append(recs, r)
			fmt.Fprintf(&b, "%s %s %s %s\n", r.Action, r.Object, r.Purpose, r.Detail)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String(), recs
}

func TestRouteCensus(t *testing.T) {
	// Single sign-on on: its routes are registered, and walked.
	issuer := discoveryOnly(t)
	oidc := func(d *Deps) {
		d.OIDC = &access.OIDCConfig{Issuer: issuer, ClientID: "vigil", RedirectURL: "http://127.0.0.1/login/oidc/callback"}
	}
	t.Run("sqlite", func(t *testing.T) { routeCensus(t, newEnvDeps(t, "", 3000, nil, oidc)) })
	// The same census over the PostgreSQL store (VIGIL_TEST_POSTGRES), in
	// a schema of its own made afresh.
	t.Run("postgres", func(t *testing.T) { routeCensus(t, newTestPGEnv(t, "web_census", 3000, oidc)) })
}

func routeCensus(t *testing.T, e *env) {
	k := learnStore(t, e)
	epA, _ := targetEndpoint(t, e, e.TargetA)
	epB, fileB := targetEndpoint(t, e, e.TargetB)
	fill := strings.NewReplacer("{A}", e.TargetA, "{B}", e.TargetB, "{EPA}", epA.String(), "{EPB}", epB.String(),
		"{IPB}", epB.Addr().String(), "{HB}", fileB.Hex)

	// Every registered route is in the census, and the census names no
	// route that is gone.
	routes := e.App.Routes()
	for _, r := range routes {
		if _, ok := census[r]; !ok {
			t.Errorf("route %q is not in the census: add how to ask it (census_test.go)", r)
		}
	}
	for r := range census {
		if !slices.Contains(routes, r) {
			t.Errorf("the census names %q, which is no longer registered", r)
		}
	}
	// The logout route goes last.
	order := slices.Clone(routes)
	sort.SliceStable(order, func(i, j int) bool { return order[j] == "POST /logout" && order[i] != "POST /logout" })

	for _, role := range censusRoles {
		name := role
		if name == "" {
			name = "anonymous"
		}
		t.Run(name, func(t *testing.T) {
			b := newBrowser(t, e)
			if role != "" {
				b.login(role)
			}
			scope := scopeOfRole(role)
			seen := 0 // targets and addresses checked
			defer func() {
				if !scope.Empty() && seen < 20 {
					t.Errorf("the census saw only %d targets and addresses as %s: it checks nothing", seen, name)
				}
			}()
			for _, pattern := range order {
				for _, rq := range census[pattern] {
					path := fill.Replace(rq.path)
					if rq.kind == "stream" {
						censusStream(t, e, b, role, name, k, scope, epA, epB)
						continue
					}
					var form url.Values
					if rq.form != nil || rq.method == "POST" {
						b.get("/targets") // the session's CSRF token
						form = url.Values{"csrf_token": {b.csrf}}
						for f, vs := range rq.form {
							for _, v := range vs {
								form.Add(f, fill.Replace(v))
							}
						}
					}
					before := lastSeq(t, e)
					code, body, _ := b.do(rq.method, path, form)
					asked := path + " " + form.Encode()
					ids, ips := k.shown(body, asked+" "+mustUnescape(asked))
					trail, recs := trailSince(t, e, name, before)
					where := fmt.Sprintf("%s %s as %s (%d)", rq.method, path, name, code)
					if role == "" && len(ids)+len(ips) > 0 {
						t.Errorf("%s: an anonymous request was shown targets %v, addresses %v", where, ids, ips)
						continue
					}
					switch rq.kind {
					case "trail":
						if code == http.StatusOK && !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Action == audit.ActionReadAudit }) {
							t.Errorf("%s: the audit trail was read without a record", where)
						}
						continue
					case "bulk":
						if len(ids)+len(ips) == 0 {
							continue
						}
						if !scope.All {
							t.Errorf("%s: a bulk export served a role without national scope", where)
						}
						if !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Action == audit.ActionExport && r.Purpose != "" }) {
							t.Errorf("%s: a bulk export without an export record stating its purpose", where)
						}
						continue
					}
					seen += len(ids) + len(ips)
					vis := visibleTo(t, e, scope, append(slices.Clone(ids), ownersOf(k, ips)...))
					for _, id := range ids {
						if !vis[id] {
							t.Errorf("%s: shows target %s, outside the role's scope", where, id)
						} else if !strings.Contains(trail, id) {
							t.Errorf("%s: shows target %s and no audit record names it", where, id)
						}
					}
					for _, ip := range ips {
						if !vis[k.byIP[ip]] {
							t.Errorf("%s: shows address %s of target %s, outside the role's scope", where, ip, k.byIP[ip])
						} else if !strings.Contains(trail, ip) {
							t.Errorf("%s: shows address %s (target %s) and no audit record names it", where, ip, k.byIP[ip])
						}
					}
				}
			}
		})
	}
}

func mustUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

func ownersOf(k knowledge, ips []string) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, k.byIP[ip])
	}
	return out
}

func visibleTo(t *testing.T, e *env, scope analysis.Scope, ids []string) map[string]bool {
	t.Helper()
	vis, err := e.Back.VisibleTargets(context.Background(), scope, ids)
	if err != nil {
		t.Fatal(err)
	}
	return vis
}

// censusStream walks the live feed as a role: events of A's and B's
// targets, one of an address no target owns yet, and an alert are
// published; what arrives must be the role's, and named by a delivery
// record written before it.
func censusStream(t *testing.T, e *env, b *client, role, name string, k knowledge, scope analysis.Scope, epA, epB netip.AddrPort) {
	t.Helper()
	where := "GET /api/v1/events as " + name
	if role == "" {
		req, _ := http.NewRequest("GET", e.URL+"/api/v1/events", nil)
		c := &http.Client{Jar: b.c.Jar, Timeout: 5 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %d %.100s, want 401", where, resp.StatusCode, body)
		}
		return
	}
	before := lastSeq(t, e)
	s := openStream(t, e, &http.Client{Jar: b.c.Jar}, nil)
	// A role with no agency is offered nothing: a national stream beside
	// it says when the hub has decided the batch for every subscriber.
	var witness *stream
	if !scope.All && len(scope.Agencies) == 0 {
		witness = openStream(t, e, nil, bearer(e.Token["analyst"]))
	}
	_, fA := targetEndpoint(t, e, e.TargetA)
	_, fB := targetEndpoint(t, e, e.TargetB)
	loose := netip.AddrPortFrom(netip.MustParseAddr("127.250.0.1"), 6881)
	e.App.Publish([]observe.Observation{liveObs(epA, fA, agencyParis), liveObs(epB, fB, agencySud), liveObs(loose, fA, agencyParis)})
	e.App.Alert(analysis.Alert{Time: time.Now(), Message: "census alert"})
	// Then an event of an address no target owns, routed to an agency of
	// the role: once its stream delivers it, everything published before
	// it has been decided for this stream.
	marker := netip.AddrPortFrom(netip.MustParseAddr("127.250.0.2"), 6881)
	switch {
	case witness != nil:
		e.App.Publish([]observe.Observation{liveObs(marker, fA, agencyParis)})
		witness.waitFor(t, marker.String(), 10*time.Second)
	case scope.All:
		e.App.Publish([]observe.Observation{liveObs(marker, fA, agencyParis)})
		s.waitFor(t, marker.String(), 10*time.Second)
	default:
		e.App.Publish([]observe.Observation{liveObs(marker, fA, scope.Agencies[0])})
		s.waitFor(t, marker.String(), 10*time.Second)
	}
	s.cancel()
	<-s.closed
	got := strings.Join(s.all(), "\n")
	ids, ips := k.shown(got, "")
	trail, _ := trailSince(t, e, name, before)
	vis := visibleTo(t, e, scope, append(slices.Clone(ids), ownersOf(k, ips)...))
	for _, id := range ids {
		if !vis[id] {
			t.Errorf("%s: delivered target %s, outside the role's scope", where, id)
		} else if !strings.Contains(trail, id) {
			t.Errorf("%s: delivered target %s and no record names it", where, id)
		}
	}
	for _, ip := range ips {
		if !vis[k.byIP[ip]] {
			t.Errorf("%s: delivered address %s of target %s, outside the role's scope", where, ip, k.byIP[ip])
		} else if !strings.Contains(trail, ip) {
			t.Errorf("%s: delivered address %s and no record names it", where, ip)
		}
	}
	if strings.Contains(got, loose.String()) && !(scope.All || slices.Contains(scope.Agencies, agencyParis)) {
		t.Errorf("%s: delivered an unattributed event routed to %s", where, agencyParis)
	}
	if strings.Contains(got, "census alert") && !scope.All {
		t.Errorf("%s: delivered an alert to a role without national scope", where)
	}
	// Each role in scope of A's or B's endpoint receives its event. (By
	// address: a fresh observation belongs to the generation of its
	// IP:port in effect now, which may be another target of the same
	// agency than the one the endpoint was taken from.)
	want := map[string][]netip.AddrPort{"analyst": {epA, epB}, "paris": {epA}, "sud": {epB}}[role]
	for _, ep := range want {
		if !strings.Contains(got, ep.String()) {
			t.Errorf("%s: the event of %s was not delivered (got %s)", where, ep, got)
		}
	}
}
