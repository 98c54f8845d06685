-- Indexes and maintained counts for the investigators' pages
-- (internal/webapp, docs/benchmarks.md).

-- A target's timeline: the newest observations of each of its endpoints,
-- one range read per endpoint. The only index added to observations (it
-- costs ingest speed; see docs/benchmarks.md).
CREATE INDEX observations_endpoint ON observations (ip, port, time_ns);

-- The target list sorted by last or first seen.
CREATE INDEX targets_last ON targets (last_ns DESC, id) WHERE merged_into IS NULL;
CREATE INDEX targets_first ON targets (first_ns, id) WHERE merged_into IS NULL;
-- What was merged into a target (its page lists them).
CREATE INDEX targets_merged ON targets (merged_into, seq) WHERE merged_into IS NOT NULL;
-- The few live targets shared beyond their routing agency: a scoped
-- count adds those shared into the scope.
CREATE INDEX targets_shared ON targets (last_ns) WHERE merged_into IS NULL AND shares != '[]';

-- Live targets counted by the UTC day they were last seen and what the
-- overview groups them by; route is the assigned agency, else the routing
-- one. Kept by the triggers below on every write of targets, so the
-- overview sums a few rows per day instead of reading every target.
-- Rows that fall to zero stay (harmless; they are skipped).
CREATE TABLE web_target_days (
	day          INTEGER NOT NULL, -- last_ns / 86400e9 (days since 1970-01-01, UTC)
	route        TEXT NOT NULL,
	country      TEXT NOT NULL,
	subdivision  TEXT NOT NULL,
	networks     TEXT NOT NULL,    -- as in targets: ",bittorrent,ed2k,"
	max_level    INTEGER NOT NULL,
	multi        INTEGER NOT NULL, -- more than one endpoint (a device)
	targets      INTEGER NOT NULL,
	observations INTEGER NOT NULL,
	PRIMARY KEY (day, route, country, subdivision, networks, max_level, multi)
) WITHOUT ROWID;

-- Live targets by the UTC day they were first seen and their route.
CREATE TABLE web_first_days (
	day     INTEGER NOT NULL,
	route   TEXT NOT NULL,
	targets INTEGER NOT NULL,
	PRIMARY KEY (day, route)
) WITHOUT ROWID;

INSERT INTO web_target_days (day, route, country, subdivision, networks, max_level, multi, targets, observations)
SELECT last_ns / 86400000000000, CASE WHEN assigned != '' THEN assigned ELSE agency END, country, subdivision, networks,
	max_level, endpoints > 1, COUNT(*), SUM(observations)
FROM targets WHERE merged_into IS NULL GROUP BY 1, 2, 3, 4, 5, 6, 7;

INSERT INTO web_first_days (day, route, targets)
SELECT first_ns / 86400000000000, CASE WHEN assigned != '' THEN assigned ELSE agency END, COUNT(*)
FROM targets WHERE merged_into IS NULL GROUP BY 1, 2;

CREATE TRIGGER web_targets_insert AFTER INSERT ON targets WHEN NEW.merged_into IS NULL
BEGIN
	INSERT INTO web_target_days (day, route, country, subdivision, networks, max_level, multi, targets, observations)
	VALUES (NEW.last_ns / 86400000000000, CASE WHEN NEW.assigned != '' THEN NEW.assigned ELSE NEW.agency END, NEW.country,
		NEW.subdivision, NEW.networks, NEW.max_level, NEW.endpoints > 1, 1, NEW.observations)
	ON CONFLICT (day, route, country, subdivision, networks, max_level, multi)
	DO UPDATE SET targets = targets + 1, observations = observations + excluded.observations;
	INSERT INTO web_first_days (day, route, targets)
	VALUES (NEW.first_ns / 86400000000000, CASE WHEN NEW.assigned != '' THEN NEW.assigned ELSE NEW.agency END, 1)
	ON CONFLICT (day, route) DO UPDATE SET targets = targets + 1;
END;

CREATE TRIGGER web_targets_delete AFTER DELETE ON targets WHEN OLD.merged_into IS NULL
BEGIN
	UPDATE web_target_days SET targets = targets - 1, observations = observations - OLD.observations
	WHERE day = OLD.last_ns / 86400000000000 AND route = (CASE WHEN OLD.assigned != '' THEN OLD.assigned ELSE OLD.agency END)
		AND country = OLD.country AND subdivision = OLD.subdivision AND networks = OLD.networks
		AND max_level = OLD.max_level AND multi = (OLD.endpoints > 1);
	UPDATE web_first_days SET targets = targets - 1
	WHERE day = OLD.first_ns / 86400000000000 AND route = (CASE WHEN OLD.assigned != '' THEN OLD.assigned ELSE OLD.agency END);
END;

-- An update moves the target from its old group to its new one; a score
-- change alone (the engine rescores for recency) touches nothing here.
CREATE TRIGGER web_targets_update_days AFTER UPDATE ON targets
WHEN OLD.merged_into IS NOT NEW.merged_into OR OLD.last_ns / 86400000000000 != NEW.last_ns / 86400000000000
	OR OLD.agency != NEW.agency OR OLD.assigned != NEW.assigned OR OLD.country != NEW.country
	OR OLD.subdivision != NEW.subdivision OR OLD.networks != NEW.networks OR OLD.max_level != NEW.max_level
	OR (OLD.endpoints > 1) != (NEW.endpoints > 1) OR OLD.observations != NEW.observations
BEGIN
	UPDATE web_target_days SET targets = targets - 1, observations = observations - OLD.observations
	WHERE OLD.merged_into IS NULL
		AND day = OLD.last_ns / 86400000000000 AND route = (CASE WHEN OLD.assigned != '' THEN OLD.assigned ELSE OLD.agency END)
		AND country = OLD.country AND subdivision = OLD.subdivision AND networks = OLD.networks
		AND max_level = OLD.max_level AND multi = (OLD.endpoints > 1);
	INSERT INTO web_target_days (day, route, country, subdivision, networks, max_level, multi, targets, observations)
	SELECT NEW.last_ns / 86400000000000, CASE WHEN NEW.assigned != '' THEN NEW.assigned ELSE NEW.agency END, NEW.country,
		NEW.subdivision, NEW.networks, NEW.max_level, NEW.endpoints > 1, 1, NEW.observations
	WHERE NEW.merged_into IS NULL
	ON CONFLICT (day, route, country, subdivision, networks, max_level, multi)
	DO UPDATE SET targets = targets + 1, observations = observations + excluded.observations;
END;

CREATE TRIGGER web_targets_update_first AFTER UPDATE ON targets
WHEN OLD.merged_into IS NOT NEW.merged_into OR OLD.first_ns / 86400000000000 != NEW.first_ns / 86400000000000
	OR OLD.agency != NEW.agency OR OLD.assigned != NEW.assigned
BEGIN
	UPDATE web_first_days SET targets = targets - 1
	WHERE OLD.merged_into IS NULL
		AND day = OLD.first_ns / 86400000000000 AND route = (CASE WHEN OLD.assigned != '' THEN OLD.assigned ELSE OLD.agency END);
	INSERT INTO web_first_days (day, route, targets)
	SELECT NEW.first_ns / 86400000000000, CASE WHEN NEW.assigned != '' THEN NEW.assigned ELSE NEW.agency END, 1
	WHERE NEW.merged_into IS NULL
	ON CONFLICT (day, route) DO UPDATE SET targets = targets + 1;
END;
