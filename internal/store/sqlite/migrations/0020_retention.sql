-- Retention (internal/retention): legal holds, and the record of each
-- observation whose content a purge removed.
--
-- A legal hold on a target protects the observations at its endpoints
-- (analysis_timeline), their transcripts and the leads seen there; a hold
-- on a target merged into another protects the survivor. A release keeps
-- the row (who, when, why): holds are never deleted.
CREATE TABLE legal_holds (
	id             INTEGER PRIMARY KEY,
	target         TEXT NOT NULL,   -- as placed (the store follows merged_into)
	case_ref       TEXT NOT NULL DEFAULT '',
	reason         TEXT NOT NULL,
	by_whom        TEXT NOT NULL,
	at_ns          INTEGER NOT NULL,
	released_ns    INTEGER,         -- NULL while active
	released_by    TEXT NOT NULL DEFAULT '',
	release_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX legal_holds_active ON legal_holds (target) WHERE released_ns IS NULL;

-- An observation whose transcript ('transcripts': the row stays, its
-- transcript NULL) or whole row ('observations') a purge removed. Its
-- evidence_log leaf stays (migration 0014): a bundle proves the leaf and
-- says the content was purged under retention. seq is the observation's
-- (analysis_timeline keeps its (endpoint, time, seq) row, three integers,
-- so that a target's bundle finds its purged observations).
CREATE TABLE purged_observations (
	observation_id BLOB PRIMARY KEY, -- as observations (id)
	seq            INTEGER NOT NULL,
	what           TEXT NOT NULL CHECK (what IN ('transcripts', 'observations')),
	time_ns        INTEGER NOT NULL, -- the observation's time
	purged_ns      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX purged_observations_seq ON purged_observations (seq);
