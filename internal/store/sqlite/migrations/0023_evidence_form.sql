-- Evidence forms (issue 14, docs/evidence.md "Evidence forms"): a
-- sensor chain's observations are hashed in one evidence form, 1 (the
-- line has no evidence_form) or 2. The form is the chain row's, so that
-- the observation's own row does not grow: a chain met in two forms (a
-- line relabelled on the way) is two rows, one a form, and each
-- observation's row names the row of its own form, so that a bundle
-- gives the line back as ingest stored it. SQLite cannot change a
-- table's UNIQUE in place: sensor_chains is rebuilt, its ids kept.
DROP VIEW observation_rows;
CREATE TABLE sensor_chains_0023 (
	id        INTEGER PRIMARY KEY,
	chain     TEXT NOT NULL,
	chain_key BLOB NOT NULL,
	sensor    TEXT NOT NULL,
	first_ns  INTEGER NOT NULL,
	form      INTEGER NOT NULL DEFAULT 1,
	UNIQUE (chain, chain_key, form)
);
INSERT INTO sensor_chains_0023 (id, chain, chain_key, sensor, first_ns)
SELECT id, chain, chain_key, sensor, first_ns FROM sensor_chains;
DROP TABLE sensor_chains;
ALTER TABLE sensor_chains_0023 RENAME TO sensor_chains;

CREATE VIEW observation_rows AS
SELECT o.seq, o.id, o.time_ns,
	CASE WHEN o.facet_id IS NULL THEN o.sensor ELSE f.sensor END AS sensor,
	CASE WHEN o.facet_id IS NULL THEN o.sensor_version ELSE f.sensor_version END AS sensor_version,
	CASE WHEN o.facet_id IS NULL THEN o.vantage ELSE f.vantage END AS vantage,
	CASE WHEN o.facet_id IS NULL THEN o.network ELSE f.network END AS network,
	CASE WHEN o.facet_id IS NULL THEN o.method ELSE f.method END AS method,
	CASE WHEN o.clock_uncertainty_ns IS NULL THEN NULL ELSE o.clock_offset_ns END AS clock_offset_ns,
	CASE WHEN o.facet_id IS NULL THEN o.clock_source ELSE f.clock_source END AS clock_source,
	o.item_id, o.matched, o.ip, o.port,
	CASE WHEN o.facet_id IS NULL THEN o.transport ELSE f.transport END AS transport,
	o.peer_id,
	CASE WHEN o.facet_id IS NULL THEN o.client ELSE f.client END AS client,
	CASE WHEN o.facet_id IS NULL THEN o.client_version ELSE f.client_version END AS client_version,
	o.listen_port, o.node_id, o.user_hash, o.guid,
	CASE WHEN o.facet_id IS NULL THEN o.possession ELSE f.possession END AS possession,
	o.pieces_have, o.pieces_total, o.transcript, o.transcript_ref, o.transcript_sha256,
	CASE WHEN o.place_id IS NULL THEN o.place ELSE p.place END AS place,
	o.agency,
	CASE WHEN o.facet_id IS NULL THEN o.agency_rule ELSE f.agency_rule END AS agency_rule,
	COALESCE(o.marks, '') AS marks,
	COALESCE(o.sensor_address, '') AS sensor_address,
	o.clock_uncertainty_ns,
	COALESCE(f.build_commit, '') AS build_commit,
	COALESCE(f.build_modified, 0) AS build_modified,
	COALESCE(f.sensor_config, '') AS sensor_config,
	c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig, o.chain_ref, c.form AS chain_form
FROM observations o
LEFT JOIN facets f ON f.id = o.facet_id
LEFT JOIN places p ON p.id = o.place_id
LEFT JOIN sensor_chains c ON c.id = o.chain_ref;
