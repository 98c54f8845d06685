package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/agency"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// undo0030 takes a store back to the schema before migration 0030: no
// blocks (their observations lost: a store with blocks is not undone by
// SQL alone), no heads of the blocks' batches, no seq in observation_ids_elsewhere,
// vigil_observation_partition as migration 0015 made it.
var undo0030 = []string{
	`DROP TABLE observation_blocks, observation_chain_heads`,
	`ALTER TABLE observation_ids_elsewhere DROP COLUMN seq`,
	replaceFunction("0015_retention.sql", "vigil_observation_partition"),
	`DELETE FROM schema_migrations WHERE version >= 30`,
}

// undo0029 takes a store back to the schema before migration 0029
// (0030 undone first): observation_ids_elsewhere without its append-only
// triggers.
var undo0029 = append(undo0030[:len(undo0030):len(undo0030)],
	`DROP TRIGGER observation_ids_elsewhere_append_only ON observation_ids_elsewhere`,
	`DROP TRIGGER observation_ids_elsewhere_no_truncate ON observation_ids_elsewhere`,
	`DELETE FROM schema_migrations WHERE version >= 29`,
)

// undo0028 takes a store back to the schema before migration 0028 (0029
// undone first): targets_seq_key and target_access_target back,
// target_access keyed (agency, target).
var undo0028 = append(undo0029[:len(undo0029):len(undo0029)],
	`ALTER TABLE targets ADD CONSTRAINT targets_seq_key UNIQUE (seq)`,
	`ALTER TABLE target_access DROP CONSTRAINT target_access_pkey`,
	`ALTER TABLE target_access ADD CONSTRAINT target_access_pkey PRIMARY KEY (agency, target)`,
	`CREATE INDEX target_access_target ON target_access (target)`,
	`DELETE FROM schema_migrations WHERE version >= 28`,
)

// undo0027 takes a store back to the schema before migration 0027 (0028
// undone first): no list of the ids stored outside their windows.
var undo0027 = append(undo0028[:len(undo0028):len(undo0028)],
	`DROP TABLE observation_ids_elsewhere`,
	`DROP FUNCTION vigil_uuid7_ns`,
	`DELETE FROM schema_migrations WHERE version >= 27`,
)

// undo0026 takes a store back to the schema before migration 0026 (0027
// undone first): every signed row in observations_chain again, no heads'
// index, no chain runs.
var undo0026 = append(undo0027[:len(undo0027):len(undo0027)],
	`DROP INDEX observations_chain_heads`,
	`CREATE INDEX observations_chain ON observations (chain_ref, chain_seq) WHERE chain_ref IS NOT NULL`,
	`DROP TABLE observation_chain_runs`,
	`DELETE FROM schema_migrations WHERE version >= 26`,
)

// undo0025 takes a store back to the schema before migration 0025
// (0026 undone first): analysis_endpoints at the default fillfactor,
// targets_agency_rank back.
var undo0025 = append(undo0026[:len(undo0026):len(undo0026)],
	`ALTER TABLE analysis_endpoints RESET (fillfactor)`,
	`CREATE INDEX targets_agency_rank ON targets (agency, score DESC) WHERE merged_into IS NULL`,
	`DELETE FROM schema_migrations WHERE version >= 25`,
)

// undo0024 takes a store back to the schema before migration 0024 (0025
// undone first): purge records without their
// address and port, retention's update and vigil_timeline_unpack as 0021
// and 0022 made them, no evidence_older_end, evidence_log and
// evidence_blocks open to INSERT.
var undo0024 = append(undo0025[:len(undo0025):len(undo0025)],
	`DROP TRIGGER evidence_log_closed ON evidence_log`,
	`DROP TRIGGER evidence_blocks_closed ON evidence_blocks`,
	`DROP FUNCTION vigil_evidence_closed`,
	`DROP TABLE evidence_older_end`,
	replaceFunction("0021_evidence_tiles.sql", "vigil_purged_append_only"),
	replaceFunction("0022_timeline_days.sql", "vigil_timeline_unpack"),
	`ALTER TABLE purged_observations DROP COLUMN ip, DROP COLUMN port`,
	`DELETE FROM schema_migrations WHERE version >= 24`,
)

