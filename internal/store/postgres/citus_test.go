package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/testenv"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// The tests in this file run against a real Citus coordinator, named by
// VIGIL_TEST_CITUS (docs/deployment.md, "Citus, run"); they skip without
// it (testenv part CITUS: Citus is not in Debian, it is built from
// source).

// citusDSN returns VIGIL_TEST_CITUS once it names a reachable server with
// the citus extension, or ends t through testenv.
func citusDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("VIGIL_TEST_CITUS")
	if dsn == "" {
		testenv.Missing(t, "CITUS", "VIGIL_TEST_CITUS is not set")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Missingf(t, "CITUS", "VIGIL_TEST_CITUS not reachable (%v)", err)
	}
	defer conn.Close(ctx)
	var version string
	if err := conn.QueryRow(ctx, `SELECT extversion FROM pg_extension WHERE extname = 'citus'`).Scan(&version); err != nil {
		testenv.Missingf(t, "CITUS", "VIGIL_TEST_CITUS names a server without the citus extension (%v)", err)
	}
	var workers int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_dist_node WHERE noderole = 'primary' AND shouldhaveshards AND isactive`).Scan(&workers); err != nil {
		t.Fatal(err)
	}
	t.Logf("Citus %s, %d node(s) holding shards", version, workers)
	return dsn
}

// openCitus opens a store on the Citus coordinator dsn, in a fresh
// schema dropped (on every node) when t ends; the migrations make every
// table a plain local table of the coordinator.
func openCitus(t *testing.T, dsn string) *Store {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	cfg := DefaultConfig()
	cfg.Schema = "vigil_citus_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("dropping schema %s: %v", cfg.Schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{cfg.Schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", cfg.Schema, err)
		}
	})
	st, err := Open(context.Background(), dsn, cfg)
	if err != nil {
		t.Fatalf("Open on Citus (schema %s): %v", cfg.Schema, err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// citusScript returns citus.sql's two parts, the second as statements.
func citusScript(t *testing.T) (string, []string) {
	t.Helper()
	b, err := os.ReadFile("citus.sql")
	if err != nil {
		t.Fatal(err)
	}
	part1, part2, ok := strings.Cut(string(b), "\n-- part 2")
	if !ok {
		t.Fatal(`citus.sql has no "-- part 2" line`)
	}
	var stmts []string
	_, part2, _ = strings.Cut(part2, "\n") // the rest of the "-- part 2" line
	for _, line := range strings.Split(part2, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			stmts = append(stmts, line)
		}
	}
	return part1, stmts
}

// applyCitusScript applies citus.sql to st: part 1 in one transaction,
// then part 2 (applyCitusPart2).
func applyCitusScript(t *testing.T, st *Store) {
	t.Helper()
	applyCitusPart1(t, st)
	applyCitusPart2(t, st)
}

func applyCitusPart1(t *testing.T, st *Store) {
	t.Helper()
	ctx := context.Background()
	part1, _ := citusScript(t)
	if err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, part1)
		return err
	}); err != nil {
		t.Fatalf("citus.sql, part 1, on Citus: %v", err)
	}
}

// applyCitusPart2 runs citus.sql's part 2 a statement at a time: each
// refusal is reported, and the rest still run.
func applyCitusPart2(t *testing.T, st *Store) {
	t.Helper()
	_, part2 := citusScript(t)
	for _, stmt := range part2 {
		if _, err := st.pool.Exec(context.Background(), stmt); err != nil {
			t.Errorf("citus.sql, part 2: Citus refused %s: %v", stmt, err)
		}
	}
}

// tableRows counts the rows of every table of st's schema but its
// partitions (a partitioned table counts theirs).
func tableRows(t *testing.T, st *Store) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	var names []string
	if err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		r, err := tx.Query(ctx, `SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(r, pgx.RowTo[string])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, name := range names {
		var n int64
		if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{name}.Sanitize()).Scan(&n); err != nil {
			t.Fatalf("counting %s: %v", name, err)
		}
		out[name] = n
	}
	return out
}

// citusPlacement is where Citus put a table: "distributed KEY",
// "reference", "citus-local" or "local" (not in Citus's metadata), and
// its co-location group.
type citusPlacement struct {
	placement  string
	colocation int
}

