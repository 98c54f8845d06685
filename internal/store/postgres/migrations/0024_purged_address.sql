-- Migration 0024.
--
-- A purge record carries the address and port of the observation it
-- records (issue 13/14): PurgedOfTarget ties purge records to a target
-- through the analysis's timeline (its sightings' seqs), and refuses a
-- record whose address, port or time is not its sighting's, as the
-- timeline's reads refuse an observation of another address or time
-- (migration 0022). ip is the address as netip prints it (observations'
-- vigil_ip_text), port the observation's own. NULL in the records written
-- before this migration (their rows may be gone): those are checked by
-- their time only. Retention's one update (0020, 0021) keeps an address
-- and port already recorded.
ALTER TABLE purged_observations ADD COLUMN ip text, ADD COLUMN port integer;
CREATE OR REPLACE FUNCTION vigil_purged_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND OLD.what = 'transcripts' AND NEW.what = 'observations'
		AND NEW.observation_id = OLD.observation_id AND NEW.seq = OLD.seq AND NEW.time_ns = OLD.time_ns
		AND NEW.purged_ns >= OLD.purged_ns
		AND (OLD.chain_ref IS NULL OR NEW.chain_ref IS NOT DISTINCT FROM OLD.chain_ref)
		AND (OLD.chain_seq IS NULL OR NEW.chain_seq IS NOT DISTINCT FROM OLD.chain_seq)
		AND (OLD.leaf IS NULL OR NEW.leaf IS NOT DISTINCT FROM OLD.leaf)
		AND (OLD.ip IS NULL OR NEW.ip IS NOT DISTINCT FROM OLD.ip)
		AND (OLD.port IS NULL OR NEW.port IS NOT DISTINCT FROM OLD.port) THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;

