-- Devices, links, targets, scores, quarantine, leads and the counts the
-- pages read (internal/analysis, internal/webviews): the SQLite store's
-- analysis tables as its migrations 0003, 0005, 0006, 0007, 0009 and 0010
-- leave them, in one step (this schema never held the older shapes).
-- Everything here but analysis_decisions, leads and quarantine is derived
-- from observations and can be rebuilt; decisions are an analyst's and are
-- never deleted. Times are Unix nanoseconds (bigint); the JSON columns are
-- text, kept as written, as in the SQLite store; flags are integers 0/1,
-- as there, so that both stores answer from the same rows.

CREATE TABLE analysis_state (
	key   text PRIMARY KEY,
	value bigint NOT NULL
);

-- One row per target number ever given; merged ones point at the survivor.
CREATE TABLE targets (
	id           text PRIMARY KEY,              -- analysis.TargetID: "T-000001-xx"
	seq          bigint NOT NULL UNIQUE,
	merged_into  text,                          -- NULL while live
	agency       text NOT NULL DEFAULT '',      -- routed to (assigned overrides it in target_access)
	agencies     text NOT NULL DEFAULT '[]',    -- JSON: every agency seen
	assigned     text NOT NULL DEFAULT '',
	investigator text NOT NULL DEFAULT '',
	score        double precision NOT NULL DEFAULT 0,
	parts        text NOT NULL DEFAULT '{}',    -- JSON: part -> points
	endpoints    integer NOT NULL DEFAULT 0,
	files        integer NOT NULL DEFAULT 0,
	levels       text NOT NULL DEFAULT '[]',    -- JSON: [{"level":"complete","files":3}, ...]
	max_level    integer NOT NULL DEFAULT 0,
	observations bigint NOT NULL DEFAULT 0,
	first_ns     bigint NOT NULL DEFAULT 0,
	last_ns      bigint NOT NULL DEFAULT 0,
	networks     text NOT NULL DEFAULT '',      -- ",bittorrent,ed2k,"
	vpn          integer NOT NULL DEFAULT 0,
	hosting      integer NOT NULL DEFAULT 0,
	categories   text NOT NULL DEFAULT '[]',
	max_severity integer NOT NULL DEFAULT 0,
	looking      integer NOT NULL DEFAULT 0,
	country      text NOT NULL DEFAULT '',
	subdivision  text NOT NULL DEFAULT '',
	label        text NOT NULL DEFAULT '',
	flags        text NOT NULL DEFAULT '[]',
	shares       text NOT NULL DEFAULT '[]'
);
CREATE INDEX targets_rank ON targets (score DESC, id) WHERE merged_into IS NULL;
CREATE INDEX targets_agency_rank ON targets (agency, score DESC) WHERE merged_into IS NULL;
CREATE INDEX targets_last ON targets (last_ns DESC, id) WHERE merged_into IS NULL;
CREATE INDEX targets_first ON targets (first_ns, id) WHERE merged_into IS NULL;
CREATE INDEX targets_merged ON targets (merged_into, seq) WHERE merged_into IS NOT NULL;
CREATE INDEX targets_shared ON targets (last_ns) WHERE merged_into IS NULL AND shares <> '[]';

-- Who may see a live target: its routing (or assigned) agency and every
-- agency it is shared with. The scope of a query is applied here, in SQL.
CREATE TABLE target_access (
	agency   text NOT NULL,
	target   text NOT NULL,
	score    double precision NOT NULL,
	last_ns  bigint NOT NULL DEFAULT 0,
	first_ns bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (agency, target)
);
CREATE INDEX target_access_rank ON target_access (agency, score DESC);
CREATE INDEX target_access_target ON target_access (target);
CREATE INDEX target_access_last ON target_access (agency, last_ns DESC, target);
CREATE INDEX target_access_first ON target_access (agency, first_ns, target);

CREATE TABLE target_categories (
	category text NOT NULL,
	target   text NOT NULL,
	PRIMARY KEY (target, category)
);

