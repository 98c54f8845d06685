-- The figures' daily roll-ups (issue 15, internal/figures): for each UTC
-- day, the total (dim '') and each value of each group (network, country,
-- subdivision, category, level), the observations counted (exact) and
-- HyperLogLog sketches of the addresses and devices seen, which merge
-- across days. The analysis adds to them as it folds each observation in,
-- in the transaction that moves its watermark; analysis_state's
-- 'figures_watermark' is the last seq they count. Derived, like the other
-- analysis tables: a migration that resets the analysis's watermark must
-- also empty this table and delete 'figures_watermark'. A store made
-- before this table has none: the analysis's next start counts every
-- observation it replays into them.
CREATE TABLE figure_rollups (
	dim          TEXT NOT NULL,
	day          INTEGER NOT NULL, -- days since 1970-01-01 (UTC)
	value        TEXT NOT NULL,    -- '' for the total, or an unknown value
	observations INTEGER NOT NULL,
	addresses    BLOB NOT NULL,    -- hyperloglog.Sketch, MarshalBinary
	devices      BLOB NOT NULL,
	PRIMARY KEY (dim, day, value)
) WITHOUT ROWID;
