-- Claims (issue 15, internal/casework), as the SQLite store keeps them
-- (its migration 0017): which agency holds a target, since when, whom to
-- call, and its last activity (a claim lapses after
-- casework.Config.LapseAfter without one); and every claim, refusal,
-- release, lapse and hand-off, kept forever. Not derived: the analysis
-- never writes them, and a migration that resets the analysis keeps them.
-- Two processes claiming one target at once are kept apart by the
-- primary key (the second's INSERT waits for the first's transaction,
-- fails, and is run again, now seeing the claim) and by SELECT ... FOR
-- UPDATE of an existing claim.
CREATE TABLE claims (
	target    text PRIMARY KEY, -- targets (id)
	agency    text NOT NULL,
	by_whom   text NOT NULL,
	contact   text NOT NULL,
	since_ns  bigint NOT NULL,
	active_ns bigint NOT NULL
);
CREATE INDEX claims_active ON claims (active_ns);

CREATE TABLE claim_records (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target  text NOT NULL,
	at_ns   bigint NOT NULL,
	kind    text NOT NULL, -- claim, refused, release, lapse, handoff
	agency  text NOT NULL,
	by_whom text NOT NULL,
	note    text NOT NULL
);
CREATE INDEX claim_records_target ON claim_records (target, id);

-- Hand-off proposals: a claimed target whose newest first-hand
-- observations were routed to another agency; accepted or declined, with
-- who, when and a note. Kept forever. At most one pending per target (the
-- partial unique index), so that two processes proposing at once make one.
CREATE TABLE handoff_proposals (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target      text NOT NULL,
	from_agency text NOT NULL,
	to_agency   text NOT NULL,
	reason      text NOT NULL,
	at_ns       bigint NOT NULL,
	state       text NOT NULL, -- pending, accepted, declined
	decided_by  text NOT NULL,
	decided_ns  bigint NOT NULL,
	note        text NOT NULL
);
CREATE INDEX handoff_proposals_target ON handoff_proposals (target, state);
CREATE UNIQUE INDEX handoff_proposals_pending ON handoff_proposals (target) WHERE state = 'pending';

-- Case progress: each target's steps (lead, isp_request_sent,
-- subscriber_identified, search, closed) with who, when, a note and, when
-- closed, the outcomes (comma-separated); and the subscriber an ISP named,
-- shown only to the agency holding the target and the national office.
CREATE TABLE case_steps (
	id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target   text NOT NULL,
	step     text NOT NULL,
	at_ns    bigint NOT NULL,
	agency   text NOT NULL,
	by_whom  text NOT NULL,
	note     text NOT NULL,
	outcomes text NOT NULL
);
CREATE INDEX case_steps_target ON case_steps (target, id);
CREATE TABLE case_subscribers (
	target  text PRIMARY KEY,
	details text NOT NULL,
	agency  text NOT NULL,
	by_whom text NOT NULL,
	at_ns   bigint NOT NULL
);
