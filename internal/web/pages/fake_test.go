package pages

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

// This file holds the test doubles: a backend (targets, ISP, lists, audit)
// and an access layer (users, sessions, bearer tokens, CSRF). They stand at
// the boundary this package owns; the lead's adapters replace them with
// analysis, isp, access and audit.

const (
	agencyA = "dept-78" // Yvelines
	agencyB = "dept-13" // Bouches-du-Rhône
)

var testNow = time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)

// fakeBackend implements Targets, ISPRequests, Lists and Audit in memory.
type fakeBackend struct {
	mu        sync.Mutex
	targets   map[string]*TargetDetail
	audit     []AuditRecord
	failAudit bool
	lists     map[string][]ListVersion
	entries   map[string]map[int][]string // list -> version -> hashes
	importGo  chan struct{}               // if set, Import waits on it halfway
	recent    []ObservationRow            // more rows for the overview, by their Agency
}

func newFakeBackend() *fakeBackend {
	b := &fakeBackend{targets: map[string]*TargetDetail{}, lists: map[string][]ListVersion{}, entries: map[string]map[int][]string{}}
	mk := func(id, agency, sub, country string, lat, lon, score float64, lvl observe.Level, ip string, vpn bool, hours int) {
		last := testNow.Add(-time.Duration(hours) * time.Hour)
		ap := netip.MustParseAddrPort(ip)
		var obs []ObservationRow
		levels := []observe.Level{observe.Announced, observe.Acknowledged, lvl}
		for i, l := range levels {
			obs = append(obs, ObservationRow{ID: fmt.Sprintf("%s-o%d", id, i), Time: last.Add(-time.Duration(i) * time.Minute),
				Network: observe.NetBitTorrent, Method: []string{observe.MethodTracker, observe.MethodPeerProbe, observe.MethodPeerProbe}[i],
				FirstHand: i > 0,
				Level:     l, PiecesHave: -1, PiecesTotal: -1, Item: "btih:" + strings.Repeat(fmt.Sprintf("%x", i+1), 40),
				Lists: []observe.Match{{List: "lab-watchlist", Category: "1"}}, Endpoint: ap, Transport: "tcp",
				Client: "Transmission 3.00", Sensor: "demo-bittorrent", Country: country, Subdivision: sub, VPN: vpn, Agency: agency, Target: id})
		}
		obs[2].PiecesHave, obs[2].PiecesTotal = 12, 12
		obs[0].Marks = []string{observe.MarkThirdParty}
		obs[2].Marks = []string{observe.MarkNonPublicAddress, observe.MarkTranscriptCut}
		b.targets[id] = &TargetDetail{
			TargetSummary: TargetSummary{ID: id, Jurisdiction: agency, Score: score, Level: lvl, Files: 2, Endpoints: 1,
				Networks: []string{observe.NetBitTorrent}, Country: country, Subdivision: sub, VPN: vpn,
				FirstSeen: last.Add(-48 * time.Hour), LastSeen: last},
			Observations: obs, ObservationsTotal: len(obs),
			Places: []PlaceCount{{Key: sub, Country: country, Lat: lat, Lon: lon, Count: 3}},
			Addresses: []EndpointRow{{Addr: ap, Transport: "tcp", ASN: 64500, Org: "Lab Telecom", Country: country, Place: sub,
				VPN: vpn, Level: lvl, Count: 3, FirstSeen: last.Add(-48 * time.Hour), LastSeen: last}},
			Devices: []DeviceLink{{Device: "dev-" + id, Rule: "peer_id_session", Evidence: "-TR3000-…", Reason: "same DHT node id and listen port",
				Strength: "strong", Confidence: 0.7, Seen: 3}},
			FileRows: []FileRow{{Item: obs[2].Item, Name: "synthetic-" + id + ".bin", Lists: obs[2].Lists, Level: lvl, Count: 2, FirstSeen: obs[2].Time, LastSeen: obs[2].Time,
				At: []LevelAt{{Endpoint: ap.String(), Level: lvl, Marks: []string{observe.MarkMalformedBitfield}},
					{Endpoint: "127.0.9.9:6881", Level: observe.Announced, Marks: []string{observe.MarkThirdParty}}},
				Marks: []string{observe.MarkMalformedBitfield}, MarksComplete: true},
				{Item: "btih:" + strings.Repeat("7", 40), Lists: obs[2].Lists, Level: observe.Announced, Count: 1, FirstSeen: obs[0].Time, LastSeen: obs[0].Time,
					Quarantined: true, LookedFor: true, Marks: []string{observe.MarkThirdParty}}},
			ScoreParts: []ScorePart{{Name: "files", Value: score / 2, Why: "2 watched files"}, {Name: "possession", Value: score / 4},
				{Name: "level", Value: score / 4, Why: "highest level " + lvl.String()}},
			Associated: []AssociatedFile{{Item: "btih:" + strings.Repeat("e", 40), Peers: 4, Note: "seen with 2 of its files"},
				{Item: "btih:" + strings.Repeat("f", 40), Name: "extra/synthetic-2.bin", Peers: 3, State: "open", Seen: 3, Watched: 1, Torrents: 1}},
		}
	}
	mk("T-A1", agencyA, "78", "FR", 48.80, 1.98, 87.5, observe.Complete, "127.0.1.10:51413", false, 2)
	mk("T-A2", agencyA, "78", "FR", 48.90, 2.10, 42.0, observe.Partial, "127.0.1.11:6881", true, 30)
	mk("T-B1", agencyB, "13", "FR", 43.50, 5.40, 93.0, observe.Verified, "127.0.2.20:6881", false, 5)
	b.lists["lab-watchlist"] = []ListVersion{
		{Version: 2, Imported: testNow.Add(-time.Hour), By: "claire", SHA256: strings.Repeat("ab", 32), Entries: 3, Added: 1, Removed: 1},
		{Version: 1, Imported: testNow.Add(-48 * time.Hour), By: "vigil demo", SHA256: strings.Repeat("cd", 32), Entries: 3, Added: 3},
	}
	b.entries["lab-watchlist"] = map[int][]string{1: {"btih:aa", "btih:bb", "btih:cc"}, 2: {"btih:aa", "btih:bb", "btih:dd"}}
	return b
}

