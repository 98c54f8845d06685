-- A purge record says whether the observation was its sensor batch's
-- signed head (batch_head 1; 0 when it was not, or no sensor signed it).
-- A purge removes the row and, with it, the head's batch_sig: without
-- this, a bundle could not tell where a batch whose head was purged ended,
-- and refused the whole batch that follows it (evidence.ErrBatchPurged)
-- as if its purged observations were the next batch's.
--
-- The records written before this migration: an observation logged
-- before migration 0021 keeps its chain in evidence_log, which says it
-- (and the chain, for a record written before 0021 copied it); for the
-- others batch_head stays NULL, not known, and a bundle that needs the
-- batch after them still stops with ErrBatchPurged.
ALTER TABLE purged_observations ADD COLUMN batch_head INTEGER;
UPDATE purged_observations SET batch_head = (e.batch_sig IS NOT NULL),
	chain_ref = COALESCE(purged_observations.chain_ref, c.id), chain_seq = COALESCE(purged_observations.chain_seq, CASE WHEN c.id IS NOT NULL THEN e.chain_seq END)
FROM evidence_log e LEFT JOIN sensor_chains c ON c.chain = e.chain AND c.chain_key = e.chain_key
WHERE e.observation_id = purged_observations.observation_id;
CREATE INDEX purged_observations_heads ON purged_observations (chain_ref, chain_seq) WHERE batch_head = 1;
