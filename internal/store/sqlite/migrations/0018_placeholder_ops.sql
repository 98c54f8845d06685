-- PLACEHOLDER of branch h-retention only: migration numbers 0018 and 0019
-- belong to other work; this empty file lets 0020 apply on this branch
-- (migrations have no gaps). Drop it when merging.
SELECT 1;