func (b *fakeBackend) List(ctx context.Context, u *User, q TargetQuery) (TargetPage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var all []TargetSummary
	for _, t := range b.targets {
		if !u.Scope.Allows(t.Jurisdiction) {
			continue
		}
		if q.Jurisdiction != "" && t.Jurisdiction != q.Jurisdiction || t.Score < q.MinScore || t.Level < q.MinLevel ||
			q.VPN == "yes" && !t.VPN || q.VPN == "no" && t.VPN ||
			q.Search != "" && t.ID != q.Search && !strings.Contains(t.Addresses[0].Addr.String(), q.Search) ||
			!q.From.IsZero() && t.LastSeen.Before(q.From) || !q.Until.IsZero() && !t.FirstSeen.Before(q.Until) {
			continue
		}
		all = append(all, t.TargetSummary)
	}
	key := func(t TargetSummary) float64 {
		switch q.Sort {
		case SortLast:
			return float64(t.LastSeen.Unix())
		case SortFirst:
			return float64(t.FirstSeen.Unix())
		}
		return t.Score
	}
	sort.Slice(all, func(i, j int) bool {
		if q.Asc {
			return key(all[i]) < key(all[j])
		}
		return key(all[i]) > key(all[j])
	})
	pg := TargetPage{Total: len(all)}
	if q.Offset < len(all) {
		pg.Targets = all[q.Offset:min(len(all), q.Offset+q.Limit)]
	}
	return pg, nil
}

func (b *fakeBackend) Get(ctx context.Context, u *User, id string) (*TargetDetail, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.targets[id]
	if !ok {
		return nil, ErrNotFound
	}
	if !u.Scope.Allows(t.Jurisdiction) {
		return nil, ErrDenied
	}
	c := *t
	return &c, nil
}

