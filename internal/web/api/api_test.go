package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

type fixture struct {
	srv    *httptest.Server
	st     *sqlite.Store
	path   string            // the store's file
	tokens map[string]string // user -> bearer token
	byAg   map[string]string // agency -> one of its target ids
}

// newFixture stores observations of two devices, one routed to agency A
// (Paris) and one to agency B (Lille), scores them, and makes an analyst,
// an investigator of each agency and an admin, each with a token.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := rand.New(rand.NewPCG(3, 4))
	at := time.Now().UTC().Add(-48 * time.Hour)
	var obs []observe.Observation
	devices := []struct {
		ip, agency, country string
	}{{"127.1.0.9", "fr-a", "FR"}, {"127.5.0.9", "fr-b", "FR"}}
	for d, dev := range devices {
		for i := range 6 {
			o := storetest.Observation(r, at.Add(time.Duration(d*100+i)*time.Minute), i)
			// A probe: the endpoint talked to the sensor, recorded with both
			// ends and a transcript digest (what an ISP row needs).
			o.Method, o.Marks = observe.MethodPeerProbe, nil
			o.Endpoint = observe.Endpoint{IP: netip.MustParseAddr(dev.ip), Port: 51413, Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:6881")}
			o.Transcript.SHA256 = bytes.Repeat([]byte{byte(i + 1)}, 32)
			o.Client.NodeID = nil
			o.Place = observe.Place{Country: dev.country, ASN: 64496 + uint32(d), Org: "Lab Telecom"}
			o.Jurisdiction = observe.Jurisdiction{Agency: dev.agency, Rule: "test"}
			o.Possession = observe.Possession{Level: observe.Complete, PiecesHave: 10, PiecesTotal: 10}
			obs = append(obs, o)
		}
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	acfg := access.DefaultConfig()
	acfg.Argon2 = access.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, err := access.New(st, &audit.Log{Store: st}, acfg)
	if err != nil {
		t.Fatal(err)
	}
	cli := access.CLIActor("test")
	f := &fixture{st: st, path: path, tokens: map[string]string{}, byAg: map[string]string{}}
	for _, ag := range []string{"fr-a", "fr-b"} {
		if err := svc.AddAgency(ctx, cli, access.Agency{ID: ag, Name: ag, Country: "FR"}); err != nil {
			t.Fatal(err)
		}
	}
	users := []struct {
		name, agency string
		role         access.Role
	}{{"analyst", "fr-a", access.RoleAnalyst}, {"inv-a", "fr-a", access.RoleInvestigator}, {"inv-b", "fr-b", access.RoleInvestigator}, {"admin", "fr-a", access.RoleAdmin}}
	for _, u := range users {
		if _, err := svc.AddUser(ctx, cli, access.User{Name: u.name, Agency: u.agency, Role: u.role, Lang: access.LangEN, TimeZone: "UTC"}, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		tok, _, err := svc.CreateToken(ctx, cli, u.name, "test", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[u.name] = tok
	}
	list, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(list) != 2 {
		t.Fatalf("fixture targets: %v %d", err, len(list))
	}
	for _, tg := range list {
		f.byAg[tg.Jurisdiction] = tg.ID
	}
	f.srv = httptest.NewServer(svc.Wrap(Handler(Config{Targets: st, Observations: st, Retention: isp.DefaultRetention(), Trail: trail.New(svc.AuditLog(), nil)})))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, user, path string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+f.tokens[user])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// failAudit makes every append of one of actions fail in the store
// itself (a trigger), as a full disk would.
func (f *fixture) failAudit(t *testing.T, actions ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	in := "'" + strings.Join(actions, "','") + "'"
	if _, err := db.Exec(`CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit WHEN NEW.action IN (` + in + `)
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) audited(t *testing.T, actor, action, object string) bool {
	t.Helper()
	found := false
	err := f.st.AuditRecords(context.Background(), audit.Filter{Actor: actor, Action: action}, func(r audit.Record) error {
		if object == "" || r.Object == object {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestNeedToKnowInTheQuery(t *testing.T) {
	f := newFixture(t)
	a, b := f.byAg["fr-a"], f.byAg["fr-b"]
	cases := []struct {
		user string
		want []string
	}{{"analyst", []string{a, b}}, {"inv-a", []string{a}}, {"inv-b", []string{b}}}
	for _, c := range cases {
		code, body, _ := f.get(t, c.user, "/api/v1/targets")
		if code != 200 {
			t.Fatalf("%s: %d %s", c.user, code, body)
		}
		var l TargetList
		if err := json.Unmarshal([]byte(body), &l); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, tg := range l.Targets {
			got = append(got, tg.ID)
			if len(tg.Levels) == 0 {
				t.Errorf("%s: target %s listed without its files' levels", c.user, tg.ID)
			}
		}
		if l.Total != len(c.want) || len(got) != len(c.want) {
			t.Errorf("%s sees %v (total %d), want %v", c.user, got, l.Total, c.want)
		}
		for _, id := range got {
			if !contains(c.want, id) {
				t.Errorf("%s sees %s, outside its scope", c.user, id)
			}
		}
		if !f.audited(t, c.user, audit.ActionListTargets, "") {
			t.Errorf("%s: list not audited", c.user)
		}
	}
	// By URL: another agency's target is 404, like a missing one, and the
	// attempt is audited.
	code, _, _ := f.get(t, "inv-a", "/api/v1/targets/"+b)
	missing, _, _ := f.get(t, "inv-a", "/api/v1/targets/T-ZZZZ")
	if code != 404 || missing != 404 {
		t.Fatalf("inv-a GET B's target: %d, missing target: %d; want 404 for both", code, missing)
	}
	if !f.audited(t, "inv-a", audit.ActionDenied, "target:"+b) {
		t.Error("the refused read of another agency's target was not audited")
	}
	code, body, _ := f.get(t, "inv-b", "/api/v1/targets/"+b)
	if code != 200 || !strings.Contains(body, `"timeline"`) || !strings.Contains(body, "127.5.0.9") {
		t.Fatalf("inv-b GET own target: %d %s", code, body)
	}
	if !f.audited(t, "inv-b", audit.ActionViewTarget, "target:"+b) {
		t.Error("view not audited")
	}
	// The admin runs the system but sees no target; no token, no answer.
	if code, _, _ := f.get(t, "admin", "/api/v1/targets"); code != 403 {
		t.Errorf("admin listing targets: %d, want 403", code)
	}
	if code, _, _ := f.get(t, "", "/api/v1/targets"); code != 401 {
		t.Errorf("anonymous: %d, want 401", code)
	}
	// Raw observations are for a national scope only.
	if code, _, _ := f.get(t, "inv-a", "/api/v1/observations"); code != 403 {
		t.Errorf("investigator reading raw observations: %d, want 403", code)
	}
	// A bulk export needs the case number it is made for.
	if code, body, _ := f.get(t, "analyst", "/api/v1/observations"); code != 400 || strings.Contains(body, `"ip"`) {
		t.Errorf("analyst reading raw observations without a case number: %d", code)
	}
	if code, body, _ := f.get(t, "analyst", "/api/v1/observations?purpose=PV+2026%2F00123"); code != 200 || strings.Count(body, "\n") != 12 {
		t.Errorf("analyst reading raw observations: %d, %d lines", code, strings.Count(body, "\n"))
	}
	if !f.audited(t, "analyst", audit.ActionExport, "observations") {
		t.Error("the bulk export is not audited")
	}
}

func TestISPRequestNeedsAPurposeAndIsAudited(t *testing.T) {
	f := newFixture(t)
	a, b := f.byAg["fr-a"], f.byAg["fr-b"]
	if code, body, _ := f.get(t, "inv-a", "/api/v1/targets/"+a+"/isp-request?format=csv"); code != 400 || !strings.Contains(body, "purpose") {
		t.Fatalf("export without a purpose: %d %s", code, body)
	}
	if code, _, _ := f.get(t, "inv-a", "/api/v1/targets/"+b+"/isp-request?format=csv&purpose=2026-42"); code != 404 {
		t.Fatalf("export of another agency's target: %d, want 404", code)
	}
	for _, format := range []string{"csv", "json", "pdf"} {
		code, body, h := f.get(t, "inv-a", "/api/v1/targets/"+a+"/isp-request?format="+format+"&purpose=2026-42")
		if code != 200 || !strings.Contains(h.Get("Content-Disposition"), "attachment") {
			t.Fatalf("%s: %d %v", format, code, h)
		}
		if format == "csv" && (!strings.Contains(body, "127.1.0.9") || !strings.Contains(body, "51413")) {
			t.Errorf("CSV lacks the endpoint and port:\n%s", body)
		}
		if format == "pdf" && !strings.HasPrefix(body, "%PDF-") {
			t.Errorf("not a PDF")
		}
	}
	var purposes []string
	_ = f.st.AuditRecords(context.Background(), audit.Filter{Actor: "inv-a", Action: audit.ActionExport}, func(r audit.Record) error {
		purposes = append(purposes, r.Purpose)
		return nil
	})
	if len(purposes) != 3 || purposes[0] != "2026-42" {
		t.Errorf("exports audited with purposes %v, want 3 × 2026-42", purposes)
	}
}

func TestParseQueryNamesTheBadParameter(t *testing.T) {
	for q, want := range map[string]string{
		"limit=0": "limit", "limit=x": "limit", "level=owned": "level", "vpn=maybe": "vpn",
		"since=yesterday": "since", "sort=name": "sort", "min_score=high": "min_score",
	} {
		r := httptest.NewRequest("GET", "/api/v1/targets?"+q, nil)
		if _, err := ParseQuery(r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error naming %s", q, err, want)
		}
	}
	r := httptest.NewRequest("GET", "/api/v1/targets?limit=10&offset=20&level=complete&vpn=false&sort=last_seen", nil)
	q, err := ParseQuery(r)
	if err != nil || q.Limit != 10 || q.Offset != 20 || q.MinLevel != observe.Complete || q.VPN == nil || *q.VPN || q.Sort != "last_seen" {
		t.Errorf("parsed %+v, %v", q, err)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// GET /api/v1/observations was served by two handlers (internal/api's and
// internal/web's) that scoped and audited it differently; the one kept is
// the API's (JSON errors, the role check of the access layer), with the
// stricter audit of the other: a refusal is recorded whatever its reason,
// and one whose record cannot be written answers 503. A bulk export is
// for a national scope only, whatever agency the rows were routed to,
// with a case number; since bounds it.
func TestObservationsExportIsNationalAndEveryRefusalIsAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var all []observe.Observation
	if err := f.st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		all = append(all, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	since := all[len(all)/2].Time
	sinceQ := "since=" + url.QueryEscape(since.Format(time.RFC3339Nano))

	if code, _, _ := f.get(t, "", "/api/v1/observations?"+sinceQ+"&purpose=PV+2026%2F1"); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code, body, _ := f.get(t, "inv-a", "/api/v1/observations?"+sinceQ+"&purpose=PV+2026%2F1"); code != http.StatusForbidden ||
		strings.Contains(body, all[len(all)-1].ID) || !strings.Contains(body, `"error"`) {
		t.Fatalf("an investigator's bulk export: %d %s", code, body)
	}
	if code, body, _ := f.get(t, "analyst", "/api/v1/observations?"+sinceQ); code != http.StatusBadRequest || strings.Contains(body, all[len(all)-1].ID) {
		t.Fatalf("a bulk export without a case number: %d", code)
	}
	code, body, h := f.get(t, "analyst", "/api/v1/observations?"+sinceQ+"&purpose=PV+2026%2F1")
	if code != http.StatusOK || h.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %d %s", code, h.Get("Content-Type"))
	}
	dec := observe.NewDecoder(strings.NewReader(body))
	n := 0
	for {
		var got observe.Observation
		if err := dec.Decode(&got); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("export body: %v", err)
		}
		if got.Time.Before(since) {
			t.Fatalf("exported %s of %v, before since %v", got.ID, got.Time, since)
		}
		n++
	}
	if want := len(all) - len(all)/2; n != want {
		t.Fatalf("exported %d observations since %v, want %d", n, since, want)
	}
	if code, _, _ := f.get(t, "analyst", "/api/v1/observations?since=yesterday&purpose=PV+2026%2F1"); code != http.StatusBadRequest {
		t.Fatalf("bad since: %d", code)
	}
	var exports []audit.Record
	_ = f.st.AuditRecords(ctx, audit.Filter{Actor: "analyst", Action: audit.ActionExport}, func(r audit.Record) error {
		exports = append(exports, r)
		return nil
	})
	if len(exports) != 1 || exports[0].Purpose != "PV 2026/1" || exports[0].Object != "observations" {
		t.Fatalf("exports audited: %+v", exports)
	}
	// Both refusals are in the trail: the investigator's (internal/api
	// did not record it) and the one without a case number.
	for _, actor := range []string{"inv-a", "analyst"} {
		if !f.audited(t, actor, audit.ActionDenied, "observations") {
			t.Errorf("%s's refused export is not audited", actor)
		}
	}
}

// A refusal whose record cannot be written is not answered as a refusal:
// the trail did not answer, so the answer is 503 (internal/api answered
// 403 and 400 without the record).
func TestObservationsRefusalWithoutItsRecordIs503(t *testing.T) {
	f := newFixture(t)
	f.failAudit(t, audit.ActionDenied)
	for _, c := range []struct{ user, path string }{
		{"inv-a", "/api/v1/observations?purpose=PV+2026%2F1"},
		{"analyst", "/api/v1/observations"},
	} {
		if code, body, _ := f.get(t, c.user, c.path); code != http.StatusServiceUnavailable || !strings.Contains(body, "audit trail") {
			t.Errorf("%s as %s with the trail failing: %d %s", c.path, c.user, code, body)
		}
	}
}

// TestTargetJSONSaysLinksAreInferences: the target page and the ISP
// request say that a device link is an inference, never an
// identification; a program reading the API's answer gets the same
// sentence beside the links, in both languages.
func TestTargetJSONSaysLinksAreInferences(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.get(t, "inv-a", "/api/v1/targets/"+f.byAg["fr-a"])
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var d struct {
		ID           string          `json:"id"`
		Links        json.RawMessage `json:"links"`
		LinksWarning isp.Note        `json:"links_warning"`
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	if d.ID != f.byAg["fr-a"] || d.LinksWarning.EN != isp.ForgeryWarningEN || d.LinksWarning.FR != isp.ForgeryWarningFR {
		t.Errorf("target %q: links_warning %+v", d.ID, d.LinksWarning)
	}
}
