-- The evidence log's leaves in blocks, and the sensor chain in the
-- observation's own row (issue 14: logging cost ingest a third of its CPU,
-- most of it a second row, and its index, per observation).
--
-- evidence_log (0014) keeps the leaves stored before this migration, as
-- they are: leaf index = idx - 1. Every later commit appends one row here
-- holding the leaves of the observations it stored, in the order of their
-- seq: leaf index = first - 1 + k for the k-th leaf (0-based) of the
-- block; first follows on from the log's last leaf. ids holds each leaf's
-- observation id, as observations (id) holds it, prefixed by its length
-- (one byte), so that a leaf stays bound to its observation after
-- retention purges the row. first_seq is the seq of the block's first
-- observation (the leaf of an observation is in the block of the largest
-- first_seq at or below its seq). Rows are never updated or deleted.
CREATE TABLE evidence_blocks (
	first     INTEGER PRIMARY KEY,
	first_seq INTEGER NOT NULL,
	ids       BLOB NOT NULL,
	leaves    BLOB NOT NULL -- 32 bytes a leaf
);
CREATE INDEX evidence_blocks_seq ON evidence_blocks (first_seq);
CREATE TRIGGER evidence_blocks_no_update BEFORE UPDATE ON evidence_blocks
BEGIN SELECT RAISE(ABORT, 'evidence_blocks is append-only'); END;
CREATE TRIGGER evidence_blocks_no_delete BEFORE DELETE ON evidence_blocks
BEGIN SELECT RAISE(ABORT, 'evidence_blocks is append-only'); END;

-- A sensor's chain (observe.Chain): its id and key once, here, with the
-- sensor and time of its first observation stored; each observation
-- holds its place in it (chain_ref, chain_seq, chain_prev and, on a
-- batch's signed head, batch_sig). All NULL when no sensor signed it.
CREATE TABLE sensor_chains (
	id        INTEGER PRIMARY KEY,
	chain     TEXT NOT NULL,
	chain_key BLOB NOT NULL,
	sensor    TEXT NOT NULL,
	first_ns  INTEGER NOT NULL,
	UNIQUE (chain, chain_key)
);
ALTER TABLE observations ADD COLUMN chain_ref INTEGER;
ALTER TABLE observations ADD COLUMN chain_seq INTEGER;
ALTER TABLE observations ADD COLUMN chain_prev BLOB;
ALTER TABLE observations ADD COLUMN batch_sig BLOB;

-- The chains of observations stored before: copied from evidence_log
-- (which keeps them too).
INSERT OR IGNORE INTO sensor_chains (chain, chain_key, sensor, first_ns)
SELECT e.chain, e.chain_key, o.sensor, o.time_ns FROM evidence_log e JOIN observation_rows o ON o.id = e.observation_id
WHERE e.chain IS NOT NULL ORDER BY e.idx;
UPDATE observations SET chain_ref = c.id, chain_seq = e.chain_seq, chain_prev = e.chain_prev, batch_sig = e.batch_sig
FROM evidence_log e JOIN sensor_chains c ON c.chain = e.chain AND c.chain_key = e.chain_key
WHERE e.observation_id = observations.id AND e.chain IS NOT NULL;

-- A bundle finds the batch around an observation by its chain and seq:
-- the signed heads (one observation in 256) by this index, the rest of
-- the batch among the rows stored between the head before and the head.
CREATE INDEX observations_chain_heads ON observations (chain_ref, chain_seq) WHERE batch_sig IS NOT NULL;

DROP VIEW IF EXISTS observation_rows;
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
	c.chain, o.chain_seq, c.chain_key, o.chain_prev, o.batch_sig, o.chain_ref
FROM observations o
LEFT JOIN facets f ON f.id = o.facet_id
LEFT JOIN places p ON p.id = o.place_id
LEFT JOIN sensor_chains c ON c.id = o.chain_ref;

-- A purge removes a row and, with it, the chain fields above: the purge
-- record keeps the observation's chain and seq, so that a bundle that
-- needs the batch says it was purged in part (evidence.ErrBatchPurged)
-- rather than that a seq is missing.
ALTER TABLE purged_observations ADD COLUMN chain_ref INTEGER;
ALTER TABLE purged_observations ADD COLUMN chain_seq INTEGER;
CREATE INDEX purged_observations_chain ON purged_observations (chain_ref, chain_seq) WHERE chain_ref IS NOT NULL;
