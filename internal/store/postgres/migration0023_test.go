package postgres

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// obs0023 are observations with every kind of clock reading (unknown,
// measured, measured at exactly zero), odd values (oddObservations), a
// sensor's DHT replies and probes (no listen port, pieces unknown, no
// transcript reference; signed), an observation with each "none"
// value, and one measured at exactly zero within zero.
func obs0023(r *rand.Rand, at time.Time) []observe.Observation {
	obs := oddObservations(r, at)
	for i := range 8 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(20+i)*time.Second), i))
	}
	lab := storetest.LabObservations(30, 9)
	for i := range lab {
		lab[i].Time = at.Add(time.Minute + time.Duration(i)*time.Millisecond)
	}
	obs = append(obs, lab...)
	none := storetest.Observation(r, at.Add(2*time.Minute), 1)
	none.Client.ListenPort, none.Possession.PiecesHave, none.Possession.PiecesTotal, none.Transcript.Ref = 0, -1, -1, ""
	// Measured at exactly zero, within zero: the same numbers as an
	// unknown offset's (0, and no uncertainty), a reading of its own
	// (the uncertainty NULL only when unknown).
	zero := storetest.Observation(r, at.Add(3*time.Minute), 3)
	zero.ClockOffset, zero.ClockUncertainty = 0, 0
	return append(obs, none, zero)
}

