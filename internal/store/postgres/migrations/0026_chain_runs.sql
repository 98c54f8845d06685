-- Migration 0026.
--
-- A signed observation is no longer indexed by its chain position (issues
-- 13 and 14: observations_chain held an entry for every signed row, 31.7
-- of the 127 bytes of indexes an observation in the lab shape, and its
-- upkeep a few µs of the server's CPU a signed observation). What a
-- lookup needs instead:
--
-- * the batches' signed heads, indexed by chain position as in the
--   SQLite store (its observations_chain_heads, SQLite migration 0021):
--   ChainBatch and retention's held batches find a batch's bounds there;
-- * where each commit put the rows of each chain: one row here for each
--   chain and block of 64 chain positions (chain_seq >> 6) a commit
--   stored rows of, with the least and greatest observations' seq it
--   gave them. The readers of a chain's rows (ChainObservations, the
--   gate's Stored, retention's held batches) read the observations in
--   those seq ranges (observations_by_seq) and keep the rows of the
--   chain and positions asked for.
--
-- Rows of one chain that a commit stores do not have consecutive seqs
-- (other sensors' rows come between them, ON CONFLICT leaves gaps, and
-- the INSERT gives seqs in the order its plan reads the staging table),
-- and the rows of one batch are not all stored before its head (several
-- ingests sharing a bus store a batch's parts in turn, the head's part
-- first): hence a range a commit, and not a range between two heads.
-- Each commit's seqs are one block no other commit's overlaps (the
-- INSERT draws them under seqOrder's lock), so a row's chain position is
-- found in the one range of the run that holds it.
CREATE TABLE observation_chain_runs (
	chain_ref bigint NOT NULL, -- sensor_chains (id)
	block     bigint NOT NULL, -- chain_seq >> 6 of the run's rows
	first_seq bigint NOT NULL, -- the least observations.seq of the run's rows
	last_seq  bigint NOT NULL, -- the greatest
	PRIMARY KEY (chain_ref, block, first_seq),
	CHECK (first_seq <= last_seq)
);

-- The rows stored before: one run for each chain and block, from its
-- first row's seq to its last's (the rows between that are of other
-- chains or blocks are read and left).
INSERT INTO observation_chain_runs (chain_ref, block, first_seq, last_seq)
SELECT chain_ref, chain_seq >> 6, min(seq), max(seq) FROM observations
WHERE chain_ref IS NOT NULL GROUP BY 1, 2;

DROP INDEX observations_chain;
CREATE INDEX observations_chain_heads ON observations (chain_ref, chain_seq) WHERE batch_sig IS NOT NULL;
