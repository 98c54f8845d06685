-- PLACEHOLDER of branch h-retention only: migration numbers 0013 and 0014
-- belong to other work; this empty file lets 0015 apply on this branch
-- (migrations have no gaps). Drop it when merging.
SELECT 1;