// citusPlacements reads pg_dist_partition for every table of st's schema
// that is not a partition, and checks each partition is placed as its
// parent.
func citusPlacements(t *testing.T, st *Store) map[string]citusPlacement {
	t.Helper()
	ctx := context.Background()
	rows, err := st.pool.Query(ctx, `SELECT c.relname, c.relispartition, COALESCE(pc.relname, ''),
			COALESCE(p.partmethod::text, ''), COALESCE(p.repmodel::text, ''),
			COALESCE(column_to_column_name(p.logicalrelid, p.partkey), ''), COALESCE(p.colocationid, 0)
		FROM pg_class c LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
		LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class pc ON pc.oid = i.inhparent
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]citusPlacement{}
	parts := map[string][2]string{} // partition: parent, placement
	for rows.Next() {
		var name, parent, method, repmodel, key string
		var isPart bool
		var p citusPlacement
		if err := rows.Scan(&name, &isPart, &parent, &method, &repmodel, &key, &p.colocation); err != nil {
			t.Fatal(err)
		}
		switch {
		case method == "h":
			p.placement = "distributed " + key
		case method == "n" && repmodel == "t":
			p.placement = "reference"
		case method == "n":
			p.placement = "citus-local"
		case method == "":
			p.placement = "local"
		default:
			p.placement = "method " + method
		}
		if isPart {
			parts[name] = [2]string{parent, p.placement + " " + strconv.Itoa(p.colocation)}
			continue
		}
		out[name] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name, pp := range parts {
		if parent := out[pp[0]]; pp[1] != parent.placement+" "+strconv.Itoa(parent.colocation) {
			t.Errorf("partition %s of %s is placed %s, its parent %s %d", name, pp[0], pp[1], parent.placement, parent.colocation)
		}
	}
	return out
}

// planGroup is the first table of the plan's co-location group of the
// distributed table name.
func planGroup(plan map[string]planRow, name string) string {
	for i := 0; plan[name].colocate != "" && i < len(plan); i++ {
		name = plan[name].colocate
	}
	return name
}

// On a real Citus coordinator, the migrations apply as the store applies
// them, citus.sql's first part leaves nothing Citus refuses and its second
// part places every table as the plan (docs/deployment.md) says: each
// distributed table on its key and in its co-location group, each
// reference table copied, each local table out of Citus's metadata; and
// the observations and their leaves are all still there, spread over the
// workers.
func TestCitusPlacesEveryTableAsPlanned(t *testing.T) {
	dsn := citusDSN(t)
	ctx := context.Background()
	plan, _ := citusPlan(t)
	st := openCitus(t, dsn)
	obs := make([]observe.Observation, 40)
	newBenchSource().fill(obs)
	for i := 0; i < len(obs); i += 4 {
		obs[i].ID = "lab-text-id-" + strconv.Itoa(i)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	// A watch-list too: reference tables with foreign keys among them,
	// whose rows the coordinator's truncate (citus.sql) must leave.
	var entries []watchlist.Entry
	for range 3 {
		b := make([]byte, hashkind.SHA1.Size())
		rand.Read(b)
		entries = append(entries, watchlist.Entry{Hash: hashkind.MustNew(hashkind.SHA1, b), Category: "1", Size: -1})
	}
	if _, err := st.ImportList(ctx, store.ListImport{Name: "national", Entries: entries}); err != nil {
		t.Fatal(err)
	}
	applyCitusPart1(t, st)
	before := tableRows(t, st)
	applyCitusPart2(t, st)
	if after := tableRows(t, st); !maps.Equal(after, before) {
		t.Errorf("rows of each table before citus.sql's part 2: %v; after: %v", before, after)
	}
	placed := citusPlacements(t, st)
	groups := map[string]int{}
	for name, p := range placed {
		groups[name] = p.colocation
	}
	for name, r := range plan {
		got, ok := placed[name]
		if !ok {
			if !r.toCome {
				t.Errorf("plan: %s is not a table of the schema", name)
			}
			continue
		}
		want := r.placement
		if want == "distributed" {
			want += " " + r.key
		}
		if got.placement != want {
			t.Errorf("Citus placed %s as %s; the plan says %s", name, got.placement, want)
		}
		if r.colocate != "" && got.colocation != groups[r.colocate] {
			t.Errorf("Citus put %s in co-location group %d, %s in %d; the plan co-locates them", name, got.colocation, r.colocate, groups[r.colocate])
		}
		delete(placed, name)
	}
	// Nor does Citus co-locate what the plan keeps apart (by default it
	// puts tables whose keys have one type in one group).
	for a, ra := range plan {
		for b, rb := range plan {
			if a < b && ra.placement == "distributed" && rb.placement == "distributed" && groups[a] != 0 &&
				groups[a] == groups[b] && planGroup(plan, a) != planGroup(plan, b) {
				t.Errorf("Citus put %s and %s in one co-location group (%d); the plan does not co-locate them", a, b, groups[a])
			}
		}
	}
	for name, p := range placed {
		t.Errorf("table %s (placed %s) has no row in the plan", name, p.placement)
	}
	var rows, leaves, nodes int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations), (SELECT COALESCE(sum(n), 0) FROM evidence_tiles),
		(SELECT count(DISTINCT p.groupid) FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) WHERE s.logicalrelid = 'observations'::regclass)`).Scan(&rows, &leaves, &nodes); err != nil {
		t.Fatal(err)
	}
	if rows != len(obs) || leaves != len(obs) {
		t.Errorf("on Citus after citus.sql: %d observations and %d leaves, want %d", rows, leaves, len(obs))
	}
	t.Logf("observations' shards on %d node(s); rows of each table kept: %v", nodes, before)
}

