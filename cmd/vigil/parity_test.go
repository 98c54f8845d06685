package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/postgres"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/internal/watchlist"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// postgresDB returns a --db URL for a new, empty store on the test server
// (VIGIL_TEST_POSTGRES, else the local service CI provides): its database,
// in a schema of its own (?schema=), dropped when t ends. CI's server lets
// the tests into the database test only.
func postgresDB(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("VIGIL_TEST_POSTGRES")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("VIGIL_TEST_POSTGRES: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		testenv.Missingf(t, "POSTGRES", "PostgreSQL not reachable at %s: start it with 'pg_ctlcluster --skip-systemctl-redirect 15 main start' or set VIGIL_TEST_POSTGRES (%v)",
			net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), err)
	}
	conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_cli_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("VIGIL_TEST_POSTGRES: want a postgres:// URL: %v", err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// parityObservations are synthetic sightings (documentation and private
// addresses, hashes of counters) that make targets of every kind the
// analysis knows: devices seen at several addresses and linked by their
// peer id, node id or eMule user hash, files at every level, third
// parties' claims, several agencies and places, an IPv6 subscriber's
// addresses, an address reused after a long silence.
func parityObservations() []observe.Observation {
	r := mrand.New(mrand.NewPCG(13, 13))
	t0 := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	agencies := []string{"fr-pp-dpj", "fr-lyon", "fr-versailles"}
	subs := [][]string{{"Île-de-France", "75"}, {"Auvergne-Rhône-Alpes", "69"}, {"Île-de-France", "78"}}
	levels := []observe.Level{observe.Announced, observe.Acknowledged, observe.Partial, observe.Complete, observe.Verified}
	var out []observe.Observation
	for d := range 14 {
		ag := d % len(agencies)
		peerID := []byte(fmt.Sprintf("-TR3000-%012d", d))
		node := make([]byte, 20)
		for i := range node {
			node[i] = byte(d*7 + i)
		}
		user := make([]byte, 16)
		for i := range user {
			user[i] = byte(d*11 + i)
		}
		ed2k := d%4 == 3
		// Each device at one to three addresses over the month.
		var eps []netip.AddrPort
		for k := range 1 + d%3 {
			var a netip.Addr
			switch {
			case d%5 == 4:
				a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(d), 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(1 + k)})
			case k%2 == 0:
				a = netip.AddrFrom4([4]byte{198, 51, 100, byte(10*d + k)})
			default:
				a = netip.AddrFrom4([4]byte{203, 0, 113, byte(10*d + k)})
			}
			eps = append(eps, netip.AddrPortFrom(a, uint16(6881+d)))
		}
		n := 6 + r.IntN(10)
		for i := range n {
			// One address after the other (a session identity at two
			// addresses at once links nothing), an hour or two apart.
			ep := eps[i*len(eps)/n]
			at := t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*90*time.Minute + time.Duration(r.IntN(600))*time.Second)
			if d == 0 && i > 8 {
				at = at.Add(20 * 24 * time.Hour) // the same IP:port after a long silence: another endpoint
			}
			file := 1 + (d+i)%9
			o := observe.Observation{
				ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1", Version: "test"}, Network: observe.NetBitTorrent,
				Method: observe.MethodPeerProbe, Time: at,
				Item:         observe.Item{Hash: parityHash(file), Matched: []observe.Match{{List: "national", Category: strconv.Itoa(1 + file%3)}}},
				Endpoint:     observe.Endpoint{IP: ep.Addr(), Port: ep.Port(), Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:51413")},
				Client:       observe.Client{Name: "Transmission", Version: "3.00", PeerID: peerID, NodeID: node, ListenPort: ep.Port()},
				Possession:   observe.Possession{Level: levels[(d+i)%len(levels)], PiecesHave: -1, PiecesTotal: -1},
				Place:        observe.Place{Country: "FR", Subdivisions: subs[ag], ASN: uint32(64512 + ag), Org: "Lab Telecom"},
				Jurisdiction: observe.Jurisdiction{Agency: agencies[ag], Rule: "test"},
			}
			sum := sha256.Sum256([]byte(o.ID))
			o.Transcript.SHA256 = sum[:] // an ISP row needs the conversation's record
			if ed2k {
				o.Network, o.Client = observe.NetED2K, observe.Client{Name: "aMule", Version: "2.3.3", UserHash: user, ListenPort: 4662}
			}
			if o.Possession.Level == observe.Announced {
				o.Method, o.Endpoint.Transport, o.Endpoint.Local = observe.MethodDHTAnnounce, "udp", netip.AddrPort{}
				o.Transcript.SHA256 = nil
				o.Client = observe.Client{NodeID: node}
				if ed2k {
					o.Method, o.Client = observe.MethodKadSources, observe.Client{}
					o.Network = observe.NetKad
				}
			}
			out = append(out, o)
		}
	}
	return out
}

