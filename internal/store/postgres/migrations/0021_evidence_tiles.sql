-- The evidence log in tiles (issue 13's disk, issue 14's evidence): an
-- evidence_blocks row (0016) holds each leaf (32 bytes) and its
-- observation's id (17 bytes), about 52 bytes an observation with the
-- row. A leaf is a function of its observation's row (observe.LeafHash),
-- so from this migration a commit appends one evidence_tiles row a block
-- of at most 4,096 leaves, holding:
--   first     the 1-based index of its first leaf (leaf index = first - 1
--             + k for its k-th leaf); it follows on from the log's last
--             leaf, in evidence_tiles, else evidence_blocks, else
--             evidence_log (which keep the leaves stored before, as they
--             are);
--   first_seq the seq of its first leaf's observation; its leaves are
--             its commit's observations in seq order, so the block of an
--             observation is the one of the largest first_seq at or below
--             its seq;
--   n         its number of leaves;
--   level     the largest level of the nodes it keeps;
--   seqs      the seqs of its leaves' observations, as runs of
--             consecutive seqs (each a uvarint gap and a uvarint length
--             less one: two bytes for a commit with no redelivery);
--   nodes     the RFC 6962 hashes, 32 bytes each, of the subtrees that
--             cover its leaves, left to right: at each leaf the largest
--             aligned subtree of at most 2^level leaves that ends within
--             the block (one hash for 16 leaves at level 4).
-- A leaf is read by hashing its observation's row again, or from its
-- purge record (below), and the leaves of a node must give its hash: a row
-- changed or removed after it was logged is caught there. Rows are never
-- updated or deleted.
CREATE TABLE evidence_tiles (
	first     bigint PRIMARY KEY,
	first_seq bigint NOT NULL,
	n         integer NOT NULL CHECK (n > 0),
	level     smallint NOT NULL CHECK (level BETWEEN 0 AND 12),
	seqs      bytea NOT NULL,
	nodes     bytea NOT NULL
);
CREATE UNIQUE INDEX evidence_tiles_seq ON evidence_tiles (first_seq);
CREATE TRIGGER evidence_tiles_append_only BEFORE UPDATE OR DELETE ON evidence_tiles
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER evidence_tiles_no_truncate BEFORE TRUNCATE ON evidence_tiles
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();

-- A purge removes the row (or its transcript) a leaf is hashed from: the
-- purge record keeps the leaf, hashed from the row as it was before the
-- purge (NULL in the records written before this migration, whose
-- leaves evidence_log and evidence_blocks keep). Retention's one update
-- (0020) keeps a leaf already recorded.
ALTER TABLE purged_observations ADD COLUMN leaf bytea;
CREATE OR REPLACE FUNCTION vigil_purged_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.what = 'transcripts' AND NEW.what = 'observations'
		AND NEW.observation_id = OLD.observation_id AND NEW.seq = OLD.seq AND NEW.time_ns = OLD.time_ns
		AND NEW.purged_ns >= OLD.purged_ns
		AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS NOT DISTINCT FROM OLD.chain_ref)
		AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS NOT DISTINCT FROM OLD.chain_seq)
		AND (OLD.leaf IS NULL OR NEW.leaf IS NOT DISTINCT FROM OLD.leaf) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
