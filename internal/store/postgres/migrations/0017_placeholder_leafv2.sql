-- Placeholder, branch h-leafv2 only: migration 0017 is another branch's
-- (the observation row layout). Delete this file when that branch's
-- 0017 is merged; 0018 follows it.
SELECT 1;
