-- Claims (issue 15, internal/casework): which agency holds a target, since
-- when, whom to call, and its last activity (a claim lapses after
-- casework.Config.LapseAfter without one); and every claim, refusal,
-- release and lapse, kept forever. Not derived: the analysis never writes
-- them, and a migration that resets the analysis keeps them.
CREATE TABLE claims (
	target    TEXT PRIMARY KEY, -- targets (id)
	agency    TEXT NOT NULL,
	by_whom   TEXT NOT NULL,
	contact   TEXT NOT NULL,
	since_ns  INTEGER NOT NULL,
	active_ns INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE claim_records (
	id     INTEGER PRIMARY KEY,
	target TEXT NOT NULL,
	at_ns  INTEGER NOT NULL,
	kind   TEXT NOT NULL, -- claim, refused, release, lapse
	agency TEXT NOT NULL,
	by_whom TEXT NOT NULL,
	note   TEXT NOT NULL
);
CREATE INDEX claim_records_target ON claim_records (target, id);
