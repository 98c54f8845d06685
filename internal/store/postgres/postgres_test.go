package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/access/accesstest"
	"github.com/vigil-oss/vigil/internal/alerts/alertstest"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/analysis/analysistest"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/audit/audittest"
	"github.com/vigil-oss/vigil/internal/casework/casetest"
	"github.com/vigil-oss/vigil/internal/figures/figurestest"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

const defaultTestDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// testDSN is the server the tests use: VIGIL_TEST_POSTGRES, or the local
// service CI provides.
func testDSN() string {
	if dsn := os.Getenv("VIGIL_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return defaultTestDSN
}

var (
	reachOnce sync.Once
	reachErr  error
	reachAddr string
)

// requirePostgres skips t when the test server cannot be reached, naming
// it and how to start it; with VIGIL_REQUIRE_POSTGRES=1 (CI) it fails
// instead, so that a missing service cannot pass as green.
func requirePostgres(t testing.TB) {
	t.Helper()
	reachOnce.Do(func() {
		cfg, err := pgx.ParseConfig(testDSN())
		if err != nil {
			reachErr, reachAddr = err, "VIGIL_TEST_POSTGRES"
			return
		}
		reachAddr = net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			reachErr = err
			return
		}
		conn.Close(ctx)
	})
	if reachErr != nil {
		testenv.Missing(t, "POSTGRES", "PostgreSQL not reachable at "+reachAddr+": start it with 'pg_ctlcluster --skip-systemctl-redirect 15 main start' or set VIGIL_TEST_POSTGRES ("+reachErr.Error()+")")
	}
}

// newSchema returns a fresh schema name and drops the schema when t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	requirePostgres(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "vigil_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testDSN())
		if err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	return schema
}

// openTest opens a store in a fresh schema, closed and dropped when t ends.
func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	cfg.Schema = newSchema(t)
	st, err := Open(context.Background(), testDSN(), cfg)
	if err != nil {
		t.Fatalf("Open(schema %s): %v", cfg.Schema, err)
	}
	t.Cleanup(func() { st.Close() }) // runs before the schema is dropped (cleanups run last-in first-out)
	return st
}

// openContract is openTest for the contract suites (the store's, the
// analysis's, the figures', the evidence log's, retention's) and the
// holds' tests: it compacts as VIGIL_TEST_PG_COMPACT says
// (testCompaction). The other tests, which read or change rows by SQL,
// open their stores all hot.
func openContract(t testing.TB, cfg Config) *Store {
	st := openTest(t, cfg)
	testCompaction(t, st)
	return st
}

// testCompaction sets st to compact its observations into blocks as
// VIGIL_TEST_PG_COMPACT says: "always" after every batch stored, "random"
// after about a third of them (seeded by the test's name), whatever the
// watermark and the time, so that every contract suite run through
// openTest reads observations from blocks and rows mixed (docs/deployment.md,
// "Observations in blocks": the three-way runs). Unset: all hot.
func testCompaction(t testing.TB, st *Store) {
	mode := os.Getenv("VIGIL_TEST_PG_COMPACT")
	opt := DefaultCompactOptions()
	opt.Settle, opt.Now, opt.ignoreWatermark = 0, time.Unix(0, 1<<62), true
	switch mode {
	case "":
	case "always":
		st.afterInsert = func(ctx context.Context) error { _, err := st.CompactObservations(ctx, opt); return err }
	case "random":
		h := fnv.New64a()
		h.Write([]byte(t.Name()))
		var mu sync.Mutex
		r := mrand.New(mrand.NewPCG(h.Sum64(), 30))
		st.afterInsert = func(ctx context.Context) error {
			mu.Lock()
			now := r.IntN(3) == 0
			mu.Unlock()
			if !now {
				return nil
			}
			_, err := st.CompactObservations(ctx, opt)
			return err
		}
	default:
		t.Fatalf("VIGIL_TEST_PG_COMPACT=%q: want always or random", mode)
	}
}

