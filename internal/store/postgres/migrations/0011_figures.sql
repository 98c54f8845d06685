-- The figures' roll-ups (issue 15, internal/figures), as the SQLite store
-- keeps them (its migration 0016): for each ISO week and each calendar
-- month (UTC), the total (dim '') and each value of each group (network,
-- country, subdivision, category, level), the observations counted
-- (exact) and HyperLogLog sketches of the addresses and devices seen,
-- which merge without counting one twice, with their estimates computed
-- when they were written (a report reads these and decodes no sketch).
-- The analysis adds to them in the transaction that moves its watermark;
-- analysis_state's 'figures_watermark' is the last seq they count.
-- Derived, like the other analysis tables: a migration that resets the
-- analysis's watermark must also empty this table and delete
-- 'figures_watermark'. A schema made before this table has none: the
-- analysis's next start counts every observation it replays into them.
CREATE TABLE figure_rollups (
	period           text NOT NULL,   -- 'week' or 'month'
	dim              text NOT NULL,
	start            bigint NOT NULL, -- the period's first day, in days since 1970-01-01
	value            text NOT NULL,   -- '' for the total, or an unknown value
	observations     bigint NOT NULL,
	addresses        bytea NOT NULL,  -- hyperloglog.Sketch, MarshalBinary
	devices          bytea NOT NULL,
	unique_addresses bigint NOT NULL,
	unique_devices   bigint NOT NULL,
	PRIMARY KEY (period, dim, start, value)
);
