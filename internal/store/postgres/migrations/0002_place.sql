-- Where each observation's address was placed at ingest, and the agency it
-- was routed to. Written once, never updated: a later geo database or rules
-- file does not rewrite what was known when the observation was made.
--
-- place is a JSON object (country, subdivisions, city, lat, lon, asn, org,
-- db, db_build (Unix ns), vpn, hosting), NULL when nothing was known. json
-- rather than jsonb: cheaper to write, kept as written, and its ->> and
-- expression indexes serve the queries the analysis needs.
ALTER TABLE observations ADD COLUMN place json;
ALTER TABLE observations ADD COLUMN agency text NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN agency_rule text NOT NULL DEFAULT '';
