-- Devices, links, targets, scores, quarantine and associated files
-- (internal/analysis). Filled in by the analysis work.
SELECT 1;
