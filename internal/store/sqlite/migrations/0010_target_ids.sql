-- Target ids people can read aloud (issue 17): "T-" + the number in six
-- digits + "-" + two ISO 7064 MOD 97-10 check digits (analysis.TargetID),
-- instead of base 32 (T-1 … T-V, T-10). Every stored id is rewritten from
-- its number (targets.seq); ids already in the new form are left alone, so
-- that the migration can run again on a store whose schema_migrations was
-- rolled back. analysis_decisions keep the subject the analyst decided on:
-- analysis.ParseTargetID still reads the old form, as it reads old ids in
-- the audit trail.
CREATE TEMP TABLE target_id_map AS
	SELECT id AS old, 'T-' || printf('%06d', seq) || '-' || printf('%02d', 98 - (seq % 97) * 100 % 97) AS new
	FROM targets
	WHERE id != 'T-' || printf('%06d', seq) || '-' || printf('%02d', 98 - (seq % 97) * 100 % 97);
CREATE UNIQUE INDEX temp.target_id_map_old ON target_id_map (old);

UPDATE targets SET merged_into = (SELECT new FROM target_id_map WHERE old = targets.merged_into)
	WHERE merged_into IN (SELECT old FROM target_id_map);
UPDATE targets SET id = (SELECT new FROM target_id_map WHERE old = targets.id)
	WHERE id IN (SELECT old FROM target_id_map);
UPDATE target_access SET target = (SELECT new FROM target_id_map WHERE old = target_access.target)
	WHERE target IN (SELECT old FROM target_id_map);
UPDATE target_categories SET target = (SELECT new FROM target_id_map WHERE old = target_categories.target)
	WHERE target IN (SELECT old FROM target_id_map);
UPDATE analysis_endpoints SET target = (SELECT new FROM target_id_map WHERE old = analysis_endpoints.target)
	WHERE target IN (SELECT old FROM target_id_map);
UPDATE analysis_alerts SET subject = (SELECT new FROM target_id_map WHERE old = analysis_alerts.subject)
	WHERE subject IN (SELECT old FROM target_id_map);

DROP TABLE target_id_map;
