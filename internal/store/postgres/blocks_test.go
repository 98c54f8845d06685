package postgres

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// elsewhereSeqs reads observation_ids_elsewhere: each listed id's seq (-1
// for NULL).
func elsewhereSeqs(t *testing.T, st *Store) map[string]int64 {
	t.Helper()
	return seqsByID(t, st, `SELECT id, COALESCE(seq, -1) FROM observation_ids_elsewhere`)
}

// seqsByID runs q, whose rows are an id and a seq, and returns the seqs
// by id.
func seqsByID(t *testing.T, st *Store, q string) map[string]int64 {
	t.Helper()
	rows, err := st.pool.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			t.Fatal(err)
		}
		out[id] = seq
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// openIn opens a store in cfg's schema, closed when t ends.
func openIn(t *testing.T, cfg Config) *Store {
	t.Helper()
	st, err := Open(context.Background(), testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// rowSeqs reads each stored row's seq by id.
func rowSeqs(t *testing.T, st *Store) map[string]int64 {
	t.Helper()
	return seqsByID(t, st, `SELECT `+obsIDCol+`, o.seq FROM observations o`)
}

// outsideWindows is a batch with ids outside their windows (another
// month, a text id, a UUID of another version) and one inside.
func outsideWindows(r *rand.Rand, at time.Time, k int) []observe.Observation {
	var obs []observe.Observation
	for i, id := range []string{observe.NewID(at.AddDate(0, -1, 0)), "sensor-7/observation/" + string(rune('a'+k)),
		"8f14e45f-ceea-467a-9a8e-a3c6b1d2e4f" + string(rune('0'+k)), ""} {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), 10*k+i)
		o.ID = id
		obs = append(obs, o)
	}
	return obs
}

// Ingest lists the seq of every row it stores outside its id's window
// (migration 0030), by either insert method, and migration 0030 fills it
// for the rows stored before it: an id outside its window is then found
// in the blocks from its seq.
func TestIDsElsewhereListTheirSeqs(t *testing.T) {
	for _, method := range []string{InsertCopy, InsertValues} {
		t.Run(method, func(t *testing.T) {
			ctx := context.Background()
			cfg := DefaultConfig()
			cfg.Schema, cfg.InsertMethod = newSchema(t), method
			st := openIn(t, cfg)
			r := rand.New(rand.NewPCG(30, 1))
			at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
			batch := outsideWindows(r, at, 0)
			if err := st.InsertObservations(ctx, batch); err != nil {
				t.Fatal(err)
			}
			check := func(st *Store, n int) {
				t.Helper()
				listed, seqs := elsewhereSeqs(t, st), rowSeqs(t, st)
				if len(listed) != n {
					t.Fatalf("%d ids listed, want %d: %v", len(listed), n, listed)
				}
				for id, seq := range listed {
					if seq != seqs[id] {
						t.Errorf("id %s listed with seq %d, stored with %d", id, seq, seqs[id])
					}
				}
			}
			check(st, 3)
			if err := st.InsertObservations(ctx, outsideWindows(r, at.Add(time.Hour), 1)); err != nil {
				t.Fatal(err)
			}
			check(st, 6)
			runUndo(t, st, undo0030) // the seqs dropped: the migration fills them again
			again := reopen(t, st, cfg)
			check(again, 6)
			// A replay of a listed id is refused and leaves its seq.
			replay := batch[0]
			replay.Time = replay.Time.AddDate(0, 2, 0)
			if err := again.InsertObservations(ctx, []observe.Observation{replay}); err != nil {
				t.Fatal(err)
			}
			check(again, 6)
		})
	}
}

