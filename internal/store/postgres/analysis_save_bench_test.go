package postgres

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

var (
	saveBenchObs   = flag.Int("analysis-save-observations", 100_000, "observations BenchmarkAnalysisSavePostgres stores and analyses")
	saveBenchFiles = flag.Int("analysis-save-files-per-peer", 0, "files each peer of BenchmarkAnalysisSavePostgres shares (0: any of the pool's 4,096 at each observation)")
)

// saveBenchObservations are n observations in the shape of
// cmd/vigil's BenchmarkIngestNATSPostgres (items from a pool of 4,096,
// n/20 peers each with its own client, times 37 µs apart, routed to one
// agency): every observation changes its endpoint and its target. With
// perPeer > 0, each peer shares perPeer files of the pool and each of
// its observations names one of them: its file rows are written again
// and again, as a population seen day after day makes them.
func saveBenchObservations(n, perPeer int) []observe.Observation {
	r := rand.New(rand.NewPCG(13, 13))
	at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	pool := make([]observe.Observation, 4096)
	for i := range pool {
		pool[i] = storetest.Observation(r, at, i)
	}
	peers := max(100, n/20)
	clients := make([]observe.Client, peers)
	ports := make([]uint16, peers)
	for i := range clients {
		c := storetest.Observation(r, at, i)
		clients[i], ports[i] = c.Client, c.Endpoint.Port
	}
	shared := make([][]int, peers)
	for i := range shared {
		for range perPeer {
			shared[i] = append(shared[i], r.IntN(len(pool)))
		}
	}
	out := make([]observe.Observation, n)
	for i := range out {
		o := pool[r.IntN(len(pool))]
		o.Place, o.Chain = observe.Place{Country: "FR"}, observe.Chain{}
		o.Jurisdiction = observe.Jurisdiction{Agency: "fr-bench", Rule: "bench"}
		o.Time = at.Add(time.Duration(i) * 37 * time.Microsecond)
		o.ID = observe.NewID(o.Time)
		o.Sensor.ID = "bench"
		peer := r.IntN(peers)
		if perPeer > 0 {
			o.Item = pool[shared[peer][r.IntN(perPeer)]].Item
		}
		o.Endpoint.IP = netip.AddrFrom4([4]byte{127, byte(1 + peer>>16), byte(peer >> 8), byte(peer)})
		o.Endpoint.Port, o.Client = ports[peer], clients[peer]
		o.Endpoint.Local = netip.AddrPort{}
		out[i] = o
	}
	return out
}

// BenchmarkAnalysisSavePostgres measures what the analysis's saves cost
// the server: -analysis-save-observations observations are stored first
// (not measured), then an engine catches up with them, saving every
// SaveEvery (20,000) as `vigil serve`'s catch-up and a backlogged ingest
// do; then a rescore at the same clock (nothing changed) and one a day
// later (every score's recency moved). It reports the CPU time of the
// PostgreSQL backends serving the store (from /proc) for each.
//
//	go test ./internal/store/postgres -run '^$' -bench AnalysisSavePostgres -benchtime 1x
func BenchmarkAnalysisSavePostgres(b *testing.B) {
	obs := saveBenchObservations(*saveBenchObs, *saveBenchFiles)
	ctx := context.Background()
	for range b.N {
		cfg := DefaultConfig()
		cfg.NoEvidenceLog = true
		cfg.Schema = newSchema(b)
		app := "vigil_bench_" + cfg.Schema
		st, err := Open(ctx, withApplicationName(testDSN(), app), cfg)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < len(obs); i += 1000 {
			if err := st.InsertObservations(ctx, obs[i:min(len(obs), i+1000)]); err != nil {
				b.Fatal(err)
			}
		}
		now := obs[0].Time.Add(time.Hour)
		acfg := analysis.DefaultConfig()
		acfg.Now = func() time.Time { return now }
		pg0, start := serverCPU(ctx, st, app), time.Now()
		e, err := analysis.New(ctx, st, acfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := e.CatchUp(ctx); err != nil {
			b.Fatal(err)
		}
		pg1 := serverCPU(ctx, st, app)
		b.Logf("catch-up of %d: %.2f s, PostgreSQL %.2f s (%.1f µs an observation)", len(obs), time.Since(start).Seconds(),
			(pg1 - pg0).Seconds(), float64((pg1-pg0).Microseconds())/float64(len(obs)))
		b.ReportMetric(float64((pg1-pg0).Microseconds())/float64(len(obs)), "pg-µs/obs")
		logTableWrites(ctx, b, st)
		for _, step := range []time.Duration{0, 24 * time.Hour} {
			now = now.Add(step)
			pg0, start := serverCPU(ctx, st, app), time.Now()
			if err := e.Rescore(ctx); err != nil {
				b.Fatal(err)
			}
			pg1 := serverCPU(ctx, st, app)
			b.Logf("rescore, clock +%v: %.2f s, PostgreSQL %.2f s", step, time.Since(start).Seconds(), (pg1 - pg0).Seconds())
		}
		st.Close()
	}
}

// logTableWrites logs, for each table the save writes, the rows
// inserted and updated so far and how many of the updates were HOT (no
// index entry added), and the table's size with its indexes. A backend reports its counts to the statistics at
// the latest when it exits: the pool's connections are closed first.
func logTableWrites(ctx context.Context, b *testing.B, st *Store) {
	b.Helper()
	st.pool.Reset()
	time.Sleep(200 * time.Millisecond)
	rows, err := st.pool.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_total_relation_size(relid) FROM pg_stat_user_tables
		WHERE schemaname = current_schema() AND relname = ANY($1) ORDER BY relname`,
		[]string{"targets", "target_access", "target_categories", "analysis_endpoints", "analysis_endpoint_files", "analysis_timeline_days"})
	if err != nil {
		b.Logf("table writes: %v", err)
		return
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		var ins, upd, hot, size int64
		if err := rows.Scan(&name, &ins, &upd, &hot, &size); err != nil {
			b.Logf("table writes: %v", err)
			return
		}
		out = append(out, fmt.Sprintf("%s: %d inserted, %d updated (%d HOT), %d bytes", name, ins, upd, hot, size))
	}
	b.Logf("rows written: %s", strings.Join(out, "; "))
}
