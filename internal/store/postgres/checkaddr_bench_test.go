package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// TestMeasureCheckAt1M measures one platform check's read
// (ObservationsOfAddress, ±1 h around an instant) at 1M observations in
// PostgreSQL, without and with an index on the address, alternated in
// the same run (docs/benchmarks.md, "The platforms' check at 1M
// observations"). It asserts nothing: it prints figures. Run only when
// VIGIL_MEASURE_CHECK=1 (it stores 1M observations).
func TestMeasureCheckAt1M(t *testing.T) {
	if os.Getenv("VIGIL_MEASURE_CHECK") != "1" {
		t.Skip("VIGIL_MEASURE_CHECK=1 measures the check at 1M observations")
	}
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	const n, batch, addrs = 1_000_000, 10_000, 50_000
	r := rand.New(rand.NewPCG(13, 13))
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	// 1M observations over one day, of 50,000 addresses: about 83,000 in
	// any two hours, 20 an address.
	for i := 0; i < n; i += batch {
		obs := make([]observe.Observation, batch)
		for j := range obs {
			o := storetest.Observation(r, at.Add(time.Duration(r.Int64N(int64(24*time.Hour)))), i+j)
			o.Endpoint.IP = netip.AddrFrom4([4]byte{127, 30, byte(r.IntN(addrs) >> 8), byte(r.IntN(addrs))})
			o.Transcript.Bytes = nil
			obs[j] = o
		}
		if err := st.InsertObservations(ctx, obs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, `ANALYZE observations`); err != nil {
		t.Fatal(err)
	}
	var size int64
	if err := st.pool.QueryRow(ctx, `SELECT sum(pg_relation_size(c.oid)) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE i.inhparent = 'observations'::regclass`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	t.Logf("observations' heap: %.1f B/obs", float64(size)/n)
	probe := func() (wall, cpu time.Duration, rows int) {
		a := netip.AddrFrom4([4]byte{127, 30, byte(r.IntN(addrs) >> 8), byte(r.IntN(addrs))})
		mid := at.Add(time.Duration(r.Int64N(int64(24 * time.Hour))))
		var before, after syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		start := time.Now()
		err := st.ObservationsOfAddress(ctx, []netip.Addr{a}, mid.Add(-time.Hour), mid.Add(time.Hour), func(*observe.Observation) error {
			rows++
			return nil
		})
		wall = time.Since(start)
		syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		if err != nil {
			t.Fatal(err)
		}
		return wall, time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano()), rows
	}
	report := func(name string) {
		var walls []time.Duration
		rows := 0
		for range 21 {
			w, _, n := probe()
			walls, rows = append(walls, w), rows+n
		}
		sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
		var plan string
		mid := at.Add(12 * time.Hour)
		rs, err := st.pool.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) SELECT count(*) FROM observations o
			WHERE o.time_ns >= $1 AND o.time_ns < $2 AND o.ip = '127.30.1.1'::inet AND o.ip_zone IS NULL`,
			mid.Add(-time.Hour).UnixNano(), mid.Add(time.Hour).UnixNano())
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var line string
			if err := rs.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan += "\n    " + line
		}
		rs.Close()
		var l1 float64
		st.pool.QueryRow(ctx, `SELECT COALESCE(sum(pg_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_index x ON x.indexrelid = c.oid
			JOIN pg_inherits i ON i.inhrelid = x.indrelid WHERE i.inhparent = 'observations'::regclass AND c.relname LIKE '%ip_time_ns%'`).Scan(&l1)
		t.Logf("%s: one check (21 reads, ±1 h, one address): median %v, p90 %v, max %v; %d rows in all; address index %.1f B/obs; plan:%s",
			name, walls[10], walls[18], walls[20], rows, l1/n, plan)
	}
	for round := range 2 {
		report(fmt.Sprintf("round %d, no address index", round))
		start := time.Now()
		if _, err := st.pool.Exec(ctx, `CREATE INDEX observations_check_addr ON observations (ip, time_ns)`); err != nil {
			t.Fatal(err)
		}
		t.Logf("index built in %v", time.Since(start))
		report(fmt.Sprintf("round %d, index on (ip, time_ns)", round))
		if _, err := st.pool.Exec(ctx, `DROP INDEX observations_check_addr`); err != nil {
			t.Fatal(err)
		}
	}
}
