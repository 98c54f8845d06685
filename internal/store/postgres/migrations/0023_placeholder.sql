-- PLACEHOLDER, not a migration: it stands for another branch's 0023 (the
-- observations table, h-rows), so that this branch's 0024 has no gap.
-- Drop this file at merge.
SELECT 1;