func TestContract(t *testing.T) {
	requirePostgres(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openContract(t, DefaultConfig()) })
}

// The analysis's contract (analysis.Views), driving the real Engine over
// the store.
func TestAnalysisContract(t *testing.T) {
	requirePostgres(t)
	analysistest.Run(t, func(t *testing.T) analysistest.Store { return openContract(t, DefaultConfig()) })
}

// The PostgreSQL store keeps the figures' contract (figures.Store, the
// roll-ups of migration 0011).
func TestFiguresContract(t *testing.T) {
	requirePostgres(t)
	figurestest.Run(t, func(t *testing.T) figurestest.Store { return openContract(t, DefaultConfig()) })
}

// The PostgreSQL store keeps the claims' contract (casework.Store,
// ProposalStore and CaseStore, migration 0012), two stores (two pools) on
// one schema standing for two services' processes.
func TestClaimsContract(t *testing.T) {
	requirePostgres(t)
	casetest.Run(t, func(t *testing.T) (casetest.Store, casetest.Store) {
		a := openTest(t, DefaultConfig())
		b, err := Open(context.Background(), testDSN(), a.cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}

// AnalysisSave sends its statements in batches: a save whose last batch
// fails (a link in a state the table refuses, after more than a batch of
// endpoints) stores nothing of itself, says what failed, and leaves the
// store as it was for the next save.
func TestAnalysisSaveIsAllOrNothingAcrossBatches(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var c analysis.Changes
	for i := range saveBatch + 10 {
		c.Endpoints = append(c.Endpoints, analysis.EndpointRow{ID: int64(i + 1), Home: 1, Target: "T-000001-94",
			Info: analysis.EndpointInfo{IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Port: uint16(1000 + i), FirstSeen: at, LastSeen: at}})
	}
	c.Decisions = []analysis.Decision{{At: at, By: "analyst-1", Why: "test", Kind: "note", Subject: "T-000001-94"}}
	c.Links = []analysis.LinkRow{{AID: 1, BID: 2, Link: analysis.Link{ID: 1, Rule: "peer_id", Evidence: "x", State: "bogus", At: at}}}
	c.Watermark = 5
	err := st.AnalysisSave(ctx, &c)
	if err == nil || !strings.Contains(err.Error(), "link 1 (peer_id x)") {
		t.Fatalf("AnalysisSave with a refused link: %v; want an error naming the link", err)
	}
	snap, err := st.AnalysisLoad(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Endpoints) != 0 || len(snap.Decisions) != 0 || snap.Watermark != 0 {
		t.Fatalf("after a failed save: %d endpoints, %d decisions, watermark %d; want nothing", len(snap.Endpoints), len(snap.Decisions), snap.Watermark)
	}
	c.Links[0].State = "active"
	c.Decisions[0].ID = 0
	if err := st.AnalysisSave(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if snap, err = st.AnalysisLoad(ctx); err != nil || len(snap.Endpoints) != saveBatch+10 || len(snap.Decisions) != 1 ||
		snap.Decisions[0].ID == 0 || c.Decisions[0].ID != snap.Decisions[0].ID || snap.Watermark != 5 {
		t.Fatalf("after the save again: %d endpoints, decisions %+v (written back %d), watermark %d, %v", len(snap.Endpoints),
			snap.Decisions, c.Decisions[0].ID, snap.Watermark, err)
	}
}

// The triggers work from any session, not only the store's (whose
// search_path is its schema): an administrator's psql writing a target,
// or trying to empty the trail, meets them as Vigil does.
func TestTriggersWorkOutsideTheStoresSearchPath(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sch := pgx.Identifier{st.cfg.Schema}.Sanitize()
	if _, err := conn.Exec(ctx, `INSERT INTO `+sch+`.targets (id, seq, agency, last_ns, first_ns, observations) VALUES ('T-000001-94', 1, 'fr-a', 1, 1, 3)`); err != nil {
		t.Fatalf("insert of a target from another session: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(SUM(targets), 0) FROM `+sch+`.web_target_days WHERE route = 'fr-a'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("day counts after the insert: %d, %v; want 1", n, err)
	}
	if _, err := conn.Exec(ctx, `TRUNCATE `+sch+`.audit`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("TRUNCATE of the trail from another session: %v; want refused", err)
	}
}

// The overview's day counts, kept by a statement-level trigger, equal a
// count of the live targets after inserts, upserts, score-only updates,
// hand-offs, merges, revivals and deletes of many rows a statement.
func TestDayCountsMatchTheTargets(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	const day = int64(86400e9)
	steps := []string{
		`INSERT INTO targets (id, seq, agency, country, networks, max_level, endpoints, observations, first_ns, last_ns)
			SELECT 'T-' || g, g, 'ag-' || (g % 3), 'FR', ',bittorrent,', g % 5, 1 + g % 3, g, g * ` + strconv.FormatInt(day/7, 10) + `, g * ` + strconv.FormatInt(day/3, 10) + `
			FROM generate_series(1, 300) g`,
		`UPDATE targets SET score = score + 1`,
		`UPDATE targets SET assigned = 'ag-x' WHERE seq % 7 = 0`,
		`UPDATE targets SET merged_into = 'T-1' WHERE seq % 11 = 0`,
		`INSERT INTO targets (id, seq, merged_into) SELECT 'T-' || g, g, NULL FROM generate_series(1, 400) g WHERE g % 22 = 0
			ON CONFLICT (id) DO UPDATE SET merged_into = NULL, observations = targets.observations + 1, last_ns = targets.last_ns + ` + strconv.FormatInt(day, 10),
		`DELETE FROM targets WHERE seq % 13 = 0`,
	}
	for _, q := range steps {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		d := strconv.FormatInt(day, 10)
		kept := `SELECT day, route, country, subdivision, networks, max_level, multi, targets, observations FROM web_target_days
			WHERE targets <> 0 OR observations <> 0`
		counted := `SELECT last_ns / ` + d + `, CASE WHEN assigned <> '' THEN assigned ELSE agency END, country, subdivision, networks,
			max_level, (endpoints > 1)::integer, COUNT(*), SUM(observations) FROM targets WHERE merged_into IS NULL GROUP BY 1, 2, 3, 4, 5, 6, 7`
		keptFirst := `SELECT day, route, targets FROM web_first_days WHERE targets <> 0`
		countedFirst := `SELECT first_ns / ` + d + `, CASE WHEN assigned <> '' THEN assigned ELSE agency END, COUNT(*)
			FROM targets WHERE merged_into IS NULL GROUP BY 1, 2`
		var diff int
		if err := st.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM ((`+kept+` EXCEPT `+counted+`) UNION ALL (`+counted+` EXCEPT `+kept+`)) x)
			+ (SELECT COUNT(*) FROM ((`+keptFirst+` EXCEPT `+countedFirst+`) UNION ALL (`+countedFirst+` EXCEPT `+keptFirst+`)) y)`).Scan(&diff); err != nil {
			t.Fatal(err)
		}
		if diff != 0 {
			t.Fatalf("after %.60s…: %d day-count rows differ from a count of the targets", q, diff)
		}
	}
}

// Accounts, sessions, tokens and identities (access.Store).
func TestAccessContract(t *testing.T) {
	requirePostgres(t)
	accesstest.Run(t, func(t *testing.T) access.Store { return openTest(t, DefaultConfig()) })
}

// The audit trail and its checkpoints (audit.Store, audit.BatchStore,
// audit.CheckpointStore).
func TestAuditContract(t *testing.T) {
	requirePostgres(t)
	audittest.Run(t, func(t *testing.T) audittest.Store { return openTest(t, DefaultConfig()) })
}

// The trail and its checkpoints refuse UPDATE, DELETE and TRUNCATE, from
// any connection, not only through the store's methods.
func TestAuditIsAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	if _, err := st.AppendAudit(ctx, audit.Record{Actor: "alice", Action: "target.view", Object: "T-000001-94"}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAuditCheckpoint(ctx, audit.Checkpoint{Seq: 1, Hash: []byte("h"), Time: time.Unix(1, 0), KeyID: "k", Sig: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit SET actor = 'mallory'`, `DELETE FROM audit`, `TRUNCATE audit`,
		`UPDATE audit_checkpoints SET sig = 'x'`, `DELETE FROM audit_checkpoints`, `TRUNCATE audit_checkpoints`} {
		if _, err := st.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	n := 0
	if err := st.AuditRecords(ctx, audit.Filter{}, func(r audit.Record) error {
		if r.Actor != "alice" {
			t.Errorf("record %d actor %q after refused writes", r.Seq, r.Actor)
		}
		n++
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("trail holds %d records, %v; want 1", n, err)
	}
}

// Multi-row INSERTs of three rows exercise the power-of-two remainder path
// on every batch; the contract must hold with them too.
func TestContractWithValuesInserts(t *testing.T) {
	requirePostgres(t)
	cfg := DefaultConfig()
	cfg.InsertMethod, cfg.ValuesChunk = InsertValues, 3
	storetest.Run(t, func(t *testing.T) store.Store { return openContract(t, cfg) })
}

func TestLogStoreContract(t *testing.T) {
	requirePostgres(t)
	storetest.RunLogStore(t, func(t *testing.T) storetest.LogStore { return openContract(t, DefaultConfig()) })
	cfg := DefaultConfig()
	cfg.InsertMethod, cfg.ValuesChunk = InsertValues, 3
	t.Run("ValuesInserts", func(t *testing.T) {
		storetest.RunLogStore(t, func(t *testing.T) storetest.LogStore { return openContract(t, cfg) })
	})
}

func migrationRows(t *testing.T, st *Store) (n, maxV int) {
	t.Helper()
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*), COALESCE(max(version), 0) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
		t.Fatal(err)
	}
	return n, maxV
}

// Processes started together (a sensor host's ingest and web services,
// say) must not race on the schema: without the advisory lock, CREATE
// SCHEMA IF NOT EXISTS, CREATE TABLE and the migrations collide and some
// Opens fail. Both when the schema is new and when a DBA created it empty.
func TestParallelOpensMigrateOnce(t *testing.T) {
	for _, precreate := range []bool{false, true} {
		name := map[bool]string{false: "new-schema", true: "empty-schema-exists"}[precreate]
		t.Run(name, func(t *testing.T) {
			schema := newSchema(t)
			if precreate {
				conn, err := pgx.Connect(context.Background(), testDSN())
				if err != nil {
					t.Fatal(err)
				}
				_, err = conn.Exec(context.Background(), `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize())
				conn.Close(context.Background())
				if err != nil {
					t.Fatal(err)
				}
			}
			const n = 8
			cfg := DefaultConfig()
			cfg.Schema = schema
			stores := make([]*Store, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					stores[i], errs[i] = Open(context.Background(), testDSN(), cfg)
				}()
			}
			close(start)
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Errorf("Open %d: %v", i, errs[i])
					continue
				}
				defer stores[i].Close()
			}
			if t.Failed() {
				return
			}
			if got, maxV := migrationRows(t, stores[0]); got != SchemaVersion() || maxV != SchemaVersion() {
				t.Fatalf("schema_migrations has %d rows up to %d, want %d", got, maxV, SchemaVersion())
			}
		})
	}
}

func TestOpenAppliesMigrationsOnce(t *testing.T) {
	st := openTest(t, DefaultConfig())
	cfg := DefaultConfig()
	cfg.Schema = st.cfg.Schema
	again, err := Open(context.Background(), testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if n, maxV := migrationRows(t, again); n != SchemaVersion() || maxV != SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, maxV, SchemaVersion())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	future := SchemaVersion() + 1
	if _, err := st.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'from-the-future.sql', 0)`, future); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Schema = st.cfg.Schema
	again, err := Open(ctx, testDSN(), cfg)
	if err == nil {
		again.Close()
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a schema at version %d: %v, want ErrSchemaTooNew", future, err)
	}
	if !strings.Contains(err.Error(), cfg.Schema) {
		t.Fatalf("error %q does not name the schema", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	h := hashkind.MustNew(hashkind.SHA1, []byte("synthetic-001.bin..."))
	if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: []watchlist.Entry{{Hash: h, Category: "1", Size: -1}}}); err != nil {
		t.Fatal(err)
	}
	o := storetest.Observation(mrand.New(mrand.NewPCG(1, 1)), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC), 1)
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	cfg := DefaultConfig()
	cfg.Schema = st.cfg.Schema
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatalf("reopening schema %s: %v", cfg.Schema, err)
	}
	defer again.Close()
	recs, err := again.Lookup(ctx, h)
	if err != nil || len(recs) != 1 || recs[0].Entry.Category != "1" {
		t.Fatalf("Lookup after reopening = %+v, %v; want the entry", recs, err)
	}
	got := exportAll(t, again)
	if len(got) != 1 || !got[0].Equal(&o) {
		t.Fatalf("observations after reopening = %+v, want %+v", got, o)
	}
}

func exportAll(t testing.TB, st *Store) []observe.Observation {
	return storetest.Export(t, st, store.ObservationFilter{})
}

func TestOpenRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
	}{
		{"schema-upper-case", func(c *Config) { c.Schema = "Vigil" }},
		{"schema-quote", func(c *Config) { c.Schema = `vigil"; DROP SCHEMA public; --` }},
		{"schema-pg", func(c *Config) { c.Schema = "pg_catalog" }},
		{"schema-empty", func(c *Config) { c.Schema = "" }},
		{"one-conn", func(c *Config) { c.MaxConns = 1 }},
		{"method", func(c *Config) { c.InsertMethod = "carrier-pigeon" }},
		{"chunk-too-big", func(c *Config) { c.ValuesChunk = maxChunk + 1 }},
		{"chunk-zero", func(c *Config) { c.ValuesChunk = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.edit(&cfg)
			// No server is needed: the config is refused before connecting.
			if st, err := Open(context.Background(), "postgres://postgres@127.0.0.1:1/none?connect_timeout=1", cfg); err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			} else if !strings.HasPrefix(err.Error(), "postgres: ") {
				t.Fatalf("error %q, want a config error", err)
			}
		})
	}
}

func TestOpenUnreachableNamesServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	st, err := Open(ctx, "postgres://postgres@127.0.0.1:1/vigildb?sslmode=disable&connect_timeout=2", DefaultConfig())
	if err == nil {
		st.Close()
		t.Fatal("Open of a server that is not there succeeded")
	}
	for _, want := range []string{"127.0.0.1:1", "vigildb", "vigil"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
}

func TestMigrationFilesAreNumberedWithoutGaps(t *testing.T) {
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || !strings.HasPrefix(ms[0].Name, "0001_") {
		t.Fatalf("migrations = %+v, want 0001_... first", ms)
	}
}

// A peer chooses its client name: a NUL or bytes that are not UTF-8 there
// must be stored exactly, not fail the batch (a poison pill for ingest).
func TestClientStringsFromPeerKeptExactly(t *testing.T) {
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(7, 7))
	at := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	o := storetest.Observation(r, at, 1)
	o.Client.Name, o.Client.Version = "evil\x00client\xff\xfe", "\x00"
	o.Item.Matched = []observe.Match{{List: "national", Category: "a\x00b"}} // json keeps \u0000 (jsonb would not)
	o2 := storetest.Observation(r, at.Add(time.Second), 2)
	o2.Client.Name, o2.Client.Version = "", ""
	want := []observe.Observation{o, o2}
	if err := st.InsertObservations(context.Background(), append([]observe.Observation(nil), want...)); err != nil {
		t.Fatal(err)
	}
	got := exportAll(t, st)
	if len(got) != 2 || !got[0].Equal(&want[0]) || !got[1].Equal(&want[1]) {
		t.Fatalf("exported %+v, want %+v", got, want)
	}
}

// Text PostgreSQL cannot hold, in a field Vigil itself sets, is refused by
// name before anything is written.
func TestTextPostgresCannotHoldIsRefusedByName(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(8, 8))
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(r, at, 1), storetest.Observation(r, at, 2)}
	obs[1].Jurisdiction.Rule = "rule\x00"
	err := st.InsertObservations(ctx, obs)
	if !errors.Is(err, observe.ErrInvalid) || !strings.Contains(err.Error(), "agency rule") || !strings.Contains(err.Error(), obs[1].ID) {
		t.Fatalf("InsertObservations with a NUL in a rule: %v, want ErrInvalid naming the field and observation", err)
	}
	if got := exportAll(t, st); len(got) != 0 {
		t.Fatalf("%d observations stored from a refused batch, want 0", len(got))
	}

	h := hashkind.MustNew(hashkind.MD5, []byte("synthetic-md5-16"))
	_, err = st.ImportList(ctx, store.ListImport{Name: "national", Entries: []watchlist.Entry{
		{Hash: h, Note: "bad \xff note", Pos: watchlist.Pos{File: "synthetic.csv", Line: 7}}}})
	if err == nil || !strings.Contains(err.Error(), "synthetic.csv line 7") || !strings.Contains(err.Error(), "note") {
		t.Fatalf("ImportList with invalid UTF-8 in a note: %v, want an error naming the line and field", err)
	}
	if ls, err := st.Lists(ctx); err != nil || len(ls) != 0 {
		t.Fatalf("Lists after a refused first import = %v, %v; want none", ls, err)
	}
}