// parityStores stores parityObservations in a new SQLite file and a new
// PostgreSQL database, as ingest stores them (InsertObservations, in
// batches): an import through 'vigil observations import' marks each
// unsigned_import, and such observations link nothing. It returns the
// file's path and the database's URL, for --db.
func parityStores(t *testing.T) (string, string) {
	return parityStoresOf(t, parityObservations())
}

// parityStoresOf is parityStores of obs.
func parityStoresOf(t *testing.T, obs []observe.Observation) (string, string) {
	ctx := context.Background()
	pgURL := postgresDB(t)
	sqPath := filepath.Join(t.TempDir(), "v.db")
	sq, err := sqlite.Open(ctx, sqPath, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dsn, cfg, err := postgresConfig(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := postgres.Open(ctx, dsn, cfg)
	if err != nil {
		sq.Close()
		t.Fatal(err)
	}
	for _, st := range []store.Store{sq, pg} {
		for start := 0; start < len(obs); start += 50 {
			batch := append([]observe.Observation(nil), obs[start:min(start+50, len(obs))]...)
			if err := st.InsertObservations(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return sqPath, pgURL
}

// vigilOn runs vigil --db db args and returns what it printed, failing t
// unless it exits 0.
func vigilOn(t *testing.T, db string, args ...string) string {
	t.Helper()
	code, out, errOut := vigilRun(t, nil, "", append([]string{"--db", db}, args...)...)
	if code != exitOK {
		t.Fatalf("vigil --db %s %v: exit %d\n%s", db, args, code, errOut)
	}
	return out
}

func parityHash(n int) hashkind.Hash {
	b := make([]byte, 20)
	b[0], b[1], b[2] = 0xCD, byte(n>>8), byte(n)
	return hashkind.MustNew(hashkind.BTIH, b)
}

// The same observations stored in SQLite and in PostgreSQL give the same
// targets: 'vigil targets --json' (ids, scores, levels, endpoints, files,
// links, timelines), 'vigil target show --json' and 'vigil isp-request
// --format json' of every target, 'vigil stats --json' and the figures
// ('vigil stats --by month --format json', from the roll-ups and from the
// observations), an operation's selection and the outcome figures print the same bytes for either store (an ISP request's
// number and time aside).
func TestPostgresAndSQLiteGiveTheSameTargets(t *testing.T) {
	sqPath, pgURL := parityStores(t)
	// The figures: a year by month (read from the roll-ups the analysis
	// keeps) and a month by network (counted from the observations).
	figs := [][]string{{"stats", "--by", "month", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "json"},
		{"stats", "--by", "month", "--group", "network", "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json"}}
	commands := append([][]string{{"targets", "--json", "--limit", "1000"}, {"stats", "--json"}}, figs...)
	// An operation's selection (the target list's filters, volume
	// included: a dry run, which keeps nothing and has no time), and the
	// outcome figures.
	commands = append(commands, []string{"operation", "create", "--name", "parity", "--dry-run", "--json", "--min-files", "2"},
		[]string{"operation", "create", "--name", "parity", "--dry-run", "--json", "--level", "complete", "--network", "bittorrent", "--limit", "5"},
		[]string{"stats", "--outcomes", "--format", "json"})
	list := vigilOn(t, sqPath, commands[0]...)
	var ids []struct{ ID string }
	if err := json.Unmarshal([]byte(list), &ids); err != nil || len(ids) < 10 {
		t.Fatalf("targets --json on SQLite: %d targets, %v; want 10 or more to compare\n%s", len(ids), err, list)
	}
	for _, id := range ids {
		commands = append(commands, []string{"target", "show", id.ID, "--json"},
			[]string{"isp-request", "--target", id.ID, "--case", "2026/0001", "--format", "json"})
	}
	// An ISP request's own number, time and retention cutoff are of the
	// moment it is made.
	made := regexp.MustCompile(`"(id": "ISP-|created": "|cutoff": ")[^"]*"`)
	var links, timeline, rows int
	for _, args := range commands {
		s, p := vigilOn(t, sqPath, args...), vigilOn(t, pgURL, args...)
		s, p = made.ReplaceAllString(s, `"$1"`), made.ReplaceAllString(p, `"$1"`)
		if s != p {
			t.Errorf("vigil %s differs between SQLite and PostgreSQL:\n%s", strings.Join(args, " "), firstDiff(s, p))
		}
		var d struct{ Links, Timeline []json.RawMessage }
		if args[0] == "target" {
			if err := json.Unmarshal([]byte(s), &d); err != nil {
				t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
			}
		}
		links, timeline = links+len(d.Links), timeline+len(d.Timeline)
		if args[0] == "isp-request" {
			rows += strings.Count(s, `"sensor_address"`)
		}
	}
	if links == 0 || timeline == 0 || rows == 0 {
		t.Fatalf("the targets show %d links, %d timeline entries and %d ISP rows: the comparison proves too little", links, timeline, rows)
	}
	for _, args := range figs {
		var rep struct {
			Method string
			Rows   []struct{ Observations int64 }
		}
		if err := json.Unmarshal([]byte(vigilOn(t, pgURL, args...)), &rep); err != nil {
			t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
		}
		var n int64
		for _, r := range rep.Rows {
			n += r.Observations
		}
		if n == 0 {
			t.Fatalf("vigil %s (%s) counts no observation: the comparison proves too little", strings.Join(args, " "), rep.Method)
		}
	}
}

// firstDiff shows where a and b first differ, with some context.
func firstDiff(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(i-300, 0)
	return fmt.Sprintf("at byte %d:\nsqlite:   …%s…\npostgres: …%s…", i, a[lo:min(i+200, len(a))], b[lo:min(i+200, len(b))])
}

// Accounts, tokens and the audit trail on PostgreSQL from the command
// line: agency, user and token commands, a signed checkpoint, and 'audit
// verify' finding a record changed behind Vigil's back (the append-only
// trigger dropped first, as an attacker with the database's owner would).
func TestAccountAndAuditCommandsOnPostgres(t *testing.T) {
	db := postgresDB(t)
	env := map[string]string{"VIGIL_DB": db, "USER": "tester"}
	mustRun(t, env, "", "agency", "import", "--rules", "example:france")
	if code, _, errOut := vigilRun(t, env, "", "agency", "add", "--id", "fr-ofmin", "--name", "again"); code != exitRejected || !strings.Contains(errOut, "already exists") {
		t.Fatalf("agency add of an existing id: exit %d %s", code, errOut)
	}
	mustRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-ofmin", "--role", "analyst", "--name", "svc")
	if code, _, _ := vigilRun(t, env, "a long enough password\n", "user", "add", "--agency", "fr-ofmin", "--role", "analyst", "--name", "svc"); code != exitRejected {
		t.Fatalf("user add of an existing name: exit %d", code)
	}
	if out := mustRun(t, env, "", "user", "list"); !strings.Contains(out, "svc") || !strings.Contains(out, "fr-ofmin") {
		t.Fatalf("user list:\n%s", out)
	}
	tok := strings.TrimSpace(mustRun(t, env, "", "token", "create", "--user", "svc", "--expires", "90d", "--label", "ci"))
	ctx := context.Background()
	dsn, cfg, err := postgresConfig(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := access.New(st, &audit.Log{Store: st}, access.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := svc.TokenPrincipal(ctx, tok, ""); err != nil || p.Name != "svc" {
		t.Fatalf("the printed token does not authenticate: %v", err)
	}
	if out := mustRun(t, env, "", "token", "list", "--user", "svc"); !strings.Contains(out, "ci") || strings.Contains(out, tok) {
		t.Fatalf("token list:\n%s", out)
	}
	mustRun(t, env, "", "token", "revoke", "--id", "1")
	if _, err := svc.TokenPrincipal(ctx, tok, ""); err == nil {
		t.Fatal("revoked token still authenticates")
	}
	keyFile := writeFile(t, t.TempDir(), "audit.key", randHex(t, 32)+"\n")
	pub := regexp.MustCompile(`public key ([0-9a-f]{64})`).FindStringSubmatch(mustRun(t, env, "", "audit", "checkpoint", "--key", keyFile))
	if pub == nil {
		t.Fatal("audit checkpoint printed no public key")
	}
	var v verifyJSON
	if out := mustRun(t, env, "", "audit", "verify", "--json", "--pubkey", pub[1]); json.Unmarshal([]byte(out), &v) != nil || !v.OK || v.Checkpoints != 1 {
		t.Fatalf("verify --json: %s", out)
	}
	raw, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	trail := pgx.Identifier{cfg.Schema, "audit"}.Sanitize()
	for _, q := range []string{`ALTER TABLE ` + trail + ` DISABLE TRIGGER audit_append_only`, `UPDATE ` + trail + ` SET object = 'user:someone' WHERE seq = 2`} {
		if _, err := raw.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := vigilRun(t, env, "", "audit", "verify")
	if code != exitRejected || !strings.Contains(errOut, "broken at seq 2 (changed)") {
		t.Fatalf("tampered: exit %d\n%s%s", code, out, errOut)
	}
}

// The pages' reads (webviews.Store) answer alike on both stores over the
// same observations, decisions and lists: the overview (at a UTC midnight,
// from the maintained counts, and at another time, from the targets), the
// list in every order and scope, searches, the newest observations, map
// points, the targets of endpoints at an instant, who may see which
// target, entry names and list versions with their differences.
func TestPostgresAndSQLiteAnswerThePagesAlike(t *testing.T) {
	sqPath, pgURL := parityStores(t)
	ctx := context.Background()
	for _, db := range []string{sqPath, pgURL} {
		mustRun(t, nil, "", "--db", db, "targets", "--limit", "1")
		mustRun(t, nil, "", "--db", db, "target", "share", "T-000003-89", "--agency", "fr-versailles", "--why", "seen there too")
		mustRun(t, nil, "", "--db", db, "target", "share", "T-000005-83", "--agency", "fr-lyon", "--assign", "--why", "hand-off")
	}
	sq, err := sqlite.Open(ctx, sqPath, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	dsn, cfg, err := postgresConfig(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := postgres.Open(ctx, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	for v, n := range []int{5, 7} {
		var es []watchlist.Entry
		for i := v; i < n; i++ {
			es = append(es, watchlist.Entry{Hash: parityHash(i), Name: fmt.Sprintf("lab-file-%d-v%d", i, v), Category: "1", Size: -1})
		}
		for _, st := range []store.Store{sq, pg} {
			if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: es}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []string
	list, _, err := sq.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 1000})
	if err != nil || len(list) < 10 {
		t.Fatalf("SQLite targets: %d, %v", len(list), err)
	}
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	scopes := []analysis.Scope{analysis.AllAgencies, {Agencies: []string{"fr-lyon"}}, {Agencies: []string{"fr-lyon", "fr-versailles"}},
		{Agencies: []string{"fr-nobody"}}}
	midnight := time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)
	eps := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.0:6881"), netip.MustParseAddrPort("203.0.113.11:6882"),
		netip.MustParseAddrPort("[2001:db8:4::2]:6885"), netip.MustParseAddrPort("192.0.2.1:1")}
	at := []time.Time{midnight.Add(-3 * 24 * time.Hour), midnight, midnight, midnight}
	type ask struct {
		what string
		call func(st backend) (any, error)
	}
	var asks []ask
	add := func(what string, call func(st backend) (any, error)) { asks = append(asks, ask{what, call}) }
	for _, sc := range scopes {
		for _, since := range []time.Time{{}, midnight, midnight.Add(5 * time.Hour)} {
			add(fmt.Sprintf("Overview(%v, %v)", sc, since), func(st backend) (any, error) {
				ov, err := st.Overview(ctx, sc, since)
				if ov != nil { // in no order (the page sorts them)
					slices.SortFunc(ov.Places, func(a, b webviews.PlaceStat) int { return strings.Compare(a.Subdivision, b.Subdivision) })
				}
				return ov, err
			})
		}
		add(fmt.Sprintf("CountTargets(%v)", sc), func(st backend) (any, error) { return st.CountTargets(ctx, sc) })
		for _, sort := range []string{"", "last_seen", "first_seen", "files", "endpoints"} {
			for _, q := range []analysis.TargetQuery{{Limit: 5}, {Limit: 5, Offset: 3}, {Since: midnight, Limit: 50}, {Network: "ed2k", MinLevel: observe.Complete}} {
				q.Scope, q.Sort = sc, sort
				add(fmt.Sprintf("WebTargets(%+v)", q), func(st backend) (any, error) {
					l, n, err := st.WebTargets(ctx, q, true)
					return []any{l, n}, err
				})
			}
		}
		for _, s := range []string{"T-000003-89", "198.51.100.0", "203.0.113.11:6882", parityHash(3).Hex(), "nothing"} {
			add(fmt.Sprintf("SearchTargets(%q, %v)", s, sc), func(st backend) (any, error) { return st.SearchTargets(ctx, s, sc, 0) })
		}
		add(fmt.Sprintf("RecentObservations(%v)", sc), func(st backend) (any, error) { return st.RecentObservations(ctx, sc, 30, 0) })
		add(fmt.Sprintf("VisibleTargets(%v)", sc), func(st backend) (any, error) { return st.VisibleTargets(ctx, sc, append(ids, "T-000999-99")) })
	}
	add("PlacePoints", func(st backend) (any, error) { return st.PlacePoints(ctx, 0) })
	add("EndpointTargetsAt", func(st backend) (any, error) { return st.EndpointTargetsAt(ctx, eps, at, 0) })
	add("TargetAccess", func(st backend) (any, error) { return st.TargetAccess(ctx, ids) })
	add("EntryNames", func(st backend) (any, error) {
		return st.EntryNames(ctx, []hashkind.Hash{parityHash(4), parityHash(5), parityHash(6), parityHash(8)})
	})
	add("ListVersions", func(st backend) (any, error) {
		vs, err := st.ListVersions(ctx, "national")
		for i := range vs {
			vs[i].Imported = time.Time{} // each store's own clock
		}
		return vs, err
	})
	add("DiffListVersions", func(st backend) (any, error) { return st.DiffListVersions(ctx, "national", 0, 2, 0) })
	add("DiffListVersions 1..2", func(st backend) (any, error) { return st.DiffListVersions(ctx, "national", 1, 2, 0) })
	nonEmpty := 0
	for _, a := range asks {
		s, serr := a.call(sq)
		p, perr := a.call(pg)
		if serr != nil || perr != nil {
			t.Fatalf("%s: SQLite %v, PostgreSQL %v", a.what, serr, perr)
		}
		sj, _ := json.Marshal(s)
		pj, _ := json.Marshal(p)
		if string(sj) != string(pj) {
			t.Errorf("%s differs:\n%s", a.what, firstDiff(string(sj), string(pj)))
		}
		if len(sj) > 40 {
			nonEmpty++
		}
	}
	if nonEmpty < len(asks)/2 {
		t.Fatalf("only %d of %d answers hold anything: the comparison proves too little", nonEmpty, len(asks))
	}
}

// ?schema=NAME chooses the schema and is not passed to the driver (which
// would send it to the server as a setting); without it, the schema is
// vigil and the URL goes as given.
func TestPostgresURLSchema(t *testing.T) {
	for _, c := range []struct{ in, dsn, schema string }{
		{"postgres://vigil@db.example:5432/vigil", "postgres://vigil@db.example:5432/vigil", "vigil"},
		{"postgres://vigil@db.example:5432/vigil?schema=dep2&sslmode=require", "postgres://vigil@db.example:5432/vigil?sslmode=require", "dep2"},
	} {
		dsn, cfg, err := postgresConfig(c.in)
		if err != nil || dsn != c.dsn || cfg.Schema != c.schema {
			t.Errorf("postgresConfig(%q) = %q, schema %q, %v; want %q, %q", c.in, dsn, cfg.Schema, err, c.dsn, c.schema)
		}
	}
	if code, _, errOut := vigilRun(t, nil, "", "--db", "postgres://vigil@127.0.0.1:1/vigil?schema=Bad-Name", "targets"); code != exitRejected || !strings.Contains(errOut, "Schema") {
		t.Fatalf("a bad schema name: exit %d %s", code, errOut)
	}
}

// Attack (h-nul): peers whose extension handshake's "v" (the client name
// and version) holds a NUL byte, bytes that are not UTF-8, a bidi
// override, a backslash or a newline, each at two addresses on one
// listen port (a listen_port_client link quotes the client). Before,
// PostgreSQL refused the analysis's save of the link, and with it every
// save after it: 'vigil targets' on PostgreSQL failed, where SQLite
// listed the targets (the raw bytes in the link's evidence). Both stores
// must give the same targets, their links' text written by
// observe.EscapeText.
func TestPostgresAndSQLiteGiveTheSameTargetsOfHostileClientNames(t *testing.T) {
	t0 := time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC)
	names := []string{"ev\x00il\x00", "\xff\xfe", "rtl\u202egnp", `back\slash`, "line\nbreak\x1b[31m", "Transmission"}
	var obs []observe.Observation
	for d, name := range names {
		for i := range 4 {
			at := t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*2*time.Hour)
			ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(10*d + i%2)})
			o := observe.Observation{
				ID: observe.NewID(at), Sensor: observe.Sensor{ID: "bt-lab-1", Version: "test"}, Network: observe.NetBitTorrent,
				Method: observe.MethodPeerProbe, Time: at,
				Item:         observe.Item{Hash: parityHash(1 + i), Matched: []observe.Match{{List: "national", Category: "1"}}},
				Endpoint:     observe.Endpoint{IP: ip, Port: 40000 + uint16(d), Transport: "tcp", Local: netip.MustParseAddrPort("127.0.0.1:51413")},
				Client:       observe.Client{Name: name, Version: "3.00\x00" + name, ListenPort: 40000 + uint16(d)},
				Possession:   observe.Possession{Level: observe.Complete, PiecesHave: -1, PiecesTotal: -1},
				Place:        observe.Place{Country: "FR", Subdivisions: []string{"Île-de-France", "75"}, ASN: 64512, Org: "Lab Telecom"},
				Jurisdiction: observe.Jurisdiction{Agency: "fr-pp-dpj", Rule: "test"},
			}
			sum := sha256.Sum256([]byte(o.ID))
			o.Transcript.SHA256 = sum[:]
			obs = append(obs, o)
		}
	}
	sqPath, pgURL := parityStoresOf(t, obs)
	commands := [][]string{{"targets", "--json", "--limit", "1000"}}
	var ids []struct{ ID string }
	if err := json.Unmarshal([]byte(vigilOn(t, sqPath, commands[0]...)), &ids); err != nil || len(ids) < len(names) {
		t.Fatalf("targets --json on SQLite: %d targets, %v; want %d or more, one or two a client", len(ids), err, len(names))
	}
	for _, id := range ids {
		commands = append(commands, []string{"target", "show", id.ID, "--json"})
	}
	var evidence []string
	for _, args := range commands {
		s, p := vigilOn(t, sqPath, args...), vigilOn(t, pgURL, args...)
		if s != p {
			t.Errorf("vigil %s differs between SQLite and PostgreSQL:\n%s", strings.Join(args, " "), firstDiff(s, p))
		}
		var d struct {
			Links []struct{ Rule, Evidence, Reason string }
		}
		if args[0] == "target" {
			if err := json.Unmarshal([]byte(p), &d); err != nil {
				t.Fatalf("vigil %s: %v", strings.Join(args, " "), err)
			}
		}
		for _, l := range d.Links {
			if l.Rule == analysis.RuleListenPort {
				evidence = append(evidence, l.Evidence)
			}
			for _, r := range l.Evidence + l.Reason {
				if r == utf8.RuneError || (r != ' ' && !unicode.IsPrint(r)) {
					t.Errorf("vigil %s: link %q (%q) holds %U", strings.Join(args, " "), l.Evidence, l.Reason, r)
				}
			}
		}
	}
	slices.Sort(evidence)
	evidence = slices.Compact(evidence) // each link is shown with both its targets
	var want []string
	for d, name := range names {
		want = append(want, fmt.Sprintf("AS64512|%d|%s|%s", 40000+d, observe.EscapeText(name), observe.EscapeText("3.00\x00"+name)))
	}
	slices.Sort(want)
	if !slices.Equal(evidence, want) {
		t.Fatalf("listen-port links' evidence %q, want %q", evidence, want)
	}
}
