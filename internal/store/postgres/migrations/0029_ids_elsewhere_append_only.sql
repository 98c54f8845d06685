-- Migration 0029 (h-rev7): observation_ids_elsewhere (migration 0027)
-- is append-only, as purged_observations is (migration 0020). It is not
-- a cache that can be emptied and rebuilt at leisure: ingest refuses a
-- replay of an id stored outside its window only because the id is
-- listed, so a listing deleted (or the table truncated) let such a
-- replay with another time be stored twice, with no error. Nothing
-- removes a listing (a purge keeps it: migration 0027). Triggers stop
-- mistakes and ordinary roles; whoever owns the database can drop them.
CREATE TRIGGER observation_ids_elsewhere_append_only BEFORE UPDATE OR DELETE ON observation_ids_elsewhere
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER observation_ids_elsewhere_no_truncate BEFORE TRUNCATE ON observation_ids_elsewhere
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();
