package postgres

import (
	"context"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
)

// The Citus plan (docs/deployment.md, "Citus: where every table goes") is
// a table between <!-- citus-plan --> markers: a row per table, its
// placement (distributed, reference or local, "to come" for a table no
// migration creates yet; such a row may stay when its migration lands, its
// key is then checked like any other) and, when distributed, its key. These tests keep
// it from going stale: a new table without a row, a row whose table is
// gone, a key that is not a column, or a constraint or trigger Citus would
// refuse that the page does not name, fails them. No Citus is needed:
// the rules are Citus's documented ones, checked against the migrations'
// text and PostgreSQL's catalog. citus_test.go checks the plan against a
// real Citus coordinator, when VIGIL_TEST_CITUS names one.

const deploymentDoc = "../../../docs/deployment.md"

// planRow is one row of the plan.
type planRow struct {
	table     string
	placement string // distributed, reference, local
	toCome    bool
	key       string // distributed only
	newKey    bool   // the key is a column the schema does not have yet
	colocate  string // distributed only: the table it is co-located with, if the plan names one
}

var backticked = regexp.MustCompile("`([^`]+)`")

// citusPlan reads the plan's rows, and the whole Citus part of the page
// (from the plan's heading to the end) for the names it must mention.
func citusPlan(t *testing.T) (map[string]planRow, string) {
	t.Helper()
	b, err := os.ReadFile(deploymentDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "<!-- citus-plan -->")
	end := strings.Index(doc, "<!-- /citus-plan -->")
	if start < 0 || end < start {
		t.Fatalf("%s has no <!-- citus-plan --> ... <!-- /citus-plan --> table", deploymentDoc)
	}
	rows := map[string]planRow{}
	for _, line := range strings.Split(doc[start:end], "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 6 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		name := backticked.FindStringSubmatch(cells[1])
		placement := strings.TrimSpace(cells[2])
		r := planRow{table: name[1], toCome: strings.Contains(placement, "to come")}
		r.placement, _, _ = strings.Cut(placement, ",")
		if r.placement == "distributed" {
			k := backticked.FindStringSubmatch(cells[3])
			if k == nil {
				t.Errorf("plan: distributed table %s names no key", r.table)
				continue
			}
			r.key, r.newKey = k[1], strings.Contains(cells[3], "(new)")
			if c := backticked.FindStringSubmatch(cells[4]); c != nil {
				r.colocate = c[1]
			}
		}
		if !slices.Contains([]string{"distributed", "reference", "local"}, r.placement) {
			t.Errorf("plan: table %s: placement %q is none of distributed, reference, local", r.table, placement)
		}
		if _, dup := rows[r.table]; dup {
			t.Errorf("plan: table %s has two rows", r.table)
		}
		rows[r.table] = r
	}
	return rows, doc[strings.LastIndex(doc[:start], "\n### "):]
}

var (
	createTable = regexp.MustCompile(`(?is)CREATE TABLE (?:IF NOT EXISTS )?(\w+) \((.*?)\n\)(?: PARTITION BY [^;]*)?;`)
	dropTable   = regexp.MustCompile(`(?m)^DROP TABLE (?:IF EXISTS )?(\w+);`)
	addColumn   = regexp.MustCompile(`(?i)ALTER TABLE (\w+) ADD COLUMN (?:IF NOT EXISTS )?(\w+)`)
	columnLine  = regexp.MustCompile(`^\s*(\w+)\s+\w`)
)

// migrationTables reads every table the PostgreSQL migrations create, with
// its columns.
func migrationTables(t *testing.T) map[string][]string {
	t.Helper()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]string{}
	for _, m := range ms {
		sql := m.SQL
		for _, c := range createTable.FindAllStringSubmatch(sql, -1) {
			var cols []string
			for _, line := range strings.Split(c[2], "\n") {
				col := columnLine.FindStringSubmatch(line)
				if col == nil || slices.Contains([]string{"PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "CONSTRAINT"}, strings.ToUpper(col[1])) {
					continue
				}
				cols = append(cols, col[1])
			}
			tables[c[1]] = cols
		}
		for _, a := range addColumn.FindAllStringSubmatch(sql, -1) {
			tables[a[1]] = append(tables[a[1]], a[2])
		}
		for _, d := range dropTable.FindAllStringSubmatch(sql, -1) {
			delete(tables, d[1]) // a later migration's (0022 dropped analysis_timeline)
		}
	}
	if len(tables) == 0 {
		t.Fatal("no CREATE TABLE found in the migrations")
	}
	return tables
}

