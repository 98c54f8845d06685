-- Placeholder: another branch holds migration 0022.
SELECT 1;