func (b *fakeBackend) Overview(ctx context.Context, u *User, since time.Time) (*Overview, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := &Overview{Since: since, Devices: 0}
	subs := map[string]*PlaceCount{}
	byLevel := map[observe.Level]int{}
	agencies := map[string]int{}
	days := map[time.Time]int{}
	for _, t := range b.targets {
		if !u.Scope.Allows(t.Jurisdiction) {
			continue
		}
		o.Targets++
		o.Devices += len(t.Devices)
		agencies[t.Jurisdiction] += len(t.Observations)
		for _, p := range t.Places {
			if subs[p.Key] == nil {
				c := p
				c.Count = 0
				subs[p.Key] = &c
			}
			subs[p.Key].Count += p.Count
		}
		for _, ob := range t.Observations {
			o.Observations++
			byLevel[ob.Level]++
			days[ob.Time.UTC().Truncate(24*time.Hour)]++
			o.Recent = append(o.Recent, ob)
		}
		if t.Score >= 40 {
			o.NewestHigh = append(o.NewestHigh, t.TargetSummary)
		}
	}
	for _, r := range b.recent {
		if u.Scope.Allows(r.Agency) {
			o.Recent = append(o.Recent, r)
		}
	}
	o.HighScore = 40
	for _, p := range subs {
		o.BySubdivision = append(o.BySubdivision, *p)
	}
	sort.Slice(o.BySubdivision, func(i, j int) bool { return o.BySubdivision[i].Key < o.BySubdivision[j].Key })
	if o.Observations > 0 {
		o.ByCountry = []PlaceCount{{Key: "FR", Country: "FR", Lat: 46.6, Lon: 2.4, Count: o.Observations}}
		o.ByNetwork = []Count{{observe.NetBitTorrent, o.Observations}}
	}
	for a, n := range agencies {
		o.ByAgency = append(o.ByAgency, Count{a, n})
	}
	sort.Slice(o.ByAgency, func(i, j int) bool { return o.ByAgency[i].Key < o.ByAgency[j].Key })
	for l := observe.Announced; l <= observe.Verified; l++ {
		if byLevel[l] > 0 {
			o.ByLevel = append(o.ByLevel, LevelCount{l, byLevel[l]})
		}
	}
	for d := since; d.Before(testNow); d = d.AddDate(0, 0, 1) {
		o.Trend = append(o.Trend, DayCount{Day: d, Observations: days[d]})
	}
	sort.Slice(o.Recent, func(i, j int) bool { return o.Recent[i].Time.After(o.Recent[j].Time) })
	sort.Slice(o.NewestHigh, func(i, j int) bool { return o.NewestHigh[i].Score > o.NewestHigh[j].Score })
	return o, nil
}

func (b *fakeBackend) Render(ctx context.Context, u *User, id, format, purpose string) (ISPFile, error) {
	t, err := b.Get(ctx, u, id)
	if err != nil {
		return ISPFile{}, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# purpose: %s\nip,port,transport,time,level\n", purpose)
	for _, o := range t.Observations {
		fmt.Fprintf(&buf, "%s,%d,%s,%s,%s\n", o.Endpoint.Addr(), o.Endpoint.Port(), o.Transport, o.Time.Format(time.RFC3339Nano), o.Level)
	}
	return ISPFile{ContentType: "text/csv; charset=utf-8", Filename: "isp-" + id + "." + format, Body: buf.Bytes()}, nil
}

// Append implements trail.Appender: the records the pages write.
func (b *fakeBackend) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	return r, b.appendRecord(ctx, AuditRecord{Actor: r.Actor, ActorAgency: r.ActorAgency, Role: agency.Role(r.Role), Remote: r.Remote,
		Action: r.Action, Object: r.Object, Purpose: r.Purpose, Detail: string(r.Detail)})
}

