-- The sensor clock's measured offset and the sensor's exact build
-- (issue 14; docs/evidence.md, "Clock" and "Tool identity"), as the
-- SQLite store keeps them (its migration 0013).
--
-- clock_uncertainty_ns: the true offset lay within clock_offset_ns ± this.
-- NULL means the offset is unknown (no NTP server, or none could be
-- trusted): clock_offset_ns then holds 0 and means nothing. Every row
-- stored before this migration is NULL, unknown: its sensor measured
-- nothing.
ALTER TABLE observations ADD COLUMN clock_uncertainty_ns bigint;

-- The sensor's build: VCS revision ('' unknown), whether its tree had
-- uncommitted changes, and the hex SHA-256 of its effective configuration
-- ('' unknown).
ALTER TABLE observations ADD COLUMN build_commit text NOT NULL DEFAULT '';
ALTER TABLE observations ADD COLUMN build_modified boolean NOT NULL DEFAULT false;
ALTER TABLE observations ADD COLUMN sensor_config text NOT NULL DEFAULT '';