// replaceFunction is the CREATE OR REPLACE of function name as migration
// file defines it (its last definition there, up to its "END $$;").
func replaceFunction(file, name string) string {
	b, err := migrationFS.ReadFile("migrations/" + file)
	if err != nil {
		panic(err)
	}
	s := string(b)
	i := strings.LastIndex(s, "FUNCTION "+name+"(")
	j := strings.Index(s[max(i, 0):], "END $$;")
	if i < 0 || j < 0 {
		panic(fmt.Sprintf("migration %s defines no function %s", file, name))
	}
	return "CREATE OR REPLACE " + s[i:i+j+len("END $$")]
}

// undo0023 takes a store back to the schema before migration 0023 (0024
// undone first): the clock offset back in every row, 0, -1 and the empty
// reference written out again.
var undo0023 = append(undo0024[:len(undo0024):len(undo0024)],
	`ALTER TABLE observations ADD COLUMN clock_offset_ns bigint NOT NULL DEFAULT 0`,
	`UPDATE observations o SET clock_offset_ns = k.offset_ns FROM observation_clocks k WHERE k.id = o.clock_id`,
	// The partitions' copies of the constraint are their own (LIKE ...
	// INCLUDING CONSTRAINTS, then attached).
	`DO $$ DECLARE r record; BEGIN
		ALTER TABLE observations DROP CONSTRAINT observations_none;
		FOR r IN SELECT inhrelid::regclass AS part FROM pg_inherits WHERE inhparent = 'observations'::regclass LOOP
			EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS observations_none', r.part);
		END LOOP;
	END $$`,
	`UPDATE observations SET listen_port = COALESCE(listen_port, 0), pieces_have = COALESCE(pieces_have, -1),
		pieces_total = COALESCE(pieces_total, -1), transcript_ref = COALESCE(transcript_ref, '')`,
	`ALTER TABLE observations ALTER COLUMN listen_port SET NOT NULL, ALTER COLUMN pieces_have SET NOT NULL,
		ALTER COLUMN pieces_total SET NOT NULL, ALTER COLUMN transcript_ref SET NOT NULL,
		ALTER COLUMN clock_offset_ns DROP DEFAULT, DROP COLUMN clock_id`,
	`DROP TABLE observation_clocks`,
	`DELETE FROM schema_migrations WHERE version >= 23`,
)

// undo0022 takes a store back to the schema before migration 0022 (0023
// undone first): the timeline one row an observation again, read from
// the packed days.
var undo0022 = append(undo0023[:len(undo0023):len(undo0023)],
	`CREATE TABLE analysis_timeline (endpoint bigint NOT NULL, time_ns bigint NOT NULL, seq bigint NOT NULL,
		PRIMARY KEY (endpoint, time_ns, seq))`,
	`INSERT INTO analysis_timeline (endpoint, time_ns, seq) SELECT DISTINCT tl.endpoint, u.time_ns, u.seq
		FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u`,
	`DROP TABLE analysis_timeline_days`,
	`DROP FUNCTION vigil_timeline_unpack`,
	`DELETE FROM schema_migrations WHERE version >= 22`,
)

// undo0021 takes a store back to the schema before migration 0021 (0023
// and 0022 undone first): the evidence_tiles blocks back in evidence_blocks
// rows, as the code before 0021 wrote them (each leaf's id: every id a
// UUID or a text shorter than 128 bytes). Only blocks of level 0 (their
// nodes the leaves themselves: a store opened after levelZeroTiles) can
// go back: the leaves of the others are not stored.
var undo0021 = append(undo0022[:len(undo0022):len(undo0022)],
	`DO $$ BEGIN IF EXISTS (SELECT 1 FROM evidence_tiles WHERE level <> 0) THEN
		RAISE EXCEPTION 'evidence_tiles above level 0: open the store after levelZeroTiles to undo 0021';
	END IF; END $$`,
	`INSERT INTO evidence_blocks (first, first_seq, ids, leaves)
	SELECT t.first, t.first_seq, (SELECT string_agg(CASE WHEN o.uid IS NOT NULL THEN '\x10'::bytea || decode(replace(o.uid::text, '-', ''), 'hex')
			ELSE set_byte('\x00'::bytea, 0, length(convert_to(o.id_text, 'UTF8'))) || convert_to(o.id_text, 'UTF8') END, ''::bytea ORDER BY o.seq)
		FROM observations o WHERE o.seq >= t.first_seq AND o.seq < COALESCE(t.next_seq, 9223372036854775807)), t.nodes
	FROM (SELECT *, lead(first_seq) OVER (ORDER BY first) AS next_seq FROM evidence_tiles) t`,
	`DROP TABLE evidence_tiles`,
	`CREATE OR REPLACE FUNCTION vigil_purged_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
	BEGIN
		IF TG_OP = 'UPDATE' AND OLD.what = 'transcripts' AND NEW.what = 'observations'
			AND NEW.observation_id = OLD.observation_id AND NEW.seq = OLD.seq AND NEW.time_ns = OLD.time_ns
			AND NEW.purged_ns >= OLD.purged_ns
			AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS NOT DISTINCT FROM OLD.chain_ref)
			AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS NOT DISTINCT FROM OLD.chain_seq) THEN
			RETURN NEW;
		END IF;
		RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
	END $f$`,
	`ALTER TABLE purged_observations DROP COLUMN leaf`,
	`DELETE FROM schema_migrations WHERE version >= 21`,
)