func (b *fakeBackend) appendRecord(ctx context.Context, r AuditRecord) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failAudit {
		return fmt.Errorf("audit store unavailable")
	}
	r.Seq = int64(len(b.audit) + 1)
	r.Time = testNow
	b.audit = append(b.audit, r)
	return nil
}

func (b *fakeBackend) records() []AuditRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.audit)
}

// auditList implements Audit.List (method name clash with Targets.List).
type fakeAudit struct{ *fakeBackend }

func (a fakeAudit) List(ctx context.Context, u *User, f AuditFilter) ([]AuditRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AuditRecord
	for i := len(a.audit) - 1; i >= 0 && (f.Limit == 0 || len(out) < f.Limit); i-- {
		r := a.audit[i]
		if f.BeforeSeq > 0 && r.Seq >= f.BeforeSeq || f.Actor != "" && r.Actor != f.Actor || f.Action != "" && r.Action != f.Action || f.Object != "" && r.Object != f.Object {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// fakeLists implements Lists (method name clash with Targets.List).
type fakeLists struct{ *fakeBackend }

func (l fakeLists) Lists(ctx context.Context, u *User) ([]ListInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ListInfo
	for name, vs := range l.lists {
		out = append(out, ListInfo{Name: name, Source: "vigil lab", Version: fmt.Sprint(vs[0].Version), Format: "csv",
			Imported: vs[0].Imported, Entries: vs[0].Entries, SHA256: vs[0].SHA256})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (l fakeLists) Versions(ctx context.Context, u *User, name string) ([]ListVersion, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	vs, ok := l.lists[name]
	if !ok {
		return nil, ErrNotFound
	}
	return slices.Clone(vs), nil
}

func (l fakeLists) Diff(ctx context.Context, u *User, name string, from, to int) (ListDiff, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[name]
	a, okA := e[from]
	b, okB := e[to]
	if !okA || !okB {
		return ListDiff{}, ErrNotFound
	}
	d := ListDiff{From: from, To: to}
	for _, h := range b {
		if !slices.Contains(a, h) {
			d.Added = append(d.Added, DiffEntry{Hash: h, Category: "1"})
		}
	}
	for _, h := range a {
		if !slices.Contains(b, h) {
			d.Removed = append(d.Removed, DiffEntry{Hash: h, Category: "1"})
		}
	}
	return d, nil
}

func (l fakeLists) Import(ctx context.Context, u *User, up ListUpload, progress func(done, total int64)) (ImportResult, error) {
	data, err := io.ReadAll(up.Body)
	if err != nil {
		return ImportResult{}, err
	}
	lines := strings.Fields(string(data))
	// A word that is not "btih:..." is an invalid line: nothing imported,
	// every such line named, as the real backend does.
	rej := &ImportRejectedError{File: up.Filename}
	for i, l := range lines {
		if !strings.HasPrefix(l, "btih:") {
			rej.Total++
			rej.Lines = append(rej.Lines, RejectedLine{Line: i + 1, Reason: "not a hash: " + l})
		}
	}
	if rej.Total > 0 {
		return ImportResult{}, rej
	}
	for i := range lines {
		progress(int64(i+1), int64(len(lines)))
		if i == len(lines)/2 && l.importGo != nil {
			select {
			case <-l.importGo:
			case <-ctx.Done():
				return ImportResult{}, ctx.Err()
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	vs := l.lists[up.Name]
	v := ListVersion{Version: len(vs) + 1, Imported: testNow, By: u.Name, Entries: len(lines), Added: len(lines)}
	l.lists[up.Name] = append([]ListVersion{v}, vs...)
	if l.entries[up.Name] == nil {
		l.entries[up.Name] = map[int][]string{}
	}
	l.entries[up.Name][v.Version] = lines
	return ImportResult{List: up.Name, Version: v.Version, Added: len(lines)}, nil
}

// ---- access double ----

type ctxKey struct{}

type fakeSession struct {
	user string
	csrf string
}

// fakeAccess is a minimal access layer: password sign-in, session cookie,
// bearer tokens, double-submit CSRF (per session, or a pre-session cookie
// for the login form).
type fakeAccess struct {
	mu       sync.Mutex
	users    map[string]*User
	password map[string]string
	sessions map[string]*fakeSession
	tokens   map[string]string // bearer token -> user
	audit    func(ctx context.Context, r AuditRecord) error
}

func randHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func newFakeAccess() *fakeAccess {
	a := &fakeAccess{users: map[string]*User{}, password: map[string]string{}, sessions: map[string]*fakeSession{}, tokens: map[string]string{}}
	add := func(u User, pw string) {
		a.users[u.Name] = &u
		a.password[u.Name] = pw
	}
	add(User{Name: "alice", Agency: agencyA, Role: RoleInvestigator, Lang: "en", TimeZone: "Europe/Paris", Scope: Scope{Agencies: []string{agencyA}}}, "alice-pw")
	add(User{Name: "bob", Agency: agencyB, Role: RoleInvestigator, Lang: "fr", TimeZone: "Europe/Paris", Scope: Scope{Agencies: []string{agencyB}}}, "bob-pw")
	add(User{Name: "claire", Agency: "ocrvp", Role: RoleAnalyst, Lang: "en", TimeZone: "UTC", Scope: Scope{All: true}}, "claire-pw")
	add(User{Name: "audrey", Agency: "igpn", Role: RoleAuditor, Lang: "en", TimeZone: "America/New_York", Scope: Scope{}}, "audrey-pw")
	return a
}

type reqState struct {
	user *User
	csrf string
}

func (a *fakeAccess) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &reqState{}
		a.mu.Lock()
		if c, err := r.Cookie("vigil_session"); err == nil {
			if s := a.sessions[c.Value]; s != nil {
				u := *a.users[s.user]
				st.user, st.csrf = &u, s.csrf
			}
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			if name, ok := a.tokens[tok]; ok {
				u := *a.users[name]
				st.user = &u
			}
		}
		a.mu.Unlock()
		if st.user == nil {
			if c, err := r.Cookie("vigil_precsrf"); err == nil && len(c.Value) == 32 {
				st.csrf = c.Value
			} else {
				st.csrf = randHex()
				http.SetCookie(w, &http.Cookie{Name: "vigil_precsrf", Value: st.csrf, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			}
		}
		if r.Method == http.MethodPost && r.Header.Get("Authorization") == "" {
			got := r.Header.Get("X-CSRF-Token")
			if got == "" {
				if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/") {
					_ = r.ParseMultipartForm(8 << 20)
				}
				got = r.PostFormValue("csrf_token")
			}
			if st.csrf == "" || got != st.csrf {
				http.Error(w, "CSRF token missing or wrong", http.StatusForbidden)
				return
			}
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, st)
		if st.user != nil {
			// The principal the access layer would establish: the trail
			// names it in every record.
			ctx = access.WithPrincipal(ctx, &access.Principal{Name: st.user.Name, Agency: st.user.Agency,
				Role: access.Role(st.user.Role), Lang: access.Lang(st.user.Lang), TimeZone: st.user.TimeZone, Remote: r.RemoteAddr})
		}
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// serve mounts the pages as internal/web does: the assets, and behind
// the access layer and the cross-origin protection all of /api/v1 on the
// API (the live feed and the import progress the pages' script reads)
// and the rest on the pages.
func (a *fakeAccess) serve(srv *Server, hub *api.Hub, tr *trail.Trail) http.Handler {
	app := http.NewServeMux()
	app.Handle("/api/v1/", api.Handler(api.Config{Trail: tr, Imports: srv, Live: api.NewLive(api.LiveConfig{Hub: hub, Trail: tr})}))
	app.Handle("/", srv)
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", Static()))
	mux.Handle("/", http.NewCrossOriginProtection().Handler(a.Wrap(app)))
	return mux
}

func (a *fakeAccess) Who(r *http.Request) (*User, bool) {
	st, _ := r.Context().Value(ctxKey{}).(*reqState)
	if st == nil || st.user == nil {
		return nil, false
	}
	return st.user, true
}

func (a *fakeAccess) CSRFToken(r *http.Request) string {
	st, _ := r.Context().Value(ctxKey{}).(*reqState)
	if st == nil {
		return ""
	}
	return st.csrf
}

func (a *fakeAccess) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, pw := r.PostFormValue("name"), r.PostFormValue("password")
		a.mu.Lock()
		ok := a.password[name] != "" && a.password[name] == pw
		var sid string
		if ok {
			sid = randHex()
			a.sessions[sid] = &fakeSession{user: name, csrf: randHex()}
		}
		u := a.users[name]
		a.mu.Unlock()
		if !ok {
			if a.audit != nil {
				_ = a.audit(r.Context(), AuditRecord{Actor: name, Action: "login_failed", Remote: r.RemoteAddr})
			}
			http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
			return
		}
		if a.audit != nil {
			_ = a.audit(r.Context(), AuditRecord{Actor: name, ActorAgency: u.Agency, Role: u.Role, Action: ActionLogin, Remote: r.RemoteAddr})
		}
		http.SetCookie(w, &http.Cookie{Name: "vigil_session", Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
	})
}

func (a *fakeAccess) Logout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("vigil_session"); err == nil {
			a.mu.Lock()
			delete(a.sessions, c.Value)
			a.mu.Unlock()
		}
		http.SetCookie(w, &http.Cookie{Name: "vigil_session", Value: "", Path: "/", MaxAge: -1})
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

// SetLang stores the language on the user, as an account store would.
func (a *fakeAccess) SetLang(w http.ResponseWriter, r *http.Request, u *User, lang string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users[u.Name].Lang = lang
	return nil
}

func (a *fakeAccess) token(user string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := randHex()
	a.tokens[t] = user
	return t
}

// ---- the environment tests drive ----

// testEnv is a running server with known users and targets. The browser
// test and the handler tests use it through buildEnv, which the lead may
// point at the real backend (demo store + access) without changing the
// tests: they only rely on these fields.
type testEnv struct {
	URL      string
	Server   *httptest.Server
	Hub      *api.Hub
	Password map[string]string // user -> password: alice (agency A), bob (agency B), claire (analyst), audrey (auditor)
	TargetA  string            // a target of agency A (alice's)
	TargetB  string            // a target of agency B (not alice's)
	Records  func() []AuditRecord
	Token    func(user string) string // a bearer token for user

	backend *fakeBackend // nil with a real backend
	access  *fakeAccess
}

var buildEnv = fakeEnv

func fakeEnv(t testing.TB) *testEnv { return fakeEnvWith(t, nil) }

// fakeEnvWith is fakeEnv with the server's Config changed by tune.
func fakeEnvWith(t testing.TB, tune func(*Config)) *testEnv {
	b := newFakeBackend()
	a := newFakeAccess()
	a.audit = b.appendRecord
	hub := api.NewHub(8)
	cfg := Config{
		Targets: b, ISP: b, Lists: fakeLists{b}, Audit: fakeAudit{b}, Trail: trail.New(b, nil),
		Health: map[string]HealthFunc{"sensor demo-bittorrent": func() (bool, string) { return true, "120 routing nodes, 3 watched, 8 lookups, 1234 observations" }},
		Who:    a.Who, CSRFToken: a.CSRFToken, Login: a.Login(), Logout: a.Logout(), SetLang: a.SetLang,
		Now: func() time.Time { return testNow },
	}
	if tune != nil {
		tune(&cfg)
	}
	srv := New(cfg)
	ts := httptest.NewServer(a.serve(srv, hub, cfg.Trail))
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	pw := map[string]string{}
	for k, v := range a.password {
		pw[k] = v
	}
	return &testEnv{URL: ts.URL, Server: ts, Hub: hub, Password: pw, TargetA: "T-A1", TargetB: "T-B1",
		Records: b.records, Token: a.token, backend: b, access: a}
}