// citusStage runs fn in a transaction, rolled back after it, holding
// ingest's staging table filled with ten new observations (copies of
// stored rows with new UUIDs, signed by chain 1: ord n has chain_seq
// 2000-n, so that the order seq is drawn in shows).
func citusStage(t *testing.T, st *Store, fn func(tx pgx.Tx) error) error {
	t.Helper()
	ctx := context.Background()
	tx, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, stageTable); err != nil {
		t.Fatal(err)
	}
	sel := make([]string, len(stageColumns))
	for i, c := range stageColumns {
		switch c {
		case "ord":
			sel[i] = "row_number() OVER (ORDER BY seq)"
		case "uid":
			sel[i] = "gen_random_uuid()"
		case "id_text", "id_ns":
			sel[i] = "NULL"
		case "chain_ref":
			sel[i] = "1"
		case "chain_seq":
			sel[i] = "2000 - row_number() OVER (ORDER BY seq)"
		default:
			sel[i] = c
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pg_temp.`+stageName+` (`+strings.Join(stageColumns, ", ")+`) SELECT `+strings.Join(sel, ", ")+` FROM observations LIMIT 10`); err != nil {
		t.Fatal(err)
	}
	return fn(tx)
}

// What docs/deployment.md ("Citus, run") says Citus 13.2 does with the
// store's statements on the planned schema: the store's own ingest
// statements are refused (its dictionaries' INSERT, the batch's INSERT
// and its fallback), while the parts the plan relies on run: a
// data-modifying CTE that writes a local table from a distributed
// table's RETURNING, seq drawn on the coordinator in the INSERT's order,
// the batch's lookups written as anti-joins, an integer identity of a
// reference table drawn through the coordinator (and refused on a
// worker); and a data-modifying
// CTE runs before the rest of its statement, whose reads see its rows
// (in PostgreSQL they do not). A change of Citus or of the statements
// that changes any of this fails here: the page must say so.
func TestCitusRunsTheStatementsAsDocumented(t *testing.T) {
	dsn := citusDSN(t)
	ctx := context.Background()
	st := openCitus(t, dsn)
	obs := make([]observe.Observation, 20)
	newBenchSource().fill(obs)
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	applyCitusScript(t, st)
	more := make([]observe.Observation, 5)
	newBenchSource().fill(more)
	const dictRefused = "correlated subqueries are not supported when the FROM clause contains a CTE or subquery"
	fresh, err := Open(ctx, dsn, st.cfg) // empty caches: its dictionaries' INSERT runs
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.InsertObservations(ctx, more); err == nil || !strings.Contains(err.Error(), dictRefused) {
		t.Errorf("the store's ingest on the placed schema: %v; the page says Citus refuses its dictionaries' INSERT (%s)", err, dictRefused)
	}
	refused := []struct{ what, sql, err string }{
		{"the batch's INSERT", insertReturning(stagedInsertSQL(" ORDER BY ord"), elsewhereCTE, true), "complex joins are only supported when all distributed tables are co-located and joined on their distribution columns"},
		{"the batch's probe of its ids' windows alone", `SELECT count(*) FROM pg_temp.` + stageName + ` s` + storedProbeSQL, "cannot perform a lateral outer join when a distributed subquery references complex subqueries, CTEs or local tables"},
		{"the batch's fallback INSERT", insertReturning(fallbackInsertSQL(" ORDER BY ord"), elsewhereCTE, true), "complex joins are only supported when all distributed tables are co-located and joined on their distribution columns"},
		{"a lookup of stage rows as NOT EXISTS", `SELECT count(*) FROM pg_temp.` + stageName + ` s WHERE NOT EXISTS (SELECT 1 FROM observation_ids_elsewhere e WHERE e.id = COALESCE(s.uid::text, s.id_text))`, "direct joins between distributed and local tables are not supported"},
	}
	for _, r := range refused {
		err := citusStage(t, st, func(tx pgx.Tx) error { _, err := tx.Exec(ctx, r.sql); return err })
		if err == nil || !strings.Contains(err.Error(), r.err) {
			t.Errorf("%s on Citus: %v; the page says it is refused (%s)", r.what, err, r.err)
		}
	}
	// The chain runs' CTE, writing the local observation_chain_runs from
	// the distributed INSERT's RETURNING (the store's insertReturning).
	plain := `INSERT INTO observations (` + obsColumns + `) SELECT ` + obsColumns + ` FROM pg_temp.` + stageName + ` s ORDER BY ord`
	if err := citusStage(t, st, func(tx pgx.Tx) error {
		var n, first int64
		if err := tx.QueryRow(ctx, insertReturning(plain, "", true)).Scan(&n, &first); err != nil {
			return err
		}
		var runs, runFirst, runLast int64
		if err := tx.QueryRow(ctx, `SELECT count(*), min(first_seq), max(last_seq) FROM observation_chain_runs`).Scan(&runs, &runFirst, &runLast); err != nil {
			return err
		}
		var chainSeqs []int64
		if err := tx.QueryRow(ctx, `SELECT array_agg(chain_seq ORDER BY seq) FROM observations WHERE chain_ref = 1`).Scan(&chainSeqs); err != nil {
			return err
		}
		if n != 10 || first <= int64(len(obs)) || runs != 1 || runFirst != first || runLast != first+9 {
			t.Errorf("the chain runs' CTE on Citus: %d rows from seq %d, %d runs from %d to %d; want 10 from above %d, one run of them", n, first, runs, runFirst, runLast, len(obs))
		}
		if !slices.IsSortedFunc(chainSeqs, func(a, b int64) int { return cmp.Compare(b, a) }) {
			t.Errorf("seq drawn out of the INSERT's order on Citus: chain_seq by seq %v", chainSeqs)
		}
		return nil
	}); err != nil {
		t.Errorf("the chain runs' CTE on Citus: %v", err)
	}
	// The lookups as anti-joins run; a data-modifying CTE before them is
	// run first, and they see its rows (the CTE as migration 0027 wrote
	// it: the ids alone, before the INSERT).
	listIDs := `elsewhere AS (INSERT INTO observation_ids_elsewhere (id) SELECT COALESCE(s.uid::text, s.id_text) FROM pg_temp.` + stageName + ` s
		WHERE NOT COALESCE(` + windowSQL + `, false) ON CONFLICT DO NOTHING)`
	antiJoin := ` FROM pg_temp.` + stageName + ` s LEFT JOIN observation_ids_elsewhere e ON e.id = COALESCE(s.uid::text, s.id_text)
		LEFT JOIN observations o ON o.uid = s.uid WHERE e.id IS NULL AND o.uid IS NULL`
	for _, c := range []struct {
		with string
		want int64
	}{{"", 10}, {`WITH ` + listIDs + ` `, 0}} {
		var n int64
		if err := citusStage(t, st, func(tx pgx.Tx) error { return tx.QueryRow(ctx, c.with+`SELECT count(*)`+antiJoin).Scan(&n) }); err != nil || n != c.want {
			t.Errorf("the lookups as anti-joins on Citus, %q before them: %d rows not stored, %v; the page says %d", c.with, n, err, c.want)
		}
	}
	var id int64
	if err := st.pool.QueryRow(ctx, `INSERT INTO observation_places (key, place, agency, agency_rule) VALUES ('\x01', 'p', 'a', 'r') RETURNING id`).Scan(&id); err != nil {
		t.Errorf("an integer identity of a reference table, drawn through the coordinator: %v", err)
	}
	citusWorkerRefusesIntegerIdentity(t, dsn, st.cfg.Schema)
}

// citusWorkerRefusesIntegerIdentity checks, on the first worker of the
// coordinator dsn (same user and database), that an INSERT drawing an
// integer identity of a reference table is refused there.
func citusWorkerRefusesIntegerIdentity(t *testing.T, dsn, schema string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var host string
	var port int
	err = coord.QueryRow(ctx, `SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND shouldhaveshards AND groupid > 0 ORDER BY nodeid LIMIT 1`).Scan(&host, &port)
	coord.Close(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		t.Log("no worker: the worker's refusal of an integer identity not checked")
		return
	} else if err != nil {
		t.Fatal(err)
	}
	cfg.Host, cfg.Port = host, uint16(port)
	worker, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("worker %s:%d: %v", host, port, err)
	}
	defer worker.Close(ctx)
	const refused = "nextval(sequence) calls in worker nodes are not supported for column defaults of type int or smallint"
	_, err = worker.Exec(ctx, `INSERT INTO `+pgx.Identifier{schema, "observation_places"}.Sanitize()+` (key, place, agency, agency_rule) VALUES ('\x02', 'p', 'a', 'r')`)
	if err == nil || !strings.Contains(err.Error()+errDetail(err), refused) {
		t.Errorf("an integer identity of a reference table drawn on worker %s:%d: %v; the page says it is refused (%s)", host, port, err, refused)
	}
}

// errDetail is the DETAIL of a PostgreSQL error, or "".
func errDetail(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Detail
	}
	return ""
}
