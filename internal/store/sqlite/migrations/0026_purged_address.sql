-- A purge record carries the address and port of the observation it
-- records (PostgreSQL's migration 0024): PurgedOfTarget ties purge records
-- to a target through the analysis's timeline (a sighting's seq), and
-- refuses a record whose address, port or time is not its sighting's, as
-- a row of the timeline edited by hand could otherwise list another
-- address's purged observation as the target's. ip as observations holds
-- it, port the observation's own; NULL in the records written before
-- (their rows may be gone), which are checked by their time only.
-- Retention's one update (0025) keeps an address and port already
-- recorded.
ALTER TABLE purged_observations ADD COLUMN ip TEXT;
ALTER TABLE purged_observations ADD COLUMN port INTEGER;
DROP TRIGGER purged_observations_no_update;
CREATE TRIGGER purged_observations_no_update BEFORE UPDATE ON purged_observations
WHEN NOT (OLD.what = 'transcripts' AND NEW.what = 'observations'
	AND NEW.observation_id IS OLD.observation_id AND NEW.seq IS OLD.seq AND NEW.time_ns IS OLD.time_ns
	AND NEW.purged_ns >= OLD.purged_ns
	AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS OLD.chain_ref)
	AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS OLD.chain_seq)
	AND (OLD.batch_head IS NULL OR NEW.batch_head IS OLD.batch_head)
	AND (OLD.ip IS NULL OR NEW.ip IS OLD.ip)
	AND (OLD.port IS NULL OR NEW.port IS OLD.port))
BEGIN SELECT RAISE(ABORT, 'purged_observations is append-only'); END;
