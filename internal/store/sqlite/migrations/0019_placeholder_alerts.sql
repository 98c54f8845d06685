-- PLACEHOLDER of branch h-evcost only (see 0018_placeholder_ops.sql).
-- Drop it when merging.
SELECT 1;
