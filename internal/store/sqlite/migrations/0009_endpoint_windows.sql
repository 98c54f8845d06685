-- Endpoints bounded in time (issue 10): an IP:port silent for longer than
-- the analysis's window (default 24 h) is a new endpoint when seen again,
-- so analysis_endpoints holds one row per generation of an IP:port (gen 0
-- first), with how surely each belongs to its target (confidence) and
-- whether it ever talked to the sensor itself (first_hand).
--
-- The analysis tables are derived from the observations, but under the
-- new rules (windows, first-hand-only links, non-public addresses named by
-- third parties kept out) what the old rules derived is wrong: everything
-- derived is cleared and the watermark reset, so that the analysis
-- recomputes it all from the observations at its next start. Analyst
-- decisions, quarantine, leads and alerts are kept. Each endpoint keeps the
-- target number it was born with (analysis_homes, read at load), so that
-- decisions and shares about a target id still point at the same first
-- endpoint; targets that no longer exist under the new rules keep their
-- decisions but have no row.

CREATE TABLE analysis_homes (
	ip   TEXT NOT NULL,
	port INTEGER NOT NULL,
	gen  INTEGER NOT NULL,
	home INTEGER NOT NULL, -- target number it was born with
	PRIMARY KEY (ip, port, gen)
) WITHOUT ROWID;
INSERT INTO analysis_homes (ip, port, gen, home) SELECT ip, port, 0, home FROM analysis_endpoints;

DROP INDEX analysis_endpoints_target;
DROP TABLE analysis_endpoints;
CREATE TABLE analysis_endpoints (
	id           INTEGER PRIMARY KEY,
	ip           TEXT NOT NULL,
	port         INTEGER NOT NULL,
	gen          INTEGER NOT NULL DEFAULT 0, -- generation of the IP:port
	home         INTEGER NOT NULL,           -- target number it was born with
	target       TEXT NOT NULL,              -- live target it belongs to
	confidence   REAL NOT NULL DEFAULT 1,    -- how surely it is the target's (1: the anchor)
	first_hand   INTEGER NOT NULL DEFAULT 0, -- it talked to the sensor itself
	transport    TEXT NOT NULL DEFAULT '',
	asn          INTEGER NOT NULL DEFAULT 0,
	org          TEXT NOT NULL DEFAULT '',
	country      TEXT NOT NULL DEFAULT '',
	subdivision  TEXT NOT NULL DEFAULT '',
	city         TEXT NOT NULL DEFAULT '',
	agency       TEXT NOT NULL DEFAULT '',
	networks     TEXT NOT NULL DEFAULT '',
	first_ns     INTEGER NOT NULL,
	last_ns      INTEGER NOT NULL,
	observations INTEGER NOT NULL,
	vpn          INTEGER NOT NULL DEFAULT 0,
	hosting      INTEGER NOT NULL DEFAULT 0,
	UNIQUE (ip, port, gen)
);
CREATE INDEX analysis_endpoints_target ON analysis_endpoints (target);

DELETE FROM analysis_endpoint_files;
DELETE FROM analysis_links;
DELETE FROM analysis_timeline;
DELETE FROM analysis_daily;
DELETE FROM target_access;
DELETE FROM target_categories;
DELETE FROM targets;
UPDATE analysis_state SET value = 0 WHERE key = 'watermark';
