-- The sensor clock's measured offset and the sensor's exact build
-- (issue 14; docs/evidence.md, "Clock" and "Tool identity").
--
-- clock_uncertainty_ns: the true offset lay within clock_offset_ns ± this.
-- NULL means the offset is unknown (no NTP server, or none could be
-- trusted): clock_offset_ns then holds 0 and means nothing. Every row
-- stored before schema 13 is NULL, unknown: its sensor measured nothing.
ALTER TABLE observations ADD COLUMN clock_uncertainty_ns INTEGER;

-- A facet gains the sensor's build (VCS revision, whether the tree was
-- modified) and the SHA-256 of its effective configuration, which repeat
-- from row to row as the rest of a facet does. The table is rebuilt so
-- that its UNIQUE key covers them; observations.facet_id keeps its ids.
CREATE TABLE facets_v12 (
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
	build_commit   TEXT NOT NULL,
	build_modified INTEGER NOT NULL, -- 1: the tree had uncommitted changes
	sensor_config  TEXT NOT NULL,    -- hex SHA-256, '' unknown
	UNIQUE (sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client, client_version,
		agency_rule, build_commit, build_modified, sensor_config)
);
INSERT INTO facets_v12 (id, sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client,
	client_version, agency_rule, build_commit, build_modified, sensor_config)
SELECT id, sensor, sensor_version, vantage, clock_source, network, method, transport, possession, client,
	client_version, agency_rule, '', 0, '' FROM facets;
DROP VIEW IF EXISTS observation_rows; -- IF EXISTS: a test rewinds the schema without it
DROP TABLE facets;
ALTER TABLE facets_v12 RENAME TO facets;

-- clock_offset_ns is NULL here when the offset is unknown: a reader with
-- any SQLite client never takes an unknown offset for 0.
CREATE VIEW observation_rows AS
SELECT o.seq, o.id, o.time_ns,
	CASE WHEN o.facet_id IS NULL THEN o.sensor ELSE f.sensor END AS sensor,
	CASE WHEN o.facet_id IS NULL THEN o.sensor_version ELSE f.sensor_version END AS sensor_version,
	CASE WHEN o.facet_id IS NULL THEN o.vantage ELSE f.vantage END AS vantage,
	CASE WHEN o.facet_id IS NULL THEN o.network ELSE f.network END AS network,
	CASE WHEN o.facet_id IS NULL THEN o.method ELSE f.method END AS method,
	CASE WHEN o.clock_uncertainty_ns IS NULL THEN NULL ELSE o.clock_offset_ns END AS clock_offset_ns,
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
	CASE WHEN o.facet_id IS NULL THEN o.agency_rule ELSE f.agency_rule END AS agency_rule,
	COALESCE(o.marks, '') AS marks,
	COALESCE(o.sensor_address, '') AS sensor_address,
	o.clock_uncertainty_ns,
	COALESCE(f.build_commit, '') AS build_commit,
	COALESCE(f.build_modified, 0) AS build_modified,
	COALESCE(f.sensor_config, '') AS sensor_config
FROM observations o
LEFT JOIN facets f ON f.id = o.facet_id
LEFT JOIN places p ON p.id = o.place_id;
