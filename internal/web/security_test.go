package web

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Attacks on need to know and on the audit trail, against the real
// backend: each of these read data it must not at commit 8846f19.

// stream is an open live feed: the data lines it delivers, as they come.
type stream struct {
	mu     sync.Mutex
	data   []string
	at     []time.Time
	closed chan struct{} // closed when the server ends the stream
	cancel context.CancelFunc
}

// openStream opens GET /api/v1/events with the request prepared by auth
// (a bearer token or a browser's cookies) and waits until the hub has one
// more subscriber.
func openStream(t *testing.T, e *env, c *http.Client, auth func(*http.Request)) *stream {
	t.Helper()
	before := e.App.Hub().Len()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/api/v1/events", nil)
	if auth != nil {
		auth(req)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		resp.Body.Close()
		t.Fatalf("events: %d", resp.StatusCode)
	}
	s := &stream{closed: make(chan struct{}), cancel: cancel}
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
	})
	go func() {
		defer close(s.closed)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				s.mu.Lock()
				s.data = append(s.data, d)
				s.at = append(s.at, time.Now())
				s.mu.Unlock()
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); e.App.Hub().Len() <= before; {
		if time.Now().After(deadline) {
			t.Fatal("the live stream did not subscribe")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// since returns the data lines delivered at or after t.
func (s *stream) since(t time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for i, at := range s.at {
		if !at.Before(t) {
			out = append(out, s.data[i])
		}
	}
	return out
}

func (s *stream) all() []string { return s.since(time.Time{}) }

// waitFor waits until a delivered line contains want.
func (s *stream) waitFor(t *testing.T, want string, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, d := range s.all() {
			if strings.Contains(d, want) {
				return
			}
		}
	}
	t.Fatalf("no live event with %q within %v (got %v)", want, within, s.all())
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// liveObs is a fresh observation of endpoint ep, routed to agency as the
// rules route its address.
func liveObs(ep netip.AddrPort, item analysis.FileInfo, agency string) observe.Observation {
	now := time.Now().UTC()
	return observe.Observation{ID: observe.NewID(now), Sensor: observe.Sensor{ID: "bench-bittorrent", Version: "test"},
		Network: observe.NetBitTorrent, Method: observe.MethodPeerProbe, Time: now, ClockSource: "ntp:127.0.0.1",
		Item:         observe.Item{Hash: item.Hash, Matched: []observe.Match{{List: "lab-watchlist", Category: "1"}}},
		Endpoint:     observe.Endpoint{IP: ep.Addr(), Port: ep.Port(), Transport: "tcp"},
		Possession:   observe.Possession{Level: observe.Complete, PiecesHave: 64, PiecesTotal: 64},
		Place:        observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "75"}, City: "Paris", Lat: 48.85, Lon: 2.35},
		Jurisdiction: observe.Jurisdiction{Agency: agency, Rule: "fixture FR/75"}}
}

// targetEndpoint returns one endpoint of target id and one of its files:
// where it can, an endpoint whose IP:port a fresh observation would still
// place in the target (the generation in effect now, seen within the
// analysis's window), so that live observations published there are the
// target's. Generation numbers follow arrival, not time: an IP:port's
// highest generation may be days older than another target's.
func targetEndpoint(t *testing.T, e *env, id string) (netip.AddrPort, analysis.FileInfo) {
	t.Helper()
	ctx := context.Background()
	d, err := e.Back.Target(ctx, id, analysis.AllAgencies)
	if err != nil || len(d.Endpoints) == 0 || len(d.Files) == 0 {
		t.Fatalf("target %s: %v", id, err)
	}
	now := time.Now()
	for _, ep := range d.Endpoints {
		ap := netip.AddrPortFrom(ep.IP, ep.Port)
		owners, err := e.Back.EndpointTargetsAt(ctx, []netip.AddrPort{ap}, []time.Time{now}, 0)
		if err == nil && owners[0] == id && now.Sub(ep.LastSeen) < analysis.DefaultConfig().EndpointWindow {
			return ap, d.Files[0]
		}
	}
	return netip.AddrPortFrom(d.Endpoints[0].IP, d.Endpoints[0].Port), d.Files[0]
}

// publishUntil publishes a live observation of ep every 50 ms until stop
// is closed.
func publishUntil(e *env, o func() observe.Observation, stop <-chan struct{}) {
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				e.App.Publish([]observe.Observation{o()})
			}
		}
	}()
}