func TestCitusPlanCoversEveryTable(t *testing.T) {
	plan, _ := citusPlan(t)
	tables := migrationTables(t)
	for name, cols := range tables {
		r, ok := plan[name]
		switch {
		case !ok:
			t.Errorf("table %s (a migration creates it) has no row in the Citus plan of %s: say where it goes and why", name, deploymentDoc)
		case r.placement == "distributed" && !r.newKey && !slices.Contains(cols, r.key):
			t.Errorf("table %s: the plan's key %s is not one of its columns %v (mark a new column \"(new)\")", name, r.key, cols)
		case r.placement == "distributed" && r.newKey && slices.Contains(cols, r.key):
			t.Errorf("table %s: the plan's key %s is marked new but the table has it", name, r.key)
		}
	}
	for name, r := range plan {
		if _, ok := tables[name]; !ok && !r.toCome {
			t.Errorf("the Citus plan has a row for %s, which no migration creates (mark it \"to come\" or drop it)", name)
		}
	}
}

// citusRefusals lists, from the catalog of a schema the migrations made,
// what Citus would refuse under plan (its documented rules): a unique
// index or primary key of a distributed table without the table's key; a
// foreign key from a distributed table that is not to a reference table or
// to a co-located table on both keys, or from a reference table to
// anything but a reference table; a trigger on a distributed or reference
// table. Each is named by the index, constraint or trigger.
func citusRefusals(t *testing.T, st *Store, plan map[string]planRow) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	placement := func(table string) string { return plan[table].placement }
	uniq, err := st.pool.Query(ctx, `SELECT c.relname, i.relname, ARRAY(SELECT a.attname::text FROM unnest(x.indkey) k JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k)
		FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
		WHERE x.indisunique AND c.relnamespace = current_schema()::regnamespace ORDER BY 2`)
	if err != nil {
		t.Fatal(err)
	}
	for uniq.Next() {
		var table, index string
		var cols []string
		if err := uniq.Scan(&table, &index, &cols); err != nil {
			t.Fatal(err)
		}
		if r := plan[table]; r.placement == "distributed" && !slices.Contains(cols, r.key) {
			out = append(out, index)
		}
	}
	if err := uniq.Err(); err != nil {
		t.Fatal(err)
	}
	fks, err := st.pool.Query(ctx, `SELECT conname, conrelid::regclass::text, confrelid::regclass::text,
			ARRAY(SELECT a.attname::text FROM unnest(conkey) k JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k),
			ARRAY(SELECT a.attname::text FROM unnest(confkey) k JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k)
		FROM pg_constraint WHERE contype = 'f' AND connamespace = current_schema()::regnamespace ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for fks.Next() {
		var name, from, to string
		var fromCols, toCols []string
		if err := fks.Scan(&name, &from, &to, &fromCols, &toCols); err != nil {
			t.Fatal(err)
		}
		ok := true
		switch placement(from) {
		case "distributed":
			ok = placement(to) == "reference" || placement(to) == "distributed" &&
				slices.Contains(fromCols, plan[from].key) && slices.Contains(toCols, plan[to].key)
		case "reference":
			ok = placement(to) == "reference"
		case "local":
			ok = placement(to) == "local"
		}
		if !ok {
			out = append(out, name)
		}
	}
	if err := fks.Err(); err != nil {
		t.Fatal(err)
	}
	trg, err := st.pool.Query(ctx, `SELECT c.relname, g.tgname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
		WHERE NOT g.tgisinternal AND c.relnamespace = current_schema()::regnamespace ORDER BY 2`)
	if err != nil {
		t.Fatal(err)
	}
	for trg.Next() {
		var table, name string
		if err := trg.Scan(&table, &name); err != nil {
			t.Fatal(err)
		}
		if p := placement(table); p == "distributed" || p == "reference" {
			out = append(out, name)
		}
	}
	if err := trg.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCitusPlanNamesWhatCitusRefuses(t *testing.T) {
	requirePostgres(t)
	plan, section := citusPlan(t)
	st := openTest(t, DefaultConfig())
	refused := citusRefusals(t, st, plan)
	if len(refused) == 0 {
		t.Fatal("no refusal found: the catalog queries read nothing (today's schema has several)")
	}
	for _, name := range refused {
		if !strings.Contains(section, "`"+name+"`") {
			t.Errorf("Citus would refuse %s under the plan, and %s does not name it (say what must change)", name, deploymentDoc)
		}
	}
	t.Logf("refused under the plan: %v", refused)
}

var citusCall = regexp.MustCompile(`SELECT create_(distributed|reference)_table\('(\w+)'(?:, '(\w+)')?`)

// citus.sql's first part, applied to a store holding observations of both
// kinds of id and their leaves, leaves nothing Citus would refuse under
// the plan, and keeps every observation and leaf; its second part places
// every table as the plan does.
func TestCitusSchemaScript(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	plan, _ := citusPlan(t)
	b, err := os.ReadFile("citus.sql")
	if err != nil {
		t.Fatal(err)
	}
	part1, part2, ok := strings.Cut(string(b), "\n-- part 2")
	if !ok {
		t.Fatal(`citus.sql has no "-- part 2" line`)
	}
	st := openTest(t, DefaultConfig())
	obs := make([]observe.Observation, 20)
	newBenchSource().fill(obs)
	for i := 0; i < len(obs); i += 4 {
		obs[i].ID = "lab-text-id-" + strconv.Itoa(i)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	tx, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, part1); err != nil {
		t.Fatalf("citus.sql, part 1: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if refused := citusRefusals(t, st, plan); len(refused) > 0 {
		t.Errorf("after citus.sql's part 1, Citus would still refuse %v", refused)
	}
	// The leaves are in evidence_tiles (migration 0021), which stays
	// local; evidence_log's rows (none here) join their observation on
	// the key.
	var rows, keyed, leaves, oldLeaves, oldKeyed int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations), (SELECT count(DISTINCT uid) FROM observations),
		(SELECT COALESCE(sum(n), 0) FROM evidence_tiles),
		(SELECT count(*) FROM evidence_log), (SELECT count(*) FROM evidence_log e JOIN observations o ON o.uid = e.obs_uid AND o.seq = e.obs_seq)`).Scan(&rows, &keyed, &leaves, &oldLeaves, &oldKeyed); err != nil {
		t.Fatal(err)
	}
	if rows != len(obs) || keyed != len(obs) || leaves != len(obs) || oldKeyed != oldLeaves {
		t.Errorf("after part 1: %d observations with %d distinct keys, %d leaves, %d evidence_log rows of which %d joined on the key; want %d, %d, %d and all", rows, keyed, leaves, oldLeaves, oldKeyed, len(obs), len(obs), len(obs))
	}
	placed := map[string]string{}
	for _, c := range citusCall.FindAllStringSubmatch(part2, -1) {
		placed[c[2]] = c[1] + " " + c[3]
	}
	for name, r := range plan {
		want := ""
		switch r.placement {
		case "distributed":
			want = "distributed " + r.key
		case "reference":
			want = "reference "
		}
		if r.toCome {
			continue
		}
		if placed[name] != want {
			t.Errorf("citus.sql places %s as %q, the plan as %q", name, placed[name], want)
		}
		delete(placed, name)
	}
	for name := range placed {
		if !plan[name].toCome {
			t.Errorf("citus.sql places %s, which has no row in the plan", name)
		}
	}
}