// levelZeroTiles makes the stores the test opens keep level 0 nodes (the
// leaves), so that undo0021 can take them back before 0021.
func levelZeroTiles(t testing.TB) {
	openTileLevel = 0
	t.Cleanup(func() { openTileLevel = tileLevel })
}

// undo0020 takes a store back to the schema before migration 0020
// (0023 to 0021 undone first): purged_observations without its
// append-only triggers.
var undo0020 = append(undo0021[:len(undo0021):len(undo0021)],
	`DROP TRIGGER purged_observations_append_only ON purged_observations`,
	`DROP TRIGGER purged_observations_no_truncate ON purged_observations`,
	`DROP FUNCTION vigil_purged_append_only`,
	`DELETE FROM schema_migrations WHERE version >= 20`,
)

// undo0019 takes a store back to the schema before migration 0019 (0020
// undone first): no platform role.
var undo0019 = append(undo0020[:len(undo0020):len(undo0020)],
	`DELETE FROM users WHERE role = 'platform'`,
	`ALTER TABLE users DROP CONSTRAINT users_role_check,
		ADD CONSTRAINT users_role_check CHECK (role IN ('admin', 'analyst', 'supervisor', 'investigator', 'auditor'))`,
	`DELETE FROM schema_migrations WHERE version >= 19`,
)

// undo0018 takes a store back to the schema before migration 0018 (0019
// undone first): one sensor_chains row a chain and key.
var undo0018 = append(undo0019[:len(undo0019):len(undo0019)],
	`ALTER TABLE sensor_chains DROP CONSTRAINT sensor_chains_chain_key_form, DROP COLUMN form, ADD UNIQUE (chain, chain_key)`,
	`DELETE FROM schema_migrations WHERE version >= 18`,
)

// undo0017 takes a store back to the schema before migration 0017 (0018
// undone first): the dictionaries' values back in every row, the address
// as netip prints it, the indexes of migration 0015.
var undo0017 = append(undo0018[:len(undo0018):len(undo0018)],
	`ALTER TABLE observations ADD COLUMN sensor text NOT NULL DEFAULT '', ADD COLUMN sensor_version text NOT NULL DEFAULT '',
		ADD COLUMN vantage text NOT NULL DEFAULT '', ADD COLUMN network text NOT NULL DEFAULT '', ADD COLUMN method text NOT NULL DEFAULT '',
		ADD COLUMN clock_source text NOT NULL DEFAULT '', ADD COLUMN matched json NOT NULL DEFAULT '[]',
		ADD COLUMN transport text NOT NULL DEFAULT '', ADD COLUMN client bytea NOT NULL DEFAULT '', ADD COLUMN client_version bytea NOT NULL DEFAULT '',
		ADD COLUMN possession text NOT NULL DEFAULT '', ADD COLUMN place json, ADD COLUMN agency text NOT NULL DEFAULT '',
		ADD COLUMN agency_rule text NOT NULL DEFAULT '', ADD COLUMN marks text, ADD COLUMN build_commit text NOT NULL DEFAULT '',
		ADD COLUMN build_modified boolean NOT NULL DEFAULT false, ADD COLUMN sensor_config text NOT NULL DEFAULT ''`,
	`UPDATE observations o SET sensor = f.sensor, sensor_version = f.sensor_version, vantage = f.vantage, network = f.network,
		method = f.method, clock_source = f.clock_source, matched = m.matched::json, transport = f.transport, client = f.client,
		client_version = f.client_version, possession = f.possession, place = NULLIF(p.place, '')::json, agency = p.agency,
		agency_rule = p.agency_rule, marks = NULLIF(f.marks, ''), build_commit = f.build_commit, build_modified = f.build_modified,
		sensor_config = f.sensor_config
	FROM observation_facets f, observation_places p, observation_matches m
	WHERE f.id = o.facet_id AND p.id = o.place_id AND m.id = o.matched_id`,
	`ALTER TABLE observations ALTER COLUMN ip TYPE text USING vigil_ip_text(ip, ip_zone)`,
	`ALTER TABLE observations DROP COLUMN ip_zone, DROP COLUMN facet_id, DROP COLUMN place_id, DROP COLUMN matched_id`,
	`ALTER TABLE observations DROP CONSTRAINT observations_pkey`,
	`ALTER TABLE observations ADD PRIMARY KEY (seq, time_ns)`,
	`CREATE INDEX observations_time ON observations (time_ns, seq)`,
	`CREATE INDEX observations_item ON observations (item_id)`,
	`DROP TABLE observation_facets, observation_places, observation_matches`,
	`DROP FUNCTION vigil_dict_key, vigil_ip_text`,
	`DELETE FROM schema_migrations WHERE version >= 17`,
)

