-- An agency's targets by last or first sighting, read in order from an
-- index within the scope, as target_access_rank serves them by score: an
-- investigator's list sorted by date no longer walks every agency's
-- targets in date order to keep its own (docs/benchmarks.md). Kept by
-- the analysis with the score.
ALTER TABLE target_access ADD COLUMN last_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE target_access ADD COLUMN first_ns INTEGER NOT NULL DEFAULT 0;
UPDATE target_access SET (last_ns, first_ns) = (SELECT t.last_ns, t.first_ns FROM targets t WHERE t.id = target_access.target);
CREATE INDEX target_access_last ON target_access (agency, last_ns DESC, target);
CREATE INDEX target_access_first ON target_access (agency, first_ns, target);
