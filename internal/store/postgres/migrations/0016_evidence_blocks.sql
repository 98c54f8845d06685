-- The evidence log's leaves in blocks, and the sensor chain in the
-- observation's own row (issue 14; the SQLite store's migration 0021):
-- a leaf row per observation, its two indexes and, when signed, its chain
-- index cost PostgreSQL about half of ingest's CPU (docs/benchmarks.md).
--
-- evidence_log (0008) keeps the leaves stored before this migration, as
-- they are: leaf index = idx - 1. Every later commit appends one row here
-- (one per 4,096 leaves) holding the leaves of the observations it
-- stored: leaf index = first - 1 + k for the k-th leaf (0-based) of the
-- block; first follows on from the log's last leaf. ids holds each leaf's
-- observation id, as observations holds it (a UUID's 16 bytes, any other
-- id's text), prefixed by its length (a uvarint), so that a leaf stays
-- bound to its observation whatever retention purges. first_seq is the
-- least seq of the commit's observations (every block of one commit has
-- the same): the leaf of an observation is in a block of the largest
-- first_seq at or below its seq, as batches draw their seqs and commit in
-- order. Rows are never updated or deleted.
CREATE TABLE evidence_blocks (
	first     bigint PRIMARY KEY,
	first_seq bigint NOT NULL,
	ids       bytea NOT NULL,
	leaves    bytea NOT NULL -- 32 bytes a leaf
);
CREATE INDEX evidence_blocks_seq ON evidence_blocks (first_seq);
CREATE TRIGGER evidence_blocks_append_only BEFORE UPDATE OR DELETE ON evidence_blocks
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER evidence_blocks_no_truncate BEFORE TRUNCATE ON evidence_blocks
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();

-- A sensor's chain (observe.Chain): its id and key once, here, with the
-- sensor and time of its first observation stored; each observation
-- holds its place in it (chain_ref, chain_seq, chain_prev and, on a
-- batch's signed head, batch_sig). All NULL when no sensor signed it.
CREATE TABLE sensor_chains (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	chain     text NOT NULL,
	chain_key bytea NOT NULL,
	sensor    text NOT NULL,
	first_ns  bigint NOT NULL,
	UNIQUE (chain, chain_key)
);
ALTER TABLE observations ADD COLUMN chain_ref bigint, ADD COLUMN chain_seq bigint,
	ADD COLUMN chain_prev bytea, ADD COLUMN batch_sig bytea;

-- A purge removes a row and, with it, the chain fields above: the purge
-- record keeps the observation's chain and seq, so that a bundle that
-- needs the batch says it was purged in part.
ALTER TABLE purged_observations ADD COLUMN chain_ref bigint, ADD COLUMN chain_seq bigint;

-- The chains of observations stored before: copied from evidence_log
-- (which keeps them too). A chain whose first observation was purged
-- keeps its key, with no sensor (the store's purgedSensor).
INSERT INTO sensor_chains (chain, chain_key, sensor, first_ns)
SELECT DISTINCT ON (e.chain, e.chain_key) e.chain, e.chain_key,
	COALESCE(o.sensor, '(first observation purged under retention)'), COALESCE(o.time_ns, p.time_ns, 0)
FROM evidence_log e
LEFT JOIN observations o ON o.seq = e.obs_seq
LEFT JOIN purged_observations p ON p.seq = e.obs_seq
WHERE e.chain IS NOT NULL
ORDER BY e.chain, e.chain_key, e.idx;
UPDATE observations o SET chain_ref = c.id, chain_seq = e.chain_seq, chain_prev = e.chain_prev, batch_sig = e.batch_sig
FROM evidence_log e JOIN sensor_chains c ON c.chain = e.chain AND c.chain_key = e.chain_key
WHERE e.obs_seq = o.seq AND e.chain IS NOT NULL;
UPDATE purged_observations p SET chain_ref = c.id, chain_seq = e.chain_seq
FROM evidence_log e JOIN sensor_chains c ON c.chain = e.chain AND c.chain_key = e.chain_key
WHERE e.obs_seq = p.seq AND e.chain IS NOT NULL;

-- A bundle, and retention's legal holds, find the batch around an
-- observation by its chain and seq (every signed row: the rows of a batch
-- are read by it, as evidence_log_chain read them).
CREATE INDEX observations_chain ON observations (chain_ref, chain_seq) WHERE chain_ref IS NOT NULL;
CREATE INDEX purged_observations_chain ON purged_observations (chain_ref, chain_seq) WHERE chain_ref IS NOT NULL;
