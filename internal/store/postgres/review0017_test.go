package postgres

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// undoTo16 takes st back to the schema before migration 0017 and closes
// it; the caller opens the schema again, which runs the migration.
func undoTo16(t *testing.T, st *Store) {
	t.Helper()
	for _, q := range undo0017 {
		if _, err := st.pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
}

// Migration 0017 moves a store whose default partition holds
// observations at the first and the last instant a store may hold (a
// signed 64-bit count of nanoseconds: September 1677, April 2262, both
// valid): the months around them have bounds no bigint holds, so those
// rows stay in the default partition, as the insert path leaves them.
func TestMigration0017KeepsObservationsAtTheEdgesOfTime(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(31, 31))
	first := storetest.Observation(r, time.Unix(0, -1<<63).UTC(), 1)
	last := storetest.Observation(r, time.Unix(0, 1<<63-1).UTC(), 2)
	middle := storetest.Observation(r, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), 3)
	if err := st.InsertObservations(ctx, slices.Clone([]observe.Observation{first, middle, last})); err != nil {
		t.Fatal(err)
	}
	want := storetest.Export(t, st, store.ObservationFilter{})
	undoTo16(t, st)
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatalf("opening a store at version 16 that holds observations of 1677 and 2262: %v", err)
	}
	defer again.Close()
	got := storetest.Export(t, again, store.ObservationFilter{})
	if len(got) != len(want) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) {
			t.Fatalf("observation %d after the migration:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// Two stores (two ingest processes, their caches apart) and two writers
// each add, at the same moment, batches whose facets, places and matches
// (and clock readings) are all new and the same in every writer: every batch commits, each
// value takes one dictionary row, and every observation reads back as
// written.
func TestDictionariesTakeTheSameNewValuesAtOnce(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	var stores [2]*Store
	for i := range stores {
		st, err := Open(ctx, testDSN(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	const writers, rounds, values = 4, 15, 40
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	batch := func(w, round int) []observe.Observation {
		r := rand.New(rand.NewPCG(uint64(w), uint64(round)))
		obs := make([]observe.Observation, values)
		for i := range obs {
			o := storetest.Observation(r, at.Add(time.Duration(round*values+i)*time.Millisecond), round*values+i)
			o.Client.Name = string([]byte{byte(round), byte(i), 0, 0xff}) // new in this round, the same in every writer
			o.Jurisdiction.Rule = string(rune('a'+round)) + string(rune('a'+i%26))
			o.Item.Matched = []observe.Match{{List: "l" + string(rune('a'+round)), Category: string(rune('a' + i%7))}}
			obs[i] = o
		}
		return obs
	}
	var all [writers][][]observe.Observation
	for round := 0; round < rounds; round++ {
		start := make(chan struct{})
		errs := make(chan error, writers)
		for w := 0; w < writers; w++ {
			obs := batch(w, round)
			all[w] = append(all[w], slices.Clone(obs))
			go func() {
				<-start
				errs <- stores[w%2].InsertObservations(ctx, obs)
			}()
		}
		close(start)
		for w := 0; w < writers; w++ {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	var facets, places, matches, clocks, n int
	if err := stores[0].pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observation_facets), (SELECT count(*) FROM observation_places),
		(SELECT count(*) FROM observation_matches), (SELECT count(*) FROM observation_clocks),
		(SELECT count(*) FROM observations)`).Scan(&facets, &places, &matches, &clocks, &n); err != nil {
		t.Fatal(err)
	}
	var burnt int64
	if err := stores[0].pool.QueryRow(ctx, `SELECT last_value FROM pg_sequences WHERE schemaname = $1 AND sequencename LIKE 'observation_facets%'`, cfg.Schema).Scan(&burnt); err != nil {
		t.Fatal(err)
	}
	t.Logf("facets: %d rows, the identity at %d (ids drawn by rows that met a concurrent writer's)", facets, burnt)
	var distinct [numDicts]map[string]bool
	for k := range distinct {
		distinct[k] = map[string]bool{}
	}
	var want []observe.Observation
	for w := range all {
		for _, obs := range all[w] {
			for i := range obs {
				for k := range dictionaries {
					distinct[k][string(appendKey(nil, dictionaries[k].values(&obs[i])))] = true
				}
				want = append(want, obs[i])
			}
		}
	}
	if facets != len(distinct[0]) || places != len(distinct[1]) || matches != len(distinct[2]) || clocks != len(distinct[3]) || n != len(want) {
		t.Fatalf("dictionary rows %d, %d, %d, %d and %d observations; want %d, %d, %d, %d and %d",
			facets, places, matches, clocks, n, len(distinct[0]), len(distinct[1]), len(distinct[2]), len(distinct[3]), len(want))
	}
	got := map[string]observe.Observation{}
	if err := stores[1].Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		got[o.ID] = *o
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		g, ok := got[want[i].ID]
		if !ok || !g.Equal(&want[i]) {
			t.Fatalf("observation %s:\ngot  %+v\nwant %+v", want[i].ID, g, want[i])
		}
	}
}

// A peer chooses its client string ("v" of an extension handshake or a
// DHT message: up to a message's length), and a new one a connection
// makes a new facet: the ids cached for it must not hold the string, or
// an ingest's memory grows with what peers send (a million facets of a
// megabyte each). Each cached key is at most 257 bytes (maxRawDictKey and a byte).
func TestDictionaryCacheKeysAreBounded(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(32, 32))
	var obs []observe.Observation
	for i := range 4 {
		o := storetest.Observation(r, time.Date(2026, 11, 3, 0, 0, i, 0, time.UTC), i)
		name := make([]byte, 1<<20)
		name[0] = byte(i)
		o.Client.Name = string(name)
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	n, longest := len(st.dicts[dictFacets]), 0
	for k := range st.dicts[dictFacets] {
		longest = max(longest, len(k))
	}
	st.mu.Unlock()
	if n != 4 || longest > maxRawDictKey+1 {
		t.Fatalf("%d facets cached, the longest key %d bytes; want 4, at most %d", n, longest, maxRawDictKey+1)
	}
	// The cached ids are found again: a second batch of the same values
	// adds no dictionary row and reads back as written.
	more := slices.Clone(obs)
	for i := range more {
		more[i].ID = ""
		more[i].Time = more[i].Time.Add(time.Minute)
	}
	if err := st.InsertObservations(ctx, more); err != nil {
		t.Fatal(err)
	}
	var facets int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observation_facets`).Scan(&facets); err != nil || facets != 4 {
		t.Fatalf("%d facets (%v), want 4", facets, err)
	}
	got := storetest.Export(t, st, store.ObservationFilter{})
	all := append(obs, more...)
	for i := range all {
		if i >= len(got) || !got[i].Equal(&all[i]) {
			t.Fatalf("observation %d does not read back as written", i)
		}
	}
}

// What a purge leaves (docs/deployment.md, "What stays after a purge"):
// the observation's row goes, its dictionary rows stay, the peer's client
// string as it sent it included, referred to by no row.
func TestPurgeLeavesDictionaryRows(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(33, 33))
	o := storetest.Observation(r, time.Date(2023, 5, 1, 0, 0, 0, 0, time.UTC), 1)
	o.Client.Name = "free text a peer sent \x01"
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	// The analysis has read it (a purge keeps what it has not).
	if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_state (key, value) VALUES ('watermark', (SELECT max(seq) FROM observations))
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	run := &retention.Runner{Store: st, Trail: &audit.Log{Store: st}, Config: retention.DefaultConfig(), Now: func() time.Time { return now }}
	if _, err := run.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	var rows, names, orphans int
	if err := st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observations),
		(SELECT count(*) FROM observation_facets WHERE client = $1),
		(SELECT count(*) FROM observation_facets f WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.facet_id = f.id))`,
		[]byte(o.Client.Name)).Scan(&rows, &names, &orphans); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || names != 1 || orphans != 1 {
		t.Fatalf("after the purge: %d observations, %d facets with the client string, %d facets no row refers to; want 0, 1, 1", rows, names, orphans)
	}
}

// A transaction that adds dictionary rows and then fails leaves no id in
// the caches: the next batch of the same values adds the rows again
// (they were rolled back) and reads back as written.
func TestRolledBackDictionaryRowsAreNotCached(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	if _, err := st.pool.Exec(ctx, `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused'; END $$;
		CREATE TRIGGER refuse BEFORE INSERT ON observations FOR EACH ROW EXECUTE FUNCTION refuse()`); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(34, 34))
	o := storetest.Observation(r, time.Date(2026, 11, 4, 0, 0, 0, 0, time.UTC), 1)
	o.Client.Name = "a name no row has yet"
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err == nil {
		t.Fatal("the trigger did not refuse the row")
	}
	st.mu.Lock()
	cached := len(st.dicts[dictFacets]) + len(st.dicts[dictPlaces]) + len(st.dicts[dictMatches])
	st.mu.Unlock()
	if cached != 0 {
		t.Fatalf("%d dictionary ids cached from a transaction that rolled back", cached)
	}
	if _, err := st.pool.Exec(ctx, `DROP TRIGGER refuse ON observations`); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
		t.Fatal(err)
	}
	got := storetest.Export(t, st, store.ObservationFilter{})
	if len(got) != 1 || !got[0].Equal(&o) {
		t.Fatalf("after the retry: %d observations, want the one written", len(got))
	}
}

// dictIdentities is the last value each dictionary's identity drew.
func dictIdentities(t *testing.T, st *Store) [numDicts]int64 {
	t.Helper()
	var out [numDicts]int64
	for k := range dictionaries {
		if err := st.pool.QueryRow(context.Background(), `SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence($1, 'id')::regclass), 0)`,
			dictionaries[k].table).Scan(&out[k]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The dictionaries' ids are integers (2,147,483,647 of them), drawn for
// good: a store whose caches are empty (a restart, a second ingest, a
// cache started over) and that writes values the dictionaries already
// hold draws none (ON CONFLICT DO NOTHING alone draws one a row before it
// finds the conflict), or every restart and every concurrent writer
// would spend ids on values that have one.
func TestDictionariesDrawNoIDForAValueTheyHold(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	st := openTest(t, cfg)
	r := rand.New(rand.NewPCG(35, 35))
	at := time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
	obs := oddObservations(r, at)
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	before := dictIdentities(t, st)
	cfg.Schema = st.cfg.Schema
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.InsertObservations(ctx, oddObservations(r, at.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if after := dictIdentities(t, again); after != before {
		t.Fatalf("identities (facets, places, matches) at %v after writing only values the dictionaries hold, want %v", after, before)
	}
}
