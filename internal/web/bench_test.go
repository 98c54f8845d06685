package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
)

// benchObs is the store size of the load benchmark: VIGIL_BENCH_OBS
// observations (default 200000).
func benchObs(tb testing.TB) int {
	n := 200000
	if s := os.Getenv("VIGIL_BENCH_OBS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 {
			tb.Fatalf("VIGIL_BENCH_OBS=%q: want a number of observations, at least 1000", s)
		}
		n = v
	}
	return n
}

// TestMakeBenchStore writes the load benchmark's store to
// $VIGIL_BENCH_STORE (skipped without it) and prints a bearer token per
// account, for wrk against 'vigil serve' (a file that exists is reused,
// with new tokens):
//
//	VIGIL_BENCH_STORE=/tmp/bench.db VIGIL_BENCH_OBS=200000 go test ./internal/web -run TestMakeBenchStore -v
//
// Without VIGIL_BENCH_STORE and with VIGIL_BENCH_PG it writes the
// PostgreSQL schema benchPG names instead (kept, like the file).
func TestMakeBenchStore(t *testing.T) {
	path := os.Getenv("VIGIL_BENCH_STORE")
	if path == "" && benchPG() == "" {
		t.Skip("set VIGIL_BENCH_STORE=FILE (or VIGIL_BENCH_PG=URL, benchPG) to write the benchmark store")
	}
	start := time.Now()
	var e *env
	if path != "" {
		e = newEnv(t, path, benchObs(t))
	} else {
		path = "VIGIL_BENCH_PG"
		e = newPGEnv(t, benchPG(), benchObs(t))
	}
	t.Logf("store %s: %d observations, %d endpoints, built in %v", path, benchObs(t), e.Info.Endpoints, time.Since(start).Round(time.Millisecond))
	ctx := context.Background()
	for _, u := range fixtureUsers {
		// Tokens made by newEnv expire in an hour; make long-lived ones.
		tok, _, err := e.Access.CreateToken(ctx, nil, u.name, "bench", 30*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("%s (%s, %s): token %s\n", u.name, u.role, u.agency, tok)
	}
	fmt.Printf("a target of %s: %s; of %s: %s\n", agencyParis, e.TargetA, agencySud, e.TargetB)
}

// BenchmarkPagesUnderLoad serves the real handler over a store of
// VIGIL_BENCH_OBS observations and has 50 concurrent clients (bearer
// tokens: 25 analysts, 25 investigators of Paris; all 50 Paris for
// targets-paris, the target list of one jurisdiction) ask each page; it
// reports the server-side latency percentiles per page (measured around
// the handler, without the client's socket time) as p50-ms, p95-ms and
// p99-ms. Every request is a real audited read.
//
// With VIGIL_BENCH_STORE naming a store TestMakeBenchStore made, that store
// is served instead of a new one (a 10M-observation store takes long to
// build).
//
// With VIGIL_BENCH_PG (benchPG) the same pages are asked of the same
// fixture in PostgreSQL too, in the same run: sub-benchmarks store=sqlite
// and store=postgres, SQLite first. The PostgreSQL schema is kept between
// runs as VIGIL_BENCH_STORE keeps the SQLite file.
func BenchmarkPagesUnderLoad(b *testing.B) {
	if dsn := benchPG(); dsn != "" {
		var counts []int
		b.Run("store=sqlite", func(b *testing.B) {
			counts = append(counts, benchPages(b, newEnv(b, os.Getenv("VIGIL_BENCH_STORE"), benchObs(b))))
		})
		b.Run("store=postgres", func(b *testing.B) {
			counts = append(counts, benchPages(b, newPGEnv(b, dsn, benchObs(b))))
		})
		// The same fixture: both stores route as many targets to Paris.
		if len(counts) == 2 && counts[0] != counts[1] {
			b.Errorf("targets of %s: SQLite %d, PostgreSQL %d", agencyParis, counts[0], counts[1])
		}
		return
	}
	benchPages(b, newEnv(b, os.Getenv("VIGIL_BENCH_STORE"), benchObs(b)))
}

// benchPages is BenchmarkPagesUnderLoad over the fixture e; it returns
// how many targets the store routes to Paris.
func benchPages(b *testing.B, e *env) int {
	ctx := context.Background()
	cold, err := New(ctx, Deps{Store: e.Back, Access: e.Access, OverviewTTL: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer cold.Close()
	// Target ids to cycle through, per user's scope.
	ids := map[string][]string{}
	parisTotal := 0
	for user, scope := range map[string]analysis.Scope{"analyst": analysis.AllAgencies, "paris": {Agencies: []string{agencyParis}}} {
		list, total, err := e.Back.Targets(ctx, analysis.TargetQuery{Scope: scope, Limit: 200})
		if err != nil || len(list) == 0 {
			b.Fatalf("targets for %s: %v", user, err)
		}
		for _, t := range list {
			ids[user] = append(ids[user], t.ID)
		}
		if user == "paris" {
			parisTotal = total
		}
	}
	b.Logf("targets: %d of %s", parisTotal, agencyParis)
	type page struct {
		name string
		h    http.Handler
		path func(user string, i int) string
		only string // every client is this user ("": half analysts, half Paris)
	}
	pages := []page{
		{"targets", e.App, func(string, int) string { return "/targets" }, ""},
		{"targets-paris", e.App, func(string, int) string { return "/targets" }, "paris"},
		{"targets-page3-last", e.App, func(string, int) string { return "/targets?sort=last&page=3" }, ""},
		{"target", e.App, func(u string, i int) string { return "/targets/" + ids[u][i%len(ids[u])] }, ""},
		{"overview-cached", e.App, func(string, int) string { return "/" }, ""},
		{"overview-uncached", cold, func(string, int) string { return "/" }, ""},
		{"api-targets", e.App, func(string, int) string { return "/api/v1/targets" }, ""},
	}
	const clients = 50
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			// Time the handler alone: the benchmark measures the server.
			var mu sync.Mutex
			var lat []time.Duration
			timed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				t0 := time.Now()
				p.h.ServeHTTP(w, r)
				d := time.Since(t0)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			})
			srv := httptest.NewServer(timed)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			per := max(1, b.N/clients)
			b.ResetTimer()
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for c := range clients {
				user := "analyst"
				if c%2 == 1 {
					user = "paris"
				}
				if p.only != "" {
					user = p.only
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						req, _ := http.NewRequest("GET", srv.URL+p.path(user, c*per+i), nil)
						req.Header.Set("Authorization", "Bearer "+e.Token[user])
						resp, err := cl.Do(req)
						if err != nil {
							errs <- err
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							errs <- fmt.Errorf("%s as %s: %d", req.URL.Path, user, resp.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			pct := func(q float64) float64 {
				return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.95), "p95-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/b.Elapsed().Seconds(), "req/s")
		})
	}
	return parisTotal
}