// Batches that share new items, written at once in different orders,
// must all land (no deadlock surfaces, no item is added twice).
func TestConcurrentBatchesSharingNewItems(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(9, 9))
	at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	const items, writers, per = 40, 6, 200
	hashes := make([]hashkind.Hash, items)
	for i := range hashes {
		hashes[i] = storetest.Observation(r, at, i).Item.Hash
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		batch := make([]observe.Observation, per)
		for i := range batch {
			batch[i] = storetest.Observation(r, at.Add(time.Duration(w*per+i)*time.Millisecond), i)
			batch[i].Item.Hash = hashes[(i*(w+1)+w*7)%items]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- st.InsertObservations(ctx, batch)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var n, distinct int
	if err := st.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT (kind, hash)) FROM items`).Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != items || distinct != items {
		t.Fatalf("items has %d rows (%d distinct), want %d", n, distinct, items)
	}
	got := exportAll(t, st)
	if len(got) != writers*per {
		t.Fatalf("stored %d observations, want %d", len(got), writers*per)
	}
	for _, o := range got {
		if !o.Item.Hash.Kind().Valid() {
			t.Fatalf("observation %s has no item", o.ID)
		}
	}
}

// Batches of two ingests commit in the order of their seqs: a batch
// whose INSERT comes second waits until the first has committed, so that
// the analysis, which reads by seq and never goes back below its
// watermark, cannot pass the first batch for good.
func TestBatchesCommitInTheOrderOfTheirSeqs(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(4, 4))
	at := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	first := []observe.Observation{storetest.Observation(r, at, 1)}
	second := []observe.Observation{storetest.Observation(r, at.Add(time.Second), 2)}
	// The first batch, held open after its INSERT.
	tx, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var fresh map[hashKey]int64
	var freshChains map[string]int64
	var freshDicts [numDicts]map[string]int64
	refs, err := st.rowRefs(ctx, tx, first, &fresh, &freshChains, &freshDicts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.insertCopy(ctx, tx, first, refs, false); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- st.InsertObservations(ctx, second) }()
	key := uint64(st.seqLockKey())
	deadline := time.Now().Add(20 * time.Second)
	for waiting := 0; waiting == 0; {
		select {
		case err := <-done:
			t.Fatalf("the second batch committed (err %v) while the first, whose INSERT came first, was open", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the second batch neither committed nor waited for the first")
		}
		if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1`, int64(key>>32), int64(key&0xffffffff)).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seqs, _, err := st.AnalysisSeqs(ctx, []string{first[0].ID, second[0].ID})
	if err != nil || seqs[0] == 0 || seqs[1] <= seqs[0] {
		t.Fatalf("seqs %v %v: want the first batch's below the second's", seqs, err)
	}
}

