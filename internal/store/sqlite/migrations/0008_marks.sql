-- An observation's marks (observe.Marks): what a reader must know before
-- relying on it (third_party, malformed_bitfield, transcript_cut, ...),
-- sorted and joined by commas; NULL when there are none. Rows stored
-- before schema 8 have none: their sensor set none (observe.FirstHand
-- still treats tracker, PEX and DHT-value rows as second-hand by method).
ALTER TABLE observations ADD COLUMN marks TEXT;

-- The sensor's own address and port in the conversation with the endpoint
-- (observe.Endpoint.Local), "ip:port"; NULL when the endpoint never talked
-- to the sensor. An ISP row names it: a carrier-grade NAT log needs both
-- ends of the connection.
ALTER TABLE observations ADD COLUMN sensor_address TEXT;

DROP VIEW observation_rows;
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
	CASE WHEN o.facet_id IS NULL THEN o.agency_rule ELSE f.agency_rule END AS agency_rule,
	COALESCE(o.marks, '') AS marks,
	COALESCE(o.sensor_address, '') AS sensor_address
FROM observations o
LEFT JOIN facets f ON f.id = o.facet_id
LEFT JOIN places p ON p.id = o.place_id;
