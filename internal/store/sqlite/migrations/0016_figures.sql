-- The figures' roll-ups (issue 15, internal/figures): for each ISO week
-- and each calendar month (UTC), the total (dim '') and each value of each
-- group (network, country, subdivision, category, level), the observations
-- counted (exact) and HyperLogLog sketches of the addresses and devices
-- seen, which merge without counting one twice. Kept by period, not by
-- day: a report's periods are whole weeks or months, so a year by month
-- reads one row a month, with its estimates computed when it was written. The analysis adds to them as
-- it folds each observation in, in the transaction that moves its
-- watermark; analysis_state's 'figures_watermark' is the last seq they
-- count. Derived, like the other analysis tables: a migration that resets
-- the analysis's watermark must also empty this table and delete
-- 'figures_watermark'. A store made before this table has none: the
-- analysis's next start counts every observation it replays into them.
CREATE TABLE figure_rollups (
	period       TEXT NOT NULL,    -- 'week' or 'month'
	dim          TEXT NOT NULL,
	start        INTEGER NOT NULL, -- the period's first day, in days since 1970-01-01
	value        TEXT NOT NULL,    -- '' for the total, or an unknown value
	observations INTEGER NOT NULL,
	addresses    BLOB NOT NULL,    -- hyperloglog.Sketch, MarshalBinary
	devices      BLOB NOT NULL,
	-- the sketches' estimates, computed as they are written: a report reads
	-- these (each of its cells is one period) and decodes no sketch
	unique_addresses INTEGER NOT NULL,
	unique_devices   INTEGER NOT NULL,
	PRIMARY KEY (period, dim, start, value)
) WITHOUT ROWID;
