-- purged_observations is the record of what retention removed (issue 13):
-- like the evidence log it is append-only. A row is never deleted, and
-- the table never truncated. The one update allowed is retention's own:
-- an observation whose transcript was purged ('transcripts') is later
-- purged whole ('observations', ON CONFLICT DO UPDATE), its id, seq and
-- time unchanged, purged no earlier, and chain fields it already held
-- kept. Anything else is refused as append-only.
CREATE FUNCTION vigil_purged_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.what = 'transcripts' AND NEW.what = 'observations'
		AND NEW.observation_id = OLD.observation_id AND NEW.seq = OLD.seq AND NEW.time_ns = OLD.time_ns
		AND NEW.purged_ns >= OLD.purged_ns
		AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS NOT DISTINCT FROM OLD.chain_ref)
		AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS NOT DISTINCT FROM OLD.chain_seq) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER purged_observations_append_only BEFORE UPDATE OR DELETE ON purged_observations
	FOR EACH ROW EXECUTE FUNCTION vigil_purged_append_only();
CREATE TRIGGER purged_observations_no_truncate BEFORE TRUNCATE ON purged_observations
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();
