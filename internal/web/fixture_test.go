package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/casework"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// The SQLite store is a web.Store.
var _ Store = (*sqlite.Store)(nil)

// fixtureStore is the store as the fixture fills it (watch-lists,
// observations, the analysis, operations) and the pages and accounts read
// it. The SQLite and the PostgreSQL store are both one.
type fixtureStore interface {
	store.Store
	analysis.Backend
	Store
	access.Store
	audit.Store
	casework.Store
	casework.OperationStore
}

var (
	_ fixtureStore = (*sqlite.Store)(nil)
	_ fixtureStore = (*postgres.Store)(nil)
)

// The fixture: a real SQLite store filled with synthetic observations
// (random hashes, loopback addresses) placed and routed as the French
// rules would route them, scored by the real analysis engine, with real
// accounts in the real access layer. Tests and benchmarks drive the real
// handler over it.

// Agencies of the fixture (ids of examples/jurisdictions/france.yaml).
const (
	agencyParis = "fr-pp-dpj"   // Paris (75)
	agencySud   = "fr-szpj-sud" // Marseille (13), Toulouse (31)
	agencyNat   = "fr-ofmin"    // the national office; foreign addresses
)

type fixturePlace struct {
	country, sub, region, city string
	lat, lon                   float64
	agency                     string
	asn                        uint32
	org                        string
	vpn                        bool
}

var fixturePlaces = []fixturePlace{
	{"FR", "75", "Île-de-France", "Paris", 48.8566, 2.3522, agencyParis, 64496, "Lab Telecom A", false},
	{"FR", "13", "Provence-Alpes-Côte d'Azur", "Marseille", 43.2965, 5.3698, agencySud, 64496, "Lab Telecom A", false},
	{"FR", "31", "Occitanie", "Toulouse", 43.6047, 1.4442, agencySud, 64497, "Lab Telecom B", false},
	{"FR", "69", "Auvergne-Rhône-Alpes", "Lyon", 45.764, 4.8357, "fr-szpj-sud-est", 64497, "Lab Telecom B", false},
	{"FR", "59", "Hauts-de-France", "Lille", 50.6292, 3.0573, "fr-szpj-nord", 64498, "Lab Telecom C", false},
	{"FR", "78", "Île-de-France", "Versailles", 48.8049, 2.1204, "fr-pj-idf-gc", 64498, "Lab Telecom C", false},
	{"BE", "", "Brussels Capital", "Brussels", 50.8503, 4.3517, agencyNat, 64499, "Lab Exit VPN", true},
	{"DE", "", "Land Berlin", "Berlin", 52.52, 13.405, agencyNat, 64501, "Lab Telecom DE", false},
}

// fixtureConfig sizes the synthetic store.
type fixtureConfig struct {
	Observations int // total
	PerEndpoint  int // observations per endpoint (default 20)
	Items        int // watched files (default 500)
	Days         int // spread over the last Days days (default 10)
	Batch        int // observations per InsertObservations (default 5,000)
	Seed         uint64
	// Progress, if set, is called after each batch with the observations
	// written so far (from one goroutine at a time).
	Progress func(written int)
	// Writers is how many batches are written at once, each on its own
	// connection (default 1). The store still commits them in the order
	// of their seqs (its seq lock), but not necessarily in the order
	// they were made: keep 1 where two stores must hold the same rows
	// in the same order.
	Writers int
	// CatchUpEvery, if set, runs the analysis while the observations are
	// written: a CatchUp every CatchUpEvery, as 'vigil serve' beside an
	// ingest that does not analyse does (analysis.Engine.Run), then a
	// last one once all are written. Unset: one CatchUp at the end.
	CatchUpEvery time.Duration
	// SaveEvery, if set, is the analysis's Config.SaveEvery: how many
	// observations a CatchUp reads between two saves (default the
	// engine's: 1,000,000 observations or 100,000 endpoints waiting, Config.SaveRows). The stored result does not depend on it (a save
	// writes what changed since the last); a larger one writes a target
	// touched by many observations once instead of once a chunk.
	SaveEvery int
	// Stop, if set, is asked before each batch is handed to the writers:
	// true ends the observations there (the batches already made are
	// written, analysed and saved as usual). The observations made are
	// then those of a fixture of that many (endpoints are made one after
	// the other, each from the same random draws whatever the total):
	// a fill too slow for its time is finished at a smaller size.
	Stop func() bool
	// CaughtUp, if set, is called after each CatchUp with the watermark.
	CaughtUp func(watermark int64)
	// TimeOrder writes the observations in the order of their times, as
	// sensors that watch every endpoint at once deliver them (an
	// endpoint's 20 spread over up to the fixture's Days), instead of
	// endpoint after endpoint; all are made in memory first (about 1 KB
	// each).
	TimeOrder bool
	// NoAnalysis writes the observations and runs no analysis at all: a
	// store whose catch-up is then timed apart (TestBenchPGCatchUp).
	NoAnalysis bool
}