-- Endpoints bounded in time: one row per generation of an IP:port.
CREATE TABLE analysis_endpoints (
	id           bigint PRIMARY KEY,                -- given by the analysis
	ip           text NOT NULL,
	port         integer NOT NULL,
	gen          integer NOT NULL DEFAULT 0,        -- generation of the IP:port
	home         bigint NOT NULL,                   -- target number it was born with
	target       text NOT NULL,                     -- live target it belongs to
	confidence   double precision NOT NULL DEFAULT 1,
	first_hand   integer NOT NULL DEFAULT 0,        -- it talked to the sensor itself
	transport    text NOT NULL DEFAULT '',
	asn          bigint NOT NULL DEFAULT 0,
	org          text NOT NULL DEFAULT '',
	country      text NOT NULL DEFAULT '',
	subdivision  text NOT NULL DEFAULT '',
	city         text NOT NULL DEFAULT '',
	agency       text NOT NULL DEFAULT '',
	networks     text NOT NULL DEFAULT '',
	first_ns     bigint NOT NULL,
	last_ns      bigint NOT NULL,
	observations bigint NOT NULL,
	vpn          integer NOT NULL DEFAULT 0,
	hosting      integer NOT NULL DEFAULT 0,
	UNIQUE (ip, port, gen)
);
CREATE INDEX analysis_endpoints_target ON analysis_endpoints (target);

-- The SQLite store's carry-over of homes from before endpoint windows
-- (its migration 0009); always empty here, read by the same load.
CREATE TABLE analysis_homes (
	ip   text NOT NULL,
	port integer NOT NULL,
	gen  integer NOT NULL,
	home bigint NOT NULL,
	PRIMARY KEY (ip, port, gen)
);

CREATE TABLE analysis_endpoint_files (
	endpoint     bigint NOT NULL,
	kind         text NOT NULL,
	hash         bytea NOT NULL,
	matched      text NOT NULL,
	severity     integer NOT NULL,
	max_level    integer NOT NULL,
	intent       text NOT NULL,
	first_ns     bigint NOT NULL,
	last_ns      bigint NOT NULL,
	observations bigint NOT NULL,
	quarantined  integer NOT NULL DEFAULT 0,
	PRIMARY KEY (endpoint, kind, hash)
);
CREATE INDEX analysis_endpoint_files_hash ON analysis_endpoint_files (hash);

CREATE TABLE analysis_links (
	id         bigint PRIMARY KEY,          -- given by the analysis
	a          bigint NOT NULL,             -- analysis_endpoints (id)
	b          bigint NOT NULL,
	rule       text NOT NULL,
	evidence   text NOT NULL,
	reason     text NOT NULL,
	confidence double precision NOT NULL,
	obs        text NOT NULL DEFAULT '[]',  -- JSON: observation ids
	at_ns      bigint NOT NULL,
	state      text NOT NULL CHECK (state IN ('active', 'withdrawn', 'rejected')),
	note       text NOT NULL DEFAULT '',
	UNIQUE (a, b, rule, evidence)
);
CREATE INDEX analysis_links_b ON analysis_links (b);

-- Analyst decisions: append-only, replayed at every start.
CREATE TABLE analysis_decisions (
	id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at_ns   bigint NOT NULL,
	who     text NOT NULL,
	why     text NOT NULL,
	kind    text NOT NULL,
	subject text NOT NULL,
	value   text NOT NULL DEFAULT ''
);

CREATE TABLE quarantine (
	kind        text NOT NULL,
	hash        bytea NOT NULL,
	state       text NOT NULL CHECK (state IN ('held', 'released', 'disabled')),
	detected_ns bigint NOT NULL,
	peers       integer NOT NULL,
	baseline    double precision NOT NULL,
	reason      text NOT NULL,
	who         text NOT NULL DEFAULT '',
	why         text NOT NULL DEFAULT '',
	decided_ns  bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, hash)
);

CREATE TABLE analysis_alerts (
	id      bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at_ns   bigint NOT NULL,
	kind    text NOT NULL,
	subject text NOT NULL,
	message text NOT NULL
);
CREATE INDEX analysis_alerts_at ON analysis_alerts (at_ns);

CREATE TABLE leads (
	key          text PRIMARY KEY,
	kind         text NOT NULL DEFAULT '', -- the file's own hash, if known
	hash         bytea,
	torrent_kind text NOT NULL,
	torrent      bytea NOT NULL,
	path         text NOT NULL DEFAULT '',
	size         bigint NOT NULL DEFAULT -1,
	count        integer NOT NULL,
	first_ns     bigint NOT NULL,
	last_ns      bigint NOT NULL,
	torrents     text NOT NULL DEFAULT '[]',
	watched      text NOT NULL DEFAULT '[]',
	seen         text NOT NULL DEFAULT '{}', -- JSON: "ip:port" -> sightings
	state        text NOT NULL CHECK (state IN ('open', 'confirmed', 'dismissed')),
	who          text NOT NULL DEFAULT '',
	why          text NOT NULL DEFAULT '',
	decided_ns   bigint NOT NULL DEFAULT 0
);
CREATE INDEX leads_state ON leads (state, last_ns);

