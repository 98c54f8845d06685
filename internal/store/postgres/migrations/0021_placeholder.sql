-- PLACEHOLDER for the migration 0021 another branch adds: the runner
-- requires no gap before 0022. Dropped at merge.
SELECT 1;