type fixtureInfo struct {
	Items     []hashkind.Hash
	Endpoints int
}

var fixtureLevels = []observe.Level{observe.Announced, observe.Announced, observe.Acknowledged, observe.Partial, observe.Complete, observe.Verified}

// fillStore writes synthetic observations, two versions of their
// watch-list, and runs the analysis over them.
func fillStore(tb testing.TB, ctx context.Context, st fixtureStore, cfg fixtureConfig) fixtureInfo {
	tb.Helper()
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 20
	}
	if cfg.Items <= 0 {
		cfg.Items = 500
	}
	if cfg.Days <= 0 {
		cfg.Days = 10
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 5000
	}
	r := mrand.New(mrand.NewPCG(cfg.Seed, 7))
	info := fixtureInfo{}
	for range cfg.Items {
		var b [20]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		info.Items = append(info.Items, hashkind.MustNew(hashkind.BTIH, b[:]))
	}
	// Two versions of the list: the second drops the first 5% and adds
	// the last 20%.
	v1, v2 := info.Items[:cfg.Items*8/10], info.Items[cfg.Items/20:]
	for i, hs := range [][]hashkind.Hash{v1, v2} {
		var es []watchlist.Entry
		for j, h := range hs {
			es = append(es, watchlist.Entry{Hash: h, Category: fmt.Sprint(1 + j%3), Severity: 1 + j%5, Name: fmt.Sprintf("synthetic-%04d.bin", j)})
		}
		if _, err := st.ImportList(ctx, store.ListImport{Name: "lab-watchlist", Source: "vigil test", Format: watchlist.FormatText,
			SHA256: fmt.Sprintf("%064x", i+1), By: "fixture", Entries: es}); err != nil {
			tb.Fatal(err)
		}
	}
	now := time.Now().UTC()
	nEp := max(1, cfg.Observations/cfg.PerEndpoint)
	info.Endpoints = nEp
	acfg := analysis.DefaultConfig()
	acfg.SaveInterval = 0
	if cfg.SaveEvery > 0 {
		acfg.SaveEvery = cfg.SaveEvery
	}
	var eng *analysis.Engine
	if !cfg.NoAnalysis {
		var err error
		if eng, err = analysis.New(ctx, st, acfg); err != nil {
			tb.Fatal(err)
		}
	}
	catchUp := func() error {
		if eng == nil {
			return nil
		}
		if err := eng.CatchUp(ctx); err != nil {
			return err
		}
		if cfg.CaughtUp != nil {
			cfg.CaughtUp(eng.Watermark())
		}
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []observe.Observation, max(2, cfg.Writers))
	errs := make(chan error, max(1, cfg.Writers)+1)
	var mu sync.Mutex
	written := 0
	var wg sync.WaitGroup
	for range max(1, cfg.Writers) {
		wg.Go(func() {
			for b := range batches {
				if err := st.InsertObservations(wctx, b); err != nil {
					errs <- err
					cancel()
					return
				}
				mu.Lock()
				written += len(b)
				if cfg.Progress != nil {
					cfg.Progress(written)
				}
				mu.Unlock()
			}
		})
	}
	analysed := make(chan struct{})
	go func() { // the analysis as the observations come, if asked
		defer close(analysed)
		if cfg.CatchUpEvery <= 0 {
			return
		}
		t := time.NewTicker(cfg.CatchUpEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				if err := catchUp(); err != nil && wctx.Err() == nil {
					errs <- err
					cancel()
					return
				}
			}
		}
	}()
	if cfg.TimeOrder {
		timeOrdered(wctx, cfg, info.Items, r, now, nEp, batches)
	} else {
		fixtureObservations(wctx, cfg, info.Items, r, now, nEp, batches)
	}
	close(batches)
	wg.Wait()
	if written < nEp*cfg.PerEndpoint && wctx.Err() == nil {
		info.Endpoints = written / cfg.PerEndpoint // stopped (cfg.Stop)
	}
	cancel()
	<-analysed
	select {
	case err := <-errs:
		tb.Fatal(err)
	default:
	}
	if err := catchUp(); err != nil {
		tb.Fatal(err)
	}
	if eng == nil {
		return info
	}
	if err := eng.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	return info
}

