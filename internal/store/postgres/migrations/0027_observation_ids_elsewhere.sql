-- Migration 0027 (h-obsinsert): ingest's check that an observation's id
-- is not stored yet looks in one partition, not in all of them.
--
-- The unique indexes hold the partition key, (uid, time_ns) (migration
-- 0015), so that an id replayed with another time could only be found by
-- asking every monthly partition's index (3 pages each), and a text id
-- every partition's other index: with a year of partitions, 16 index
-- descents an observation, most of ingest's INSERT (docs/benchmarks.md,
-- "PostgreSQL: storing an observation for less (h-obsinsert)").
--
-- A sensor's id is a UUIDv7 made from the observation's own time
-- (observe.NewID): its first 48 bits are the time's Unix milliseconds. The
-- store keeps this invariant: every stored observation either has a
-- UUIDv7 id whose time is within a second of the row's time_ns (the id's
-- window: id time - 1 s <= time_ns < id time + 1 s), or has its id in
-- observation_ids_elsewhere. Ingest adds to it, in the INSERT's own
-- statement, the id of every row of the batch outside its window: a text
-- id, a UUID of another version, a UUIDv7 replayed or forged with another
-- time. Then an id U is stored, under any time, exactly when a row of U
-- lies in U's window (one partition's index, two at a month's edge: the
-- partitions are pruned on time_ns) or U is listed here. An id is listed
-- only once its row is stored (or its id already stored or purged: a
-- listed id that is never stored cannot happen), and a listing is never
-- removed: an id purged with its partition stays listed, which refuses
-- nothing purged_observations does not refuse already.
CREATE FUNCTION vigil_uuid7_ns(u uuid) RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	-- The Unix time in ns of a UUIDv7 (version 7, variant 10), NULL for
	-- any other UUID and past 9,000,000,000,000 ms (year 2255: its window
	-- must fit in a bigint). The same as idNS in observations.go.
	SELECT CASE WHEN get_byte(b, 6) >> 4 = 7 AND get_byte(b, 8) >> 6 = 2 AND ms < 9000000000000 THEN ms * 1000000 END
	FROM (SELECT b, (get_byte(b, 0)::bigint << 40) | (get_byte(b, 1)::bigint << 32) | (get_byte(b, 2)::bigint << 24)
		| (get_byte(b, 3)::bigint << 16) | (get_byte(b, 4)::bigint << 8) | get_byte(b, 5)::bigint AS ms
		FROM (SELECT uuid_send(u) AS b) x) y
$$;

CREATE TABLE observation_ids_elsewhere (
	id text PRIMARY KEY -- the id as text (a UUID in canonical form), as purged_observations.observation_id
);

-- The rows stored before, outside their ids' windows.
INSERT INTO observation_ids_elsewhere (id)
SELECT COALESCE(uid::text, id_text) FROM observations
WHERE NOT COALESCE(time_ns >= vigil_uuid7_ns(uid) - 1000000000 AND time_ns < vigil_uuid7_ns(uid) + 1000000000, false)
ON CONFLICT DO NOTHING;
