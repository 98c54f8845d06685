package web

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/postgres"
)

// benchPG is the PostgreSQL database the load benchmark serves beside
// SQLite: VIGIL_BENCH_PG, a postgres:// URL on loopback whose schema
// parameter names the schema that holds the fixture (default
// pages_bench), e.g.
//
//	postgres://postgres@127.0.0.1:5432/test?sslmode=disable&schema=pages50m
//
// "" when unset.
func benchPG() string { return os.Getenv("VIGIL_BENCH_PG") }

// newPGEnv is newEnv over the PostgreSQL store at dsn: the same fixture
// (fillStore, the accounts, fixtureOperations) written into the schema the
// URL's schema parameter names. The schema is kept: a schema that already
// holds the fixture's accounts is served as it is, with new tokens, as
// newEnv serves a SQLite file made before (a 10M-observation store takes
// long to build). Drop it with DROP SCHEMA name CASCADE.
func newPGEnv(tb testing.TB, dsn string, obs int) *env {
	tb.Helper()
	return newPGEnvDeps(tb, dsn, obs, nil)
}

// newTestPGEnv is newPGEnv in a schema made afresh (an earlier run's is
// dropped), at VIGIL_TEST_POSTGRES; it skips the test without it.
func newTestPGEnv(tb testing.TB, schema string, obs int, tuneDeps func(*Deps)) *env {
	tb.Helper()
	dsn := os.Getenv("VIGIL_TEST_POSTGRES")
	if dsn == "" {
		tb.Skip("VIGIL_TEST_POSTGRES is not set (a PostgreSQL URL)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		tb.Fatal(err)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return newPGEnvDeps(tb, dsn+sep+"schema="+url.QueryEscape(schema), obs, tuneDeps)
}

// newPGEnvDeps is newPGEnv with the interface's settings changed by
// tuneDeps.
func newPGEnvDeps(tb testing.TB, dsn string, obs int, tuneDeps func(*Deps)) *env {
	tb.Helper()
	ctx := context.Background()
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatalf("VIGIL_BENCH_PG: %v", err)
	}
	cfg := postgres.DefaultConfig()
	cfg.Schema = "pages_bench"
	q := u.Query()
	if q.Has("schema") {
		cfg.Schema = q.Get("schema")
		q.Del("schema")
		u.RawQuery = q.Encode()
	}
	// The fixture's observations are not appended to the evidence log:
	// no page reads it, and its append (appendLeavesSQL) is planned as a
	// nested loop over the batch's observations and the batch's leaves,
	// quadratic in the batch (a 50,000-observation batch took minutes at
	// 250,000 stored). The store served is opened with the log, as
	// 'vigil serve' opens it.
	fillCfg := cfg
	fillCfg.NoEvidenceLog = true
	st, err := postgres.Open(ctx, u.String(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	_, err = st.UserByName(ctx, "paris")
	reuse := err == nil
	info := fixtureInfo{Endpoints: obs / 20}
	if !reuse {
		// A schema with observations but no accounts is a fill that
		// stopped half-way: its observations would be counted twice.
		errSome := errors.New("some")
		err := st.AnalysisObservations(ctx, 0, 0, func(int64, *observe.Observation) error { return errSome })
		if errors.Is(err, errSome) && os.Getenv("VIGIL_BENCH_PG_RESUME") != "" {
			info = resumePGFill(tb, ctx, u.String(), fillCfg)
			analyzeSchema(tb, ctx, u.String(), cfg.Schema)
			return serveEnv(tb, st, false, info, nil, tuneDeps)
		} else if errors.Is(err, errSome) {
			tb.Fatalf("schema %s holds observations but not the fixture's accounts (a fill stopped half-way?): drop it (DROP SCHEMA %s CASCADE), or finish its analysis with VIGIL_BENCH_PG_RESUME=1", cfg.Schema, cfg.Schema)
		} else if err != nil {
			tb.Fatal(err)
		}
		start := time.Now()
		last := start
		fill, err := postgres.Open(ctx, u.String(), fillCfg)
		if err != nil {
			tb.Fatal(err)
		}
		defer fill.Close()
		writers := 1
		if s := os.Getenv("VIGIL_BENCH_PG_WRITERS"); s != "" {
			if writers, err = strconv.Atoi(s); err != nil || writers < 1 {
				tb.Fatalf("VIGIL_BENCH_PG_WRITERS=%q: want a number of connections, at least 1", s)
			}
		}
		// The analysis's chunk and how often it runs during the fill
		// (docs/benchmarks.md, "50 million observations in PostgreSQL"):
		// VIGIL_BENCH_PG_SAVE_EVERY observations a save (default the
		// engine's: 1,000,000, or 100,000 endpoints waiting), a CatchUp every VIGIL_BENCH_PG_CATCHUP
		// (default 30s; 0: one CatchUp once all are written).
		saveEvery, catchUpEvery := 0, 30*time.Second
		if s := os.Getenv("VIGIL_BENCH_PG_SAVE_EVERY"); s != "" {
			if saveEvery, err = strconv.Atoi(s); err != nil || saveEvery < 1 {
				tb.Fatalf("VIGIL_BENCH_PG_SAVE_EVERY=%q: want a number of observations, at least 1", s)
			}
		}
		if s := os.Getenv("VIGIL_BENCH_PG_CATCHUP"); s != "" {
			if catchUpEvery, err = time.ParseDuration(s); err != nil || catchUpEvery < 0 {
				tb.Fatalf("VIGIL_BENCH_PG_CATCHUP=%q: want a duration, 0 for one catch-up at the end", s)
			}
		}
		tb.Logf("postgres %s: %d writers, analysis every %v (0: at the end), saving every %d observations (0: the engine's default)",
			cfg.Schema, writers, catchUpEvery, saveEvery)
		prevN, prevAt := 0, start
		// ANALYZE as the tables grow, as autovacuum would (the test
		// cluster runs without it): on tables never analysed, the
		// analysis's save planned its UPDATE of target_access as a merge
		// join that reads the whole table's index, at every save
		// (docs/benchmarks.md, "50 million").
		analyzed := make(chan struct{})
		stopAnalyze := make(chan struct{})
		go func() {
			defer close(analyzed)
			t := time.NewTicker(5 * time.Minute)
			defer t.Stop()
			for {
				select {
				case <-stopAnalyze:
					return
				case <-t.C:
					if n, d, err := analyzeTables(ctx, u.String(), cfg.Schema); err != nil {
						tb.Logf("postgres %s: ANALYZE during the fill: %v", cfg.Schema, err)
					} else {
						tb.Logf("postgres %s: ANALYZE of %d tables in %v, at %v", cfg.Schema, n, d.Round(time.Millisecond), time.Since(start).Round(time.Second))
					}
				}
			}
		}()
		info = fillStore(tb, ctx, fill, fixtureConfig{Observations: obs, Seed: 1, Batch: 50000, Writers: writers,
			// The analysis as the observations come, as 'vigil serve'
			// beside an ingest runs it: a 50M fill does not wait for an
			// hour-long catch-up after its inserts.
			CatchUpEvery: catchUpEvery, SaveEvery: saveEvery,
			// VIGIL_BENCH_PG_STOP names a file: once it exists, no more
			// observations are made (a fill too slow is finished smaller;
			// serve it with VIGIL_BENCH_OBS at the count logged).
			Stop: func() bool {
				f := os.Getenv("VIGIL_BENCH_PG_STOP")
				if f == "" {
					return false
				}
				_, err := os.Stat(f)
				return err == nil
			},
			CaughtUp: func(wm int64) {
				tb.Logf("postgres %s: analysis caught up to seq %d at %v", cfg.Schema, wm, time.Since(start).Round(time.Second))
			},
			Progress: func(n int) {
				if time.Since(last) < time.Minute && n != obs {
					return
				}
				now := time.Now()
				perMin := float64(n-prevN) / now.Sub(prevAt).Minutes()
				eta := "-"
				if perMin > 0 {
					eta = (time.Duration(float64(obs-n) / perMin * float64(time.Minute))).Round(time.Second).String()
				}
				tb.Logf("postgres %s: %d of %d observations written in %v (%.0f a minute lately, %.0f/s overall; inserts done in %s)",
					cfg.Schema, n, obs, now.Sub(start).Round(time.Second), perMin, float64(n)/now.Sub(start).Seconds(), eta)
				last, prevN, prevAt = now, n, now
			}})
		close(stopAnalyze)
		<-analyzed
		if n := info.Endpoints * 20; n < obs {
			tb.Logf("postgres %s: STOPPED at %d observations of %d (VIGIL_BENCH_PG_STOP): serve it with VIGIL_BENCH_OBS=%d", cfg.Schema, n, obs, n)
			obs = n
		}
		tb.Logf("postgres %s: %d observations written and analysed in %v", cfg.Schema, obs, time.Since(start).Round(time.Second))
		analyzeSchema(tb, ctx, u.String(), cfg.Schema)
	}
	return serveEnv(tb, st, reuse, info, nil, tuneDeps)
}

// resumePGFill finishes the analysis of a fill whose process ended after
// its inserts (VIGIL_BENCH_PG_STOP) but before its analysis caught up: a
// new engine loads what the analysis saved and catches up from its
// watermark, as 'vigil serve' does after a restart (analysis.New, CatchUp;
// TestCatchUpFromWatermarkInASecondEngine in internal/analysis). It
// saves every VIGIL_BENCH_PG_SAVE_EVERY observations (default the
// engine's). The fixture's observations are the first
// count(observations) of the fixture (they are made endpoint after
// endpoint, each from the same draws whatever the total).
func resumePGFill(tb testing.TB, ctx context.Context, dsn string, cfg postgres.Config) fixtureInfo {
	tb.Helper()
	start := time.Now()
	fill, err := postgres.Open(ctx, dsn, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	defer fill.Close()
	acfg := analysis.DefaultConfig()
	acfg.SaveInterval = 0
	if s := os.Getenv("VIGIL_BENCH_PG_SAVE_EVERY"); s != "" {
		if acfg.SaveEvery, err = strconv.Atoi(s); err != nil || acfg.SaveEvery < 1 {
			tb.Fatalf("VIGIL_BENCH_PG_SAVE_EVERY=%q: want a number of observations, at least 1", s)
		}
	}
	eng, err := analysis.New(ctx, fill, acfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("postgres %s: resumed: the analysis's saved view loaded at seq %d in %v", cfg.Schema, eng.Watermark(), time.Since(start).Round(time.Second))
	if err := eng.CatchUp(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		tb.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{cfg.Schema, "observations"}.Sanitize()).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("postgres %s: resumed: analysis caught up to seq %d in %v; %d observations: serve it with VIGIL_BENCH_OBS=%d",
		cfg.Schema, eng.Watermark(), time.Since(start).Round(time.Second), n, n)
	return fixtureInfo{Endpoints: n / 20}
}

// analyzeSchema runs ANALYZE on every table of schema: the planner's
// statistics of a freshly filled store, which autovacuum would gather on
// a server that runs it (the test cluster runs without: before this, the
// scoped target list was planned for 605 live targets out of 184,506 and
// took 1.7 s instead of 15 ms).
func analyzeSchema(tb testing.TB, ctx context.Context, dsn, schema string) {
	tb.Helper()
	n, d, err := analyzeTables(ctx, dsn, schema)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("postgres %s: ANALYZE of %d tables in %v", schema, n, d.Round(time.Millisecond))
}

// analyzeTables runs ANALYZE on every table of schema; it says how many
// and how long it took.
func analyzeTables(ctx context.Context, dsn, schema string) (int, time.Duration, error) {
	start := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = $1`, schema)
	if err != nil {
		return 0, 0, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, err
	}
	for _, n := range names {
		if _, err := conn.Exec(ctx, `ANALYZE `+pgx.Identifier{schema, n}.Sanitize()); err != nil {
			return 0, 0, err
		}
	}
	return len(names), time.Since(start), nil
}