CREATE TABLE lead_endpoints (
	ip   text NOT NULL,
	port integer NOT NULL,
	lead text NOT NULL,
	PRIMARY KEY (ip, port, lead)
);

CREATE TABLE analysis_daily (
	day          bigint NOT NULL, -- days since 1970-01-01 (UTC)
	agency       text NOT NULL,
	network      text NOT NULL,
	observations bigint NOT NULL,
	PRIMARY KEY (day, agency, network)
);

-- An endpoint's sightings for its target's page and ISP request, written
-- by the analysis as it folds each observation into its endpoint: no
-- index on the observations by address (the SQLite store's migration
-- 0006 says why).
CREATE TABLE analysis_timeline (
	endpoint bigint NOT NULL, -- analysis_endpoints (id)
	time_ns  bigint NOT NULL, -- the observation's time
	seq      bigint NOT NULL, -- observations (seq)
	PRIMARY KEY (endpoint, time_ns, seq)
);

-- Live targets counted by the UTC day they were last seen and what the
-- overview groups them by (the SQLite store's migration 0005); route is
-- the assigned agency, else the routing one. Kept by the trigger below on
-- every write of targets. Rows that fall to zero stay (they are skipped).
CREATE TABLE web_target_days (
	day          bigint NOT NULL,
	route        text NOT NULL,
	country      text NOT NULL,
	subdivision  text NOT NULL,
	networks     text NOT NULL,
	max_level    integer NOT NULL,
	multi        integer NOT NULL, -- more than one endpoint (a device)
	targets      bigint NOT NULL,
	observations bigint NOT NULL,
	PRIMARY KEY (day, route, country, subdivision, networks, max_level, multi)
);

CREATE TABLE web_first_days (
	day     bigint NOT NULL,
	route   text NOT NULL,
	targets bigint NOT NULL,
	PRIMARY KEY (day, route)
);

-- Statement-level, over the statement's transition tables: the analysis
-- writes targets a few thousand rows a statement, and one pass over them
-- costs a fraction of a trigger call per row. Each statement's rows leave
-- their old groups (-1) and join their new ones (+1); groups whose net
-- change is nothing (a score change alone: the engine rescores for
-- recency) are not touched. The function's search_path is the schema's,
-- whatever the session that writes targets has.
CREATE FUNCTION web_targets_count() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	src text;
BEGIN
	src := CASE TG_OP
		WHEN 'INSERT' THEN 'SELECT n.*, 1 AS sign FROM new_rows n'
		WHEN 'DELETE' THEN 'SELECT o.*, -1 AS sign FROM old_rows o'
		ELSE 'SELECT o.*, -1 AS sign FROM old_rows o UNION ALL SELECT n.*, 1 FROM new_rows n' END;
	EXECUTE format($q$
		INSERT INTO web_target_days AS w (day, route, country, subdivision, networks, max_level, multi, targets, observations)
		SELECT last_ns / 86400000000000, CASE WHEN assigned <> '' THEN assigned ELSE agency END, country, subdivision,
			networks, max_level, (endpoints > 1)::integer, SUM(sign), SUM(sign * observations)
		FROM (%s) r WHERE merged_into IS NULL
		GROUP BY 1, 2, 3, 4, 5, 6, 7
		HAVING SUM(sign) <> 0 OR SUM(sign * observations) <> 0
		ON CONFLICT (day, route, country, subdivision, networks, max_level, multi)
		DO UPDATE SET targets = w.targets + excluded.targets, observations = w.observations + excluded.observations$q$, src);
	EXECUTE format($q$
		INSERT INTO web_first_days AS w (day, route, targets)
		SELECT first_ns / 86400000000000, CASE WHEN assigned <> '' THEN assigned ELSE agency END, SUM(sign)
		FROM (%s) r WHERE merged_into IS NULL
		GROUP BY 1, 2
		HAVING SUM(sign) <> 0
		ON CONFLICT (day, route) DO UPDATE SET targets = w.targets + excluded.targets$q$, src);
	RETURN NULL;
END
$$;
CREATE TRIGGER web_targets_count_insert AFTER INSERT ON targets REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION web_targets_count();
CREATE TRIGGER web_targets_count_update AFTER UPDATE ON targets REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION web_targets_count();
CREATE TRIGGER web_targets_count_delete AFTER DELETE ON targets REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION web_targets_count();
