-- Migration 0028 (h-savecost): one index entry fewer for each row of
-- targets and of target_access that the analysis's save writes. Their
-- score and times are indexed (the lists sort by them), so a save's
-- update of either is never HOT: every row version it writes adds an
-- entry to every index of its table.
--
-- targets_seq_key (UNIQUE (seq)) is redundant: a target's id is
-- TargetID(seq) and its seq is read back from the id (ParseTargetID),
-- so the primary key on id already keeps seq unique; no query looks a
-- target up or orders targets by seq alone (the ids merged into one are
-- read through targets_merged, which holds seq).
ALTER TABLE targets DROP CONSTRAINT targets_seq_key;

-- target_access keyed (target, agency) instead of (agency, target): the
-- key then serves the reads by target (the save's updates and deletes,
-- a target's scope check and agencies, the scope's EXISTS) that
-- target_access_target served, and that index goes. An agency's reads
-- go through target_access_rank, _last and _first, which lead with
-- agency; the save's ON CONFLICT (agency, target) names the same columns.
ALTER TABLE target_access DROP CONSTRAINT target_access_pkey;
ALTER TABLE target_access ADD CONSTRAINT target_access_pkey PRIMARY KEY (target, agency);
DROP INDEX target_access_target;