-- vigil_timeline_unpack (0022) bounded as the Go decoder is
-- (internal/store/postgres/sightings.go, maxPackedBytes and
-- maxDaySightings): a value of more than 8 MiB, or of more than 1,048,576
-- sightings in all, is refused before it is copied or unpacked, rather
-- than unpacked bounded only by its size (a hand-made row of a gigabyte
-- would have taken hours of a purge's queries). Otherwise as 0022's.
CREATE OR REPLACE FUNCTION vigil_timeline_unpack(day bigint, packed bytea) RETURNS TABLE (time_ns bigint, seq bigint)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	d     constant bigint := 86400000000000;
	p     bytea;    -- packed, copied once its size is checked
	len   bigint := length(packed); -- read from the value's header: not decompressed
	total bigint := 0; -- the sightings of the runs begun
	i     int := 0;
	b     int;
	state int := 0; -- 0: a run's tag; 1: its count; 2: a time delta; 3: a seq
	k     int := 0; -- the byte of the varint being read
	v     bigint := 0;
	big   numeric;  -- the varint's value when it has a 10th byte
	n     bigint;
	got   bigint;
	off   bigint;
	dt    numeric;
	s     bigint;
	z     numeric;
	base  bigint;   -- day * d, when it and the day's end fit in bigint
	t     numeric;
BEGIN
	IF len = 0 THEN
		RAISE EXCEPTION 'malformed packed sightings: empty';
	END IF;
	IF len > 8388608 THEN
		RAISE EXCEPTION 'malformed packed sightings: % bytes, more than the 8388608 a day''s row may hold', len;
	END IF;
	p := packed || '\x'::bytea;
	IF day BETWEEN -106751 AND 106750 THEN
		base := day * d;
	END IF;
	WHILE i < len LOOP
		b := get_byte(p, i);
		i := i + 1;
		IF state = 0 THEN
			IF b <> 1 THEN
				RAISE EXCEPTION 'malformed packed sightings: byte % is not a run''s tag', i - 1;
			END IF;
			state := 1;
			CONTINUE;
		END IF;
		IF k < 9 THEN
			v := v | ((b & 127)::bigint << (7 * k));
			big := NULL;
		ELSE
			IF b > 1 THEN
				RAISE EXCEPTION 'malformed packed sightings: a varint past 64 bits at byte %', i - 1;
			END IF;
			big := v::numeric + b * 9223372036854775808::numeric;
		END IF;
		IF b >= 128 THEN
			k := k + 1;
			CONTINUE;
		END IF;
		IF b = 0 AND k > 0 THEN
			RAISE EXCEPTION 'malformed packed sightings: a varint not minimal at byte %', i - 1;
		END IF;
		k := 0;
		IF state = 1 THEN
			n := CASE WHEN big IS NULL THEN v ELSE 9223372036854775807 END;
			IF n = 0 OR n > (len - i) / 2 THEN
				RAISE EXCEPTION 'malformed packed sightings: a run of % sightings in % bytes', coalesce(big, v), len - i;
			END IF;
			total := total + n;
			IF total > 1048576 THEN
				RAISE EXCEPTION 'malformed packed sightings: more than 1048576 sightings in a day''s row, at byte %', i - 1;
			END IF;
			got := 0;
			off := 0;
			state := 2;
		ELSIF state = 2 THEN
			dt := coalesce(big, v);
			IF off + dt >= d THEN
				RAISE EXCEPTION 'malformed packed sightings: a time past its day at byte %', i - 1;
			END IF;
			off := off + dt::bigint;
			state := 3;
		ELSE
			IF got = 0 THEN
				IF big IS NOT NULL THEN
					RAISE EXCEPTION 'malformed packed sightings: a seq past 63 bits at byte %', i - 1;
				END IF;
				s := v;
			ELSE
				IF big IS NULL THEN
					z := (v >> 1) # (-(v & 1));
				ELSE
					z := CASE WHEN big % 2 = 0 THEN big / 2 ELSE -(big + 1) / 2 END;
				END IF;
				IF s + z > 9223372036854775807 OR (dt = 0 AND z <= 0) THEN
					RAISE EXCEPTION 'malformed packed sightings: sightings not ascending at byte %', i - 1;
				END IF;
				s := s + z::bigint;
			END IF;
			IF s < 1 THEN
				RAISE EXCEPTION 'malformed packed sightings: seq % at byte %', s, i - 1;
			END IF;
			IF base IS NOT NULL THEN
				time_ns := base + off;
			ELSE
				t := day::numeric * d + off;
				IF t < -9223372036854775808 OR t > 9223372036854775807 THEN
					RAISE EXCEPTION 'malformed packed sightings: a time outside int64 at byte %', i - 1;
				END IF;
				time_ns := t;
			END IF;
			seq := s;
			RETURN NEXT;
			got := got + 1;
			state := CASE WHEN got = n THEN 0 ELSE 2 END;
		END IF;
		v := 0;
	END LOOP;
	IF state <> 0 OR k <> 0 THEN
		RAISE EXCEPTION 'malformed packed sightings: cut off';
	END IF;
END $$;

-- Where the evidence log's older tables end (issue 13/14): since 0021 the
-- store appends no row to evidence_log or evidence_blocks, so their
-- leaves end where they ended then; this row says where, and the first
-- evidence_tiles block begins there (before this migration it began after
-- the older tables' last row, whatever that was when the first commit
-- after 0021 came). A row INSERTed into an older table at or beyond it
-- (their triggers stop UPDATE and DELETE, not INSERT), before the first
-- tile as after, is refused by the reads that meet it, never read as a
-- leaf nor followed by the tiles. One row (the key is the constant true),
-- never updated or deleted.
CREATE TABLE evidence_older_end (
	one    boolean PRIMARY KEY DEFAULT true CHECK (one),
	leaves bigint NOT NULL CHECK (leaves >= 0) -- the older tables' leaves: leaf indexes 0 to leaves - 1
);
INSERT INTO evidence_older_end (leaves) SELECT COALESCE((SELECT MIN(first) - 1 FROM evidence_tiles),
	(SELECT first - 1 + length(leaves) / 32 FROM evidence_blocks ORDER BY first DESC LIMIT 1),
	(SELECT COALESCE(MAX(idx), 0) FROM evidence_log));
CREATE TRIGGER evidence_older_end_append_only BEFORE UPDATE OR DELETE ON evidence_older_end
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_append_only();
CREATE TRIGGER evidence_older_end_no_truncate BEFORE TRUNCATE ON evidence_older_end
	FOR EACH STATEMENT EXECUTE FUNCTION vigil_evidence_append_only();

-- The older tables are closed: since 0021 the store appends to
-- evidence_tiles only, so an INSERT into evidence_log or evidence_blocks
-- (which their append-only triggers let through) is refused here too, as
-- UPDATE and DELETE are. Whoever owns the database can disable this; the
-- readers refuse such rows anyway (evidence_older_end above, and the
-- order of evidence_blocks' rows).
CREATE FUNCTION vigil_evidence_closed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% is closed: the evidence log appends to evidence_tiles since migration 0021', TG_TABLE_NAME;
END $$;
CREATE TRIGGER evidence_log_closed BEFORE INSERT ON evidence_log
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_closed();
CREATE TRIGGER evidence_blocks_closed BEFORE INSERT ON evidence_blocks
	FOR EACH ROW EXECUTE FUNCTION vigil_evidence_closed();
