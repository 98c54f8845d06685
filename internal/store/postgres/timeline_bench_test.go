package postgres

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
)

// oldTimelineSave is the save of the timeline before migration 0022: its
// rows, 500 an INSERT, into analysis_timeline_old.
func oldTimelineSave(x *saveTx, refs []analysis.TimelineRef) {
	for rest := refs; len(rest) > 0; {
		n := min(len(rest), 500)
		args := make([]any, 0, 3*n)
		q := `INSERT INTO analysis_timeline_old (endpoint, time_ns, seq) VALUES (?,?,?)`
		for i, t := range rest[:n] {
			args = append(args, t.Endpoint, t.TimeNS, t.Seq)
			if i > 0 {
				q += `,(?,?,?)`
			}
		}
		x.exec(nil, q+` ON CONFLICT DO NOTHING`, args...)
		rest = rest[n:]
	}
}

// BenchmarkTimelineSave: the timeline's part of the analysis's save,
// before (a row an observation, analysis_timeline_old) and after
// migration 0022 (a run appended to each endpoint's day), alternating
// batch by batch in the same run: -bench-observations observations in
// saves of 10,000, at 5,000 endpoints drawn at random (each save meets
// about 2 sightings of each endpoint, whose row of the day exists after
// the first save: the upsert's update path). Client CPU from getrusage,
// the server's backends' from /proc; then the disk of both tables after
// VACUUM.
func BenchmarkTimelineSave(b *testing.B) {
	ctx := context.Background()
	n := *benchObs
	const batch, endpoints = 10000, 5000
	for range b.N {
		app := fmt.Sprintf("vigil_tlsave_%d", time.Now().UnixNano())
		cfg := DefaultConfig()
		cfg.Schema = newSchema(b)
		st, err := Open(ctx, withApplicationName(testDSN(), app), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.pool.Exec(ctx, oldTimelineDDL); err != nil {
			b.Fatal(err)
		}
		r := rand.New(rand.NewPCG(1, 2))
		at := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC).UnixNano()
		var cpu, srv, wall [2]time.Duration
		seq := int64(0)
		for done := 0; done < n; done += batch {
			refs := make([]analysis.TimelineRef, min(batch, n-done))
			for i := range refs {
				seq++
				refs[i] = analysis.TimelineRef{Endpoint: 1 + r.Int64N(endpoints), TimeNS: at + seq*37000, Seq: seq}
			}
			for k, v := range []int{0, 1} {
				if done/batch%2 == 1 {
					v = 1 - k // alternate which goes first
				}
				c0, s0, w0 := cpuTime(), serverCPU(ctx, st, app), time.Now()
				err := st.writeTx(ctx, func(tx pgx.Tx) error {
					x := &saveTx{ctx: ctx, tx: tx, b: &pgx.Batch{}}
					if v == 0 {
						oldTimelineSave(x, refs)
					} else if err := x.saveTimeline(&analysis.Changes{Timeline: refs}); err != nil {
						return err
					}
					if x.err != nil {
						return x.err
					}
					return x.flush()
				})
				if err != nil {
					b.Fatal(err)
				}
				cpu[v] += cpuTime() - c0
				srv[v] += serverCPU(ctx, st, app) - s0
				wall[v] += time.Since(w0)
			}
		}
		if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE analysis_timeline_old, analysis_timeline_days`); err != nil {
			b.Fatal(err)
		}
		var oldSize, newSize int64
		if err := st.pool.QueryRow(ctx, `SELECT pg_total_relation_size('analysis_timeline_old'), pg_total_relation_size('analysis_timeline_days')`).Scan(&oldSize, &newSize); err != nil {
			b.Fatal(err)
		}
		// The live rows alone, copied into a table of their own with the
		// same key: the test cluster runs without autovacuum, so the
		// upserts' dead versions piled up until the VACUUM above, which
		// frees them but keeps the pages (and cannot free those another
		// session's snapshot may still see: other tests share the
		// cluster).
		var liveSize int64
		for _, q := range []string{`CREATE TABLE timeline_live AS SELECT * FROM analysis_timeline_days`,
			`ALTER TABLE timeline_live ADD PRIMARY KEY (endpoint, day)`, `VACUUM ANALYZE timeline_live`} {
			if _, err := st.pool.Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.pool.QueryRow(ctx, `SELECT pg_total_relation_size('timeline_live')`).Scan(&liveSize); err != nil {
			b.Fatal(err)
		}
		st.Close()
		us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
		b.ReportMetric(us(cpu[0]), "old-client-µs/obs")
		b.ReportMetric(us(cpu[1]), "new-client-µs/obs")
		b.ReportMetric(us(srv[0]), "old-server-µs/obs")
		b.ReportMetric(us(srv[1]), "new-server-µs/obs")
		b.ReportMetric(us(wall[0]), "old-wall-µs/obs")
		b.ReportMetric(us(wall[1]), "new-wall-µs/obs")
		b.ReportMetric(float64(oldSize)/float64(n), "old-bytes/obs")
		b.ReportMetric(float64(newSize)/float64(n), "new-bytes/obs")
		b.ReportMetric(float64(liveSize)/float64(n), "new-live-bytes/obs")
	}
}

// BenchmarkTimelineRead: a target's timeline (the target page's newest
// 500, and every sighting as an ISP request reads them) before and after
// migration 0022, alternating, on a store of -bench-observations
// observations (stored by COPY as ingest stores them) folded into 50,000
// endpoints: 95 % of them at random endpoints over 60 days (about one
// sighting an endpoint and day: the packed form's worst case), 5 % at ten
// busy endpoints. Targets of one endpoint and of four; only the
// timeline's reads are timed (the rest of the page is unchanged).
func BenchmarkTimelineRead(b *testing.B) {
	ctx := context.Background()
	n := *benchObs
	const endpoints, busy = 50000, 10
	st := openTest(b, DefaultConfig())
	if _, err := st.pool.Exec(ctx, oldTimelineDDL); err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	span := int64(60 * 24 * time.Hour)
	src := newBenchSource()
	obs := make([]observe.Observation, 10000)
	var refs []analysis.TimelineRef
	last := map[int64]time.Time{}
	for done := 0; done < n; done += len(obs) {
		k := min(len(obs), n-done)
		src.fill(obs[:k])
		// Each observation at its endpoint's address and port (the reads
		// check a sighting's address against its endpoint's).
		for i := range obs[:k] {
			obs[i].Time = base.Add(time.Duration(r.Int64N(span)))
			obs[i].ID = observe.NewID(obs[i].Time)
			ep := 1 + busy + r.Int64N(endpoints-busy)
			if r.IntN(20) == 0 {
				ep = 1 + r.Int64N(busy)
			}
			obs[i].Endpoint.IP, obs[i].Endpoint.Port = benchEndpointAddr(ep), 6881
		}
		if err := st.InsertObservations(ctx, obs[:k]); err != nil {
			b.Fatal(err)
		}
	}
	if err := eachRow(ctx, st.db(), `SELECT seq, time_ns, host(ip) FROM observations`, func(rows pgx.Rows) error {
		var ref analysis.TimelineRef
		var ip string
		if err := rows.Scan(&ref.Seq, &ref.TimeNS, &ip); err != nil {
			return err
		}
		a := netip.MustParseAddr(ip).As4()
		ref.Endpoint = int64(a[2])<<8 | int64(a[3])
		if at := nsTime(ref.TimeNS); at.After(last[ref.Endpoint]) {
			last[ref.Endpoint] = at
		}
		refs = append(refs, ref)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	// Saved in arrival order, 10,000 a save, as the analysis saves.
	slices.SortFunc(refs, func(a, b analysis.TimelineRef) int { return cmpInt(a.Seq, b.Seq) })
	for i := 0; i < len(refs); i += 10000 {
		part := refs[i:min(len(refs), i+10000)]
		err := st.writeTx(ctx, func(tx pgx.Tx) error {
			x := &saveTx{ctx: ctx, tx: tx, b: &pgx.Batch{}}
			oldTimelineSave(x, part)
			if err := x.saveTimeline(&analysis.Changes{Timeline: part}); err != nil {
				return err
			}
			return x.flush()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	var oldSize, newSize int64
	if err := st.pool.QueryRow(ctx, `SELECT pg_total_relation_size('analysis_timeline_old'), pg_total_relation_size('analysis_timeline_days')`).Scan(&oldSize, &newSize); err != nil {
		b.Fatal(err)
	}
	var rows, runs int64
	if err := st.pool.QueryRow(ctx, `SELECT count(*), (SELECT count(*) FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u) FROM analysis_timeline_days`).Scan(&rows, &runs); err != nil {
		b.Fatal(err)
	}
	// A benchmark with sub-benchmarks reports no metrics of its own.
	b.Logf("%d observations at %d endpoints: %.1f bytes an observation before (rows), %.1f after (%d rows of days holding %d sightings)",
		n, endpoints, float64(oldSize)/float64(n), float64(newSize)/float64(n), rows, runs)
	target := func(ids ...int64) *analysis.TargetDetail {
		d := &analysis.TargetDetail{}
		slices.SortFunc(ids, func(a, b int64) int { return last[b].Compare(last[a]) })
		for _, id := range ids {
			d.Endpoints = append(d.Endpoints, analysis.EndpointInfo{IP: benchEndpointAddr(id), Port: 6881, LastSeen: last[id]})
		}
		return d
	}
	type kase struct {
		name  string
		ids   func() []int64
		limit int
	}
	quiet := func() int64 { return 1 + busy + r.Int64N(endpoints-busy) }
	for _, c := range []kase{
		{"page-1-endpoint", func() []int64 { return []int64{quiet()} }, analysis.TimelineLimit},
		{"page-4-endpoints", func() []int64 { return []int64{quiet(), quiet(), quiet(), quiet()} }, analysis.TimelineLimit},
		{"page-busy", func() []int64 { return []int64{1 + r.Int64N(busy), quiet()} }, analysis.TimelineLimit},
		{"isp-4-endpoints", func() []int64 { return []int64{quiet(), quiet(), quiet(), quiet()} }, math.MaxInt32},
		{"isp-busy", func() []int64 { return []int64{1 + r.Int64N(busy), quiet()} }, math.MaxInt32},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lat [2][]time.Duration
			var cpu [2]time.Duration
			entries := 0
			for i := 0; b.Loop(); i++ {
				ids := c.ids()
				var got [2]int
				for k := range 2 {
					v := k
					if i%2 == 1 {
						v = 1 - k
					}
					d := target(ids...)
					c0, w0 := cpuTime(), time.Now()
					var err error
					if v == 0 {
						err = oldTimeline(ctx, st, d, ids, c.limit)
					} else {
						err = st.timeline(ctx, d, ids, c.limit)
					}
					lat[v] = append(lat[v], time.Since(w0))
					cpu[v] += cpuTime() - c0
					if err != nil {
						b.Fatal(err)
					}
					got[v] = len(d.Timeline)
				}
				if got[0] != got[1] {
					b.Fatalf("target %v: %d entries before, %d after", ids, got[0], got[1])
				}
				entries += got[0]
			}
			for v, name := range []string{"old", "new"} {
				slices.Sort(lat[v])
				q := func(p float64) float64 {
					return float64(lat[v][int(p*float64(len(lat[v])-1))].Microseconds()) / 1e3
				}
				b.ReportMetric(q(0.5), name+"-p50-ms")
				b.ReportMetric(q(0.95), name+"-p95-ms")
				b.ReportMetric(float64(cpu[v].Microseconds())/1e3/float64(len(lat[v])), name+"-client-cpu-ms")
			}
			b.ReportMetric(float64(entries)/float64(len(lat[0])), "entries")
		})
	}
}

// BenchmarkTimelineUnpackSQL: retention's unpacking of a held target's
// sightings in SQL (held_obs, PurgedOfTarget), against the rows before
// migration 0022: one endpoint of 100,000 sightings over 100 days.
func BenchmarkTimelineUnpackSQL(b *testing.B) {
	ctx := context.Background()
	st := openTest(b, DefaultConfig())
	if _, err := st.pool.Exec(ctx, oldTimelineDDL); err != nil {
		b.Fatal(err)
	}
	const n = 100000
	at := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for g := int64(0); g < n; g += 10000 {
		var refs []analysis.TimelineRef
		for k := g; k < g+10000; k++ {
			refs = append(refs, analysis.TimelineRef{Endpoint: 1, TimeNS: at + k*int64(100*24*time.Hour)/n, Seq: 1 + 3*k})
		}
		err := st.writeTx(ctx, func(tx pgx.Tx) error {
			x := &saveTx{ctx: ctx, tx: tx, b: &pgx.Batch{}}
			oldTimelineSave(x, refs)
			if err := x.saveTimeline(&analysis.Changes{Timeline: refs}); err != nil {
				return err
			}
			return x.flush()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, q string }{
		{"old", `SELECT count(*) FROM analysis_timeline_old WHERE endpoint = 1`},
		{"new", `SELECT count(*) FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u WHERE tl.endpoint = 1`},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				var got int
				if err := st.pool.QueryRow(ctx, c.q).Scan(&got); err != nil || got != n {
					b.Fatalf("%d sightings, %v", got, err)
				}
			}
		})
	}
}

// BenchmarkMigration0022: migration 0022's conversion of the rows before
// it, -bench-observations sightings at 50,000 endpoints over 30 days
// (undone from the packed form, then Open applies it again; the clock
// runs over Open).
func BenchmarkMigration0022(b *testing.B) {
	ctx := context.Background()
	n := int64(*benchObs)
	for range b.N {
		st := openTest(b, DefaultConfig())
		for g := int64(1); g <= n; g += 10000 {
			var c analysis.Changes
			for k := g; k < g+10000 && k <= n; k++ {
				c.Timeline = append(c.Timeline, analysis.TimelineRef{Endpoint: k % 50000, TimeNS: 1795000000000000000 + k*int64(30*24*time.Hour)/n, Seq: k})
			}
			c.Version = (g - 1) / 10000
			if err := st.AnalysisSave(ctx, &c); err != nil {
				b.Fatal(err)
			}
		}
		for _, q := range undo0022 {
			if _, err := st.pool.Exec(ctx, q); err != nil {
				b.Fatal(err)
			}
		}
		cfg := DefaultConfig()
		cfg.Schema = st.cfg.Schema
		st.Close()
		t0, c0 := time.Now(), cpuTime()
		again, err := Open(ctx, testDSN(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(t0), cpuTime()-c0
		var rows, got int64
		if err := again.pool.QueryRow(ctx, `SELECT count(*), (SELECT count(*) FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u)
			FROM analysis_timeline_days`).Scan(&rows, &got); err != nil || got != n {
			b.Fatalf("%d sightings after the migration, want %d (%v)", got, n, err)
		}
		again.Close()
		b.ReportMetric(float64(wall.Microseconds())/float64(n), "wall-µs/sighting")
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "client-cpu-µs/sighting")
		b.ReportMetric(float64(rows), "rows")
	}
}

// benchEndpointAddr is the address of BenchmarkTimelineRead's endpoint id
// (below 65,536).
func benchEndpointAddr(id int64) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 1, byte(id >> 8), byte(id)})
}
