-- The analysis's timeline in days (issue 13's disk target): one row an
-- endpoint and UTC day instead of one an observation (94 bytes each,
-- measured). packed holds the day's sightings (each observation's time
-- and seq) as runs of delta-coded varints, one run a save that touched
-- the (endpoint, day); the format is in internal/store/postgres/sightings.go
-- and vigil_timeline_unpack below reads it for retention's queries.
CREATE TABLE analysis_timeline_days (
	endpoint bigint NOT NULL,  -- analysis_endpoints (id)
	day      integer NOT NULL, -- UTC days since 1970-01-01, of the sightings' times
	packed   bytea NOT NULL,   -- the day's sightings, runs appended by each save
	PRIMARY KEY (endpoint, day)
);

-- vigil_timeline_unpack reads a row's packed sightings, in the order
-- stored; a malformed value raises an error (it must not show another
-- observation or hide one). Mirrors decodeSightings (sightings.go):
-- TestSightingsDecodersAgree holds the two to the same answers. bigint
-- arithmetic where it cannot overflow (a varint's first 9 bytes, 63
-- bits; days whose start and end fit), numeric past it; the value is
-- copied once (p) so that get_byte does not decompress it at every byte.
CREATE FUNCTION vigil_timeline_unpack(day bigint, packed bytea) RETURNS TABLE (time_ns bigint, seq bigint)
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	d     constant bigint := 86400000000000;
	p     bytea := packed || '\x'::bytea;
	len   int := length(packed);
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

-- vigil_timeline_pack is the run of one day's sightings (ascending and
-- distinct), for the rows below; the store packs them itself.
CREATE FUNCTION vigil_timeline_pack(day bigint, times bigint[], seqs bigint[]) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
	vals  numeric[] := ARRAY[cardinality(times)::numeric];
	bytes int[] := '{}';
	v     numeric;
	z     numeric;
BEGIN
	FOR i IN 1 .. cardinality(times) LOOP
		IF i = 1 THEN
			vals := vals || (times[1] - day * 86400000000000::numeric) || seqs[1]::numeric;
		ELSE
			z := seqs[i]::numeric - seqs[i - 1];
			vals := vals || (times[i]::numeric - times[i - 1]) || CASE WHEN z >= 0 THEN 2 * z ELSE -2 * z - 1 END;
		END IF;
	END LOOP;
	FOREACH v IN ARRAY vals LOOP
		WHILE v >= 128 LOOP
			bytes := bytes || (mod(v, 128) + 128)::int;
			v := div(v, 128);
		END LOOP;
		bytes := bytes || v::int;
	END LOOP;
	RETURN '\x01'::bytea || (SELECT decode(string_agg(lpad(to_hex(x), 2, '0'), '' ORDER BY o), 'hex') FROM unnest(bytes) WITH ORDINALITY AS u(x, o));
END $$;

INSERT INTO analysis_timeline_days (endpoint, day, packed)
SELECT endpoint, day, vigil_timeline_pack(day, array_agg(time_ns ORDER BY time_ns, seq), array_agg(seq ORDER BY time_ns, seq))
FROM (SELECT endpoint, floor(time_ns / 86400000000000::numeric)::integer AS day, time_ns, seq FROM analysis_timeline) t
GROUP BY endpoint, day;

DROP FUNCTION vigil_timeline_pack;
DROP TABLE analysis_timeline;
