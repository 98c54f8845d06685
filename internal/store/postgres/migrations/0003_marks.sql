-- An observation's marks (observe.Marks): what a reader must know before
-- relying on it (third_party, malformed_bitfield, transcript_cut, ...),
-- sorted and joined by commas; NULL when there are none (the SQLite
-- store's column of the same name, migration 0008).
ALTER TABLE observations ADD COLUMN marks text;

-- The sensor's own "ip:port" in the conversation (observe.Endpoint.Local);
-- NULL when the endpoint never talked to the sensor.
ALTER TABLE observations ADD COLUMN sensor_address text;