// An id that is not a canonical UUID is kept as text, and never collides
// with a UUID of the same characters in other case.
func TestNonUUIDIDsKeptAsText(t *testing.T) {
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(10, 10))
	at := time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)
	a, b, c := storetest.Observation(r, at, 1), storetest.Observation(r, at.Add(time.Second), 2), storetest.Observation(r, at.Add(2*time.Second), 3)
	b.ID = strings.ToUpper(a.ID)
	c.ID = "sensor-bt-lab-1/000042"
	if err := st.InsertObservations(context.Background(), []observe.Observation{a, b, c}); err != nil {
		t.Fatal(err)
	}
	// Redelivered, both kinds are skipped (each has its own unique index).
	if err := st.InsertObservations(context.Background(), []observe.Observation{c, a}); err != nil {
		t.Fatal(err)
	}
	got := exportAll(t, st)
	if len(got) != 3 || got[0].ID != a.ID || got[1].ID != b.ID || got[2].ID != c.ID {
		t.Fatalf("ids = %v, want %s %s %s", got, a.ID, b.ID, c.ID)
	}
	var uids, texts int
	if err := st.pool.QueryRow(context.Background(), `SELECT count(uid), count(id_text) FROM observations`).Scan(&uids, &texts); err != nil {
		t.Fatal(err)
	}
	if uids != 1 || texts != 2 {
		t.Fatalf("%d uuid ids and %d text ids, want 1 and 2", uids, texts)
	}
}