// Migration 0023 moves every row to the leaner table: each observation
// reads back as before, its evidence-log leaf hashed again from its row
// is the one logged, the clock offset a row held while its offset was
// unknown is kept (read as unknown), and ingest goes on after it (seq,
// a redelivered observation skipped).
func TestMigration0023KeepsEveryValue(t *testing.T) {
	levelZeroTiles(t)
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(23, 23))
	obs := obs0023(r, time.Date(2025, 3, 31, 23, 59, 0, 0, time.UTC))
	for i := range obs {
		if i%2 == 1 {
			obs[i].Time = obs[i].Time.AddDate(0, 1, 0) // two months, two partitions
		}
	}
	if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
		t.Fatal(err)
	}
	want := storetest.Export(t, st, store.ObservationFilter{})
	ref := makeRefLog(t, st, obs)
	for _, q := range undo0023 {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// A row of an unknown offset may hold any number in clock_offset_ns
	// (migration 0006): kept, and still read as unknown.
	var unknown, pairs int
	if err := st.pool.QueryRow(ctx, `WITH u AS (UPDATE observations SET clock_offset_ns = 1500000 + seq
		WHERE clock_uncertainty_ns IS NULL RETURNING 1) SELECT count(*) FROM u`).Scan(&unknown); err != nil {
		t.Fatal(err)
	}
	if err := st.pool.QueryRow(ctx, `SELECT count(DISTINCT clock_offset_ns) FROM observations`).Scan(&pairs); err != nil {
		t.Fatal(err)
	}
	if unknown == 0 || unknown == len(obs) {
		t.Fatalf("%d of %d observations of an unknown offset, want some and not all", unknown, len(obs))
	}
	st.Close()
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := storetest.Export(t, again, store.ObservationFilter{})
	if len(got) != len(want) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(&want[i]) || got[i].Endpoint.IP != want[i].Endpoint.IP {
			t.Fatalf("observation %d after the migration:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	checkProofs(t, again, ref)
	var kept, clocks, nulls, maxSeq int
	if err := again.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM observations o JOIN observation_clocks k ON k.id = o.clock_id
			WHERE o.clock_uncertainty_ns IS NULL AND k.offset_ns = 1500000 + o.seq),
		(SELECT count(*) FROM observation_clocks),
		(SELECT count(*) FROM observations WHERE listen_port IS NULL AND pieces_have IS NULL AND pieces_total IS NULL AND transcript_ref IS NULL),
		(SELECT max(seq) FROM observations)`).Scan(&kept, &clocks, &nulls, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if kept != unknown || clocks != pairs || nulls == 0 || maxSeq != len(obs) {
		t.Fatalf("after the migration: %d offsets of unknown clocks kept of %d, %d clock rows for %d offsets, %d rows with every none as NULL, last seq %d (want %d)",
			kept, unknown, clocks, pairs, nulls, maxSeq, len(obs))
	}
	newer := storetest.Observation(r, time.Date(2025, 4, 2, 0, 0, 0, 0, time.UTC), 8)
	n, err := again.InsertObservationsCounted(ctx, []observe.Observation{obs[0], newer})
	if err != nil || n != 1 {
		t.Fatalf("inserting one stored and one new observation: %d added (%v), want 1", n, err)
	}
	if err := again.pool.QueryRow(ctx, `SELECT max(seq) FROM observations`).Scan(&maxSeq); err != nil || maxSeq != len(obs)+1 {
		t.Fatalf("after one more: last seq %d (%v), want %d", maxSeq, err, len(obs)+1)
	}
}

// Each writer stores "none" as NULL and one clock row an offset, also
// when a second store (its caches empty) writes the same offsets; a row
// that writes a "none" value out is refused (one way to write each
// value); every observation reads back as given.
func TestLeanRowsWriteNoneAsNull(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.InsertMethod = method
			st := openTest(t, cfg)
			r := rand.New(rand.NewPCG(24, 24))
			at := time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)
			obs := obs0023(r, at)
			if err := st.InsertObservations(ctx, slices.Clone(obs)); err != nil {
				t.Fatal(err)
			}
			cfg.Schema = st.cfg.Schema
			again, err := Open(ctx, testDSN(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			more := slices.Clone(obs)
			for i := range more {
				more[i].ID, more[i].Time = "", more[i].Time.Add(time.Hour)
			}
			if err := again.InsertObservations(ctx, more); err != nil {
				t.Fatal(err)
			}
			offsets := map[time.Duration]bool{}
			var noListen, noPieces, noRef int
			for _, o := range obs {
				offsets[o.ClockOffset] = true
				noListen += map[bool]int{true: 1}[o.Client.ListenPort == 0]
				noPieces += map[bool]int{true: 1}[o.Possession.PiecesHave < 0]
				noRef += map[bool]int{true: 1}[o.Transcript.Ref == ""]
			}
			var clocks, nl, np, nr int
			if err := again.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM observation_clocks),
				count(*) FILTER (WHERE listen_port IS NULL), count(*) FILTER (WHERE pieces_have IS NULL),
				count(*) FILTER (WHERE transcript_ref IS NULL) FROM observations`).Scan(&clocks, &nl, &np, &nr); err != nil {
				t.Fatal(err)
			}
			if clocks != len(offsets) || nl != 2*noListen || np != 2*noPieces || nr != 2*noRef {
				t.Fatalf("clock rows %d, want %d; NULL listen ports %d, pieces %d, references %d; want %d, %d, %d",
					clocks, len(offsets), nl, np, nr, 2*noListen, 2*noPieces, 2*noRef)
			}
			got := storetest.Export(t, again, store.ObservationFilter{})
			all := append(slices.Clone(obs), more...)
			if len(got) != len(all) {
				t.Fatalf("exported %d observations, want %d", len(got), len(all))
			}
			for i := range all {
				if !got[i].Equal(&all[i]) || got[i].Endpoint.IP != all[i].Endpoint.IP {
					t.Fatalf("observation %d:\ngot  %+v\nwant %+v", i, got[i], all[i])
				}
			}
			for _, q := range []string{`UPDATE observations SET listen_port = 0 WHERE seq = 1`,
				`UPDATE observations SET pieces_total = -1 WHERE seq = 1`, `UPDATE observations SET transcript_ref = '' WHERE seq = 1`} {
				if _, err := again.pool.Exec(ctx, q); err == nil {
					t.Fatalf("%s: accepted, want refused", q)
				}
			}
		})
	}
}
