package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// olderStore returns a store whose evidence log holds the leaves of
// batches of n observations each in its older tables, as the code before
// migration 0021 wrote them (evidence_blocks; evidence_log too after
// undo0016), reopened by this code (every migration applied again), with
// no tile yet; and its observations, in the order stored.
func olderStore(t *testing.T, undo []string, batches ...int) (*Store, []observe.Observation) {
	t.Helper()
	ctx := context.Background()
	levelZeroTiles(t)
	cfg := DefaultConfig()
	cfg.Schema = newSchema(t)
	st, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(31, 31))
	at := time.Date(2026, 5, 3, 12, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for _, n := range batches {
		batch := tileObs(r, at, n, len(obs))
		if err := st.InsertObservations(ctx, slices.Clone(batch)); err != nil {
			t.Fatal(err)
		}
		obs = append(obs, batch...)
	}
	for _, q := range undo {
		if _, err := st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	st.Close()
	openTileLevel = tileLevel
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	openOlderTables(t, again)
	return again, obs
}

// openOlderTables lets the test INSERT into evidence_log and
// evidence_blocks, as whoever owns the database can (migration 0024's
// triggers refuse it otherwise): the readers must refuse such rows
// without the triggers.
func openOlderTables(t testing.TB, st *Store) {
	t.Helper()
	for _, q := range []string{`ALTER TABLE evidence_log DISABLE TRIGGER evidence_log_closed`,
		`ALTER TABLE evidence_blocks DISABLE TRIGGER evidence_blocks_closed`} {
		if _, err := st.pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// refusedOr checks a read of the log against the reference leaves: the
// right answer, or an error naming table; never a leaf inserted by hand.
func refusedOr(t *testing.T, what string, err error, got, want [][]byte, table string) {
	t.Helper()
	switch {
	case err == nil && !reflect.DeepEqual(got, want):
		t.Errorf("%s: leaves other than the log's, no error", what)
	case err != nil && (!strings.Contains(err.Error(), table) || !strings.Contains(err.Error(), "leaf")):
		t.Errorf("%s: %v, want the log's leaves or an error naming %s and the leaf", what, err, table)
	}
}

// readLeaves is LogLeaves(from, to) collected.
func readLeaves(st *Store, from, to uint64) ([][]byte, error) {
	var got [][]byte
	err := st.LogLeaves(context.Background(), from, to, func(i uint64, leaf []byte) error {
		got = append(got, slices.Clone(leaf))
		return nil
	})
	return got, err
}

// blockIDs is an evidence_blocks row's ids column for obs.
func blockIDs(obs ...observe.Observation) []byte {
	var b []byte
	for _, o := range obs {
		k := idKey(o.ID)
		b = append(binary.AppendUvarint(b, uint64(len(k))), k...)
	}
	return b
}

// An evidence_blocks row INSERTed by hand over the leaves of the rows the
// commits appended (its triggers stop UPDATE and DELETE, not INSERT),
// below where the tiles begin, is never read in their place: not by a
// read from the log's start (every root and checkpoint), nor by one that
// starts inside it, nor as an observation's leaf index. A read that goes
// through it refuses it, naming evidence_blocks and the leaf; one that
// starts inside it reads the leaves from the row before it, whose end it
// checks, or refuses.
func TestBlocksRowInsertedOverOthersIsRefused(t *testing.T) {
	ctx := context.Background()
	forged := bytes.Repeat([]byte{0xAA}, 32)
	for _, c := range []struct {
		name        string
		first, n    int64 // the inserted row's first (1-based) and leaves
		from, to    uint64
		indexOf     int // an observation the inserted row names at its leaf 0, or -1
		beforeTiles bool
	}{
		{"over two rows, read from the start", 30, 10, 0, 201, -1, false},
		{"inside a row to its end, read from inside it", 51, 87, 55, 60, -1, false},
		{"inside a row, an observation's leaf index", 51, 1, 0, 0, 60, false},
		{"over two rows, read from the start, no tile yet", 30, 10, 0, 137, -1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			batches := []int{37, 100}
			st, obs := olderStore(t, undo0021, batches...)
			if !c.beforeTiles {
				batch := tileObs(rand.New(rand.NewPCG(32, 32)), time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), 64, len(obs))
				if err := st.InsertObservations(ctx, slices.Clone(batch)); err != nil {
					t.Fatal(err)
				}
				obs = append(obs, batch...)
			}
			ref := makeRefLog(t, st, obs)
			firstSeq, ids := int64(1)<<40, []byte{0}
			if c.indexOf >= 0 {
				where, arg := idWhere(obs[c.indexOf].ID)
				if err := st.pool.QueryRow(ctx, `SELECT o.seq FROM observations o WHERE `+where, arg).Scan(&firstSeq); err != nil {
					t.Fatal(err)
				}
				ids = blockIDs(obs[c.indexOf])
			}
			if _, err := st.pool.Exec(ctx, `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES ($1, $2, $3, $4)`,
				c.first, firstSeq, ids, bytes.Repeat(forged, int(c.n))); err != nil {
				t.Fatal(err)
			}
			if c.indexOf >= 0 {
				o := obs[c.indexOf]
				idx, err := st.LogIndexes(ctx, []string{o.ID})
				h, _ := o.LeafHash()
				switch {
				case err == nil:
					if i, ok := idx[o.ID]; !ok || !bytes.Equal(ref.leaves[i], h[:]) {
						t.Errorf("LogIndexes = %d, %v: not its leaf's index", i, ok)
					}
				case !strings.Contains(err.Error(), "evidence_blocks") || !strings.Contains(err.Error(), "leaf"):
					t.Errorf("LogIndexes: %v, want its index or an error naming evidence_blocks and the leaf", err)
				}
				return
			}
			got, err := readLeaves(st, c.from, c.to)
			refusedOr(t, fmt.Sprintf("LogLeaves(%d, %d)", c.from, c.to), err, got, ref.leaves[c.from:c.to], "evidence_blocks")
			if err == nil && c.from == 0 {
				t.Errorf("LogLeaves(%d, %d) read through the inserted row without refusing it", c.from, c.to)
			}
		})
	}
}

// Before the first tile exists the older tables end where migration
// 0024 found them (evidence_older_end): a row appended to evidence_blocks,
// or to evidence_log, after that is not a leaf. The log's size does not
// count it, the reads that meet it refuse it (naming the table and the
// leaf), and the first tile begins where the older tables end, not after
// the appended row.
func TestRowsAppendedToOlderTablesBeforeTheFirstTile(t *testing.T) {
	ctx := context.Background()
	forged := bytes.Repeat([]byte{0xAA}, 32)
	for _, c := range []struct {
		table string
		undo  []string
	}{
		{"evidence_blocks", undo0021},
		{"evidence_log", undo0016},
	} {
		t.Run(c.table, func(t *testing.T) {
			st, obs := olderStore(t, c.undo, 37, 100)
			ref := makeRefLog(t, st, obs)
			end := uint64(len(obs))
			q := `INSERT INTO evidence_blocks (first, first_seq, ids, leaves) VALUES ($1, $2, '\x00'::bytea, $3)`
			args := []any{int64(end) + 1, int64(1) << 40, bytes.Repeat(forged, 20)}
			if c.table == "evidence_log" {
				q, args = `INSERT INTO evidence_log (idx, obs_seq, leaf) VALUES ($1, $2, $3)`, []any{int64(end) + 1, int64(1) << 40, forged}
			}
			if _, err := st.pool.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
			if size, err := st.LogSize(ctx); err != nil || size != end {
				t.Errorf("LogSize = %d, %v; want %d, the appended row not counted", size, err, end)
			}
			got, err := readLeaves(st, 130, end+1)
			refusedOr(t, fmt.Sprintf("LogLeaves(130, %d)", end+1), err, got, ref.leaves[130:end], c.table)
			if err == nil {
				t.Errorf("LogLeaves(130, %d) read the appended row's leaf without refusing it", end+1)
			}
			if got, err := readLeaves(st, 0, end); err != nil || !reflect.DeepEqual(got, ref.leaves) {
				t.Errorf("LogLeaves(0, %d): %d leaves, %v; want the log's", end, len(got), err)
			}
			// The next commit's tile begins where the older tables end.
			batch := tileObs(rand.New(rand.NewPCG(33, 33)), time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC), 16, len(obs))
			if err := st.InsertObservations(ctx, slices.Clone(batch)); err != nil {
				t.Fatal(err)
			}
			if tiles, err := st.tilesStart(ctx); err != nil || tiles != int64(end) {
				t.Fatalf("the first tile begins at leaf %d (%v), want %d", tiles, err, end)
			}
			ref = makeRefLog(t, st, append(obs, batch...))
			if got, err := readLeaves(st, end, end+16); err != nil || !reflect.DeepEqual(got, ref.leaves[end:end+16]) {
				t.Errorf("LogLeaves(%d, %d), the tile: %d leaves, %v; want the log's", end, end+16, len(got), err)
			}
			got, err = readLeaves(st, 100, end+16)
			refusedOr(t, fmt.Sprintf("LogLeaves(100, %d) across the tiles' start", end+16), err, got, ref.leaves[100:end+16], c.table)
		})
	}
}