// fixtureEndpointIP is the address of the fixture's endpoint e: every
// place has its own /16 of 127.0.0.0/8 (127.1 to 127.8) for its first
// 65,536 endpoints, then its next ones: endpoint n of place p is
// 127.(1+p+8k).x.y with k = n/65,536 (up to k = 30: 2 million endpoints
// a place, 16 million in all). Every endpoint gets its own address, and
// stores of up to 524,288 endpoints keep the addresses they had when
// the octets wrapped instead.
func fixtureEndpointIP(e int) netip.Addr {
	p, n := e%len(fixturePlaces), e/len(fixturePlaces)
	k := n >> 16
	if k > 30 {
		panic(fmt.Sprintf("fixture: endpoint %d past the fixture's addresses", e))
	}
	return netip.AddrFrom4([4]byte{127, byte(1 + p + len(fixturePlaces)*k), byte(n >> 8), byte(n)})
}

// timeOrdered is fixtureObservations with every observation made first,
// then sent in the order of their times (ties in the order made).
func timeOrdered(ctx context.Context, cfg fixtureConfig, items []hashkind.Hash, r *mrand.Rand, now time.Time, nEp int, out chan<- []observe.Observation) {
	all := make(chan []observe.Observation)
	var obs []observe.Observation
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range all {
			obs = append(obs, b...)
		}
	}()
	plain := cfg
	plain.Stop = nil
	fixtureObservations(ctx, plain, items, r, now, nEp, all)
	close(all)
	<-done
	slices.SortStableFunc(obs, func(a, b observe.Observation) int { return a.Time.Compare(b.Time) })
	for len(obs) > 0 {
		n := min(cfg.Batch, len(obs))
		if cfg.Stop != nil && cfg.Stop() {
			return
		}
		select {
		case out <- obs[:n:n]:
		case <-ctx.Done():
			return
		}
		obs = obs[n:]
	}
}

