package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var benchObs = flag.Int("bench-observations", 1_000_000, "observations each insert benchmark writes")

// benchSource hands out batches of realistic observations: every field
// filled as a peer probe fills them (peer id, client, node id, two list
// matches, pieces, a 256-byte transcript and its SHA-256), distinct ids and
// times, items drawn from a pool as real traffic repeats items.
type benchSource struct {
	pool []observe.Observation
	at   time.Time
	n    int
}

func newBenchSource() *benchSource {
	r := rand.New(rand.NewPCG(42, 42))
	s := &benchSource{at: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)}
	for i := 0; i < 4096; i++ {
		s.pool = append(s.pool, storetest.Observation(r, s.at, i))
	}
	return s
}

func (s *benchSource) fill(batch []observe.Observation) {
	for i := range batch {
		o := s.pool[s.n%len(s.pool)]
		o.Time = s.at.Add(time.Duration(s.n) * 37 * time.Microsecond)
		o.ID = observe.NewID(o.Time)
		batch[i] = o
		s.n++
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fileSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// insertNaive is the baseline: the same rows and the same transaction
// per batch, but one single-row INSERT per observation through
// database/sql, the statement prepared each time, as straightforward code
// does it. Item, facet and place ids are resolved the same way (the same
// caches, then a query per new value).
func insertNaive(s *Store, ctx context.Context, obs []observe.Observation) error {
	q := `INSERT INTO observations (` + obsColumns + `) VALUES ` + obsRow + ` ON CONFLICT (id) DO NOTHING`
	fresh := newFreshIDs()
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		ref := func(find, add string, args ...any) (int64, error) {
			var id int64
			err := tx.QueryRowContext(ctx, find, args...).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				var res sql.Result
				if res, err = tx.ExecContext(ctx, add, args...); err == nil {
					id, err = res.LastInsertId()
				}
			}
			return id, err
		}
		for i := range obs {
			o := &obs[i]
			if err := o.Validate(); err != nil {
				return err
			}
			k := keyOf(o.Item.Hash)
			item, ok := s.items[k]
			if !ok {
				item, ok = fresh.items[k]
			}
			if !ok {
				var err error
				if item, err = ref(findItem, addItem, o.Item.Hash.Bytes(), o.Item.Hash.Kind().String()); err != nil {
					return err
				}
				fresh.items[k] = item
			}
			fk := facetOf(o)
			facet, ok := s.facets[fk]
			if !ok {
				facet, ok = fresh.facets[fk]
			}
			if !ok {
				var err error
				if facet, err = ref(findFacet, addFacet, fk.args()...); err != nil {
					return err
				}
				fresh.facets[fk] = facet
			}
			var place int64
			if p, found := rowcodec.AppendPlace(nil, &o.Place); found {
				if place, ok = s.places[string(p)]; !ok {
					place, ok = fresh.places[string(p)]
				}
				if !ok {
					var err error
					if place, err = ref(findPlace, addPlace, string(p)); err != nil {
						return err
					}
					fresh.places[string(p)] = place
				}
			}
			if _, err := tx.ExecContext(ctx, q, obsValues(o, item, facet, place, string(rowcodec.AppendMatched(nil, o.Item.Matched)))...); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.wmu.Lock()
		s.commitIDs(fresh)
		s.wmu.Unlock()
	}
	return err
}

// BenchmarkInsertObservations writes -bench-observations observations into
// a new store file per iteration, in batches, with InsertObservations
// (multi-row prepared INSERTs) and with the naive baseline. Run with
// -benchtime=1x: one iteration is a million rows.
func BenchmarkInsertObservations(b *testing.B) {
	cases := []struct {
		name   string
		batch  int
		insert func(s *Store, ctx context.Context, obs []observe.Observation) error
	}{
		{"batched/batch=1000", 1000, (*Store).InsertObservations},
		{"batched/batch=5000", 5000, (*Store).InsertObservations},
		{"batched/batch=10000", 10000, (*Store).InsertObservations},
		{"naive-one-row-per-statement/batch=1000", 1000, insertNaive},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			src := newBenchSource()
			batch := make([]observe.Observation, c.batch)
			var inserted int
			var elapsed time.Duration
			var size int64
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), fmt.Sprintf("bench-%d.db", i))
				st, err := Open(ctx, path, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				for done := 0; done < *benchObs; done += c.batch {
					n := min(c.batch, *benchObs-done)
					src.fill(batch[:n])
					b.StartTimer()
					start, cpu0 := time.Now(), cpuTime()
					if err := c.insert(st, ctx, batch[:n]); err != nil {
						b.Fatal(err)
					}
					elapsed += time.Since(start)
					cpu += cpuTime() - cpu0
					b.StopTimer()
					inserted += n
				}
				var count int
				if err := st.db.QueryRowContext(ctx, `SELECT count(*) FROM observations`).Scan(&count); err != nil || count != *benchObs {
					b.Fatalf("stored %d observations (%v), want %d", count, err, *benchObs)
				}
				if err := st.Close(); err != nil {
					b.Fatal(err)
				}
				size = fileSize(path)
			}
			b.ReportMetric(float64(inserted)/elapsed.Seconds(), "obs/s")
			// On a shared machine wall time depends on the neighbours; CPU
			// time (user+system of this process) shows the cost itself.
			b.ReportMetric(float64(inserted)/cpu.Seconds(), "obs/cpu-s")
			b.ReportMetric(float64(c.batch), "batch")
			b.ReportMetric(float64(size)/(1<<20), "MiB-file")
			b.ReportMetric(float64(size)/float64(*benchObs), "bytes/obs")
		})
	}
}

// The baseline must store exactly what InsertObservations stores, or the
// comparison means nothing.
func TestNaiveBaselineStoresTheSameObservations(t *testing.T) {
	ctx := context.Background()
	src := newBenchSource()
	obs := make([]observe.Observation, 300)
	src.fill(obs)
	export := func(insert func(s *Store, ctx context.Context, obs []observe.Observation) error) []observe.Observation {
		st, _ := openTemp(t, DefaultConfig())
		if err := insert(st, ctx, obs); err != nil {
			t.Fatal(err)
		}
		var out []observe.Observation
		if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
			out = append(out, *o)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	batched, naive := export((*Store).InsertObservations), export(insertNaive)
	if len(batched) != len(obs) || len(naive) != len(obs) {
		t.Fatalf("stored %d batched and %d naive observations, want %d", len(batched), len(naive), len(obs))
	}
	for i := range obs {
		if !batched[i].Equal(&obs[i]) || !naive[i].Equal(&obs[i]) {
			t.Fatalf("observation %d differs:\nbatched %+v\nnaive   %+v\nwant    %+v", i, batched[i], naive[i], obs[i])
		}
	}
}
