-- Retention (internal/retention): legal holds, and the record of each
-- observation whose content a purge removed: the SQLite store's
-- migration 0020. A release keeps the hold's row (who, when, why).
CREATE TABLE legal_holds (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target         text NOT NULL,   -- as placed (the store follows merged_into)
	case_ref       text NOT NULL DEFAULT '',
	reason         text NOT NULL,
	by_whom        text NOT NULL,
	at_ns          bigint NOT NULL,
	released_ns    bigint,          -- NULL while active
	released_by    text NOT NULL DEFAULT '',
	release_reason text NOT NULL DEFAULT ''
);
CREATE INDEX legal_holds_active ON legal_holds (target) WHERE released_ns IS NULL;

-- An observation whose transcript ('transcripts') or whole row
-- ('observations') a purge removed; its evidence_log leaf (keyed by seq)
-- stays. observation_id is the id as text (a UUID in canonical form).
CREATE TABLE purged_observations (
	observation_id text PRIMARY KEY,
	seq            bigint NOT NULL,
	what           text NOT NULL CHECK (what IN ('transcripts', 'observations')),
	time_ns        bigint NOT NULL,
	purged_ns      bigint NOT NULL
);
CREATE INDEX purged_observations_seq ON purged_observations (seq);