// fixtureObservations makes the fixture's observations, in batches of
// cfg.Batch sent to out, until ctx ends.
func fixtureObservations(ctx context.Context, cfg fixtureConfig, items []hashkind.Hash, r *mrand.Rand, now time.Time, nEp int, out chan<- []observe.Observation) {
	start := now.Add(-time.Duration(cfg.Days) * 24 * time.Hour)
	span := now.Sub(start) - time.Minute
	batch := make([]observe.Observation, 0, cfg.Batch)
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if cfg.Stop != nil && cfg.Stop() {
			return false
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return false
		}
		batch = make([]observe.Observation, 0, cfg.Batch)
		return true
	}
	for e := range nEp {
		pl := fixturePlaces[e%len(fixturePlaces)]
		ip := fixtureEndpointIP(e)
		port := uint16(6881 + e%1000)
		// A DHT node id per device; every tenth endpoint shares the id of
		// an endpoint of the same place: one device seen at two addresses.
		dev := e
		if e%10 == 9 && e >= len(fixturePlaces) {
			dev = e - len(fixturePlaces)
			// Self-declared node ids on loopback prove nothing (BEP 42
			// exempts it) and link nothing: the device is the same client,
			// peer id and address, restarted on another port.
			ip = fixtureEndpointIP(dev)
		}
		peerID := []byte(fmt.Sprintf("-TR3000-%012d", uint64(dev)*1000+cfg.Seed%1000))
		node := make([]byte, 20)
		binary.BigEndian.PutUint64(node, uint64(dev)|0xAB<<56)
		binary.BigEndian.PutUint64(node[8:], cfg.Seed)
		files := []hashkind.Hash{items[r.IntN(len(items))], items[r.IntN(len(items))], items[r.IntN(len(items))]}
		epStart := start.Add(time.Duration(r.Int64N(int64(span) / 2)))
		for k := range cfg.PerEndpoint {
			at := epStart.Add(time.Duration(r.Int64N(int64(now.Sub(epStart)))))
			lvl := fixtureLevels[r.IntN(len(fixtureLevels))]
			method := observe.MethodPeerProbe
			if lvl == observe.Announced {
				method = observe.MethodDHTAnnounce
			}
			h := files[k%len(files)]
			have, total := -1, -1
			if lvl >= observe.Partial {
				total = 64
				have = 64
				if lvl == observe.Partial {
					have = 1 + r.IntN(63)
				}
			}
			sub := []string(nil)
			if pl.sub != "" {
				sub = []string{pl.region, pl.sub}
			}
			batch = append(batch, observe.Observation{
				ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bench-bittorrent", Version: "test", Vantage: "127.0.0.1:6881"},
				Network: observe.NetBitTorrent, Method: method, Time: at, ClockSource: "ntp:127.0.0.1",
				Item: observe.Item{Hash: h, Matched: []observe.Match{{List: "lab-watchlist", Category: "1"}}},
				// The sensor's own end and a transcript digest: a first-hand
				// contact an ISP request can name.
				Endpoint:   observe.Endpoint{IP: ip, Port: port, Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:6881")},
				Transcript: observe.Transcript{SHA256: sha256Of(at, e, k)},
				Client:     observe.Client{Name: "Transmission", Version: "3.00", ListenPort: port, NodeID: node, PeerID: peerID},
				Possession: observe.Possession{Level: lvl, PiecesHave: have, PiecesTotal: total},
				Place: observe.Place{Country: pl.country, Subdivisions: sub, City: pl.city, Lat: pl.lat, Lon: pl.lon,
					ASN: pl.asn, Org: pl.org, VPN: pl.vpn, DB: "lab-city.mmdb"},
				Jurisdiction: observe.Jurisdiction{Agency: pl.agency, Rule: "fixture " + pl.country + "/" + pl.sub},
			})
			if len(batch) == cap(batch) && !flush() {
				return
			}
		}
	}
	flush()
}

// fixtureUser is an account of the fixture.
type fixtureUser struct {
	name, agency string
	role         access.Role
	lang         access.Lang
}

var fixtureUsers = []fixtureUser{
	{"paris", agencyParis, access.RoleInvestigator, access.LangEN}, // agency A
	{"sud", agencySud, access.RoleInvestigator, access.LangFR},     // agency B
	{"analyst", agencyNat, access.RoleAnalyst, access.LangEN},
	{"auditor", agencyNat, access.RoleAuditor, access.LangEN},
	{"admin", agencyNat, access.RoleAdmin, access.LangEN},
}

func randomPassword() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "pw-" + hex.EncodeToString(b[:])
}

// env is a running server over the fixture.
type env struct {
	URL      string
	Server   *httptest.Server
	App      *App
	Store    *sqlite.Store // nil over PostgreSQL (newPGEnv)
	Back     fixtureStore  // the store, SQLite or PostgreSQL
	Access   *access.Service
	Password map[string]string // by user name
	Token    map[string]string // bearer token by user name
	TargetA  string            // a target of agency A (paris)
	TargetB  string            // a target of agency B (sud)
	Info     fixtureInfo
	Path     string // the store's file (SQLite)
}

// newEnv builds the store at path (a temporary file if ""), fills it with
// obs observations and serves the real handler on loopback. A path that
// already exists is a store newEnv made before (TestMakeBenchStore): it
// is used as it is, with new tokens for its accounts.
func newEnv(tb testing.TB, path string, obs int) *env {
	tb.Helper()
	return newEnvWith(tb, path, obs, nil)
}

// newEnvWith is newEnv with the access layer's settings changed by tune.
func newEnvWith(tb testing.TB, path string, obs int, tune func(*access.Config)) *env {
	tb.Helper()
	return newEnvDeps(tb, path, obs, tune, nil)
}