// undo0016 takes a store back to the schema before migration 0016 (0017
// undone first): the
// leaves of evidence_blocks and the chains of the observations' rows back
// in evidence_log rows (every id a UUID: 17 bytes in a block's ids),
// no unpurged observation missing.
var undo0016 = append(undo0017[:len(undo0017):len(undo0017)],
	`INSERT INTO evidence_log (idx, obs_seq, leaf, chain, chain_seq, chain_key, chain_prev, batch_sig)
	SELECT b.first + k, o.seq, substring(b.leaves FROM k * 32 + 1 FOR 32), c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig
	FROM evidence_blocks b CROSS JOIN LATERAL generate_series(0, length(b.leaves) / 32 - 1) AS k
	JOIN observations o ON o.uid = encode(substring(b.ids FROM k * 17 + 2 FOR 16), 'hex')::uuid
	LEFT JOIN sensor_chains c ON c.id = o.chain_ref`,
	`DROP TABLE evidence_blocks, sensor_chains`,
	`ALTER TABLE observations DROP COLUMN chain_ref, DROP COLUMN chain_seq, DROP COLUMN chain_prev, DROP COLUMN batch_sig`,
	`ALTER TABLE purged_observations DROP COLUMN chain_ref, DROP COLUMN chain_seq`,
	`DELETE FROM schema_migrations WHERE version >= 16`,
)

// undo0015 takes a store back to the schema before migration 0015 (0016
// undone first): holds and purge records gone, observations one plain
// table again, seq kept.
var undo0015 = append(undo0016[:len(undo0016):len(undo0016)],
	`DROP TABLE legal_holds, purged_observations`,
	`CREATE TABLE observations_flat (LIKE observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)`,
	`INSERT INTO observations_flat OVERRIDING SYSTEM VALUE SELECT * FROM observations`,
	`DROP TABLE observations`,
	`DROP FUNCTION vigil_observation_partition`,
	`ALTER TABLE observations_flat RENAME TO observations`,
	`ALTER TABLE observations ADD PRIMARY KEY (seq)`,
	`SELECT setval(pg_get_serial_sequence('observations', 'seq'), COALESCE((SELECT max(seq) FROM observations), 0) + 1, false)`,
	`CREATE UNIQUE INDEX observations_uid ON observations (uid) WHERE uid IS NOT NULL`,
	`CREATE UNIQUE INDEX observations_id_text ON observations (id_text) WHERE id_text IS NOT NULL`,
	`CREATE INDEX observations_time ON observations (time_ns, seq)`,
	`CREATE INDEX observations_item ON observations (item_id)`,
	`DELETE FROM schema_migrations WHERE version >= 15`,
)

func relkind(t *testing.T, st *Store, name string) string {
	t.Helper()
	var k string
	if err := st.pool.QueryRow(context.Background(), `SELECT COALESCE((SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)), '')`, name).Scan(&k); err != nil {
		t.Fatal(err)
	}
	return k
}

