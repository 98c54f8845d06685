package web

import (
	"context"
	"errors"

	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/postgres"
)

// TestBenchPGCatchUp times the analysis's catch-up of a whole backlog in
// PostgreSQL apart from the inserts (docs/benchmarks.md, "The analysis's
// catch-up in PostgreSQL"). VIGIL_BENCH_PG names the database and schema.
// A schema without observations is filled with VIGIL_BENCH_OBS of the
// fixture's observations and no analysis (one writer: the seqs in the
// order made; with VIGIL_BENCH_PG_TIME_ORDER set, in the order of their
// times, fixtureConfig.TimeOrder), to be copied (CREATE DATABASE ... TEMPLATE) once for
// each run. A schema with observations and no analysis saved is caught
// up by a new engine, as 'vigil serve' over a store another process
// filled: the wall time, this process's CPU and, with
// VIGIL_BENCH_PG_DATA naming the cluster's data directory, the CPU of
// the cluster's processes are logged, with digests of what was saved
// (targets with their scores, access rows, endpoints, files, links) to
// compare two builds. VIGIL_BENCH_PG_SAVE_EVERY and VIGIL_BENCH_PG_SAVE_ROWS
// set the analysis's Config.SaveEvery and SaveRows. The clock is the newest observation's time plus an
// hour, so that two runs score alike.
func TestBenchPGCatchUp(t *testing.T) {
	dsn := benchPG()
	if dsn == "" || os.Getenv("VIGIL_BENCH_PG_CATCHUP_ONLY") == "" {
		t.Skip("set VIGIL_BENCH_PG=URL and VIGIL_BENCH_PG_CATCHUP_ONLY=1 to time the analysis's catch-up")
	}
	ctx := context.Background()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg := postgres.DefaultConfig()
	cfg.Schema = "catchup_bench"
	q := u.Query()
	if q.Has("schema") {
		cfg.Schema = q.Get("schema")
		q.Del("schema")
		u.RawQuery = q.Encode()
	}
	cfg.NoEvidenceLog = true
	st, err := postgres.Open(ctx, u.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	errSome := errors.New("some")
	err = st.AnalysisObservations(ctx, 0, 0, func(int64, *observe.Observation) error { return errSome })
	if err == nil {
		start := time.Now()
		fillStore(t, ctx, st, fixtureConfig{Observations: benchObs(t), Seed: 1, Batch: 50000, Writers: 1, NoAnalysis: true,
			TimeOrder: os.Getenv("VIGIL_BENCH_PG_TIME_ORDER") != ""})
		t.Logf("%s: %d observations written, no analysis, in %v", cfg.Schema, benchObs(t), time.Since(start).Round(time.Second))
		analyzeSchema(t, ctx, u.String(), cfg.Schema)
		return
	} else if !errors.Is(err, errSome) {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	sch := func(table string) string { return pgx.Identifier{cfg.Schema, table}.Sanitize() }
	var newest int64
	if err := conn.QueryRow(ctx, `SELECT max(time_ns) FROM `+sch("observations")).Scan(&newest); err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(0, newest).Add(time.Hour)
	acfg := analysis.DefaultConfig()
	acfg.SaveInterval = 0
	acfg.Now = func() time.Time { return clock }
	if s := os.Getenv("VIGIL_BENCH_PG_SAVE_EVERY"); s != "" {
		if acfg.SaveEvery, err = strconv.Atoi(s); err != nil || acfg.SaveEvery < 1 {
			t.Fatalf("VIGIL_BENCH_PG_SAVE_EVERY=%q: want a number of observations, at least 1", s)
		}
	}
	// The heap's peak, sampled four times a second.
	var peak uint64
	stopPeak, peakDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(peakDone)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stopPeak:
				return
			case <-tk.C:
			}
		}
	}()
	if s := os.Getenv("VIGIL_BENCH_PG_SAVE_ROWS"); s != "" {
		if acfg.SaveRows, err = strconv.Atoi(s); err != nil || acfg.SaveRows < 1 {
			t.Fatalf("VIGIL_BENCH_PG_SAVE_ROWS=%q: want a number of endpoints, at least 1", s)
		}
	}
	pgBefore := clusterCPU(t)
	cpuBefore := selfCPU()
	start := time.Now()
	eng, err := analysis.New(ctx, st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if eng.Watermark() != 0 {
		t.Fatalf("%s: the analysis is saved to seq %d already: time a copy of the template", cfg.Schema, eng.Watermark())
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := eng.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	cpu := selfCPU() - cpuBefore
	pg := clusterCPU(t) - pgBefore
	close(stopPeak)
	<-peakDone
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%s: heap peak %d MB (sampled), live after GC %d MB (the engine's view held)", cfg.Schema, peak>>20, ms.HeapAlloc>>20)
	n := eng.Watermark()
	perM := func(d time.Duration) string {
		return (time.Duration(float64(d) / float64(n) * 1e6)).Round(100 * time.Millisecond).String()
	}
	t.Logf("%s: caught up %d observations: wall %v (%s a million), vigil CPU %v (%s a million), PostgreSQL CPU %v (%s a million)",
		cfg.Schema, n, wall.Round(100*time.Millisecond), perM(wall), cpu.Round(100*time.Millisecond), perM(cpu),
		pg.Round(100*time.Millisecond), perM(pg))
	for _, d := range []struct{ name, q string }{
		{"targets", `SELECT count(*), md5(string_agg(concat_ws('|', id, seq, merged_into, agency, agencies, score, parts, endpoints, files,
			levels, max_level, observations, first_ns, last_ns, networks, vpn, hosting, categories, max_severity, looking, country,
			subdivision, label, flags, shares), E'\n' ORDER BY id)) FROM ` + sch("targets")},
		{"target_access", `SELECT count(*), md5(string_agg(concat_ws('|', agency, target, score, first_ns, last_ns), E'\n' ORDER BY agency, target)) FROM ` + sch("target_access")},
		{"target_categories", `SELECT count(*), md5(string_agg(concat_ws('|', category, target), E'\n' ORDER BY category, target)) FROM ` + sch("target_categories")},
		{"analysis_endpoints", `SELECT count(*), md5(string_agg(concat_ws('|', id, ip, port, home, target, transport, asn, org, country,
			subdivision, city, agency, networks, first_ns, last_ns, observations, vpn, hosting, gen, confidence, first_hand), E'\n' ORDER BY id)) FROM ` + sch("analysis_endpoints")},
		{"analysis_endpoint_files", `SELECT count(*), md5(string_agg(concat_ws('|', endpoint, kind, encode(hash, 'hex'), matched, severity,
			max_level, intent, first_ns, last_ns, observations, quarantined), E'\n' ORDER BY endpoint, kind, hash)) FROM ` + sch("analysis_endpoint_files")},
		{"analysis_links", `SELECT count(*), md5(string_agg(concat_ws('|', id, a, b, rule, evidence, reason, confidence, obs, at_ns, state), E'\n' ORDER BY id)) FROM ` + sch("analysis_links")},
		{"web_target_days", `SELECT count(*), md5(string_agg(t::text, E'\n' ORDER BY t::text)) FROM ` + sch("web_target_days") + ` t`},
	} {
		var rows int64
		var sum *string
		if err := conn.QueryRow(ctx, d.q).Scan(&rows, &sum); err != nil {
			t.Fatalf("%s: %v", d.name, err)
		}
		h := "-"
		if sum != nil {
			h = *sum
		}
		t.Logf("%s: %s: %d rows, md5 %s", cfg.Schema, d.name, rows, h)
	}
}

// selfCPU is this process's CPU time so far (user and system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clusterCPU is the CPU time of the PostgreSQL cluster whose data
// directory VIGIL_BENCH_PG_DATA names (0 unset): the postmaster's own and
// its children's, those that ended (reaped: cutime) and those running.
func clusterCPU(t *testing.T) time.Duration {
	dir := os.Getenv("VIGIL_BENCH_PG_DATA")
	if dir == "" {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pm := strings.SplitN(string(b), "\n", 2)[0]
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		// After the command: state, ppid, ..., utime (14th field of the
		// line), stime, cutime, cstime.
		f := strings.Fields(s[i+1:])
		pid := filepath.Base(filepath.Dir(p))
		if len(f) < 15 || (pid != pm && f[1] != pm) {
			continue
		}
		for k, idx := range []int{11, 12, 13, 14} {
			if pid != pm && k >= 2 {
				break // a running child's children are not PostgreSQL's
			}
			v, _ := strconv.ParseInt(f[idx], 10, 64)
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}
