-- Operations (issue 15, internal/casework), as the SQLite store keeps
-- them (its migration 0018): a national selection of targets by criteria
-- (kept as given, JSON), with a snapshot of each target's score and level
-- when it was made, and the service each target was assigned to ('' not
-- yet). Two processes assigning one target at once are kept apart by one
-- conditional UPDATE (WHERE agency = ''): the second finds it assigned.
CREATE TABLE operations (
	id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name     text NOT NULL,
	criteria text NOT NULL,
	by_whom  text NOT NULL,
	at_ns    bigint NOT NULL
);

CREATE TABLE operation_targets (
	operation   bigint NOT NULL REFERENCES operations (id),
	pos         integer NOT NULL,
	target      text NOT NULL,
	score       double precision NOT NULL,
	level       text NOT NULL,
	agency      text NOT NULL DEFAULT '',
	assigned_by text NOT NULL DEFAULT '',
	assigned_ns bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (operation, target)
);
CREATE INDEX operation_targets_agency ON operation_targets (agency, operation);