// A list of many entries goes in by COPY; a new version that changes,
// removes and adds some reports and records each.
func TestLargeListNewVersion(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(11, 11))
	es := make([]watchlist.Entry, 20000)
	for i := range es {
		var b [20]byte
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		es[i] = watchlist.Entry{Hash: hashkind.MustNew(hashkind.SHA1, b[:]), Category: "1", Size: -1,
			Extra: map[string]string{"n": strconv.Itoa(i)}}
	}
	if rep, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: es}); err != nil || rep.Added != len(es) {
		t.Fatalf("first import: %+v, %v", rep, err)
	}
	next := append([]watchlist.Entry(nil), es[100:]...) // 100 removed
	for i := 0; i < 50; i++ {
		next[i].Category = "2" // 50 changed
	}
	next = append(next, es[:10]...) // 10 of the removed come straight back
	rep, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: next})
	if err != nil || rep.Version != 2 || rep.Added != 0 || rep.Removed != 90 || rep.Changed != 50 {
		t.Fatalf("second import: %+v, %v; want version 2, 90 removed, 50 changed", rep, err)
	}
	ev, err := st.History(ctx, es[100].Hash)
	if err != nil || len(ev) != 2 || ev[1].Action != "changed" || !strings.Contains(ev[1].Reason, `category "1" → "2"`) {
		t.Fatalf("history of a changed entry = %+v, %v", ev, err)
	}
	ls, _ := st.Lists(ctx)
	if len(ls) != 1 || ls[0].Entries != len(es)-90 {
		t.Fatalf("Lists = %+v, want %d entries", ls, len(es)-90)
	}
}

