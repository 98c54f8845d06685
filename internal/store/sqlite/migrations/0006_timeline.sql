-- An endpoint's sightings for its target's page and ISP request, written
-- by the analysis as it folds each observation into its endpoint
-- (analysis.Changes.Timeline), in place of the index on observations
-- (ip, port, time_ns) that migration 0005 added: an index on the
-- observations themselves is updated at a random place by every insert
-- and cost a quarter of the insert rate (docs/benchmarks.md). This table
-- is derived, like the other analysis tables, and small: three integers a
-- row.
CREATE TABLE analysis_timeline (
	endpoint INTEGER NOT NULL, -- analysis_endpoints (id)
	time_ns  INTEGER NOT NULL, -- the observation's time
	seq      INTEGER NOT NULL, -- observations (seq)
	PRIMARY KEY (endpoint, time_ns, seq)
) WITHOUT ROWID;

-- What the analysis has already processed goes in from the index this
-- replaces (an endpoint's key is its address unmapped, as the analysis
-- keys it), then the index goes.
INSERT INTO analysis_timeline (endpoint, time_ns, seq)
SELECT e.id, o.time_ns, o.seq
FROM analysis_endpoints e JOIN observations o INDEXED BY observations_endpoint
	ON o.ip IN (e.ip, '::ffff:' || e.ip) AND o.port = e.port
WHERE o.seq <= COALESCE((SELECT value FROM analysis_state WHERE key = 'watermark'), 0)
ORDER BY 1, 2, 3;

DROP INDEX observations_endpoint;

-- The same holds for the index of observations by item: every insert
-- updated it at the place of its item (a fifth of the insert's cost). Its
-- one reader, the search for the targets that hold a file, now asks the
-- analysis's files, which also find every such target rather than those
-- of the newest 10,000 sightings.
CREATE INDEX analysis_endpoint_files_hash ON analysis_endpoint_files (hash);
DROP INDEX observations_item;

-- Values that repeat from row to row are written once and referred to:
-- an observation's facets (its sensor's name, version, vantage and clock
-- source; its network, method, transport and level; the client's name and
-- version; the routing rule), few distinct combinations a day, and its
-- place (the enrichment's JSON, the same for every sighting of an address
-- range). Each value bound to an INSERT costs the driver a conversion, a
-- copy and a lock: eleven fewer a row are a fifth of the insert's cost.
-- Rows written before schema 6 keep these in their own columns, where rows
-- written since hold '' and NULL; observation_rows reads both.
CREATE TABLE facets (
	id             INTEGER PRIMARY KEY,
	sensor         TEXT NOT NULL,
	sensor_version TEXT NOT NULL,
	vantage        TEXT NOT NULL,
	clock_source   TEXT NOT NULL,
	network        TEXT NOT NULL,
	method         TEXT NOT NULL,
	transport      TEXT NOT NULL,
	possession     TEXT NOT NULL,
	client         TEXT NOT NULL,
	client_version TEXT NOT NULL,
	agency_rule    TEXT NOT NULL,
	UNIQUE (sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client, client_version, agency_rule)
);
CREATE TABLE places (
	id    INTEGER PRIMARY KEY,
	place TEXT NOT NULL UNIQUE -- as observations (place), migration 0002
);
ALTER TABLE observations ADD COLUMN facet_id INTEGER; -- facets (id); not declared, as item_id
ALTER TABLE observations ADD COLUMN place_id INTEGER; -- places (id); NULL: no place, or see place

-- Every observation with its own values, whichever way it was written:
-- what readers (and anyone inspecting the file) select from.
CREATE VIEW observation_rows AS
SELECT o.seq, o.id, o.time_ns,
	CASE WHEN o.facet_id IS NULL THEN o.sensor ELSE f.sensor END AS sensor,
	CASE WHEN o.facet_id IS NULL THEN o.sensor_version ELSE f.sensor_version END AS sensor_version,
	CASE WHEN o.facet_id IS NULL THEN o.vantage ELSE f.vantage END AS vantage,
	CASE WHEN o.facet_id IS NULL THEN o.network ELSE f.network END AS network,
	CASE WHEN o.facet_id IS NULL THEN o.method ELSE f.method END AS method,
	o.clock_offset_ns,
	CASE WHEN o.facet_id IS NULL THEN o.clock_source ELSE f.clock_source END AS clock_source,
	o.item_id, o.matched, o.ip, o.port,
	CASE WHEN o.facet_id IS NULL THEN o.transport ELSE f.transport END AS transport,
	o.peer_id,
	CASE WHEN o.facet_id IS NULL THEN o.client ELSE f.client END AS client,
	CASE WHEN o.facet_id IS NULL THEN o.client_version ELSE f.client_version END AS client_version,
	o.listen_port, o.node_id, o.user_hash, o.guid,
	CASE WHEN o.facet_id IS NULL THEN o.possession ELSE f.possession END AS possession,
	o.pieces_have, o.pieces_total, o.transcript, o.transcript_ref, o.transcript_sha256,
	CASE WHEN o.place_id IS NULL THEN o.place ELSE p.place END AS place,
	o.agency,
	CASE WHEN o.facet_id IS NULL THEN o.agency_rule ELSE f.agency_rule END AS agency_rule
FROM observations o
LEFT JOIN facets f ON f.id = o.facet_id
LEFT JOIN places p ON p.id = o.place_id;
