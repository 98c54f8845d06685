-- purged_observations is the record of what retention removed (issue 13):
-- like the evidence log it is append-only. A row is never deleted. The
-- one update allowed is retention's own: an observation whose transcript
-- was purged ('transcripts') is later purged whole ('observations', ON
-- CONFLICT DO UPDATE), its id, seq and time unchanged, purged no earlier,
-- and chain fields it already held kept. Anything else is refused as
-- append-only. (SQLite has no TRUNCATE: DELETE without WHERE fires the
-- trigger, as a trigger on the table disables the truncate optimisation.)
CREATE TRIGGER IF NOT EXISTS purged_observations_no_delete BEFORE DELETE ON purged_observations
BEGIN SELECT RAISE(ABORT, 'purged_observations is append-only'); END;
CREATE TRIGGER IF NOT EXISTS purged_observations_no_update BEFORE UPDATE ON purged_observations
WHEN NOT (OLD.what = 'transcripts' AND NEW.what = 'observations'
	AND NEW.observation_id IS OLD.observation_id AND NEW.seq IS OLD.seq AND NEW.time_ns IS OLD.time_ns
	AND NEW.purged_ns >= OLD.purged_ns
	AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS OLD.chain_ref)
	AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS OLD.chain_seq)
	AND (OLD.batch_head IS NULL OR NEW.batch_head IS OLD.batch_head))
BEGIN SELECT RAISE(ABORT, 'purged_observations is append-only'); END;