// Logging out ends the live feed within seconds, and nothing of a target
// is delivered once the logout has answered. (At 8846f19 the stream went
// on delivering.)
func TestLiveFeedEndsAtLogout(t *testing.T) {
	e := newEnv(t, "", 3000)
	b := newBrowser(t, e)
	b.login("paris")
	ep, file := targetEndpoint(t, e, e.TargetA)
	s := openStream(t, e, &http.Client{Jar: b.c.Jar}, nil)
	stop := make(chan struct{})
	defer close(stop)
	publishUntil(e, func() observe.Observation { return liveObs(ep, file, agencyParis) }, stop)
	s.waitFor(t, ep.String(), 5*time.Second)

	b.get("/targets") // the page's CSRF token
	code, _, _ := b.do("POST", "/logout", url.Values{"csrf_token": {b.csrf}})
	if code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	loggedOut := time.Now()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the live feed is still open 5 s after logout; %d events delivered since", len(s.since(loggedOut)))
	}
	if late := s.since(loggedOut); len(late) > 0 {
		t.Fatalf("%d events delivered after logout, e.g. %s", len(late), late[0])
	}
	// The subscription, what it delivered (before it was written) and
	// why it ended are in the trail.
	if len(records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionLiveSubscribe})) == 0 {
		t.Error("the subscription is not audited")
	}
	named := false
	for _, r := range records(t, e, audit.Filter{Actor: "paris", Action: audit.ActionLiveDeliver}) {
		named = named || (strings.Contains(string(r.Detail), e.TargetA) && strings.Contains(string(r.Detail), ep.String()))
	}
	if !named {
		t.Error("no delivery record names the target and endpoint delivered")
	}
	waitRecord(t, e, audit.Filter{Actor: "paris", Action: audit.ActionLiveEnd}, "session ended")
}

// A session that idles out or reaches its end ends its live feed: the
// stream alone does not keep it alive. (At 8846f19 the stream outlived it.)
func TestLiveFeedEndsWhenTheSessionExpires(t *testing.T) {
	e := newEnvWith(t, "", 3000, func(c *access.Config) {
		c.IdleTimeout = 1500 * time.Millisecond
		c.TouchEvery = 0
	})
	b := newBrowser(t, e)
	b.login("paris")
	ep, file := targetEndpoint(t, e, e.TargetA)
	s := openStream(t, e, &http.Client{Jar: b.c.Jar}, nil)
	stop := make(chan struct{})
	defer close(stop)
	publishUntil(e, func() observe.Observation { return liveObs(ep, file, agencyParis) }, stop)
	s.waitFor(t, ep.String(), 5*time.Second)
	opened := time.Now()
	select {
	case <-s.closed:
	case <-time.After(6 * time.Second):
		t.Fatalf("the live feed outlived its session's 1.5 s idle timeout by 6 s; %d events delivered", len(s.since(opened)))
	}
	if code, _ := b.get("/targets"); code != http.StatusSeeOther {
		t.Fatalf("the session still holds after the stream ended: %d", code)
	}
	waitRecord(t, e, audit.Filter{Actor: "paris", Action: audit.ActionLiveEnd}, "session ended")
}

// waitRecord waits for a record matching f whose detail contains want.
func waitRecord(t *testing.T, e *env, f audit.Filter, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, r := range records(t, e, f) {
			if strings.Contains(string(r.Detail), want) {
				return
			}
		}
	}
	t.Fatalf("no %s record of %s with %q", f.Action, f.Actor, want)
}

// Disabling a user ends their open live feeds (bearer token here) within
// seconds, with nothing delivered after.
func TestLiveFeedEndsWhenUserDisabled(t *testing.T) {
	e := newEnv(t, "", 3000)
	ep, file := targetEndpoint(t, e, e.TargetA)
	s := openStream(t, e, nil, bearer(e.Token["paris"]))
	stop := make(chan struct{})
	defer close(stop)
	publishUntil(e, func() observe.Observation { return liveObs(ep, file, agencyParis) }, stop)
	s.waitFor(t, ep.String(), 5*time.Second)
	if err := e.Access.DisableUser(context.Background(), access.CLIActor("test"), "paris", "left the service"); err != nil {
		t.Fatal(err)
	}
	disabled := time.Now()
	select {
	case <-s.closed:
	case <-time.After(5 * time.Second):
		t.Fatalf("the disabled user's live feed is still open after 5 s; %d events delivered since", len(s.since(disabled)))
	}
	if late := s.since(disabled); len(late) > 0 {
		t.Fatalf("%d events delivered to a disabled user, e.g. %s", len(late), late[0])
	}
	waitRecord(t, e, audit.Filter{Actor: "paris", Action: audit.ActionLiveEnd}, "session ended")
}

