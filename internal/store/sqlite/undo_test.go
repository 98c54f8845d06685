package sqlite

import (
	"context"
	"sort"
	"strings"
	"testing"
)

// laterUndo holds, for each migration from 0015 on, the statements that
// take a store back to the schema before it. The tests that rebuild an
// old store (the 0006, 0009, 0010 and 0013 migration tests) undo these
// first, newest first, then their own versions. A new migration adds its
// entry here, once, instead of a line in each of those tests.
var laterUndo = map[int][]string{
	15: {`ALTER TABLE leads DROP COLUMN searched`},
	16: {`DROP TABLE figure_rollups`},
	17: {`DROP TABLE claims`, `DROP TABLE claim_records`, `DROP TABLE handoff_proposals`, `DROP TABLE case_steps`, `DROP TABLE case_subscribers`},
	18: {`DROP TABLE operations`, `DROP TABLE operation_targets`},
	19: {`DROP TABLE alert_rules`, `DROP TABLE alert_state`, `DROP TABLE alerts`, `DROP TABLE alert_deliveries`},
	20: {`DROP TABLE legal_holds`, `DROP TABLE purged_observations`},
	21: {`DROP INDEX purged_observations_chain`, `ALTER TABLE purged_observations DROP COLUMN chain_seq`, `ALTER TABLE purged_observations DROP COLUMN chain_ref`,
		`DROP VIEW observation_rows`, view0013(), `DROP INDEX observations_chain_heads`, `ALTER TABLE observations DROP COLUMN batch_sig`,
		`ALTER TABLE observations DROP COLUMN chain_prev`, `ALTER TABLE observations DROP COLUMN chain_seq`,
		`ALTER TABLE observations DROP COLUMN chain_ref`, `DROP TABLE sensor_chains`, `DROP TABLE evidence_blocks`},
	22: {`DROP INDEX purged_observations_heads`, `ALTER TABLE purged_observations DROP COLUMN batch_head`},
	23: {`DROP VIEW observation_rows`,
		`CREATE TABLE sensor_chains_0021 (id INTEGER PRIMARY KEY, chain TEXT NOT NULL, chain_key BLOB NOT NULL, sensor TEXT NOT NULL, first_ns INTEGER NOT NULL, UNIQUE (chain, chain_key))`,
		`INSERT INTO sensor_chains_0021 SELECT id, chain, chain_key, sensor, first_ns FROM sensor_chains`,
		`DROP TABLE sensor_chains`, `ALTER TABLE sensor_chains_0021 RENAME TO sensor_chains`, view0021()},
	24: {"PRAGMA foreign_keys = OFF; BEGIN; DELETE FROM users WHERE role = 'platform'; " + users0004() +
		" INSERT INTO users_0004 SELECT * FROM users; DROP TABLE users; ALTER TABLE users_0004 RENAME TO users;" +
		" CREATE INDEX users_agency ON users (agency); COMMIT; PRAGMA foreign_keys = ON"},
	25: {`DROP TRIGGER purged_observations_no_delete`, `DROP TRIGGER purged_observations_no_update`},
	26: {`DROP TRIGGER purged_observations_no_update`, trigger0025(), `ALTER TABLE purged_observations DROP COLUMN port`,
		`ALTER TABLE purged_observations DROP COLUMN ip`},
}

// trigger0025 is purged_observations_no_update as migration 0025 creates
// it.
func trigger0025() string {
	b, err := migrationFS.ReadFile("migrations/0025_purged_append_only.sql")
	if err != nil {
		panic(err)
	}
	s := string(b)
	s = s[strings.Index(s, "CREATE TRIGGER IF NOT EXISTS purged_observations_no_update"):]
	return s[:strings.Index(s, "END;")+len("END;")]
}

// users0004 creates users_0004, the users table as migration 0004
// creates it (no platform role).
func users0004() string {
	b, err := migrationFS.ReadFile("migrations/0004_access.sql")
	if err != nil {
		panic(err)
	}
	s := string(b)
	s = s[strings.Index(s, "CREATE TABLE users ("):]
	s = s[:strings.Index(s, ";")+1]
	return strings.Replace(s, "CREATE TABLE users (", "CREATE TABLE users_0004 (", 1)
}

// view0021 is observation_rows as migration 0021 creates it.
func view0021() string {
	b, err := migrationFS.ReadFile("migrations/0021_evidence_blocks.sql")
	if err != nil {
		panic(err)
	}
	s := string(b)
	s = s[strings.Index(s, "CREATE VIEW observation_rows"):]
	return s[:strings.Index(s, ";")+1]
}

// view0013 is observation_rows as migration 0013 creates it.
func view0013() string {
	b, err := migrationFS.ReadFile("migrations/0013_clock_build.sql")
	if err != nil {
		panic(err)
	}
	s := string(b)
	return s[strings.Index(s, "CREATE VIEW observation_rows"):]
}

// undoLater takes db back to the schema of migration 0014 as far as
// laterUndo knows it (the evidence log of 0014 stays): the caller then
// undoes its own versions and deletes their schema_migrations rows.
func undoLater(ctx context.Context, t testing.TB, db *readDB) {
	t.Helper()
	var versions []int
	for v := range laterUndo {
		versions = append(versions, v)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(versions)))
	for _, v := range versions {
		for _, q := range laterUndo[v] {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("undoing migration %04d: %s: %v", v, q, err)
			}
		}
	}
}