// Migration 0030 makes the blocks' partition of every month
// observations has one of, and vigil_observation_partition makes both
// from then on.
func TestBlocksPartitionedByMonthAsObservations(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st := openIn(t, cfg)
	if err := st.PreparePartitions(ctx, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 1); err != nil {
		t.Fatal(err)
	}
	parts := func(st *Store, parent string) []string {
		t.Helper()
		rows, err := st.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::regclass ORDER BY 1`, parent)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s[len(parent):])
		}
		return out
	}
	runUndo(t, st, undo0030)
	if _, err := st.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, time.Date(2025, 6, 3, 0, 0, 0, 0, time.UTC).UnixNano()); err != nil {
		t.Fatal(err)
	}
	again := reopen(t, st, cfg)
	if _, err := again.pool.Exec(ctx, `SELECT vigil_observation_partition($1)`, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC).UnixNano()); err != nil {
		t.Fatal(err)
	}
	o, b := parts(again, "observations"), parts(again, "observation_blocks")
	if !slices.Contains(o, "_p202506") || !slices.Contains(o, "_p202402") || !slices.Equal(o, b) {
		t.Fatalf("months of observations %v, of observation_blocks %v: want the same, with 202402 and 202506", o, b)
	}
	var storage string
	if err := again.pool.QueryRow(ctx, `SELECT attstorage FROM pg_attribute WHERE attrelid = 'observation_blocks_p202506'::regclass
		AND attname = 'body'`).Scan(&storage); err != nil || storage != "e" {
		t.Fatalf("observation_blocks_p202506.body stored %q (%v), want e (EXTERNAL: obsblock compresses)", storage, err)
	}
}

// compactAll moves every row into blocks, whatever the watermark and
// the time (the tests' compaction).
func compactAll(t testing.TB, st *Store) CompactResult {
	t.Helper()
	opt := DefaultCompactOptions()
	opt.Settle, opt.Now, opt.ignoreWatermark = 0, time.Unix(0, 1<<62), true
	res, err := st.CompactObservations(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// storedIDCount counts the observations stored, rows and blocks, and
// their distinct ids.
func storedIDCount(t *testing.T, st *Store) (n, ids int) {
	t.Helper()
	seen := map[string]bool{}
	hot := storedRows(t, st)
	cold, _ := blockRows(t, st)
	for _, m := range []map[int64]observe.Observation{hot, cold} {
		for _, o := range m {
			n++
			seen[o.ID] = true
		}
	}
	return n, len(seen)
}

// Attack: an id whose row was compacted into a block is replayed: with
// its own time (the unique index of the hot rows no longer holds it),
// with its window's time, with another month's. By either insert
// method, alone or in a batch of new observations, each must be refused.
func TestReplayOfACompactedIDIsRefused(t *testing.T) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		id    func() string
		first time.Time
	}{
		{"v7 in its window", func() string { return observe.NewID(at) }, at},
		{"v7 outside its window", func() string { return observe.NewID(at.AddDate(0, -1, 0)) }, at},
		{"text id", func() string { return "sensor-7/observation/42" }, at},
		{"v4 UUID", func() string { return "8f14e45f-ceea-467a-9a8e-a3c6b1d2e4f0" }, at},
	}
	for _, method := range []string{InsertCopy, InsertValues} {
		for _, c := range cases {
			t.Run(method+"/"+c.name, func(t *testing.T) {
				ctx := context.Background()
				cfg := DefaultConfig()
				cfg.InsertMethod = method
				st := openTest(t, cfg)
				r := rand.New(rand.NewPCG(30, 3))
				id := c.id()
				first := storetest.Observation(r, c.first, 0)
				first.ID = id
				neighbours := []observe.Observation{storetest.Observation(r, at.Add(-time.Minute), 1), first, storetest.Observation(r, at.Add(time.Minute), 2)}
				if err := st.InsertObservations(ctx, neighbours); err != nil {
					t.Fatal(err)
				}
				compactAll(t, st)
				if hot := storedRows(t, st); len(hot) != 0 {
					t.Fatalf("%d rows left hot after compacting them all", len(hot))
				}
				stored := 3
				for k, when := range []time.Time{c.first, at, at.Add(999 * time.Millisecond), at.AddDate(0, 2, 0), at.Add(-time.Second)} {
					o := storetest.Observation(r, when, 10+k)
					o.ID = id
					if err := st.InsertObservations(ctx, []observe.Observation{o}); err != nil {
						t.Fatal(err)
					}
					o.Time = o.Time.Add(time.Millisecond)
					batch := []observe.Observation{storetest.Observation(r, at.Add(time.Hour), 100+k), o}
					if err := st.InsertObservations(ctx, batch); err != nil {
						t.Fatal(err)
					}
					stored++
					if n, ids := storedIDCount(t, st); n != stored || ids != stored {
						t.Fatalf("replay %d at %s: %d observations for %d ids, want %d of each (the compacted id was stored again)", k, when, n, ids, stored)
					}
					if k%2 == 1 {
						compactAll(t, st)
					}
				}
			})
		}
	}
}
