-- Where each observation's address was placed at ingest, and the agency it
-- was routed to. Written once, never updated: a later geo database or rules
-- file does not rewrite what was known when the observation was made.
--
-- place is a JSON object (country, subdivisions, city, lat, lon, asn, org,
-- db, db_build (Unix ns), vpn, hosting), NULL when nothing was known.
ALTER TABLE observations ADD COLUMN place TEXT;
ALTER TABLE observations ADD COLUMN agency TEXT NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN agency_rule TEXT NOT NULL DEFAULT '';
