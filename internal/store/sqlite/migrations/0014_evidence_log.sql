-- The evidence log (internal/evidence): an append-only RFC 6962 Merkle
-- log of every stored observation. A leaf is the RFC 6962 leaf hash of
-- the observation's canonical JSON form (internal/evidence/canon); leaf
-- index = idx - 1, in the order observations were stored. A redelivered
-- observation (same id) appends nothing. Rows are never updated or
-- deleted, also when retention purges the observation: a hash reveals
-- nothing, and the log's checkpoints commit to it.
--
-- chain, chain_seq, chain_key, chain_prev and batch_sig are where the
-- sensor's signed hash chain holds the observation (observe.Chain), NULL
-- when no sensor signed it: kept here, beside the leaf that commits to
-- them, rather than as columns of observations.
CREATE TABLE IF NOT EXISTS evidence_log (
	idx            INTEGER PRIMARY KEY,
	observation_id BLOB NOT NULL UNIQUE,
	leaf           BLOB NOT NULL,
	chain          TEXT,
	chain_seq      INTEGER,
	chain_key      BLOB,
	chain_prev     BLOB,
	batch_sig      BLOB
);

-- A bundle finds the batch around an observation by its chain and seq.
CREATE INDEX IF NOT EXISTS evidence_log_chain ON evidence_log (chain, chain_seq) WHERE chain IS NOT NULL;

-- Signed checkpoints of the log: its size, its root, and the signed note
-- (C2SP tlog-checkpoint) as it was handed to the witnesses. A log that did
-- not grow may be signed again (another time).
CREATE TABLE IF NOT EXISTS evidence_checkpoints (
	size    INTEGER NOT NULL,
	time_ns INTEGER NOT NULL,
	root    BLOB NOT NULL,
	note    BLOB NOT NULL,
	PRIMARY KEY (size, time_ns)
);

CREATE TRIGGER IF NOT EXISTS evidence_log_no_update BEFORE UPDATE ON evidence_log
BEGIN SELECT RAISE(ABORT, 'evidence_log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS evidence_log_no_delete BEFORE DELETE ON evidence_log
BEGIN SELECT RAISE(ABORT, 'evidence_log is append-only'); END;

-- (IF NOT EXISTS: tests that roll a store back to an older schema version
-- apply the later migrations again over these tables.)
CREATE TRIGGER IF NOT EXISTS evidence_checkpoints_no_update BEFORE UPDATE ON evidence_checkpoints
BEGIN SELECT RAISE(ABORT, 'evidence_checkpoints is append-only'); END;
CREATE TRIGGER IF NOT EXISTS evidence_checkpoints_no_delete BEFORE DELETE ON evidence_checkpoints
BEGIN SELECT RAISE(ABORT, 'evidence_checkpoints is append-only'); END;
