-- Placeholder: another branch holds migration 0021.
SELECT 1;