// newEnvDeps is newEnvWith with the interface's settings changed by
// tuneDeps.
func newEnvDeps(tb testing.TB, path string, obs int, tune func(*access.Config), tuneDeps func(*Deps)) *env {
	tb.Helper()
	ctx := context.Background()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "vigil.db")
	}
	_, statErr := os.Stat(path)
	reuse := statErr == nil // a store made before (TestMakeBenchStore): its accounts exist
	cfg := sqlite.DefaultConfig()
	if s := os.Getenv("VIGIL_BENCH_MMAP"); s != "" {
		// An experiment's knob, not the default: the store's mmap_size
		// in bytes (sqlite.Config.MmapBytes).
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			tb.Fatalf("VIGIL_BENCH_MMAP=%q: want a number of bytes", s)
		}
		cfg.MmapBytes = n
	}
	st, err := sqlite.Open(ctx, path, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	info := fixtureInfo{Endpoints: obs / 20}
	if !reuse {
		info = fillStore(tb, ctx, st, fixtureConfig{Observations: obs, Seed: 1})
	}
	e := serveEnv(tb, st, reuse, info, tune, tuneDeps)
	e.Store, e.Path = st, path
	return e
}

// serveEnv adds the fixture's agencies, accounts and operations to st,
// filled by fillStore (unless reuse: a store made before, whose accounts
// exist and get new tokens), and serves the real handler on loopback.
func serveEnv(tb testing.TB, st fixtureStore, reuse bool, info fixtureInfo, tune func(*access.Config), tuneDeps func(*Deps)) *env {
	tb.Helper()
	ctx := context.Background()

	acfg := access.DefaultConfig()
	acfg.Argon2 = access.Argon2Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	acfg.SecureCookies = access.CookieSecureFor("127.0.0.1:0", false)
	if tune != nil {
		tune(&acfg)
	}
	svc, err := access.New(st, &audit.Log{Store: st}, acfg)
	if err != nil {
		tb.Fatal(err)
	}
	cli := access.CLIActor("fixture")
	for _, ag := range []string{agencyParis, agencySud, agencyNat} {
		if reuse {
			break
		}
		if err := svc.AddAgency(ctx, cli, access.Agency{ID: ag, Name: ag, Country: "FR"}); err != nil {
			tb.Fatal(err)
		}
	}
	e := &env{Back: st, Access: svc, Password: map[string]string{}, Token: map[string]string{}, Info: info}
	for _, u := range fixtureUsers {
		pw := randomPassword()
		if reuse {
			pw = "" // unknown: set when the store was made
		} else if _, err := svc.AddUser(ctx, cli, access.User{Name: u.name, Agency: u.agency, Role: u.role, Lang: u.lang, TimeZone: "Europe/Paris"}, pw); err != nil {
			tb.Fatal(err)
		}
		tok, _, err := svc.CreateToken(ctx, cli, u.name, "test", time.Hour)
		if err != nil {
			tb.Fatal(err)
		}
		e.Password[u.name], e.Token[u.name] = pw, tok
	}
	for ag, dst := range map[string]*string{agencyParis: &e.TargetA, agencySud: &e.TargetB} {
		list, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.Scope{Agencies: []string{ag}}, Limit: 1})
		if err != nil || len(list) == 0 {
			tb.Fatalf("fixture: no target routed to %s (%v)", ag, err)
		}
		*dst = list[0].ID
	}
	if !reuse {
		fixtureOperations(tb, ctx, st, e)
	}
	deps := Deps{Store: st, Access: svc, Health: map[string]HealthFunc{
		"sensor bench-bittorrent": func() (bool, string) { return true, "synthetic fixture" }},
		RecheckEvery: 200 * time.Millisecond}
	if tuneDeps != nil {
		tuneDeps(&deps)
	}
	app, err := New(ctx, deps)
	if err != nil {
		tb.Fatal(err)
	}
	e.App = app
	e.Server = httptest.NewServer(app)
	e.URL = e.Server.URL
	tb.Cleanup(func() {
		e.Server.Close()
		app.Close()
	})
	return e
}

// discoveryOnly is an OpenID Connect provider on loopback that answers
// its discovery document and nothing else: enough to turn single sign-on
// on (its routes are registered), not to complete a login.
func discoveryOnly(tb testing.TB) string {
	tb.Helper()
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "authorization_endpoint": issuer + "/auth",
			"token_endpoint": issuer + "/token", "jwks_uri": issuer + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}})
	}))
	tb.Cleanup(srv.Close)
	issuer = srv.URL
	return issuer
}