// Migration 0015 converts a store's observations, with data, into monthly
// partitions: every row reads back as before, with its leaf; seq goes on
// after the last; a redelivered observation is still skipped.
func TestMigration0015PartitionsExistingObservations(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(15, 15))
	var obs []observe.Observation
	for i := range 12 {
		obs = append(obs, storetest.Observation(r, time.Date(2025, time.Month(1+i%4), 3+i, 12, 0, 0, 0, time.UTC), i))
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	for _, q := range undo0015 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if k := relkind(t, st, "observations"); k != "r" {
		t.Fatalf("before the migration observations is of kind %q, want a plain table", k)
	}
	st.Close()
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if k := relkind(t, again, "observations"); k != "p" {
		t.Fatalf("after the migration observations is of kind %q, want partitioned", k)
	}
	for _, m := range []string{"202501", "202502", "202503", "202504"} {
		if k := relkind(t, again, "observations_p"+m); k != "r" {
			t.Fatalf("partition of %s: kind %q", m, k)
		}
	}
	got := storetest.Export(t, again, store.ObservationFilter{})
	if len(got) != len(obs) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(obs))
	}
	var ids []string
	for _, o := range obs {
		ids = append(ids, o.ID)
	}
	idx, err := again.LogIndexes(ctx, ids)
	if err != nil || len(idx) != len(obs) {
		t.Fatalf("leaves after the migration: %d of %d, %v", len(idx), len(obs), err)
	}
	// New rows go on after the old seqs; a redelivery is skipped.
	more := storetest.Observation(r, time.Date(2025, 2, 20, 0, 0, 0, 0, time.UTC), 99)
	if err := again.InsertObservations(ctx, []observe.Observation{more, obs[0]}); err != nil {
		t.Fatal(err)
	}
	var n, maxSeq, seq int64
	if err := again.pool.QueryRow(ctx, `SELECT count(*), max(seq) FILTER (WHERE uid IS DISTINCT FROM $1::uuid), max(seq) FILTER (WHERE uid = $1::uuid) FROM observations`, more.ID).Scan(&n, &maxSeq, &seq); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(obs)+1) || seq <= maxSeq {
		t.Fatalf("after inserting one new and one redelivered: %d rows (want %d), new seq %d after %d", n, len(obs)+1, seq, maxSeq)
	}
	if size, err := again.LogSize(ctx); err != nil || size != uint64(len(obs)+1) {
		t.Fatalf("log size %d, %v; want %d", size, err, len(obs)+1)
	}
}

// A purge drops a whole month's partition that holds no held observation,
// and deletes row by row in a month that holds one; every removed row has
// its purge record.
func TestPurgeDropsPartitionsWithoutHeldObservations(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	if err := st.PreparePartitions(ctx, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), 3); err != nil {
		t.Fatal(err)
	}
	acfg := analysis.DefaultConfig()
	acfg.Now = func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }
	acfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(16, 16))
	var obs []observe.Observation
	for i := range 9 { // January, February, March 2024
		o := storetest.Observation(r, time.Date(2024, time.Month(1+i/3), 5+i, 0, 0, 0, 0, time.UTC), i)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+i)), 51413
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var held string
	for _, x := range ts {
		if x.Label == "192.0.2.14:51413" { // February's second
			held = x.ID
		}
	}
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	h := &retention.Holds{Store: st, Targets: st, Trail: &audit.Log{Store: st}, Now: func() time.Time { return now }}
	if _, err := h.Add(ctx, retention.Actor{Name: "a", Role: agency.RoleAnalyst}, held, "", "held"); err != nil {
		t.Fatal(err)
	}
	run := &retention.Runner{Store: st, Trail: &audit.Log{Store: st}, Config: retention.DefaultConfig(), Now: func() time.Time { return now }}
	rep, err := run.Run(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Purged[retention.KindObservations].N != 8 {
		t.Fatalf("purged %+v, want 8 observations", rep.Purged)
	}
	for m, want := range map[string]string{"202401": "", "202402": "r", "202403": ""} {
		if k := relkind(t, st, "observations_p"+m); k != want {
			t.Errorf("partition of %s: kind %q, want %q", m, k, want)
		}
	}
	var ids []string
	for _, o := range obs {
		ids = append(ids, o.ID)
	}
	p, err := st.PurgedObservations(ctx, ids)
	if err != nil || len(p) != 8 {
		t.Fatalf("%d purge records, %v; want 8", len(p), err)
	}
	left := storetest.Export(t, st, store.ObservationFilter{})
	if len(left) != 1 || left[0].ID != obs[4].ID {
		t.Fatalf("left %d observations, want only the held one", len(left))
	}
	if idx, err := st.LogIndexes(ctx, ids); err != nil || len(idx) != 9 || !slices.Contains(ids, obs[0].ID) {
		t.Fatalf("leaf indexes after the purge: %d of 9, %v", len(idx), err)
	}
	// The months ahead of now were made.
	if k := relkind(t, st, "observations_p202703"); k != "r" {
		t.Fatalf("partition of 2027-03 (ahead): kind %q", k)
	}
}