// After a hand-off (vigil target share T --agency B --assign) the old
// agency receives nothing more of the target, on the live feed or on the
// overview, and the new agency receives it; the overview's record names
// what it showed. (At 8846f19 agency A kept receiving live events and
// overview rows with the address, and agency B received nothing.)
func TestHandOffLeavesTheOldAgency(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { handOffLeavesTheOldAgency(t, newEnv(t, "", 3000)) })
	t.Run("postgres", func(t *testing.T) { handOffLeavesTheOldAgency(t, newTestPGEnv(t, "web_handoff", 3000, nil)) })
}

func handOffLeavesTheOldAgency(t *testing.T, e *env) {
	ctx := context.Background()
	ep, file := targetEndpoint(t, e, e.TargetA)
	eng := newTestEngine(t, ctx, e.Back)
	if err := eng.Assign(ctx, e.TargetA, agencySud, "cli:test", "hand-off agreed"); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if ag, _, err := e.Back.TargetAgencies(ctx, e.TargetA); err != nil || ag != agencySud {
		t.Fatalf("after the hand-off %s is routed to %s", e.TargetA, ag)
	}
	// New sightings of the target, routed to A by the rules (its address
	// is in Paris), stored and published as ingest does.
	fresh := []observe.Observation{liveObs(ep, file, agencyParis), liveObs(ep, file, agencyParis)}
	if err := e.Back.InsertObservations(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	a := openStream(t, e, nil, bearer(e.Token["paris"]))
	bs := openStream(t, e, nil, bearer(e.Token["sud"]))
	// Sightings until the new agency has one; then, for the old agency,
	// one it may see (an address no target owns, routed to it): once
	// that is delivered, every sighting published before it was decided.
	for deadline := time.Now().Add(5 * time.Second); !slices.ContainsFunc(bs.all(), func(d string) bool { return strings.Contains(d, ep.String()) }); {
		if time.Now().After(deadline) {
			t.Fatalf("the new agency received no live event of %s within 5 s (got %v)", ep, bs.all())
		}
		e.App.Publish([]observe.Observation{liveObs(ep, file, agencyParis)})
		time.Sleep(50 * time.Millisecond)
	}
	marker := netip.AddrPortFrom(netip.MustParseAddr("127.250.0.9"), 6881)
	e.App.Publish([]observe.Observation{liveObs(marker, file, agencyParis)})
	a.waitFor(t, marker.String(), 5*time.Second)
	for _, d := range a.all() {
		if strings.Contains(d, ep.String()) || strings.Contains(d, e.TargetA) {
			t.Fatalf("the old agency received a live event of the handed-off target: %s", d)
		}
	}
	var ev struct {
		Target string `json:"target"`
	}
	for _, d := range bs.all() {
		if strings.Contains(d, ep.String()) {
			if err := json.Unmarshal([]byte(d), &ev); err != nil || ev.Target != e.TargetA {
				t.Fatalf("the new agency's event %s does not name %s", d, e.TargetA)
			}
		}
	}

	pa := newBrowser(t, e)
	pa.login("paris")
	code, body := pa.get("/")
	if code != http.StatusOK {
		t.Fatalf("overview: %d", code)
	}
	if strings.Contains(body, ep.Addr().String()) || strings.Contains(body, e.TargetA) {
		t.Fatalf("the old agency's overview shows the handed-off target %s or its address %s", e.TargetA, ep.Addr())
	}
	if code, _ := pa.get("/targets/" + e.TargetA); code != http.StatusNotFound {
		t.Fatalf("the old agency reads the handed-off target: %d", code)
	}
	for _, q := range []string{e.TargetA, ep.String(), ep.Addr().String(), file.Hex} {
		if _, body := pa.get("/targets?q=" + url.QueryEscape(q)); slices.Contains(linkedTargets(body), e.TargetA) {
			t.Fatalf("the old agency's search %q finds the handed-off target", q)
		}
	}
	if _, body := pa.get("/targets?sort=last"); slices.Contains(linkedTargets(body), e.TargetA) {
		t.Fatal("the old agency's list shows the handed-off target")
	}
	for _, path := range []string{"/api/v1/targets/" + e.TargetA, "/api/v1/targets/" + e.TargetA + "/isp-request?format=csv&purpose=PV+2026%2F1"} {
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.Token["paris"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("the old agency's %s: %d", path, resp.StatusCode)
		}
	}
	pb := newBrowser(t, e)
	pb.login("sud")
	if code, body := pb.get("/targets/" + e.TargetA); code != http.StatusOK || !strings.Contains(body, ep.Addr().String()) {
		t.Fatalf("the new agency cannot read the handed-off target: %d", code)
	}
	_, body = pb.get("/")
	if !strings.Contains(body, ep.Addr().String()) || !strings.Contains(body, e.TargetA) {
		t.Fatalf("the new agency's overview lacks the handed-off target's new rows (%s at %s)", e.TargetA, ep)
	}
	recs := records(t, e, audit.Filter{Actor: "sud", Action: audit.ActionListTargets, Object: "overview"})
	if len(recs) == 0 || !strings.Contains(string(recs[len(recs)-1].Detail), e.TargetA) || !strings.Contains(string(recs[len(recs)-1].Detail), ep.String()) {
		t.Fatalf("the overview's record does not name the target and endpoint it showed: %+v", recs)
	}
}

// failAudit makes every append of one of actions fail in the store itself
// (a trigger), as a full disk would.
func failAudit(t *testing.T, e *env, actions ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.Path)
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

// When the audit trail cannot be written, no route serves target data: the
// API refused nothing at 8846f19 (it ignored the error).
func TestAuditFailureServesNoData(t *testing.T) {
	e := newEnv(t, "", 3000)
	ep, _ := targetEndpoint(t, e, e.TargetA)
	failAudit(t, e, audit.ActionListTargets, audit.ActionSearch, audit.ActionViewTarget, audit.ActionExport,
		audit.ActionLiveSubscribe, audit.ActionLiveDeliver, audit.ActionViewList)
	get := func(user, path string) (int, string) {
		req, _ := http.NewRequest("GET", e.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.Token[user])
		c := &http.Client{Timeout: 5 * time.Second} // a live stream that opens never ends by itself
		resp, err := c.Do(req)
		if err != nil {
			return 0, "no answer: " + err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return resp.StatusCode, string(b) + " (still streaming: " + err.Error() + ")"
		}
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ user, path string }{
		{"paris", "/api/v1/targets"},
		{"paris", "/api/v1/targets/" + e.TargetA},
		{"paris", "/api/v1/targets/" + e.TargetA + "/isp-request?format=csv&purpose=PV+2026%2F1"},
		{"analyst", "/api/v1/observations?purpose=PV+2026%2F1"},
		{"analyst", "/api/v1/targets?limit=1000"},
		{"paris", "/"},
		{"paris", "/targets"},
		{"paris", "/targets/" + e.TargetA},
		{"paris", "/api/v1/events"},
		{"analyst", "/lists"},
	} {
		code, body := get(c.user, c.path)
		body = strings.ReplaceAll(body, c.path, "") // the page may repeat the path it was asked at
		if code < 500 || strings.Contains(body, e.TargetA) || strings.Contains(body, ep.Addr().String()) || strings.Contains(body, "still streaming") {
			t.Errorf("%s as %s with the audit trail failing: %d, %d bytes (target named: %v)", c.path, c.user, code, len(body),
				strings.Contains(body, e.TargetA))
		}
	}
}

// The one audit helper (trail.Trail.Before), which the pages, the API and
// the live feed all pass before they write what they read, refuses when
// the audit store fails: each answers 503, in its own form, with nothing
// of the target in the body. Here every append fails (a trigger on every
// insert), as on a store whose disk is full.
func TestTheTrailRefusesWhenTheAuditStoreFails(t *testing.T) {
	e := newEnv(t, "", 3000)
	ep, _ := targetEndpoint(t, e, e.TargetA)
	db, err := sql.Open("sqlite", "file:"+e.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit
		BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, path string
		refusal    string // what says the trail refused
	}{
		{"a page", "/targets/" + e.TargetA, `id="error-message"`},
		{"an API read", "/api/v1/targets/" + e.TargetA, `{"error":"the audit trail did not answer; nothing is served without its record"}`},
		{"the live feed", "/api/v1/events", "the audit trail did not answer"},
	} {
		req, _ := http.NewRequest("GET", e.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+e.Token["paris"])
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req) // a stream that opens never ends by itself
		if err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Errorf("%s: still answering after %d bytes (%v)", c.what, len(b), err)
			continue
		}
		body := strings.ReplaceAll(string(b), c.path, "") // the page may repeat the path it was asked at
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, c.refusal) {
			t.Errorf("%s with the audit store failing: %d %.200q, want 503 with %q", c.what, resp.StatusCode, body, c.refusal)
		}
		if strings.Contains(body, e.TargetA) || strings.Contains(body, ep.Addr().String()) || strings.Contains(body, "data:") {
			t.Errorf("%s with the audit store failing served the target's data: %.300q", c.what, body)
		}
	}
}
