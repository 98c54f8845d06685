package postgres

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack: since migration 0027 ingest looks an id up in its window (the
// time a UUIDv7 id carries, a second either side: one partition) and in
// observation_ids_elsewhere, where every row stored outside its window
// lists its id. A replayer picks the cases that lookup could miss: an id
// first stored outside its window (a forged time, a text id, a UUID of
// another version) then sent with its window's time or a third one, an id
// stored in its window then sent with another month's time, and the first
// copy stored by one insert method and the replay by the other (both must
// keep the list). Each id must be stored once.
func TestReplayedIDsOutsideTheirWindowsAreNotStoredTwice(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	v7 := func() string { return observe.NewID(at) }
	cases := []struct {
		name  string
		id    func() string
		times []time.Time // the first, then the replays'
	}{
		{"v7 in its window, then other months and seconds", v7,
			[]time.Time{at, at.AddDate(0, 2, 0), at.AddDate(0, -1, 0), at.Add(time.Second), at.Add(-time.Second - 1)}},
		{"v7 first another month, then its window", v7,
			[]time.Time{at.AddDate(0, 1, 0), at, at.Add(999 * time.Millisecond), at.AddDate(0, 2, 0)}},
		{"v7 first a second off, then its window", v7,
			[]time.Time{at.Add(time.Second), at, at.Add(-time.Second)}},
		{"v7 first before 1970, then its window", v7,
			[]time.Time{time.Unix(0, -5).UTC(), at}},
		{"v4 UUID", func() string { return "8f14e45f-ceea-467a-9a8e-a3c6b1d2e4f0" },
			[]time.Time{at, at.AddDate(0, 1, 0), at}},
		{"v7 layout with another variant", func() string { return "019ccffa-1c00-7abc-0abc-0123456789ab" },
			[]time.Time{at, at.AddDate(0, 3, 0)}},
		{"text id", func() string { return "sensor-7/observation/42" },
			[]time.Time{at, at.AddDate(0, 1, 0), at.Add(time.Hour)}},
		{"text id shaped as an upper-case UUIDv7", func() string { return "019CCFFA-1C00-7ABC-8ABC-0123456789AB" },
			[]time.Time{at, at.AddDate(0, 1, 0)}},
	}
	methods := [][2]string{{InsertCopy, InsertCopy}, {InsertValues, InsertCopy}, {InsertCopy, InsertValues}}
	for _, m := range methods {
		for _, c := range cases {
			t.Run(m[0]+" then "+m[1]+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				schema := newSchema(t)
				open := func(method string) *Store {
					cfg := DefaultConfig()
					cfg.Schema, cfg.InsertMethod = schema, method
					st, err := Open(ctx, testDSN(), cfg)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
					return st
				}
				first, replay := open(m[0]), open(m[1])
				r := rand.New(rand.NewPCG(27, 27))
				id := c.id()
				for k, when := range c.times {
					o := storetest.Observation(r, when, k)
					o.ID = id
					st := replay
					if k == 0 {
						st = first
					}
					if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
						t.Fatalf("insert %d at %s: %v", k, when, err)
					}
					// And in a batch of new observations, by COPY.
					o.Time = o.Time.Add(time.Millisecond)
					batch := []observe.Observation{storetest.Observation(r, at.Add(time.Minute), 100+k), o, storetest.Observation(r, at.Add(2*time.Minute), 200+k)}
					batch[2].ID = observe.NewID(at.AddDate(0, 0, -3)) // a new id outside its window
					if err := replay.InsertObservations(ctx, batch); err != nil {
						t.Fatalf("batch %d: %v", k, err)
					}
				}
				var rows, ids int64
				if err := replay.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT `+obsIDCol+`) FROM observations o`).Scan(&rows, &ids); err != nil {
					t.Fatal(err)
				}
				if want := int64(1 + 2*len(c.times)); rows != want || ids != want {
					t.Fatalf("%d rows for %d ids, want %d of each (a replayed id was stored twice)", rows, ids, want)
				}
				var got time.Time
				err := replay.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
					if o.ID == id {
						got = o.Time
					}
					return nil
				})
				if err != nil || !got.Equal(c.times[0]) {
					t.Fatalf("id %s reads back at %s (%v), want its first time %s", id, got, err, c.times[0])
				}
			})
		}
	}
}

// The id's time is read the same by ingest (idNS, for its stage) and by
// migration 0027 (vigil_uuid7_ns, for the rows stored before it): a row
// the migration took for one in its window must be found there by
// ingest's lookup.
func TestIDTimeReadAsTheMigrationReadsIt(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ids := []string{
		observe.NewID(time.Date(2026, 3, 10, 12, 0, 0, 123456789, time.UTC)),
		observe.NewID(time.Unix(0, 0)),
		observe.NewID(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),
		observe.NewID(time.Date(2255, 3, 14, 0, 0, 0, 0, time.UTC)), // past maxIDMillis
		observe.NewID(time.UnixMilli(maxIDMillis - 1)),
		observe.NewID(time.UnixMilli(maxIDMillis)),
		"8f14e45f-ceea-467a-9a8e-a3c6b1d2e4f0", // v4
		"019ccffa-1c00-7abc-0abc-0123456789ab", // v7 layout, variant 0
		"019ccffa-1c00-7abc-cabc-0123456789ab", // v7 layout, variant 110
		"019ccffa-1c00-6abc-8abc-0123456789ab", // v6
		"ffffffff-ffff-7fff-bfff-ffffffffffff",
		"00000000-0000-0000-0000-000000000000",
	}
	for _, id := range ids {
		uid, _ := idValues(id)
		want, ok := idNS(uid)
		var got *int64
		if err := st.pool.QueryRow(context.Background(), `SELECT vigil_uuid7_ns($1::uuid)`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if ok != (got != nil) || ok && *got != want {
			t.Errorf("id %s: vigil_uuid7_ns %v, idNS %d %v", id, deref(got), want, ok)
		}
	}
	if _, ok := idNS(pgtype.UUID{}); ok {
		t.Error("idNS of no UUID: a time")
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Migration 0027 lists the ids of the rows stored before it outside
// their windows, and only those: a replay of each, with its window's
// time, is refused after it.
func TestMigration0027ListsTheRowsOutsideTheirWindows(t *testing.T) {
	requirePostgres(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(27, 1))
	var obs []observe.Observation
	for i, when := range []time.Time{at, at.Add(time.Hour), at.AddDate(0, 1, 0), at.Add(-2 * time.Second)} {
		o := storetest.Observation(r, when, i)
		o.ID = observe.NewID(at) // in its window for the first two only
		if i == 1 {
			o.ID = observe.NewID(when)
		}
		obs = append(obs, o)
	}
	text := storetest.Observation(r, at, 9)
	text.ID = "sensor-7/observation/42"
	obs = append(obs, text)
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	runUndo(t, st, undo0027)
	again := reopen(t, st, cfg)
	var listed []string
	rows, err := again.pool.Query(ctx, `SELECT id FROM observation_ids_elsewhere ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		listed = append(listed, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{obs[2].ID, obs[3].ID, text.ID}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("listed after the migration: %q, want %q", listed, want)
	}
	for i := range obs {
		o := storetest.Observation(r, at, 20+i)
		o.ID = obs[i].ID
		if err := again.InsertObservations(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := again.pool.QueryRow(ctx, `SELECT count(*) FROM observations`).Scan(&n); err != nil || n != len(obs) {
		t.Fatalf("%d rows (%v) after replaying the %d observations stored before the migration, want %d", n, err, len(obs), len(obs))
	}
}

// The staged INSERT looks each id up in the partition of its id's time
// only (migration 0027), not in every monthly partition: with a year of
// partitions, the lookups in the others were most of its work. Read from
// the plan PostgreSQL ran (EXPLAIN ANALYZE): the partitions scanned.
func TestStagedInsertLooksInOnePartition(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.PreparePartitions(ctx, start, 11); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(27, 3))
	var stored []observe.Observation
	for m := range 12 {
		for k := range 3 {
			stored = append(stored, storetest.Observation(r, start.AddDate(0, m, 1).Add(time.Duration(k)*time.Hour), 10*m+k))
		}
	}
	if err := st.InsertObservations(ctx, stored); err != nil {
		t.Fatal(err)
	}
	var batch []observe.Observation
	for k := range 20 {
		batch = append(batch, storetest.Observation(r, time.Date(2026, 3, 12, 0, 0, k, 0, time.UTC), 200+k))
	}
	batch = append(batch, stored[7]) // a replay, refused
	var plan string
	err := st.writeTx(ctx, func(tx pgx.Tx) error {
		var f map[hashKey]int64
		var fc map[string]int64
		var fd [numDicts]map[string]int64
		refs, err := st.rowRefs(ctx, tx, batch, &f, &fc, &fd)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, stageTable); err != nil {
			return err
		}
		src := &copySource{obs: batch, refs: refs, row: make([]any, obsArgs+2)}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"pg_temp", stageName}, stageColumns, src); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+stagedInsertSQL(``)).Scan(&plan)
	})
	if err != nil {
		t.Fatal(err)
	}
	top, scanned := partitionsScanned(t, plan)
	if len(scanned) != 1 || !scanned["observations_p202603"] {
		t.Fatalf("partitions scanned by the INSERT's lookups: %v, want observations_p202603 alone", scanned)
	}
	if len(top.Plans) != 1 || top.Plans[0].Rows != 20 {
		t.Fatalf("the INSERT stored other than the 20 new rows (the replay refused): %+v", top)
	}
}

