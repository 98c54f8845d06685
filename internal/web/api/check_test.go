package api

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

// checkT is the time the check fixture's sightings are around.
var checkT = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

type checkFixture struct {
	fixture
	obs   []observe.Observation
	svc   *access.Service
	mu    sync.Mutex
	clock time.Time
}

func (f *checkFixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *checkFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

// newCheckFixture stores sightings of a few addresses, first- and
// second-hand, and makes a platform user, an analyst and an investigator,
// each with a token.
func newCheckFixture(t *testing.T, cc CheckConfig, opts ...func(*Config)) *checkFixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	st, err := sqlite.Open(ctx, path, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := rand.New(rand.NewPCG(7, 7))
	sight := func(i int, ep string, at time.Duration, method string, level observe.Level, agency string, marks ...string) observe.Observation {
		o := storetest.Observation(r, checkT.Add(at), i)
		ap := netip.MustParseAddrPort(ep)
		o.Method, o.Marks = method, marks
		o.Endpoint = observe.Endpoint{IP: ap.Addr(), Port: ap.Port(), Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:6881")}
		o.Possession = observe.Possession{Level: level, PiecesHave: -1, PiecesTotal: -1}
		o.Jurisdiction = observe.Jurisdiction{Agency: agency, Rule: "test"}
		return o
	}
	f := &checkFixture{clock: checkT.Add(24 * time.Hour)}
	f.obs = []observe.Observation{
		// 127.20.0.1: on its port, complete; on another port, verified.
		sight(1, "127.20.0.1:51413", -10*time.Minute, observe.MethodPeerProbe, observe.Complete, "fr-a"),
		sight(2, "127.20.0.1:6000", 5*time.Minute, observe.MethodPeerProbe, observe.Verified, "fr-a"),
		// 127.20.0.2: only what others said of it, and a probe marked
		// third_party.
		sight(3, "127.20.0.2:6881", 0, observe.MethodTracker, observe.Announced, "fr-a"),
		sight(4, "127.20.0.2:6881", time.Minute, observe.MethodPEX, observe.Announced, "fr-a"),
		sight(5, "127.20.0.2:6881", 2*time.Minute, observe.MethodDHTGetPeers, observe.Announced, "fr-a"),
		sight(6, "127.20.0.2:6881", 3*time.Minute, observe.MethodPeerProbe, observe.Complete, "fr-a", observe.MarkThirdParty),
		// 127.20.0.3: three hours before.
		sight(7, "127.20.0.3:51413", -3*time.Hour, observe.MethodPeerProbe, observe.Partial, "fr-a"),
		// An IPv6 peer that announced itself to the DHT node, routed to B.
		sight(8, "[2001:db8::9]:4444", 20*time.Minute, observe.MethodDHTAnnounce, observe.Announced, "fr-b"),
		// A dual-stack socket's view of 127.20.0.4.
		sight(9, "[::ffff:127.20.0.4]:51413", 0, observe.MethodPeerProbe, observe.Acknowledged, ""),
		// 127.20.0.5: a probe whose peer named another info-hash (it
		// proves nothing of the item).
		sight(10, "127.20.0.5:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a", observe.MarkInfohashMismatch),
		// 127.20.0.6: a fellow sensor of the deployment (own addresses),
		// probed by a sensor that was not told of it.
		sight(11, "127.20.0.6:6881", 0, observe.MethodPeerProbe, observe.Complete, "fr-a"),
		// 127.20.0.7: a sensor whose clock was 50 minutes fast, measured;
		// 127.20.0.8: one whose clock was known only within 10 minutes;
		// 127.20.0.9: one whose clock was not measured.
		clocked(sight(12, "127.20.0.7:51413", 50*time.Minute, observe.MethodPeerProbe, observe.Complete, "fr-a"), true, 50*time.Minute, time.Millisecond),
		clocked(sight(13, "127.20.0.8:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a"), true, 0, 10*time.Minute),
		clocked(sight(14, "127.20.0.9:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a"), false, 0, 0),
		// 127.20.0.10 and 127.20.0.11: items the analysis quarantined
		// (TestCheckNeverSeesAQuarantinedItem holds and disables them).
		sight(15, "127.20.0.10:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a"),
		sight(16, "127.20.0.11:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a"),
		// 127.20.0.12: a sighting TestCheckAnswersOnlyWhatWasLogged edits
		// in the database.
		sight(17, "127.20.0.12:51413", 0, observe.MethodPeerProbe, observe.Acknowledged, "fr-a"),
		// 127.20.0.13: a probe ingest marked time_implausible (its time
		// was impossible when stored), at the time asked as it reads.
		sight(18, "127.20.0.13:51413", 0, observe.MethodPeerProbe, observe.Complete, "fr-a", observe.MarkTimeImplausible),
	}
	if err := st.InsertObservations(ctx, f.obs); err != nil {
		t.Fatal(err)
	}
	acfg := access.DefaultConfig()
	acfg.Argon2 = access.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	svc, err := access.New(st, &audit.Log{Store: st}, acfg)
	if err != nil {
		t.Fatal(err)
	}
	cli := access.CLIActor("test")
	for _, ag := range []access.Agency{{ID: "fr-a", Name: "Brigade A", Country: "FR", Address: "1 rue A\n75001 Paris"}, {ID: "fr-b", Name: "Brigade B", Country: "FR"}, {ID: "host", Name: "File host"}} {
		if err := svc.AddAgency(ctx, cli, ag); err != nil {
			t.Fatal(err)
		}
	}
	f.st, f.path, f.tokens = st, path, map[string]string{}
	users := []struct {
		name, agency string
		role         access.Role
		lang         access.Lang
	}{{"plat", "host", access.RolePlatform, access.LangEN}, {"plat-fr", "host", access.RolePlatform, access.LangFR},
		{"analyst", "fr-a", access.RoleAnalyst, access.LangEN}, {"inv-a", "fr-a", access.RoleInvestigator, access.LangEN}}
	for _, u := range users {
		if _, err := svc.AddUser(ctx, cli, access.User{Name: u.name, Agency: u.agency, Role: u.role, Lang: u.lang, TimeZone: "UTC"}, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
		tok, _, err := svc.CreateToken(ctx, cli, u.name, "test", time.Hour*1000)
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[u.name] = tok
	}
	f.svc = svc
	f.serve(t, cc, opts...)
	return f
}

// serve starts a server of the check over f's store (a new handler: a
// process that starts afresh).
func (f *checkFixture) serve(t *testing.T, cc CheckConfig, opts ...func(*Config)) {
	hc := Config{Targets: f.st, Observations: f.st, Retention: isp.DefaultRetention(),
		Trail: trail.New(f.svc.AuditLog(), nil), Now: f.now, Check: cc}
	for _, o := range opts {
		o(&hc)
	}
	f.srv = httptest.NewServer(f.svc.Wrap(Handler(hc), PlatformRoutes...))
	t.Cleanup(f.srv.Close)
}

// post sends body to POST /api/v1/check as user.
func (f *checkFixture) post(t *testing.T, user, ctype, body string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/check", strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
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

func checkBody(checks ...string) string {
	return `{"purpose": "ticket TS-4242", "checks": [` + strings.Join(checks, ",") + `]}`
}

func one(addr string, port int, at time.Time) string {
	if port == 0 {
		return fmt.Sprintf(`{"address": %q, "time": %q}`, addr, at.Format(time.RFC3339))
	}
	return fmt.Sprintf(`{"address": %q, "port": %d, "time": %q}`, addr, port, at.Format(time.RFC3339))
}

func (f *checkFixture) answer(t *testing.T, user string, checks ...string) CheckAnswer {
	t.Helper()
	code, body, _ := f.post(t, user, "application/json", checkBody(checks...))
	if code != http.StatusOK {
		t.Fatalf("check: %d %s", code, body)
	}
	var a CheckAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Results) != len(checks) {
		t.Fatalf("%d results for %d checks: %s", len(a.Results), len(checks), body)
	}
	f.mustNotLeak(t, body)
	return a
}

// mustNotLeak fails when an answer names a target, a hash, a file, a
// score or an address it was not asked about.
func (f *checkFixture) mustNotLeak(t *testing.T, body string) {
	t.Helper()
	for _, o := range f.obs {
		for _, s := range []string{o.Item.Hash.Hex(), o.ID, o.Transcript.Ref} {
			if strings.Contains(body, s) {
				t.Errorf("the answer names %q of a sighting: %s", s, body)
			}
		}
	}
	for _, s := range []string{`"T-`, "score", "6000", "127.20.0.2", "127.20.0.3", "hash", "file"} {
		if strings.Contains(body, s) && !strings.Contains(body, `"address":"`+s) {
			t.Errorf("the answer says %q: %s", s, body)
		}
	}
}

func TestCheckFindsAFirstHandSightingWithItsLevelAndPort(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat", one("127.20.0.1", 51413, checkT))
	got := a.Results[0]
	if !got.Seen || got.Match != MatchAddressPort || got.Level != "complete" || got.Method != observe.MethodPeerProbe || got.Warning != "" {
		t.Fatalf("127.20.0.1:51413 = %+v, want seen on address and port, complete (the sighting on its port), no warning", got)
	}
	if !strings.HasPrefix(got.Reference, "VC-") || got.ReportTo == nil || got.ReportTo.Agency != "fr-a" || got.ReportTo.Name != "Brigade A" || !strings.Contains(got.ReportTo.Address, "Paris") {
		t.Fatalf("reference and service = %q %+v, want an opaque reference and Brigade A with its address", got.Reference, got.ReportTo)
	}
	if a.Tolerance != "1h0m0s" || !strings.Contains(a.Note, "1h0m0s") {
		t.Fatalf("tolerance %q, note %q: want ±1 h, said", a.Tolerance, a.Note)
	}
}

func TestCheckWithoutPortIsAddressOnlyAndWarns(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat", one("127.20.0.1", 0, checkT), one("127.20.0.1", 7000, checkT))
	for i, got := range a.Results {
		// The best sighting of the address: verified, on port 6000.
		if !got.Seen || got.Match != MatchAddressOnly || got.Level != "verified" || !strings.Contains(got.Warning, "CGNAT") {
			t.Fatalf("check %d = %+v, want seen on the address only, verified, with the shared-address warning", i, got)
		}
	}
	if !strings.Contains(a.Results[0].Warning, "no port") || !strings.Contains(a.Results[1].Warning, "another port") {
		t.Fatalf("warnings %q / %q: want why the port did not match", a.Results[0].Warning, a.Results[1].Warning)
	}
	fr := f.answer(t, "plat-fr", one("127.20.0.1", 0, checkT))
	if !strings.Contains(fr.Results[0].Warning, "abonné") || !strings.Contains(fr.Note, "Vu\u202f:") {
		t.Fatalf("French user's warning %q, note %q: want French", fr.Results[0].Warning, fr.Note)
	}
}

func TestCheckSecondHandOnlyIsNotSeen(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat", one("127.20.0.2", 6881, checkT), one("127.20.0.2", 0, checkT))
	for i, got := range a.Results {
		if got.Seen || got.Level != "" || got.Reference != "" || got.ReportTo != nil {
			t.Fatalf("check %d of an address seen only second-hand = %+v, want not seen and nothing else", i, got)
		}
	}
}

// A sighting marked time_implausible is no contact at the time it reads:
// when its peer was seen is unknown, and a check is about a time.
func TestCheckNeverSeesAnImplausibleTime(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat", one("127.20.0.13", 51413, checkT), one("127.20.0.13", 0, checkT))
	for i, got := range a.Results {
		if got.Seen || got.Level != "" || got.Reference != "" || got.ReportTo != nil {
			t.Fatalf("check %d of an address seen only at an implausible time = %+v, want not seen and nothing else", i, got)
		}
	}
}

func clocked(o observe.Observation, known bool, offset, uncertainty time.Duration) observe.Observation {
	o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = known, offset, uncertainty, "ntp:127.0.0.1:123"
	if !known {
		o.ClockSource = "none"
	}
	return o
}

// The time of a sighting is the reference clock's: the sensor's time
// less its measured offset, and the whole of its uncertainty must lie
// within the tolerance; a sighting whose clock was not measured says so.
func TestCheckReadsTheSensorClockOffset(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat",
		// The fast sensor wrote checkT+50m for checkT.
		one("127.20.0.7", 51413, checkT.Add(time.Hour+45*time.Minute)), // 55 min from what it wrote, 1h45 from when
		one("127.20.0.7", 51413, checkT.Add(-55*time.Minute)),          // 1h45 from what it wrote, 55 min from when
		one("127.20.0.8", 51413, checkT.Add(55*time.Minute)),           // 55 min ± 10 min
		one("127.20.0.8", 51413, checkT.Add(45*time.Minute)),           // 45 min ± 10 min
		one("127.20.0.9", 51413, checkT))
	want := []bool{false, true, false, true, true}
	for i, got := range a.Results {
		if got.Seen != want[i] {
			t.Errorf("check %d (%s %s) = %+v, want seen %v", i, got.Address, got.Time, got, want[i])
		}
	}
	if w := a.Results[4].Warning; !strings.Contains(w, "clock was not measured") {
		t.Errorf("a sighting whose clock was not measured: warning %q, want it said", w)
	}
	if w := a.Results[3].Warning; strings.Contains(w, "clock") {
		t.Errorf("a sighting whose clock was measured: warning %q", w)
	}
}

// The answer rests on a sighting as the evidence log holds it: a row
// edited in the database afterwards (its address moved to another
// subscriber's) answers nothing, and the audit record
// names it.
func TestCheckAnswersOnlyWhatWasLogged(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	if got := f.answer(t, "plat", one("127.20.0.12", 51413, checkT)).Results[0]; !got.Seen || got.Level != "acknowledged" {
		t.Fatalf("before the edit: %+v, want seen, acknowledged", got)
	}
	raw, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`UPDATE observations SET ip = '127.20.0.13' WHERE ip = '127.20.0.12'`); err != nil {
		t.Fatal(err)
	}
	if got := f.answer(t, "plat", one("127.20.0.13", 51413, checkT)).Results[0]; got.Seen {
		t.Fatalf("an edited row: %+v, want not seen", got)
	}
	if !f.audited(t, "plat", audit.ActionPlatformCheck, "") {
		t.Fatal("no record of the check")
	}
	var d string
	if err := f.st.AuditRecords(context.Background(), audit.Filter{Actor: "plat", Action: audit.ActionPlatformCheck, Desc: true, Limit: 1}, func(r audit.Record) error {
		d = string(r.Detail)
		return nil
	}); err != nil || !strings.Contains(d, "changed_after_logging") || !strings.Contains(d, f.obs[16].ID) {
		t.Fatalf("the record %s (%v) does not name the changed row %s", d, err, f.obs[16].ID)
	}
}

// A sighting older than the observations' retention never answers
// "seen", though the purge has not run yet (or a legal hold keeps it for
// a case): the platform is told only what the service keeps.
func TestCheckNeverSeesBeyondRetention(t *testing.T) {
	// The fixture's clock is a day after checkT: a day's retention keeps
	// what is after checkT.
	f := newCheckFixture(t, CheckConfig{Retention: retention.Period{Days: 1}})
	a := f.answer(t, "plat", one("127.20.0.3", 51413, checkT.Add(-3*time.Hour)), one("2001:db8::9", 4444, checkT))
	if got := a.Results[0]; got.Seen {
		t.Errorf("a sighting older than retention: %+v, want not seen", got)
	}
	if got := a.Results[1]; !got.Seen || got.Match != MatchAddressPort {
		t.Errorf("a sighting within retention: %+v, want seen on its port", got)
	}
}

// A sighting of an item the analysis holds for review (a burst of peers,
// as a benign file wrongly listed gives) or disabled as benign is kept
// out of every score: the check never answers it "seen" either. A
// released one counts again.
func TestCheckNeverSeesAQuarantinedItem(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	ask := []string{one("127.20.0.10", 51413, checkT), one("127.20.0.11", 51413, checkT)}
	for i, got := range f.answer(t, "plat", ask...).Results {
		if !got.Seen {
			t.Fatalf("check %d before any quarantine = %+v, want seen", i, got)
		}
	}
	raw, err := sql.Open("sqlite", "file:"+f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	quarantine := func(o observe.Observation, state string) {
		t.Helper()
		if _, err := raw.Exec(`INSERT INTO quarantine (kind, hash, state, detected_ns, peers, baseline, reason) VALUES (?, ?, ?, ?, 40, 1.5, 'burst')
			ON CONFLICT (kind, hash) DO UPDATE SET state = excluded.state`,
			o.Item.Hash.Kind().String(), o.Item.Hash.Bytes(), state, checkT.UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	quarantine(f.obs[14], "held")
	quarantine(f.obs[15], "disabled")
	for i, got := range f.answer(t, "plat", ask...).Results {
		if got.Seen {
			t.Errorf("check %d of a quarantined item = %+v, want not seen", i, got)
		}
	}
	quarantine(f.obs[14], "released")
	if got := f.answer(t, "plat", ask...).Results; !got[0].Seen || got[1].Seen {
		t.Fatalf("after the release of the first: %+v, want it seen again and not the disabled one", got)
	}
}

// A sighting that proves nothing of a platform's user is never "seen":
// one of the deployment's own addresses (a fellow sensor, which the
// analysis makes no target of), and a probe whose peer named another
// info-hash than the one asked (the exchange proves nothing of the item).
func TestCheckNeverSeesAFellowSensorNorAnotherItem(t *testing.T) {
	set, err := own.Parse("own.txt", []byte("127.20.0.6\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := newCheckFixture(t, CheckConfig{}, func(c *Config) { c.Own = set })
	a := f.answer(t, "plat", one("127.20.0.6", 6881, checkT), one("127.20.0.6", 0, checkT), one("127.20.0.5", 51413, checkT))
	for i, got := range a.Results {
		if got.Seen || got.Level != "" || got.Reference != "" {
			t.Errorf("check %d (%s) = %+v, want not seen", i, got.Address, got)
		}
	}
}

func TestCheckOutsideTheToleranceIsNotSeen(t *testing.T) {
	// Four instants of one address: one more than the default bound.
	f := newCheckFixture(t, CheckConfig{InstantsPerAddress: 4})
	a := f.answer(t, "plat", one("127.20.0.3", 51413, checkT), one("127.20.0.3", 51413, checkT.Add(-3*time.Hour+59*time.Minute)),
		// (the sighting's clock is known within 250 µs: an hour and a
		// second after it is surely within ±1 h, an hour after it not)
		one("127.20.0.3", 51413, checkT.Add(-4*time.Hour-time.Second)), one("127.20.0.3", 51413, checkT.Add(-2*time.Hour-time.Second)))
	want := []bool{false, true, false, true}
	for i, got := range a.Results {
		if got.Seen != want[i] {
			t.Fatalf("check %d (%s) = %+v, want seen %v (sighting at %s, ±1 h)", i, got.Time, got, want[i], checkT.Add(-3*time.Hour))
		}
	}
	// Never seen, far in the past, in the future: the same answer.
	b := f.answer(t, "plat", one("127.99.0.1", 51413, checkT), one("127.20.0.1", 51413, checkT.AddDate(-40, 0, 0)), one("127.20.0.1", 51413, checkT.AddDate(100, 0, 0)))
	for i, got := range b.Results {
		raw, _ := json.Marshal(got)
		if got.Seen || strings.Count(string(raw), ":") != strings.Count(`{"address":"x","port":1,"time":"2026-11-20T10:00:00Z","seen":false}`, ":") {
			t.Fatalf("check %d = %s, want the one not-seen answer", i, raw)
		}
	}
}

func TestCheckIPv6AndMappedAddresses(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	a := f.answer(t, "plat", one("2001:DB8:0::9", 4444, checkT), one("127.20.0.4", 51413, checkT), one("::ffff:127.20.0.4", 51413, checkT))
	if got := a.Results[0]; !got.Seen || got.Address != "2001:db8::9" || got.Method != observe.MethodDHTAnnounce || got.Level != "announced" || got.ReportTo.Agency != "fr-b" {
		t.Fatalf("IPv6 = %+v, want seen, announced through the DHT, for fr-b", got)
	}
	for _, got := range a.Results[1:] {
		if !got.Seen || got.Address != "127.20.0.4" || got.Level != "acknowledged" || got.ReportTo == nil || got.ReportTo.Note == "" {
			t.Fatalf("IPv4 seen on a dual-stack socket = %+v, want seen, acknowledged, no service on record said", got)
		}
	}
}

func TestCheckIsAuditedBeforeTheAnswer(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	f.answer(t, "plat", one("127.20.0.1", 51413, checkT), one("127.99.0.1", 0, checkT))
	var recs []audit.Record
	if err := f.st.AuditRecords(context.Background(), audit.Filter{Actor: "plat", Action: audit.ActionPlatformCheck}, func(r audit.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Purpose != "ticket TS-4242" || recs[0].Role != "platform" {
		t.Fatalf("records %+v, want one naming the platform user and the purpose", recs)
	}
	d := string(recs[0].Detail)
	for _, s := range []string{"127.20.0.1", "51413", "127.99.0.1", checkT.Format(time.RFC3339), f.obs[0].ID, "VC-"} {
		if !strings.Contains(d, s) {
			t.Errorf("the record %s does not name %s", d, s)
		}
	}

	f.failAudit(t, audit.ActionPlatformCheck)
	code, body, _ := f.post(t, "plat", "application/json", checkBody(one("127.20.0.1", 51413, checkT)))
	if code < 500 || strings.Contains(body, "seen") || strings.Contains(body, "VC-") || strings.Contains(body, "fr-a") {
		t.Fatalf("with the trail failing: %d %s, want 5xx and nothing of the answer", code, body)
	}
}

func TestCheckIsForPlatformsOnly(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	for _, user := range []string{"analyst", "inv-a"} {
		code, body, _ := f.post(t, user, "application/json", checkBody(one("127.20.0.1", 51413, checkT)))
		if code != http.StatusForbidden || strings.Contains(body, "seen") {
			t.Errorf("%s: %d %s, want 403", user, code, body)
		}
		if !f.audited(t, user, audit.ActionDenied, "") {
			t.Errorf("%s's refused check is not in the trail", user)
		}
	}
	if code, _, _ := f.post(t, "", "application/json", checkBody(one("127.20.0.1", 51413, checkT))); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", code)
	}
}

// A platform token reaches no other route of the API.
func TestPlatformIsRefusedEveryOtherRoute(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{})
	for _, route := range Routes {
		method, path, _ := strings.Cut(route, " ")
		if route == "POST /api/v1/check" {
			continue
		}
		path = strings.NewReplacer("{id}", "T-1", "{job}", "0123456789abcdef").Replace(path)
		req, _ := http.NewRequest(method, f.srv.URL+path+"?purpose=PV+2026%2F1", nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens["plat"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s as a platform: %d %.200s, want 403", route, resp.StatusCode, b)
		}
	}
	if !f.audited(t, "plat", audit.ActionDenied, "GET /api/v1/whoami") {
		t.Error("a platform's refused request is not in the trail")
	}
}

func TestCheckRateLimits(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{PerMinute: 3, PerDay: 5, MaxChecks: 3, PlatformPerDay: 100})
	req := checkBody(one("127.99.0.1", 0, checkT))
	for i := range 3 {
		if code, body, _ := f.post(t, "plat", "application/json", req); code != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	code, body, h := f.post(t, "plat", "application/json", req)
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, "3 a minute") {
		t.Fatalf("a fourth request in a minute: %d %s (Retry-After %q), want 429 saying the bound", code, body, h.Get("Retry-After"))
	}
	if !f.audited(t, "plat", audit.ActionDenied, "check") {
		t.Fatal("the 429 is not in the trail as a refusal")
	}
	// Another platform user has its own count.
	if code, body, _ := f.post(t, "plat-fr", "application/json", req); code != http.StatusOK {
		t.Fatalf("another user: %d %s", code, body)
	}
	// A minute later: 3 checks used today, 2 left.
	f.advance(time.Minute + time.Second)
	three := checkBody(one("127.99.0.1", 0, checkT), one("127.99.0.2", 0, checkT), one("127.99.0.3", 0, checkT))
	code, body, _ = f.post(t, "plat", "application/json", three)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "at most 5 addresses in 24 hours (2 left)") {
		t.Fatalf("checks beyond the day's bound: %d %s, want 429", code, body)
	}
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(one("127.99.0.1", 0, checkT), one("127.99.0.2", 0, checkT))); code != http.StatusOK {
		t.Fatalf("the 2 checks left: %d %s", code, body)
	}
	f.advance(24 * time.Hour)
	if code, body, _ := f.post(t, "plat", "application/json", three); code != http.StatusOK {
		t.Fatalf("a day later: %d %s", code, body)
	}
}

// The day's bound holds across accounts of one platform and across a
// restart: a platform with several accounts gets no more checks than
// PlatformPerDay, and a new process (a new handler over the same store)
// counts the checks its trail already holds.
func TestCheckDayBoundIsPerPlatformAndSurvivesARestart(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{PerMinute: 100, PerDay: 4, PlatformPerDay: 6, MaxChecks: 3})
	three := checkBody(one("127.99.0.1", 0, checkT), one("127.99.0.2", 0, checkT), one("127.99.0.3", 0, checkT))
	for _, user := range []string{"plat", "plat-fr"} {
		if code, body, _ := f.post(t, user, "application/json", three); code != http.StatusOK {
			t.Fatalf("%s's 3 checks: %d %s", user, code, body)
		}
	}
	// Each account has 1 left of its own, but the platform none.
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(one("127.99.0.4", 0, checkT))); code != http.StatusTooManyRequests {
		t.Fatalf("a 7th check of the platform in a day: %d %s, want 429", code, body)
	}
	// A restart: a new handler over the same store and trail, with the
	// platform's bound raised. plat has 1 check left of its 4.
	f.serve(t, CheckConfig{PerMinute: 100, PerDay: 4, PlatformPerDay: 100, MaxChecks: 3})
	two := checkBody(one("127.99.0.4", 0, checkT), one("127.99.0.5", 0, checkT))
	if code, body, _ := f.post(t, "plat", "application/json", two); code != http.StatusTooManyRequests || !strings.Contains(body, "(1 left)") {
		t.Fatalf("2 checks after a restart, with 1 left of the day: %d %s, want 429 saying 1 left", code, body)
	}
	if code, body, _ := f.post(t, "plat", "application/json", checkBody(one("127.99.0.4", 0, checkT))); code != http.StatusOK {
		t.Fatalf("the check left after a restart: %d %s", code, body)
	}
}

func TestCheckRefusesWhatIsNotOneAddress(t *testing.T) {
	f := newCheckFixture(t, CheckConfig{MaxChecks: 3, MaxBody: 1024})
	t0 := checkT
	cases := []struct {
		name, ctype, body string
		code              int
		want              string
	}{
		{"prefix", "application/json", checkBody(one("127.20.0.0/24", 0, t0)), 400, "no prefix or range"},
		{"ipv6-prefix", "application/json", checkBody(one("2001:db8::/32", 0, t0)), 400, "no prefix or range"},
		{"range", "application/json", checkBody(one("127.20.0.1-127.20.0.9", 0, t0)), 400, "no prefix or range"},
		{"wildcard", "application/json", checkBody(one("127.20.0.*", 0, t0)), 400, "no prefix or range"},
		{"hostname", "application/json", checkBody(one("peer.example", 0, t0)), 400, "want one IPv4 or IPv6 address"},
		{"zone", "application/json", checkBody(one("fe80::1%eth0", 0, t0)), 400, "zone"},
		{"unspecified", "application/json", checkBody(one("0.0.0.0", 0, t0)), 400, "not the address of one host"},
		{"port-zero", "application/json", checkBody(`{"address": "127.20.0.1", "port": 0, "time": "2026-11-20T10:00:00Z"}`), 400, "leave it out"},
		{"port-high", "application/json", checkBody(one("127.20.0.1", 70000, t0)), 400, "want 1 to 65535"},
		{"bad-time", "application/json", checkBody(`{"address": "127.20.0.1", "time": "yesterday"}`), 400, "RFC 3339"},
		{"too-many", "application/json", checkBody(one("127.0.0.1", 0, t0), one("127.0.0.2", 0, t0), one("127.0.0.3", 0, t0), one("127.0.0.4", 0, t0)), 400, "4 asked, at most 3 a request"},
		{"none", "application/json", checkBody(), 400, "at least one"},
		{"no-purpose", "application/json", `{"checks": [` + one("127.20.0.1", 0, t0) + `]}`, 400, "purpose"},
		{"unknown-field", "application/json", `{"purpose": "ticket 1", "prefix": "127.0.0.0/8", "checks": []}`, 400, "unknown field"},
		{"two-values", "application/json", checkBody(one("127.20.0.1", 0, t0)) + `{}`, 400, "more than one JSON value"},
		{"too-large", "application/json", `{"purpose": "` + strings.Repeat("x", 2000) + `"}`, 413, "larger than 1024 bytes"},
		{"not-json", "text/plain", checkBody(one("127.20.0.1", 0, t0)), 415, "application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.advance(time.Minute) // under the per-minute bound
			code, body, _ := f.post(t, "plat", c.ctype, c.body)
			if code != c.code || !strings.Contains(body, c.want) || strings.Contains(body, `"seen"`) {
				t.Fatalf("%d %s, want %d saying %q", code, body, c.code, c.want)
			}
		})
	}
}

func FuzzParseCheckRequest(f *testing.F) {
	f.Add([]byte(checkBody(one("127.20.0.1", 51413, checkT))))
	f.Add([]byte(checkBody(one("2001:db8::9", 0, checkT), one("::ffff:1.2.3.4", 1, checkT))))
	f.Add([]byte(`{"purpose":"abc","checks":[{"address":"1.2.3.4/8","time":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		purpose, checks, err := parseCheckRequest(bytes.NewReader(b), 10)
		if err != nil {
			return
		}
		if purpose == "" || len(checks) == 0 || len(checks) > 10 {
			t.Fatalf("accepted %q: purpose %q, %d checks", b, purpose, len(checks))
		}
		for _, c := range checks {
			if !c.addr.IsValid() || c.addr.Zone() != "" || c.addr.Is4In6() || c.port < 0 || c.port > 65535 {
				t.Fatalf("accepted %q: check %+v", b, c)
			}
		}
	})
}
