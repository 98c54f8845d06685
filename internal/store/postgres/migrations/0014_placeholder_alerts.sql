-- PLACEHOLDER of branch h-retention only (see 0013_placeholder_ops.sql).
-- Drop it when merging.
SELECT 1;
