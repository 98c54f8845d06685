-- Devices, links, targets, scores, quarantine and associated files
-- (internal/analysis). Everything here but analysis_decisions, leads and
-- quarantine is derived from observations and can be rebuilt; decisions
-- are an analyst's and are never deleted.

CREATE TABLE analysis_state (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per target number ever given; merged ones point at the survivor.
CREATE TABLE targets (
	id           TEXT PRIMARY KEY,           -- "T-" + base 32 of seq
	seq          INTEGER NOT NULL UNIQUE,
	merged_into  TEXT,                       -- NULL while live
	agency       TEXT NOT NULL DEFAULT '',   -- routed to (assigned overrides it in target_access)
	agencies     TEXT NOT NULL DEFAULT '[]', -- JSON: every agency seen
	assigned     TEXT NOT NULL DEFAULT '',
	investigator TEXT NOT NULL DEFAULT '',
	score        REAL NOT NULL DEFAULT 0,
	parts        TEXT NOT NULL DEFAULT '{}', -- JSON: part -> points
	endpoints    INTEGER NOT NULL DEFAULT 0,
	files        INTEGER NOT NULL DEFAULT 0,
	levels       TEXT NOT NULL DEFAULT '[]', -- JSON: [{"level":"complete","files":3}, ...]
	max_level    INTEGER NOT NULL DEFAULT 0,
	observations INTEGER NOT NULL DEFAULT 0,
	first_ns     INTEGER NOT NULL DEFAULT 0,
	last_ns      INTEGER NOT NULL DEFAULT 0,
	networks     TEXT NOT NULL DEFAULT '',   -- ",bittorrent,ed2k,"
	vpn          INTEGER NOT NULL DEFAULT 0,
	hosting      INTEGER NOT NULL DEFAULT 0,
	categories   TEXT NOT NULL DEFAULT '[]',
	max_severity INTEGER NOT NULL DEFAULT 0,
	looking      INTEGER NOT NULL DEFAULT 0,
	country      TEXT NOT NULL DEFAULT '',
	subdivision  TEXT NOT NULL DEFAULT '',
	label        TEXT NOT NULL DEFAULT '',
	flags        TEXT NOT NULL DEFAULT '[]',
	shares       TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX targets_rank ON targets (score DESC) WHERE merged_into IS NULL;
CREATE INDEX targets_agency_rank ON targets (agency, score DESC) WHERE merged_into IS NULL;

-- Who may see a live target: its routing (or assigned) agency and every
-- agency it is shared with. The scope of a query is applied here, in SQL.
CREATE TABLE target_access (
	agency TEXT NOT NULL,
	target TEXT NOT NULL,
	score  REAL NOT NULL,
	PRIMARY KEY (agency, target)
) WITHOUT ROWID;
CREATE INDEX target_access_rank ON target_access (agency, score DESC);
CREATE INDEX target_access_target ON target_access (target);

CREATE TABLE target_categories (
	category TEXT NOT NULL,
	target   TEXT NOT NULL,
	PRIMARY KEY (target, category)
) WITHOUT ROWID;

CREATE TABLE analysis_endpoints (
	id           INTEGER PRIMARY KEY,
	ip           TEXT NOT NULL,
	port         INTEGER NOT NULL,
	home         INTEGER NOT NULL, -- target number it was born with
	target       TEXT NOT NULL,    -- live target it belongs to
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
	UNIQUE (ip, port)
);
CREATE INDEX analysis_endpoints_target ON analysis_endpoints (target);

CREATE TABLE analysis_endpoint_files (
	endpoint     INTEGER NOT NULL,
	kind         TEXT NOT NULL,
	hash         BLOB NOT NULL,
	matched      TEXT NOT NULL,
	severity     INTEGER NOT NULL,
	max_level    INTEGER NOT NULL,
	intent       TEXT NOT NULL,
	first_ns     INTEGER NOT NULL,
	last_ns      INTEGER NOT NULL,
	observations INTEGER NOT NULL,
	quarantined  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (endpoint, kind, hash)
) WITHOUT ROWID;

CREATE TABLE analysis_links (
	id         INTEGER PRIMARY KEY,
	a          INTEGER NOT NULL, -- analysis_endpoints (id)
	b          INTEGER NOT NULL,
	rule       TEXT NOT NULL,
	evidence   TEXT NOT NULL,
	reason     TEXT NOT NULL,
	confidence REAL NOT NULL,
	obs        TEXT NOT NULL DEFAULT '[]', -- JSON: observation ids
	at_ns      INTEGER NOT NULL,
	state      TEXT NOT NULL CHECK (state IN ('active', 'withdrawn', 'rejected')),
	note       TEXT NOT NULL DEFAULT '',
	UNIQUE (a, b, rule, evidence)
);
CREATE INDEX analysis_links_b ON analysis_links (b);

-- Analyst decisions: append-only, replayed at every start.
CREATE TABLE analysis_decisions (
	id      INTEGER PRIMARY KEY,
	at_ns   INTEGER NOT NULL,
	who     TEXT NOT NULL,
	why     TEXT NOT NULL,
	kind    TEXT NOT NULL,
	subject TEXT NOT NULL,
	value   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE quarantine (
	kind        TEXT NOT NULL,
	hash        BLOB NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('held', 'released', 'disabled')),
	detected_ns INTEGER NOT NULL,
	peers       INTEGER NOT NULL,
	baseline    REAL NOT NULL,
	reason      TEXT NOT NULL,
	who         TEXT NOT NULL DEFAULT '',
	why         TEXT NOT NULL DEFAULT '',
	decided_ns  INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, hash)
) WITHOUT ROWID;

CREATE TABLE analysis_alerts (
	id      INTEGER PRIMARY KEY,
	at_ns   INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	subject TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX analysis_alerts_at ON analysis_alerts (at_ns);

CREATE TABLE leads (
	key          TEXT PRIMARY KEY,
	kind         TEXT NOT NULL DEFAULT '', -- the file's own hash, if known
	hash         BLOB,
	torrent_kind TEXT NOT NULL,
	torrent      BLOB NOT NULL,
	path         TEXT NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT -1,
	count        INTEGER NOT NULL,
	first_ns     INTEGER NOT NULL,
	last_ns      INTEGER NOT NULL,
	torrents     TEXT NOT NULL DEFAULT '[]',
	watched      TEXT NOT NULL DEFAULT '[]',
	seen         TEXT NOT NULL DEFAULT '{}', -- JSON: "ip:port" -> sightings
	state        TEXT NOT NULL CHECK (state IN ('open', 'confirmed', 'dismissed')),
	who          TEXT NOT NULL DEFAULT '',
	why          TEXT NOT NULL DEFAULT '',
	decided_ns   INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX leads_state ON leads (state, last_ns);

CREATE TABLE lead_endpoints (
	ip   TEXT NOT NULL,
	port INTEGER NOT NULL,
	lead TEXT NOT NULL,
	PRIMARY KEY (ip, port, lead)
) WITHOUT ROWID;

CREATE TABLE analysis_daily (
	day          INTEGER NOT NULL, -- days since 1970-01-01 (UTC)
	agency       TEXT NOT NULL,
	network      TEXT NOT NULL,
	observations INTEGER NOT NULL,
	PRIMARY KEY (day, agency, network)
) WITHOUT ROWID;
