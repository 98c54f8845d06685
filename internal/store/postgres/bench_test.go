package postgres

import (
	"bytes"
	"context"
	"flag"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var benchObs = flag.Int("bench-observations", 1_000_000, "observations each insert benchmark writes")

// benchSource hands out batches of realistic observations (the SQLite
// store's benchmark source): every field filled as a peer probe fills
// them, distinct ids and times, items drawn from a pool of 4,096 as real
// traffic repeats items.
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

// cpuTime is this process's user+system time: the client side only (the
// server's backend is another process).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the user+system time of the server processes (backends)
// serving the pool with the given application_name, read from /proc: the
// server runs on this machine in the benchmark setup. Zero when /proc
// cannot say (another host, another user).
func serverCPU(ctx context.Context, st *Store, app string) time.Duration {
	r, err := st.pool.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if err != nil {
		return 0
	}
	pids, err := pgx.CollectRows(r, pgx.RowTo[int32])
	if err != nil {
		return 0
	}
	var ticks int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
		if err != nil {
			return 0
		}
		// Fields after the command name (which may hold spaces): state is
		// field 3, utime 14 and stime 15.
		rest := string(b[bytes.LastIndexByte(b, ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 13 {
			return 0
		}
		u, err1 := strconv.ParseInt(f[11], 10, 64)
		s, err2 := strconv.ParseInt(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0
		}
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ, 100 on Linux
}

// withApplicationName adds application_name to a URL or key=value DSN.
func withApplicationName(dsn, app string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " application_name=" + app
	case strings.Contains(dsn, "?"):
		return dsn + "&application_name=" + app
	}
	return dsn + "?application_name=" + app
}

// insertNaive is the baseline: the same rows, the same item ids and the
// same transaction per batch, but one single-row INSERT per observation,
// each a round trip to the server, as straightforward code does it (pgx
// prepares the statement once and caches it).
func insertNaive(s *Store, ctx context.Context, obs []observe.Observation) error {
	q := `INSERT INTO observations (` + obsColumns + `) VALUES (`
	for i := 1; i <= obsArgs; i++ {
		if i > 1 {
			q += ","
		}
		q += "$" + strconv.Itoa(i)
	}
	q += `) ON CONFLICT DO NOTHING`
	for i := range obs {
		if err := checkObservation(&obs[i]); err != nil {
			return err
		}
	}
	var fresh map[hashKey]int64
	var freshChains map[string]int64
	var freshDicts [numDicts]map[string]int64
	err := s.writeTx(ctx, func(tx pgx.Tx) error {
		refs, err := s.rowRefs(ctx, tx, obs, &fresh, &freshChains, &freshDicts)
		if err != nil {
			return err
		}
		row := make([]any, obsArgs)
		for i := range obs {
			obsRow(row, &obs[i], &refs[i])
			if _, err := tx.Exec(ctx, q, row...); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.commitItems(fresh)
		s.commitChains(freshChains)
		s.commitDicts(freshDicts)
	}
	return err
}

// BenchmarkInsertObservations writes -bench-observations observations into
// a fresh schema per iteration, in batches, with COPY through a staging
// table (the default), multi-row INSERTs, and the naive baseline. Run
// with -benchtime=1x: one iteration is a million rows.
func BenchmarkInsertObservations(b *testing.B) {
	values := func(c *Config) { c.InsertMethod = InsertValues }
	cases := []struct {
		name   string
		batch  int
		cfg    func(c *Config)
		insert func(s *Store, ctx context.Context, obs []observe.Observation) error
	}{
		{"copy/batch=1000", 1000, nil, (*Store).InsertObservations},
		{"copy/batch=5000", 5000, nil, (*Store).InsertObservations},
		{"copy/batch=10000", 10000, nil, (*Store).InsertObservations},
		{"values-1000-rows/batch=1000", 1000, values, (*Store).InsertObservations},
		{"values-1000-rows/batch=10000", 10000, values, (*Store).InsertObservations},
		{"naive-one-row-per-statement/batch=1000", 1000, nil, insertNaive},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			src := newBenchSource()
			batch := make([]observe.Observation, c.batch)
			var inserted int
			var elapsed, cpu, server time.Duration
			var size int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				cfg := DefaultConfig()
				if c.cfg != nil {
					c.cfg(&cfg)
				}
				cfg.Schema = newSchema(b)
				app := "vigil_bench_" + cfg.Schema
				st, err := Open(ctx, withApplicationName(testDSN(), app), cfg)
				if err != nil {
					b.Fatal(err)
				}
				server0 := serverCPU(ctx, st, app)
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
				if err := st.pool.QueryRow(ctx, `SELECT count(*), pg_total_relation_size('observations') + pg_total_relation_size('items') FROM observations`).Scan(&count, &size); err != nil || count != *benchObs {
					b.Fatalf("stored %d observations (%v), want %d", count, err, *benchObs)
				}
				server += serverCPU(ctx, st, app) - server0
				st.Close()
			}
			b.ReportMetric(float64(inserted)/elapsed.Seconds(), "obs/s")
			b.ReportMetric(float64(inserted)/cpu.Seconds(), "obs/client-cpu-s")
			if server > 0 {
				b.ReportMetric(float64(inserted)/server.Seconds(), "obs/server-cpu-s")
				b.ReportMetric(float64(inserted)/(cpu+server).Seconds(), "obs/cpu-s")
			}
			b.ReportMetric(float64(c.batch), "batch")
			b.ReportMetric(float64(size)/(1<<20), "MiB-tables")
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
	export := func(cfg Config, insert func(s *Store, ctx context.Context, obs []observe.Observation) error) []observe.Observation {
		st := openTest(t, cfg)
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
	values := DefaultConfig()
	values.InsertMethod = InsertValues
	got := map[string][]observe.Observation{
		"copy":   export(DefaultConfig(), (*Store).InsertObservations),
		"values": export(values, (*Store).InsertObservations),
		"naive":  export(DefaultConfig(), insertNaive),
	}
	for name, out := range got {
		if len(out) != len(obs) {
			t.Fatalf("%s stored %d observations, want %d", name, len(out), len(obs))
		}
		for i := range obs {
			if !out[i].Equal(&obs[i]) {
				t.Fatalf("%s: observation %d differs:\ngot  %+v\nwant %+v", name, i, out[i], obs[i])
			}
		}
	}
}
