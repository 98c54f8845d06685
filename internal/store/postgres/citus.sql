-- The Citus schema (docs/deployment.md, "Citus: where every table
-- goes"). NOT a migration. Part 1 turns the schema the migrations make
-- into one whose every unique index on a distributed table holds the
-- table's key, with no trigger Citus would refuse; it is plain
-- PostgreSQL, and TestCitusSchemaScript applies it to a fresh store and
-- checks, from the catalog, that nothing is left that Citus would refuse.
-- Part 2 (after the "-- part 2" line) places every table; it needs a
-- Citus coordinator (each line a statement). Both were run on Citus 13.2.2
-- (docs/deployment.md, "Citus, run"): TestCitusPlacesEveryTableAsPlanned
-- (VIGIL_TEST_CITUS) applies them to a store on a coordinator and checks
-- from pg_dist_partition that every table is placed as the plan says.
-- The store's code must change with it (the list in docs/deployment.md):
-- ingest sets uid for every id, writes its dictionaries and looks its
-- batch's ids up in statements Citus plans, the timeline and the
-- overview's newest observations read in two steps, the evidence log's
-- joins use obs_uid, and the analysis's save keeps web_target_days and
-- web_first_days.

-- observations: keyed by uid, set for every id. A text id gets a uid
-- derived from its text (md5 of 'vigil-id:' and the text, as a uuid); the
-- two kinds of id keep separate unique indexes, so that a derived uid never
-- collides with a sensor's UUID.
ALTER TABLE observations DROP CONSTRAINT observations_check;
UPDATE observations SET uid = md5('vigil-id:' || id_text)::uuid WHERE uid IS NULL;
ALTER TABLE observations ALTER COLUMN uid SET NOT NULL;
DROP INDEX observations_uid;
CREATE UNIQUE INDEX observations_uid ON observations (uid, time_ns) WHERE id_text IS NULL;
DROP INDEX observations_id_text;
CREATE UNIQUE INDEX observations_id_text ON observations (uid, id_text, time_ns) WHERE id_text IS NOT NULL;
-- seq stays an identity: Citus (13.2, docs/deployment.md, "Citus, run")
-- distributes a table with a bigint identity, and for an INSERT through
-- the coordinator draws its values there, in the order of the INSERT's
-- SELECT (a worker draws from its own range, 2^48 times its node id:
-- Vigil writes through the coordinator only), so ingest's INSERT, under
-- its advisory lock, keeps seq in commit order unchanged.
-- The primary key was also the time index (migration 0017): it comes
-- back as a plain index.
ALTER TABLE observations DROP CONSTRAINT observations_pkey;
CREATE INDEX observations_time ON observations (time_ns, seq);
ALTER TABLE observations ADD CONSTRAINT observations_seq_uid UNIQUE (seq, uid, time_ns);

-- evidence_log: co-located with its observation. Append-only by
-- privilege instead of a trigger (dropped first: the trigger refuses the
-- UPDATE below too; the whole script is one transaction): revoke UPDATE
-- and DELETE from the role Vigil connects as (PUBLIC here; name the role).
DROP TRIGGER evidence_log_append_only ON evidence_log;
DROP TRIGGER evidence_log_no_truncate ON evidence_log; -- TRUNCATE too (migration 0010): revoke TRUNCATE
DROP TRIGGER evidence_log_closed ON evidence_log; -- INSERT too (migration 0024, the log appends to evidence_tiles): revoke INSERT
ALTER TABLE evidence_log ADD COLUMN obs_uid uuid;
UPDATE evidence_log e SET obs_uid = o.uid FROM observations o WHERE o.seq = e.obs_seq;
ALTER TABLE evidence_log ALTER COLUMN obs_uid SET NOT NULL;
ALTER TABLE evidence_log DROP CONSTRAINT evidence_log_pkey;
ALTER TABLE evidence_log ADD CONSTRAINT evidence_log_pkey PRIMARY KEY (idx, obs_uid);
ALTER TABLE evidence_log DROP CONSTRAINT evidence_log_obs_seq_key;
ALTER TABLE evidence_log ADD CONSTRAINT evidence_log_obs_key UNIQUE (obs_uid, obs_seq);
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON evidence_log FROM PUBLIC;

-- purged_observations: append-only by privilege too (migration 0020's
-- triggers dropped). UPDATE stays granted: retention's own upsert (a
-- row whose transcript was purged, purged whole later) needs it, and the
-- trigger that allowed only that update is gone: on Citus an UPDATE of a
-- purge record is refused by nothing but the role's other grants
-- (retention's upsert itself keeps the chain fields a record holds).
DROP TRIGGER purged_observations_append_only ON purged_observations;
DROP TRIGGER purged_observations_no_truncate ON purged_observations;
REVOKE DELETE, TRUNCATE ON purged_observations FROM PUBLIC;
-- observation_ids_elsewhere: append-only by privilege too (migration
-- 0029's triggers dropped): revoke UPDATE, DELETE and TRUNCATE.
DROP TRIGGER observation_ids_elsewhere_append_only ON observation_ids_elsewhere;
DROP TRIGGER observation_ids_elsewhere_no_truncate ON observation_ids_elsewhere;
REVOKE UPDATE, DELETE, TRUNCATE ON observation_ids_elsewhere FROM PUBLIC;

-- targets: the counts' triggers go (the analysis's save writes the same
-- deltas). (Its unique seq, which Citus would refuse, went in migration
-- 0028: the key on id holds it.)
DROP TRIGGER web_targets_count_insert ON targets;
DROP TRIGGER web_targets_count_update ON targets;
DROP TRIGGER web_targets_count_delete ON targets;

-- analysis_endpoints: (ip, port, gen) is the analysis's to keep unique;
-- the overview still looks endpoints up by address.
ALTER TABLE analysis_endpoints DROP CONSTRAINT analysis_endpoints_ip_port_gen_key;
CREATE INDEX analysis_endpoints_addr ON analysis_endpoints (ip, port, gen);

-- analysis_links: keyed by its first endpoint.
ALTER TABLE analysis_links DROP CONSTRAINT analysis_links_pkey;
ALTER TABLE analysis_links ADD CONSTRAINT analysis_links_pkey PRIMARY KEY (a, id);

-- To come (issue 15's tables, once their PostgreSQL migration lands with
-- the SQLite ones' keys): keyed by target, so a primary key on id alone
-- becomes (target, id). Skipped while the table does not exist.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['claim_records', 'handoff_proposals', 'case_steps'] LOOP
		IF to_regclass(t) IS NOT NULL THEN
			EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', t, t || '_pkey');
			EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (target, id)', t, t || '_pkey');
		END IF;
	END LOOP;
END
$$;

-- part 2: on a Citus coordinator only. Reference tables first (a table
-- with a foreign key to another is placed after it); then each
-- co-location group from its first table.
SELECT create_reference_table('items');
SELECT create_reference_table('lists');
SELECT create_reference_table('list_versions');
SELECT create_reference_table('entries');
SELECT create_reference_table('entry_events');
SELECT create_reference_table('confirmations');
SELECT create_reference_table('legal_holds');
SELECT create_reference_table('sensor_chains');
SELECT create_reference_table('observation_facets');
SELECT create_reference_table('observation_places');
SELECT create_reference_table('observation_matches');
SELECT create_reference_table('observation_clocks');

SELECT create_distributed_table('observations', 'uid');
SELECT create_distributed_table('evidence_log', 'obs_uid', colocate_with => 'observations');
-- colocate_with 'none': by default Citus puts a table in the group of
-- the tables whose keys have its type (here targets', text too).
SELECT create_distributed_table('purged_observations', 'observation_id', colocate_with => 'none');
SELECT create_distributed_table('observation_ids_elsewhere', 'id', colocate_with => 'purged_observations');
-- observation_blocks (migration 0030): a block on one shard, by its
-- least seq; not co-located (no other table is keyed by seq ranges).
SELECT create_distributed_table('observation_blocks', 'seq_lo', colocate_with => 'none');

SELECT create_distributed_table('analysis_endpoints', 'id');
SELECT create_distributed_table('analysis_endpoint_files', 'endpoint', colocate_with => 'analysis_endpoints');
SELECT create_distributed_table('analysis_timeline_days', 'endpoint', colocate_with => 'analysis_endpoints');
SELECT create_distributed_table('analysis_links', 'a', colocate_with => 'analysis_endpoints');

SELECT create_distributed_table('targets', 'id');
SELECT create_distributed_table('target_access', 'target', colocate_with => 'targets');
SELECT create_distributed_table('target_categories', 'target', colocate_with => 'targets');

SELECT create_distributed_table('claims', 'target', colocate_with => 'targets');
SELECT create_distributed_table('claim_records', 'target', colocate_with => 'targets');
SELECT create_distributed_table('handoff_proposals', 'target', colocate_with => 'targets');
SELECT create_distributed_table('case_steps', 'target', colocate_with => 'targets');
SELECT create_distributed_table('case_subscribers', 'target', colocate_with => 'targets');

-- Every other table stays local on the coordinator (the plan's "local").

-- create_*_table copies a table's rows into its shards and leaves the
-- coordinator's own copy on disk, unread (Citus's notice): freed here.
SELECT count(truncate_local_data_after_distributing_table(p.logicalrelid)) FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid WHERE c.relnamespace = current_schema()::regnamespace AND NOT c.relispartition;
