-- PLACEHOLDER of branch h-alerts only: migration number 0018 belongs to
-- other work (operations); this empty file lets 0019 apply on this branch
-- (migrations have no gaps). Drop it when merging.
SELECT 1;
