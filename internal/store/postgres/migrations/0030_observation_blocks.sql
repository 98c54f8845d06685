-- Migration 0030 (h-blocks2, issue 13): settled observations in blocks
-- (docs/deployment.md, "Observations in blocks"). Ingest still writes one
-- row an observation into observations (the hot rows); the store's
-- compaction (Store.CompactObservations, compact.go) moves settled rows
-- into observation_blocks, up to 1,024 a row, encoded by
-- internal/store/obsblock, and deletes the rows, in one transaction under
-- ingest's advisory lock. Observations keep their seq.
--
-- A block never crosses a month of time_ns: the table is partitioned by
-- month of time_lo as observations is by month of time_ns, so that
-- retention can still drop a month whole (both tables' partitions).
CREATE TABLE observation_blocks (
	seq_lo     bigint NOT NULL,  -- the least seq of the block's observations
	seq_hi     bigint NOT NULL,  -- the greatest
	n          integer NOT NULL CHECK (n > 0),
	seq_off    integer[],        -- each observation's seq - seq_lo, in block order; NULL when they are 0 .. n-1
	time_lo    bigint NOT NULL,  -- the least time_ns
	time_hi    bigint NOT NULL,  -- the greatest
	uid_lo     uuid,             -- the least UUID id of the block (NULL: none is a UUID)
	uid_hi     uuid,             -- the greatest
	body       bytea NOT NULL,   -- obsblock's bytes (every field but the transcripts' bytes)
	transcript bytea[],          -- the transcripts' bytes in block order, NULL when none has any
	PRIMARY KEY (time_lo, seq_lo),
	CHECK (seq_lo <= seq_hi AND time_lo <= time_hi)
) PARTITION BY RANGE (time_lo);
-- obsblock compresses its columns itself: TOAST must not try again.
ALTER TABLE observation_blocks ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN transcript SET STORAGE EXTERNAL;
-- GiST on the ranges: the blocks that meet a range or hold a value,
-- whatever the blocks' spans (a late upload's block may span hours and
-- overlap other blocks' seqs).
CREATE INDEX observation_blocks_seqs ON observation_blocks USING gist (int8range(seq_lo, seq_hi, '[]'));
CREATE INDEX observation_blocks_times ON observation_blocks USING gist (int8range(time_lo, time_hi, '[]'));
-- The blocks in order of their least seq: the analysis reads new seqs a
-- bounded number of blocks at a time; and of their greatest, for the
-- greatest seq stored (AnalysisSeqs).
CREATE INDEX observation_blocks_seq_lo ON observation_blocks (seq_lo);
CREATE INDEX observation_blocks_seq_hi ON observation_blocks (seq_hi);
CREATE TABLE observation_blocks_pdefault PARTITION OF observation_blocks DEFAULT;

-- The heads of the signed batches among the blocks' observations (the
-- rows with a batch signature: what observations_chain_heads indexes
-- among the hot rows, migration 0026; not unique there either: two rows
-- may claim one chain position).
CREATE TABLE observation_chain_heads (
	chain_ref bigint NOT NULL,
	chain_seq bigint NOT NULL,
	seq       bigint NOT NULL,
	PRIMARY KEY (chain_ref, chain_seq, seq)
);

-- vigil_observation_partition (migration 0015) makes the month's
-- partition of observation_blocks too.
CREATE OR REPLACE FUNCTION vigil_observation_partition(t_ns bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	m  timestamptz := date_trunc('month', to_timestamp(t_ns / 1e9) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	lo bigint := (extract(epoch FROM m) * 1e9)::bigint;
	hi bigint := (extract(epoch FROM m + interval '1 month') * 1e9)::bigint;
	name text := 'observations_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
	bname text := 'observation_blocks_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
	IF to_regclass(bname) IS NULL THEN
		EXECUTE format('CREATE TABLE %I (LIKE observation_blocks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)', bname);
		EXECUTE format('INSERT INTO %I SELECT * FROM observation_blocks_pdefault WHERE time_lo >= %s AND time_lo < %s', bname, lo, hi);
		EXECUTE format('DELETE FROM observation_blocks_pdefault WHERE time_lo >= %s AND time_lo < %s', lo, hi);
		EXECUTE format('ALTER TABLE observation_blocks ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', bname, lo, hi);
	END IF;
	IF to_regclass(name) IS NOT NULL THEN
		RETURN name;
	END IF;
	EXECUTE format('CREATE TABLE %I (LIKE observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
	EXECUTE format('INSERT INTO %I SELECT * FROM observations_pdefault WHERE time_ns >= %s AND time_ns < %s', name, lo, hi);
	EXECUTE format('DELETE FROM observations_pdefault WHERE time_ns >= %s AND time_ns < %s', lo, hi);
	EXECUTE format('ALTER TABLE observations ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
	RETURN name;
END $$;

-- The blocks' months of every month observations has a partition of.
SELECT vigil_observation_partition(lo)
FROM (SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''?(-?[0-9]+)''?\)'))[1]::bigint AS lo
	FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
	WHERE i.inhparent = 'observations'::regclass AND c.relname <> 'observations_pdefault') months;

-- observation_ids_elsewhere gains each listed id's seq, so that an id
-- stored outside its window is found in the blocks (which have no index
-- of ids) from its seq. NULL: the id is listed but its row was refused
-- (a replay of an id already stored) or purged before this migration.
ALTER TABLE observation_ids_elsewhere ADD COLUMN seq bigint;
ALTER TABLE observation_ids_elsewhere DISABLE TRIGGER observation_ids_elsewhere_append_only;
UPDATE observation_ids_elsewhere e SET seq = o.seq FROM observations o WHERE o.uid IS NOT NULL AND o.uid::text = e.id;
UPDATE observation_ids_elsewhere e SET seq = o.seq FROM observations o WHERE o.id_text IS NOT NULL AND o.id_text = e.id;
ALTER TABLE observation_ids_elsewhere ENABLE TRIGGER observation_ids_elsewhere_append_only;