// planNode is a node of EXPLAIN (FORMAT JSON)'s plan.
// runUndo runs undo (an undoNNNN of partition_test.go) on st's schema:
// the store as a Vigil before those migrations left it.
func runUndo(t *testing.T, st *Store, undo []string) {
	t.Helper()
	for _, q := range undo {
		if _, err := st.pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// reopen closes st and opens its schema again with cfg (the migrations
// an undo took back run again), closed at the test's end.
func reopen(t *testing.T, st *Store, cfg Config) *Store {
	t.Helper()
	st.Close()
	again, err := Open(context.Background(), testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	return again
}

// partitionsScanned reads a plan of EXPLAIN (ANALYZE, FORMAT JSON): its
// top node, and the observations' partitions that a node scanned (ran at
// least once; the INSERT's own ModifyTable node is not a scan).
func partitionsScanned(t *testing.T, plan string) (planNode, map[string]bool) {
	t.Helper()
	var nodes []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	scanned := map[string]bool{}
	var walk func(n *planNode)
	walk = func(n *planNode) {
		if strings.HasPrefix(n.Relation, "observations_p") && n.Loops > 0 && n.Type != "ModifyTable" {
			scanned[n.Relation] = true
		}
		for i := range n.Plans {
			walk(&n.Plans[i])
		}
	}
	walk(&nodes[0].Plan)
	return nodes[0].Plan, scanned
}

type planNode struct {
	Type     string     `json:"Node Type"`
	Relation string     `json:"Relation Name"`
	Loops    int        `json:"Actual Loops"`
	Rows     int        `json:"Actual Rows"`
	Plans    []planNode `json:"Plans"`
}

// Attack (h-rev7): a row whose id lies outside its window and is not
// listed in observation_ids_elsewhere (written by an older Vigil still
// running while a newer one migrated, or into the table by hand) breaks
// migration 0027's invariant. The bus then redelivers that observation,
// same id and same time: the staged INSERT, which has no ON CONFLICT,
// ran into the unique index and failed the whole batch, every time it
// came back: ingest stopped on it for good (a poison batch). The batch
// must be stored (the replay skipped, as before 0027), and the id listed,
// so that the next replay of it is refused by the cheap check.
func TestUnlistedRowDoesNotPoisonABatch(t *testing.T) {
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			r := rand.New(rand.NewPCG(7, 7))
			at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			seed := storetest.Observation(r, at, 1)
			if err := st.InsertObservations(ctx, []observe.Observation{seed}); err != nil {
				t.Fatal(err)
			}
			// The row an older Vigil stored: a UUIDv7 of another month's
			// time, not listed.
			old := storetest.Observation(r, at.Add(time.Hour), 2)
			old.ID = observe.NewID(at.AddDate(0, -1, 0))
			if _, err := st.pool.Exec(ctx, `INSERT INTO observations (uid, time_ns, item_id, facet_id, place_id, matched_id, clock_id, ip, port)
				SELECT $1::uuid, $2, item_id, facet_id, place_id, matched_id, clock_id, ip, port FROM observations`, old.ID, old.Time.UnixNano()); err != nil {
				t.Fatal(err)
			}
			fresh := storetest.Observation(r, at.Add(2*time.Hour), 3)
			added, err := st.InsertObservationsCounted(ctx, []observe.Observation{fresh, old})
			if err != nil {
				t.Fatalf("a batch replaying a row stored without its listing: %v", err)
			}
			if added != 1 {
				t.Fatalf("%d added, want 1 (the new observation; the replay skipped)", added)
			}
			var rows, ids, listed int64
			if err := st.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT `+obsIDCol+`),
				(SELECT count(*) FROM observation_ids_elsewhere WHERE id = $1) FROM observations o`, old.ID).Scan(&rows, &ids, &listed); err != nil {
				t.Fatal(err)
			}
			if rows != 3 || ids != 3 || listed != 1 {
				t.Fatalf("%d rows for %d ids, the replayed id listed %d times: want 3, 3, 1", rows, ids, listed)
			}
			// Listed now: a replay with yet another time is refused too.
			again := old
			again.Time = at.AddDate(0, 1, 0)
			if err := st.InsertObservations(ctx, []observe.Observation{again}); err != nil {
				t.Fatal(err)
			}
			if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observations`).Scan(&rows); err != nil || rows != 3 {
				t.Fatalf("%d rows (%v) after a replay with another time, want 3", rows, err)
			}
			if size, err := st.LogSize(ctx); err != nil || size != 2 {
				t.Fatalf("evidence log of %d leaves (%v), want 2 (the hand-written row has none)", size, err)
			}
		})
	}
}

