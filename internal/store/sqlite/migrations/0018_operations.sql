-- Operations (issue 15, internal/casework): a national selection of
-- targets by criteria (kept as given, JSON), with a snapshot of each
-- target's score and level when it was made, and the service each target
-- was assigned to ('' not yet). Not derived: the analysis never writes
-- them, and a migration that resets the analysis keeps them.
CREATE TABLE operations (
	id       INTEGER PRIMARY KEY,
	name     TEXT NOT NULL,
	criteria TEXT NOT NULL,
	by_whom  TEXT NOT NULL,
	at_ns    INTEGER NOT NULL
);

CREATE TABLE operation_targets (
	operation   INTEGER NOT NULL, -- operations (id)
	pos         INTEGER NOT NULL, -- order of selection
	target      TEXT NOT NULL,
	score       REAL NOT NULL,
	level       TEXT NOT NULL,
	agency      TEXT NOT NULL DEFAULT '',
	assigned_by TEXT NOT NULL DEFAULT '',
	assigned_ns INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (operation, target)
) WITHOUT ROWID;
CREATE INDEX operation_targets_agency ON operation_targets (agency, operation);
