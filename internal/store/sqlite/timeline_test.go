package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

func exportAll(t *testing.T, st *Store) []observe.Observation {
	return storetest.Export(t, st, store.ObservationFilter{})
}

// timelineRows reads analysis_timeline with each row's observation
// address, as "endpoint/time/seq ip:port".
func timelineRows(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT t.endpoint, t.time_ns, t.seq, o.ip, o.port, o.time_ns FROM analysis_timeline t
		JOIN observations o ON o.seq = t.seq ORDER BY 1, 2, 3`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var ep, ns, seq, port, ons int64
		var ip string
		if err := rows.Scan(&ep, &ns, &seq, &ip, &port, &ons); err != nil {
			t.Fatal(err)
		}
		if ns != ons {
			t.Fatalf("timeline row %d/%d/%d has time %d, its observation %d", ep, ns, seq, ns, ons)
		}
		out = append(out, fmt.Sprintf("%d/%d/%d %s:%d", ep, ns, seq, ip, port))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The analysis puts every observation it folds on its endpoint's
// timeline, and migration 0006 builds the same rows for a file that the
// analysis processed before the table existed (from the index it drops).
func TestTimelineWrittenByAnalysisAndByMigration(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	r := rand.New(rand.NewPCG(6, 6))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 300 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), i%40) // 40 addresses, each seen again
		o.Endpoint.Port = uint16(6881 + i%40)
		// Schema 5 had no measured clock nor build: none is kept through
		// the rewind below (0013's migration test covers them).
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty = false, 0, 0
		o.Sensor.Commit, o.Sensor.Modified, o.Sensor.Config = "", false, ""
		if i%40 == 7 {
			// Stored as written (IPv4-mapped), keyed by the analysis unmapped.
			o.Endpoint.IP = netip.AddrFrom16(netip.MustParseAddr("127.0.0.7").As16())
		}
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs[:250]); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	eng, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// Fifty more, stored but not yet analysed.
	if err := st.InsertObservations(ctx, obs[250:]); err != nil {
		t.Fatal(err)
	}
	written := timelineRows(t, st.db.DB)
	if len(written) != 250 {
		t.Fatalf("the analysis wrote %d timeline rows for 250 observations", len(written))
	}
	// Each row's endpoint is the analysis endpoint of its observation's
	// address.
	eps := map[int64]string{}
	if err := eachRow(ctx, st.db, `SELECT id, ip, port FROM analysis_endpoints`, func(r *sql.Rows) error {
		var id, port int64
		var ip string
		if err := r.Scan(&id, &ip, &port); err != nil {
			return err
		}
		eps[id] = fmt.Sprintf("%s:%d", ip, port)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mapped := 0
	for _, w := range written {
		var ep, ns, seq int64
		var addr string
		fmt.Sscanf(w, "%d/%d/%d %s", &ep, &ns, &seq, &addr)
		if addr == "::ffff:127.0.0.7:6888" {
			mapped++
			addr = "127.0.0.7:6888"
		}
		if eps[ep] != addr {
			t.Fatalf("timeline row %q: endpoint %d is %s", w, ep, eps[ep])
		}
	}
	if mapped == 0 {
		t.Fatal("no IPv4-mapped observation on the timeline")
	}

	// Schema 5 had no marks nor sensor address: what it held is what must come back.
	if _, err := st.db.ExecContext(ctx, `UPDATE observations SET marks = NULL, sensor_address = NULL`); err != nil {
		t.Fatal(err)
	}
	before := exportAll(t, st)

	// The file as schema 5 left it: each row with its own sensor and place,
	// the two indexes, none of the new tables (nor 0007's columns, nor
	// 0008's marks, cleared above).
	undoLater(ctx, t, st.db)
	for _, q := range []string{
		`UPDATE observations SET (sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client,
			client_version, agency_rule) = (SELECT sensor, sensor_version, vantage, clock_source, network, method, transport, possession,
			client, client_version, agency_rule FROM facets WHERE id = facet_id),
			place = (SELECT place FROM places WHERE id = place_id)`,
		`DROP VIEW observation_rows`,
		`ALTER TABLE observations DROP COLUMN clock_uncertainty_ns`, // 0013's
		`ALTER TABLE observations DROP COLUMN facet_id`,
		`ALTER TABLE observations DROP COLUMN place_id`,
		`ALTER TABLE observations DROP COLUMN marks`,
		`ALTER TABLE observations DROP COLUMN sensor_address`,
		`DROP TABLE facets`,
		`DROP TABLE places`,
		`CREATE INDEX observations_endpoint ON observations (ip, port, time_ns)`,
		`CREATE INDEX observations_item ON observations (item_id)`,
		`DROP INDEX analysis_endpoint_files_hash`,
		`DROP TABLE analysis_timeline`,
		`DROP INDEX target_access_last`,
		`DROP INDEX target_access_first`,
		`ALTER TABLE target_access DROP COLUMN last_ns`,
		`ALTER TABLE target_access DROP COLUMN first_ns`,
		`DROP TABLE analysis_homes`,                // 0009's; its analysis_endpoints keeps the columns 0006 reads
		`ALTER TABLE agencies DROP COLUMN address`, // 0011's
		`ALTER TABLE leads DROP COLUMN keywords`,   // 0012's
		`ALTER TABLE leads DROP COLUMN networks`,
		`ALTER TABLE leads DROP COLUMN sources`,
		`DELETE FROM schema_migrations WHERE version >= 6`,
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var blank int
	if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM observations WHERE sensor = '' OR clock_source = '' OR network = '' OR possession = '' OR client = ''`).Scan(&blank); err != nil || blank != 0 {
		t.Fatalf("%d rows without their sensor in the schema 5 file (%v)", blank, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if after := exportAll(t, again); len(after) != len(before) {
		t.Fatalf("%d observations read back after migration 0006, %d before", len(after), len(before))
	} else {
		for i := range after {
			if !after[i].Equal(&before[i]) {
				t.Fatalf("observation %d read back after migration 0006:\n%+v\nbefore:\n%+v", i, after[i], before[i])
			}
		}
	}
	// Migration 0006 built the timeline from the index it dropped, but
	// 0009 clears everything the old rules derived and resets the
	// watermark: the analysis recomputes it all at its next start.
	if got := timelineRows(t, again.db.DB); len(got) != 0 {
		t.Fatalf("after migration 0009: %d timeline rows, want none until the analysis recomputes them", len(got))
	}
	var n int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name = 'observations_endpoint'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("observations_endpoint still there (%d, %v)", n, err)
	}
	// The analysis, restarted, adds the fifty it had not seen.
	eng, err = analysis.New(ctx, again, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	got := timelineRows(t, again.db.DB)
	if len(got) != 300 {
		t.Fatalf("after catching up: %d timeline rows, want 300", len(got))
	}
	for _, w := range written {
		if !slices.Contains(got, w) {
			t.Fatalf("the recomputed timeline lacks %q, which the first analysis wrote", w)
		}
	}
	// The access rows carry their target's times (migration 0007's rule,
	// which the analysis keeps).
	var rows, off int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*), COALESCE(SUM(a.last_ns != t.last_ns OR a.first_ns != t.first_ns), 0)
		FROM target_access a JOIN targets t ON t.id = a.target`).Scan(&rows, &off); err != nil || rows == 0 || off != 0 {
		t.Fatalf("after recomputation: %d access rows, %d with other times than their target's (%v)", rows, off, err)
	}
}

// AnalysisObservations reads in chunks, each its own query: every
// observation in the range comes once, in order, across the chunks'
// edges, and the range's ends hold.
func TestAnalysisObservationsInChunks(t *testing.T) {
	defer func(n int) { analysisChunk = n }(analysisChunk)
	analysisChunk = 7
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	r := rand.New(rand.NewPCG(8, 8))
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 50 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ after, upTo, want int64 }{{0, 0, 50}, {0, 49, 49}, {3, 21, 18}, {14, 14, 0}, {0, 7, 7}, {42, 0, 8}} {
		var seqs []int64
		if err := st.AnalysisObservations(ctx, c.after, c.upTo, func(seq int64, o *observe.Observation) error {
			if want := obs[seq-1].ID; o.ID != want {
				t.Fatalf("seq %d is %s, want %s", seq, o.ID, want)
			}
			seqs = append(seqs, seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if int64(len(seqs)) != c.want {
			t.Fatalf("(%d, %d]: %d observations, want %d", c.after, c.upTo, len(seqs), c.want)
		}
		for i, s := range seqs {
			if s != c.after+int64(i)+1 {
				t.Fatalf("(%d, %d]: seqs %v", c.after, c.upTo, seqs)
			}
		}
	}
}

// The INSERT's row binds obsArgs values and names as many columns as it
// has values.
func TestInsertRowShape(t *testing.T) {
	if n := strings.Count(obsRow, "?"); n != obsArgs {
		t.Fatalf("obsRow binds %d values, obsArgs is %d", n, obsArgs)
	}
	cols := len(strings.Split(obsColumns, ","))
	vals := len(strings.Split(strings.Trim(obsRow, "()"), ","))
	if cols != vals {
		t.Fatalf("obsColumns names %d columns, obsRow has %d values", cols, vals)
	}
	var o observe.Observation
	if n := len(obsValues(&o, 1, 1, 0, "[]")); n != obsArgs {
		t.Fatalf("obsValues gives %d values, obsRow binds %d", n, obsArgs)
	}
	if n := strings.Count(signedRow, "?"); n != signedArgs {
		t.Fatalf("signedRow binds %d values, signedArgs is %d", n, signedArgs)
	}
	if n := len(strings.Split(strings.Trim(signedRow, "()"), ",")); n != cols {
		t.Fatalf("obsColumns names %d columns, signedRow has %d values", cols, n)
	}
	if n := len(obsValues(&o, 1, 1, 0, "[]")) + len(appendChainValues(nil, &o, 1)); n != signedArgs {
		t.Fatalf("obsValues and appendChainValues give %d values, signedRow binds %d", n, signedArgs)
	}
}