// AnalysisSeqs (the seqs of a committed batch's ids, which the analysis
// reads next) looks a UUIDv7 id up in its window first, as ingest's
// INSERT does (migration 0027), and every other id, or one stored
// outside its window, in every partition: each kind must be found with
// its own seq, an id never stored gets 0, and an id asked twice gets its
// seq twice.
func TestAnalysisSeqsOfEveryKindOfID(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(27, 4))
	var obs []observe.Observation
	add := func(id string, when time.Time) {
		o := storetest.Observation(r, when, len(obs))
		o.ID = id
		obs = append(obs, o)
	}
	add(observe.NewID(at), at)                                       // in its window
	add(observe.NewID(at.AddDate(0, -1, 0)), at.Add(time.Minute))    // another month's id time
	add(observe.NewID(at.Add(2*time.Minute)), at.Add(3*time.Minute)) // a minute off
	add("8f14e45f-ceea-467a-9a8e-a3c6b1d2e4f0", at.Add(4*time.Minute))
	add("sensor-7/observation/42", at.Add(5*time.Minute))
	add("019CCFFA-1C00-7ABC-8ABC-0123456789AB", at.Add(6*time.Minute)) // text: upper case
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	if err := eachRow(ctx, st.db(), `SELECT `+obsIDCol+`, o.seq FROM observations o`, func(r pgx.Rows) error {
		var id string
		var seq int64
		if err := r.Scan(&id, &seq); err != nil {
			return err
		}
		want[id] = seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range obs {
		ids = append(ids, o.ID)
	}
	ids = append(ids, observe.NewID(at), obs[0].ID, "019ccffa-1c00-7abc-8abc-0123456789ab")
	seqs, maxSeq, err := st.AnalysisSeqs(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if w := want[id]; seqs[i] != w || i < len(obs) && w == 0 {
			t.Errorf("id %d %s: seq %d, want %d", i, id, seqs[i], w)
		}
	}
	if n := int64(len(want)); len(want) != len(obs) || maxSeq < n {
		t.Errorf("%d stored, max seq %d", len(want), maxSeq)
	}
}

// AnalysisSeqs' lookup of UUIDv7 ids scans the partition of each id's
// time only, not every monthly partition (read from the plan PostgreSQL
// ran, as TestStagedInsertLooksInOnePartition reads the INSERT's).
func TestAnalysisSeqsLookInOnePartition(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.PreparePartitions(ctx, start, 11); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(27, 5))
	var obs []observe.Observation
	for m := range 12 {
		for k := range 3 {
			obs = append(obs, storetest.Observation(r, start.AddDate(0, m, 1).Add(time.Duration(k)*time.Hour), 10*m+k))
		}
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	var uids []pgtype.UUID
	var ns []int64
	for _, o := range obs[6:9] { // March's
		uid, _ := idValues(o.ID)
		t0, ok := idNS(uid)
		if !ok {
			t.Fatalf("id %s has no time", o.ID)
		}
		uids, ns = append(uids, uid), append(ns, t0)
	}
	var plan string
	if err := st.db().QueryRowContext(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+seqsInWindowsSQL, uids, ns).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	top, scanned := partitionsScanned(t, plan)
	if len(scanned) != 1 || !scanned["observations_p202603"] || top.Rows != 3 {
		t.Fatalf("partitions scanned: %v (rows %v), want observations_p202603 alone and 3 rows", scanned, top.Rows)
	}
}

// Attack (h-rev7): observation_ids_elsewhere is what refuses a replay of
// an id stored outside its window. A listing deleted (an insider with
// ingest's role, or a DBA taking the table for a cache it can empty) let
// such a replay with another time be stored twice, silently. Like
// purged_observations (migration 0020) the list is append-only
// (migration 0029): UPDATE, DELETE and TRUNCATE are refused.
func TestObservationIDsElsewhereIsAppendOnly(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 29))
	o := storetest.Observation(r, time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC), 1)
	o.ID = "sensor-7/observation/42" // a text id: listed
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DELETE FROM observation_ids_elsewhere`,
		`UPDATE observation_ids_elsewhere SET id = 'other'`,
		`TRUNCATE observation_ids_elsewhere`,
	} {
		if _, err := st.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want it refused as append-only", q, err)
		}
	}
	replay := o
	replay.Time = o.Time.AddDate(0, 1, 0)
	if err := st.InsertObservations(ctx, []observe.Observation{replay}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d rows (%v), want 1", n, err)
	}
}

// An id whose window straddles a month's edge (h-rev7): stored in the
// next month's partition, within its window; replayed at the id's own
// time, in the month before, and at the window's other end: the lookup
// must read both partitions.
func TestIDWindowAcrossAMonthEdge(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	edge := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	if err := st.PreparePartitions(ctx, edge.AddDate(0, -1, 0), 2); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 4))
	idAt := edge.Add(-500 * time.Millisecond)
	id := observe.NewID(idAt)
	for k, when := range []time.Time{edge.Add(499 * time.Millisecond), idAt, idAt.Add(-time.Second), edge.Add(-time.Millisecond)} {
		o := storetest.Observation(r, when, k)
		o.ID = id
		if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
			t.Fatal(err)
		}
	}
	var n, listed int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM observation_ids_elsewhere)`).Scan(&n, &listed); err != nil || n != 1 || listed != 0 {
		t.Fatalf("%d rows, %d listed (%v), want 1 row, none listed (every replay in the window)", n, listed, err)
	}
}