// An entry's extra fields may hold a NUL (they keep what the list had):
// the json column keeps it, where jsonb would refuse the import.
func TestEntryExtraWithNULRoundTrips(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	e := watchlist.Entry{Hash: hashkind.MustNew(hashkind.MD5, []byte("synthetic-md5-17")), Size: -1,
		Extra: map[string]string{"Comments": "a\x00b", "é": "\"quoted\""}}
	if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: []watchlist.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	recs, err := st.Lookup(ctx, e.Hash)
	if err != nil || len(recs) != 1 || !maps.Equal(recs[0].Entry.Extra, e.Extra) {
		t.Fatalf("Lookup = %+v, %v; want extra %q", recs, err, e.Extra)
	}
	if rep, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: []watchlist.Entry{e}}); err != nil || !rep.Unchanged {
		t.Fatalf("re-import = %+v, %v; want unchanged", rep, err)
	}
}

// Observations of the same time come out in the order of their batch,
// batches in the order they were stored, whichever way the store moved
// them (sorted or not).
func TestTiesComeOutInArrivalOrder(t *testing.T) {
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			r := mrand.New(mrand.NewPCG(12, 12))
			at := time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)
			var want []observe.Observation
			for b := 0; b < 3; b++ {
				batch := make([]observe.Observation, 700)
				for i := range batch {
					// Ids out of time order: they must not decide.
					batch[i] = storetest.Observation(r, at.Add(time.Duration(r.IntN(3))*time.Nanosecond), i)
				}
				if err := st.InsertObservations(context.Background(), batch); err != nil {
					t.Fatal(err)
				}
				want = append(want, batch...)
			}
			slices.SortStableFunc(want, func(a, b observe.Observation) int { return a.Time.Compare(b.Time) })
			got := exportAll(t, st)
			if len(got) != len(want) {
				t.Fatalf("exported %d, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].ID != want[i].ID {
					t.Fatalf("observation %d is %s, want %s (ties out of arrival order)", i, got[i].ID, want[i].ID)
				}
			}
		})
	}
}