// sha256Of is a stand-in transcript digest for a fixture observation.
func sha256Of(at time.Time, e, k int) []byte {
	s := sha256.Sum256([]byte(fmt.Sprint(at.UnixNano(), e, k)))
	return s[:]
}

// fixtureOperations makes two operations: 1 gives TargetA to agency A
// (Paris) and TargetB to agency B; 2 gives TargetB to agency B only.
func fixtureOperations(tb testing.TB, ctx context.Context, st fixtureStore, e *env) {
	tb.Helper()
	ops := &casework.Operations{Store: st, Claims: &casework.Claims{Store: st, Config: casework.DefaultConfig()}}
	for _, o := range []struct {
		name    string
		targets map[string]string
	}{
		{"Aurore", map[string]string{e.TargetA: agencyParis, e.TargetB: agencySud}},
		{"Borée", map[string]string{e.TargetB: agencySud}},
	} {
		op := casework.Operation{Name: o.name}
		for _, t := range slices.Sorted(maps.Keys(o.targets)) {
			op.Targets = append(op.Targets, casework.OperationTarget{Target: t, Score: 10, Level: "complete"})
		}
		op, err := ops.Create(ctx, op, "fixture")
		if err != nil {
			tb.Fatal(err)
		}
		for t, ag := range o.targets {
			if res, err := ops.Assign(ctx, op.ID, t, ag, "fixture"); err != nil || res.Result != casework.Assigned {
				tb.Fatalf("operation %s, %s to %s: %+v %v", o.name, t, ag, res, err)
			}
		}
	}
}

// TestFixtureEndpointAddresses: every endpoint of a 50M-observation
// fixture (2.5 million endpoints) has its own loopback address, and
// stores of up to 524,288 endpoints keep the addresses they had before
// (the octets of 127.(1+p).n>>8.n wrapped past 65,536 endpoints a place:
// endpoint 65,536 of Paris was endpoint 0 of Paris again).
func TestFixtureEndpointAddresses(t *testing.T) {
	const n = 50_000_000 / 20
	seen := make(map[netip.Addr]int, n)
	for e := range n {
		ip := fixtureEndpointIP(e)
		if !ip.Is4() || ip.As4()[0] != 127 {
			t.Fatalf("endpoint %d: %v, not in 127.0.0.0/8", e, ip)
		}
		if prev, ok := seen[ip]; ok {
			t.Fatalf("endpoints %d and %d share %v", prev, e, ip)
		}
		seen[ip] = e
		if m := e / len(fixturePlaces); m < 1<<16 {
			if old := netip.AddrFrom4([4]byte{127, byte(1 + e%len(fixturePlaces)), byte(m >> 8), byte(m)}); ip != old {
				t.Fatalf("endpoint %d: %v, was %v", e, ip, old)
			}
		}
	}
}

// newTestEngine opens the analysis over b with the default settings,
// saving only when the test flushes.
func newTestEngine(t *testing.T, ctx context.Context, b analysis.Backend) *analysis.Engine {
	t.Helper()
	acfg := analysis.DefaultConfig()
	acfg.SaveInterval = 0
	eng, err := analysis.New(ctx, b, acfg)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// storeAndCatchUp stores obs in e's SQLite store, then opens the
// analysis and catches it up on everything stored; the caller flushes.
func storeAndCatchUp(t *testing.T, ctx context.Context, e *env, obs ...observe.Observation) *analysis.Engine {
	t.Helper()
	if err := e.Store.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	eng := newTestEngine(t, ctx, e.Store)
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	return eng
}

// nowProbeOfA is a first-hand probe, made now, of one of target A's
// endpoints and files (Paris's), with that endpoint and file.
func nowProbeOfA(t *testing.T, e *env) (netip.AddrPort, analysis.FileInfo, observe.Observation) {
	t.Helper()
	ep, file := targetEndpoint(t, e, e.TargetA)
	now := time.Now().UTC()
	probe := liveObs(ep, file, agencyParis)
	probe.ID, probe.Time = observe.NewID(now), now
	return ep, file, probe
}
