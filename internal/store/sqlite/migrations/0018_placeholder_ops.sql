-- PLACEHOLDER of branch h-evcost only: migration numbers 0018 to 0020
-- belong to other work; this empty file lets 0021 apply on this branch
-- (migrations have no gaps). Drop it when merging.
SELECT 1;