func TestDistinctTimes(t *testing.T) {
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	mk := func(ns ...int) []observe.Observation {
		out := make([]observe.Observation, len(ns))
		for i, n := range ns {
			out[i].Time = at.Add(time.Duration(n))
		}
		return out
	}
	tests := []struct {
		name string
		obs  []observe.Observation
		want bool
	}{
		{"empty", nil, true},
		{"one", mk(5), true},
		{"increasing", mk(1, 2, 3), true},
		{"shuffled-distinct", mk(3, 1, 2), true},
		{"tie-adjacent", mk(1, 1, 2), false},
		{"tie-apart", mk(2, 1, 3, 2), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := distinctTimes(tt.obs); got != tt.want {
				t.Fatalf("distinctTimes = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b IN (?,?)`, `a = $1 AND b IN ($2,$3)`},
		{`x = '?' AND y = ? AND "q?" = ?`, `x = '?' AND y = $1 AND "q?" = $2`},
		{`'it''s ?' || ?`, `'it''s ?' || $1`},
	} {
		if got := rebind(c.in); got != c.want {
			t.Errorf("rebind(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A redelivered batch adds nothing, and the count says so, with COPY and
// with multi-row INSERTs.
func TestInsertCountsWhatIsNew(t *testing.T) {
	requirePostgres(t)
	for _, method := range []string{InsertCopy, InsertValues} {
		cfg := DefaultConfig()
		cfg.InsertMethod, cfg.ValuesChunk = method, 64
		st := openTest(t, cfg)
		ctx := context.Background()
		r := mrand.New(mrand.NewPCG(5, 6))
		at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
		var obs []observe.Observation
		for i := range 300 {
			obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
		}
		for _, c := range []struct {
			name string
			obs  []observe.Observation
			want int
		}{{"new", obs[:200], 200}, {"redelivered", obs[:200], 0}, {"half new", obs[100:300], 100}} {
			n, err := st.InsertObservationsCounted(ctx, c.obs)
			if err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("method %s, %s: %d added, want %d", method, c.name, n, c.want)
			}
		}
	}
}

// The PostgreSQL store keeps the alerts' contract (migration 0014), two
// stores (two pools) on one schema standing for two processes.
func TestAlertsContract(t *testing.T) {
	requirePostgres(t)
	alertstest.Run(t, func(t *testing.T) (alertstest.Store, alertstest.Store) {
		a := openTest(t, DefaultConfig())
		b, err := Open(context.Background(), testDSN(), a.cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a, b
	})
}
