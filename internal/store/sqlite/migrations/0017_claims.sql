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

-- Hand-off proposals: a claimed target whose newest first-hand
-- observations were routed to another agency; accepted or declined, with
-- who, when and a note. Kept forever.
CREATE TABLE handoff_proposals (
	id          INTEGER PRIMARY KEY,
	target      TEXT NOT NULL,
	from_agency TEXT NOT NULL,
	to_agency   TEXT NOT NULL,
	reason      TEXT NOT NULL,
	at_ns       INTEGER NOT NULL,
	state       TEXT NOT NULL, -- pending, accepted, declined
	decided_by  TEXT NOT NULL,
	decided_ns  INTEGER NOT NULL,
	note        TEXT NOT NULL
);
CREATE INDEX handoff_proposals_target ON handoff_proposals (target, state);

-- Case progress: each target's steps (lead, isp_request_sent,
-- subscriber_identified, search, closed) with who, when, a note and, when
-- closed, the outcomes (comma-separated); and the subscriber an ISP named,
-- shown only to the agency holding the target and the national office.
CREATE TABLE case_steps (
	id       INTEGER PRIMARY KEY,
	target   TEXT NOT NULL,
	step     TEXT NOT NULL,
	at_ns    INTEGER NOT NULL,
	agency   TEXT NOT NULL,
	by_whom  TEXT NOT NULL,
	note     TEXT NOT NULL,
	outcomes TEXT NOT NULL
);
CREATE INDEX case_steps_target ON case_steps (target, id);
CREATE TABLE case_subscribers (
	target  TEXT PRIMARY KEY,
	details TEXT NOT NULL,
	agency  TEXT NOT NULL,
	by_whom TEXT NOT NULL,
	at_ns   INTEGER NOT NULL
) WITHOUT ROWID;
