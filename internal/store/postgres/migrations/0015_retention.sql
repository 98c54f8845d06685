-- Retention (internal/retention): legal holds, and the record of each
-- observation whose content a purge removed: the SQLite store's
-- migration 0020. A release keeps the hold's row (who, when, why).
CREATE TABLE legal_holds (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	target         text NOT NULL,   -- as placed (the store follows merged_into)
	case_ref       text NOT NULL DEFAULT '',
	reason         text NOT NULL,
	by_whom        text NOT NULL,
	at_ns          bigint NOT NULL,
	released_ns    bigint,          -- NULL while active
	released_by    text NOT NULL DEFAULT '',
	release_reason text NOT NULL DEFAULT ''
);
CREATE INDEX legal_holds_active ON legal_holds (target) WHERE released_ns IS NULL;

-- An observation whose transcript ('transcripts') or whole row
-- ('observations') a purge removed; its evidence_log leaf (keyed by seq)
-- stays. observation_id is the id as text (a UUID in canonical form).
CREATE TABLE purged_observations (
	observation_id text PRIMARY KEY,
	seq            bigint NOT NULL,
	what           text NOT NULL CHECK (what IN ('transcripts', 'observations')),
	time_ns        bigint NOT NULL,
	purged_ns      bigint NOT NULL
);
CREATE INDEX purged_observations_seq ON purged_observations (seq);

-- Observations partitioned by month of time_ns (UTC calendar months:
-- observations_pYYYYMM), so that a purge drops a whole partition that
-- holds no held observation instead of deleting its rows one by one. A
-- default partition (observations_pdefault) takes any time no monthly
-- partition covers (a sensor clock far off, an import of old data); the
-- retention job creates the coming months' partitions ahead, moving any
-- rows the default partition holds for them. A partitioned table's unique
-- indexes must hold its partition key: an observation id is unique with
-- its time (a redelivered observation has both the same, and lands in the
-- same partition, where ON CONFLICT skips it); the primary key is (seq,
-- time_ns). The rows of the existing table are copied, seq kept.
ALTER TABLE observations RENAME TO observations_unpartitioned;
ALTER INDEX observations_pkey RENAME TO observations_unpartitioned_pkey;
ALTER INDEX observations_uid RENAME TO observations_unpartitioned_uid;
ALTER INDEX observations_id_text RENAME TO observations_unpartitioned_id_text;
ALTER INDEX observations_time RENAME TO observations_unpartitioned_time;
ALTER INDEX observations_item RENAME TO observations_unpartitioned_item;

CREATE TABLE observations (LIKE observations_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY)
	PARTITION BY RANGE (time_ns);
ALTER TABLE observations ADD PRIMARY KEY (seq, time_ns);
CREATE UNIQUE INDEX observations_uid ON observations (uid, time_ns) WHERE uid IS NOT NULL;
CREATE UNIQUE INDEX observations_id_text ON observations (id_text, time_ns) WHERE id_text IS NOT NULL;
CREATE INDEX observations_time ON observations (time_ns, seq);
CREATE INDEX observations_item ON observations (item_id);
CREATE INDEX observations_by_seq ON observations (seq);
CREATE TABLE observations_pdefault PARTITION OF observations DEFAULT;

-- vigil_observation_partition creates the partition of the month that
-- holds t_ns, if missing, moving into it any rows of that month the
-- default partition holds. It returns the partition's name.
CREATE FUNCTION vigil_observation_partition(t_ns bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	m  timestamptz := date_trunc('month', to_timestamp(t_ns / 1e9) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
	lo bigint := (extract(epoch FROM m) * 1e9)::bigint;
	hi bigint := (extract(epoch FROM m + interval '1 month') * 1e9)::bigint;
	name text := 'observations_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM');
BEGIN
	IF to_regclass(name) IS NOT NULL THEN
		RETURN name;
	END IF;
	EXECUTE format('CREATE TABLE %I (LIKE observations INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
	EXECUTE format('INSERT INTO %I SELECT * FROM observations_pdefault WHERE time_ns >= %s AND time_ns < %s', name, lo, hi);
	EXECUTE format('DELETE FROM observations_pdefault WHERE time_ns >= %s AND time_ns < %s', lo, hi);
	EXECUTE format('ALTER TABLE observations ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', name, lo, hi);
	RETURN name;
END $$;

-- One partition per month the existing rows cover, and the next three.
SELECT vigil_observation_partition(t)
FROM (SELECT DISTINCT (extract(epoch FROM date_trunc('month', to_timestamp(time_ns / 1e9) AT TIME ZONE 'UTC')) * 1e9)::bigint AS t
	FROM observations_unpartitioned
	UNION SELECT (extract(epoch FROM date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => k)) * 1e9)::bigint
	FROM generate_series(0, 3) AS k) AS months;

INSERT INTO observations OVERRIDING SYSTEM VALUE SELECT * FROM observations_unpartitioned;
SELECT setval(pg_get_serial_sequence('observations', 'seq'), COALESCE((SELECT max(seq) FROM observations_unpartitioned), 0) + 1, false);
DROP TABLE observations_unpartitioned;
