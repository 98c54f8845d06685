-- The evidence log and its checkpoints refuse TRUNCATE too, as the audit
-- trail does (0005): 0008's row triggers do not fire on TRUNCATE, which
-- emptied either table from any connection that could write to it.
CREATE TRIGGER evidence_log_no_truncate BEFORE TRUNCATE ON evidence_log
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER evidence_checkpoints_no_truncate BEFORE TRUNCATE ON evidence_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();
