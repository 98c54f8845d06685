package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// oldTimelineDDL is the timeline before migration 0022 (migration 0004's
// table, one row an observation): the oracle of the differential tests.
const oldTimelineDDL = `CREATE TABLE analysis_timeline_old (endpoint bigint NOT NULL, time_ns bigint NOT NULL, seq bigint NOT NULL,
	PRIMARY KEY (endpoint, time_ns, seq))`

// oldTimelineQuery is the reader before migration 0022, on
// analysis_timeline_old: the newest limit of one endpoint's sightings
// joined to their observations.
var oldTimelineQuery = timelineQuery[:strings.Index(timelineQuery, "FROM unnest")] +
	`FROM analysis_timeline_old t JOIN observations o ON o.seq = t.seq` + obsJoins + `
	WHERE t.endpoint = ? ORDER BY t.time_ns DESC, t.seq DESC LIMIT ?`

// oldTimeline is Store.timeline as it was before migration 0022, on
// analysis_timeline_old.
func oldTimeline(ctx context.Context, s *Store, d *analysis.TargetDetail, epIDs []int64, limit int) error {
	if limit <= 0 || len(d.Endpoints) == 0 {
		return nil
	}
	hexes := map[string]string{}
	var got []timelineEntry
	trim := func() {
		sort.Slice(got, func(i, j int) bool { return newerEntry(&got[i], &got[j]) })
		if len(got) > limit {
			got = got[:limit]
		}
	}
	for i := range d.Endpoints {
		ep := &d.Endpoints[i]
		if len(got) >= limit {
			trim()
			if ep.LastSeen.Before(got[len(got)-1].t.Time) {
				break
			}
		}
		if err := eachRow(ctx, s.db(), oldTimelineQuery, func(r pgx.Rows) error {
			e, err := scanTimelineEntry(r, ep, hexes)
			got = append(got, e)
			return err
		}, epIDs[i], limit); err != nil {
			return err
		}
	}
	trim()
	for i := range got {
		d.Timeline = append(d.Timeline, got[i].t)
	}
	return nil
}

// timelineLab is a store holding random observations and the sightings
// of them at random endpoints, saved both ways: by the analysis's save
// (analysis_timeline_days) and as rows of analysis_timeline_old.
type timelineLab struct {
	st      *Store
	targets []*analysis.TargetDetail // endpoints filled, newest first
	epIDs   [][]int64
	refs    []analysis.TimelineRef
}

// newTimelineLab stores n observations at times spread over two weeks
// around a day boundary (out of order, some tied), folds them into 48
// endpoints (one of them busy) and saves the sightings in random
// batches, some more than once, then purges a tenth of the observations
// and most of one endpoint's.
func newTimelineLab(t *testing.T, r *rand.Rand, n int) *timelineLab {
	ctx := context.Background()
	lab := &timelineLab{st: openTest(t, DefaultConfig())}
	st := lab.st
	base := time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC)
	obs := make([]observe.Observation, n)
	for i := range obs {
		at := base.Add(time.Duration(r.Int64N(int64(14*24*time.Hour))) - 7*24*time.Hour)
		if i > 0 && r.IntN(10) == 0 {
			at = obs[r.IntN(i)].Time // a tie on time
		}
		obs[i] = storetest.Observation(r, at, i)
		// Endpoint ep is 10.0.0.ep (the timeline shows only an
		// endpoint's own observations); 7 is busy: past the page's 500.
		ep := 1 + r.IntN(48)
		if r.IntN(3) == 0 {
			ep = 7
		}
		obs[i].Endpoint.IP = netip.AddrFrom4([4]byte{10, 0, 0, byte(ep)})
	}
	for i := 0; i < n; i += 500 {
		if err := st.InsertObservations(ctx, obs[i:min(n, i+500)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.pool.Exec(ctx, oldTimelineDDL); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	if err := eachRow(ctx, st.db(), `SELECT seq, time_ns, `+obsIPSQL+` FROM observations o`, func(rows pgx.Rows) error {
		var ref analysis.TimelineRef
		var ip string
		if err := rows.Scan(&ref.Seq, &ref.TimeNS, &ip); err != nil {
			return err
		}
		ref.Endpoint = int64(netip.MustParseAddr(ip).As4()[3])
		lab.refs, seqs = append(lab.refs, ref), append(seqs, ref.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	saved := slices.Clone(lab.refs)
	for range len(saved) / 30 { // processed twice
		saved = append(saved, saved[r.IntN(len(saved))])
	}
	r.Shuffle(len(saved), func(i, j int) { saved[i], saved[j] = saved[j], saved[i] })
	var version int64
	for len(saved) > 0 {
		k := min(len(saved), 1+r.IntN(400))
		c := analysis.Changes{Version: version, Timeline: saved[:k]}
		if err := st.AnalysisSave(ctx, &c); err != nil {
			t.Fatal(err)
		}
		version++
		var eps, times, sq []int64
		for _, ref := range saved[:k] {
			eps, times, sq = append(eps, ref.Endpoint), append(times, ref.TimeNS), append(sq, ref.Seq)
		}
		if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_timeline_old SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])
			ON CONFLICT DO NOTHING`, eps, times, sq); err != nil {
			t.Fatal(err)
		}
		saved = saved[k:]
	}
	// A tenth purged, and most of endpoint 3's: whole days of it gone.
	purge := seqs[:0:0]
	for i, ref := range lab.refs {
		if r.IntN(10) == 0 || (ref.Endpoint == 3 && r.IntN(10) < 7) {
			purge = append(purge, seqs[i])
		}
	}
	if _, err := st.pool.Exec(ctx, `DELETE FROM observations WHERE seq = ANY($1)`, purge); err != nil {
		t.Fatal(err)
	}
	// Targets of four endpoints each, the busy one among them.
	last := map[int64]time.Time{}
	for _, ref := range lab.refs {
		if at := nsTime(ref.TimeNS); at.After(last[ref.Endpoint]) {
			last[ref.Endpoint] = at
		}
	}
	for first := int64(1); first <= 48; first += 4 {
		d := &analysis.TargetDetail{}
		d.ID = fmt.Sprintf("T-%06d", first)
		var ids []int64
		for ep := first; ep < first+4; ep++ {
			ids = append(ids, ep)
		}
		sort.Slice(ids, func(i, j int) bool { return last[ids[i]].After(last[ids[j]]) })
		for _, ep := range ids {
			d.Endpoints = append(d.Endpoints, analysis.EndpointInfo{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(ep)}), Port: 6881, LastSeen: last[ep]})
		}
		lab.targets, lab.epIDs = append(lab.targets, d), append(lab.epIDs, ids)
	}
	for ep := int64(1); ep <= 48; ep++ { // and each endpoint alone
		d := &analysis.TargetDetail{}
		d.ID = fmt.Sprintf("E-%d", ep)
		d.Endpoints = []analysis.EndpointInfo{{IP: netip.AddrFrom4([4]byte{10, 0, 0, byte(ep)}), Port: 6881, LastSeen: last[ep]}}
		lab.targets, lab.epIDs = append(lab.targets, d), append(lab.epIDs, []int64{ep})
	}
	return lab
}

// compare reads every target's timeline both ways, at several limits.
func (lab *timelineLab) compare(t *testing.T, what string) {
	t.Helper()
	ctx := context.Background()
	for i, d := range lab.targets {
		for _, limit := range []int{1, 3, 50, analysis.TimelineLimit, math.MaxInt32} {
			got, want := *d, *d
			if err := lab.st.timeline(ctx, &got, lab.epIDs[i], limit); err != nil {
				t.Fatalf("%s: timeline of %s, limit %d: %v", what, d.ID, limit, err)
			}
			if err := oldTimeline(ctx, lab.st, &want, lab.epIDs[i], limit); err != nil {
				t.Fatalf("%s: old timeline of %s, limit %d: %v", what, d.ID, limit, err)
			}
			g, _ := json.Marshal(got.Timeline)
			w, _ := json.Marshal(want.Timeline)
			if string(g) != string(w) {
				t.Fatalf("%s: timeline of %s, limit %d: %d entries, want %d as the rows gave (first difference at %d)",
					what, d.ID, limit, len(got.Timeline), len(want.Timeline), firstDiff(got.Timeline, want.Timeline))
			}
		}
	}
	// Retention's reads: the seqs of a set of endpoints (held_obs,
	// PurgedOfTarget), purged observations' included.
	for _, ids := range lab.epIDs {
		var got, want []int64
		q := func(sql string, out *[]int64) {
			rows, err := lab.st.pool.Query(ctx, sql, ids)
			if err != nil {
				t.Fatal(err)
			}
			if *out, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
		}
		q(`SELECT DISTINCT u.seq FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u WHERE tl.endpoint = ANY($1) ORDER BY 1`, &got)
		q(`SELECT DISTINCT seq FROM analysis_timeline_old WHERE endpoint = ANY($1) ORDER BY 1`, &want)
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Fatalf("%s: the seqs of endpoints %v: %d, want %d as the rows gave", what, ids, len(got), len(want))
		}
	}
}

func firstDiff(a, b []analysis.TimelineEntry) int {
	for i := range min(len(a), len(b)) {
		x, _ := json.Marshal(a[i])
		y, _ := json.Marshal(b[i])
		if string(x) != string(y) {
			return i
		}
	}
	return min(len(a), len(b))
}

// Differential: the sightings packed by day give every reader what the
// rows of migration 0004 gave, on the same random observations
// (out-of-order times, ties, sightings saved twice, a tenth purged), and
// again after migration 0022 converts such rows.
func TestTimelineReadsAsTheRowsDid(t *testing.T) {
	ctx := context.Background()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 23))
	lab := newTimelineLab(t, r, 3000)
	lab.compare(t, "saved by the analysis")

	// Migration 0022 converts the rows it finds: undone (the rows back
	// from the days), then applied again by Open.
	for _, q := range undo0022 {
		if _, err := lab.st.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var rows, want int
	if err := lab.st.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM analysis_timeline), (SELECT count(*) FROM analysis_timeline_old)`).Scan(&rows, &want); err != nil || rows != want {
		t.Fatalf("undone: %d rows, want %d (%v)", rows, want, err)
	}
	schema := lab.st.cfg.Schema
	lab.st.Close()
	cfg := DefaultConfig()
	cfg.Schema = schema
	again, err := Open(ctx, testDSN(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	lab.st = again
	lab.compare(t, "converted by migration 0022")
}

// Two saves appending to the same endpoints' days at once (two ingests'
// transactions, the analysis's lock aside) keep every sighting.
func TestTimelineConcurrentAppendsKeepEverySighting(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 20 {
				var c analysis.Changes
				for ep := int64(1); ep <= 10; ep++ {
					seq := 1 + int64(w) + 2*int64(round) + 100*ep
					c.Timeline = append(c.Timeline, analysis.TimelineRef{Endpoint: ep, TimeNS: at + seq, Seq: seq})
				}
				err := st.writeTx(ctx, func(tx pgx.Tx) error {
					x := &saveTx{ctx: ctx, tx: tx, b: &pgx.Batch{}}
					if err := x.saveTimeline(&c); err != nil {
						return err
					}
					return x.flush()
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for ep := int64(1); ep <= 10; ep++ {
		var n int
		if err := st.endpointSightings(ctx, ep, math.MaxInt32, func(ss []sighting) (int, error) {
			for i, s := range ss {
				if want := 100*ep + 40 - int64(i); s.seq != want || s.timeNS != at+want {
					return 0, fmt.Errorf("sighting %d: %+v, want seq %d", i, s, want)
				}
			}
			n += len(ss)
			return len(ss), nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 40 {
			t.Fatalf("endpoint %d: %d sightings, want 40", ep, n)
		}
	}
}

// A packed value that is not what the store writes fails the reads that
// meet it, loudly, naming the endpoint and day: a target's page and
// retention's query alike.
func TestTamperedTimelineFailsLoudly(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	obs := []observe.Observation{storetest.Observation(rand.New(rand.NewPCG(1, 2)), at, 1)}
	obs[0].Endpoint.IP = netip.MustParseAddr("10.0.0.5")
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	c := analysis.Changes{Timeline: []analysis.TimelineRef{{Endpoint: 5, TimeNS: at.UnixNano(), Seq: 1}, {Endpoint: 5, TimeNS: at.UnixNano() + 9, Seq: 2}}}
	if err := st.AnalysisSave(ctx, &c); err != nil {
		t.Fatal(err)
	}
	d := &analysis.TargetDetail{Endpoints: []analysis.EndpointInfo{{IP: netip.MustParseAddr("10.0.0.5"), Port: 6881, LastSeen: at}}}
	if err := st.timeline(ctx, d, []int64{5}, 10); err != nil || len(d.Timeline) != 1 {
		t.Fatalf("untampered: %d entries, %v; want 1", len(d.Timeline), err)
	}
	for _, tamper := range []string{
		`packed || '\x01'::bytea`,                         // a run cut off
		`'\x02'::bytea || substring(packed from 2)`,       // not a run's tag
		`substring(packed from 1 for length(packed) - 1)`, // the last seq cut
		`packed || '\x0101ff'::bytea`,                     // a varint cut off
		`'\x010200010000'::bytea`,                         // a repeat within a run
		`'\x0101808080808080808080800101'::bytea`,         // a varint too long
		`'\x01018080bc8ac9d21301'::bytea`,                 // a time past its day (the day's length)
		`'\x01010000'::bytea`,                             // seq 0
	} {
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = `+tamper+` WHERE endpoint = 5`); err != nil {
			t.Fatal(err)
		}
		d.Timeline = nil
		err := st.timeline(ctx, d, []int64{5}, 10)
		if err == nil || !strings.Contains(err.Error(), "malformed packed sightings") || !strings.Contains(err.Error(), fmt.Sprintf("endpoint 5 day %d", dayOf(at.UnixNano()))) {
			t.Errorf("tampered %s: timeline %d entries, error %v; want a malformed value named", tamper, len(d.Timeline), err)
		}
		var n int
		err = st.pool.QueryRow(ctx, `SELECT count(*) FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u`).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), "malformed packed sightings") {
			t.Errorf("tampered %s: retention's unpacking gave %d sightings, error %v; want it refused", tamper, n, err)
		}
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = $1 WHERE endpoint = 5`,
			appendRun(nil, dayOf(at.UnixNano()), []sighting{{at.UnixNano(), 1}, {at.UnixNano() + 9, 2}})); err != nil {
			t.Fatal(err)
		}
	}
}

// The timeline's disk (table, TOAST, index) in the analysis's shape of
// the disk benchmark: 20 sightings an endpoint, saved by the analysis.
// Migration 0004's rows took 94 bytes a sighting.
func TestTimelineTakesAFractionOfARowAnObservation(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	const n = 20000
	var c analysis.Changes
	for g := int64(1); g <= n; g++ {
		c.Timeline = append(c.Timeline, analysis.TimelineRef{Endpoint: g / 20, TimeNS: 1795000000000000000 + g*37000, Seq: g})
	}
	if err := st.AnalysisSave(ctx, &c); err != nil {
		t.Fatal(err)
	}
	var size int64
	if _, err := st.pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		t.Fatal(err)
	}
	if err := st.pool.QueryRow(ctx, `SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname LIKE 'analysis_timeline%'`, st.cfg.Schema).Scan(&size); err != nil {
		t.Fatal(err)
	}
	if per := float64(size) / n; per > 20 {
		t.Fatalf("the timeline takes %.1f bytes a sighting; want at most 20", per)
	}
}

// The Go decoder and migration 0022's vigil_timeline_unpack accept the
// same values and read the same sightings from them: valid runs (at the
// edges of time too) and damaged ones.
func TestSightingsDecodersAgree(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	ok, bad := 0, 0
	for i := range 1500 {
		day, b := randomPacked(r)
		if i%2 == 1 { // damaged
			switch r.IntN(4) {
			case 0:
				b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			case 1:
				b = b[:r.IntN(len(b))]
			case 2:
				b = append(b, byte(r.IntN(256)))
			default:
				for j := range b {
					b[j] = byte(r.IntN(256))
				}
			}
		}
		want, werr := decodeSightings(nil, day, b)
		rows, err := st.pool.Query(ctx, `SELECT time_ns, seq FROM vigil_timeline_unpack($1, $2)`, day, b)
		if err != nil {
			t.Fatal(err)
		}
		var got []sighting
		for rows.Next() {
			var s sighting
			if err := rows.Scan(&s.timeNS, &s.seq); err != nil {
				t.Fatal(err)
			}
			got = append(got, s)
		}
		rows.Close()
		gerr := rows.Err()
		if (werr == nil) != (gerr == nil) || (werr == nil && !slices.Equal(got, want)) {
			t.Fatalf("day %d packed %x: SQL gave %d sightings, %v; Go %d, %v", day, b, len(got), gerr, len(want), werr)
		}
		if werr == nil {
			ok++
		} else {
			bad++
		}
	}
	if ok < 700 || bad < 300 {
		t.Fatalf("%d values read and %d refused: the cases do not cover both", ok, bad)
	}
}

// randomPacked is a row's value of one to three random runs.
func randomPacked(r *rand.Rand) (int64, []byte) {
	days := []int64{dayOf(math.MinInt64), dayOf(math.MaxInt64), -1, 0, 20514, r.Int64N(200000) - 100000}
	day := days[r.IntN(len(days))]
	lo := day * dayNS
	if day == dayOf(math.MinInt64) { // day*dayNS wraps: the day starts before int64 does
		lo = math.MinInt64
	}
	var b []byte
	for range 1 + r.IntN(3) {
		var ss []sighting
		for range 1 + r.IntN(30) {
			var t int64
			switch r.IntN(3) {
			case 0:
				t = lo
			case 1:
				t = lo + r.Int64N(1000)
			default:
				t = lo + r.Int64N(dayNS)
			}
			if dayOf(t) != day {
				t = lo
			}
			seq := 1 + r.Int64N(1<<(1+r.IntN(62)))
			ss = append(ss, sighting{t, seq})
		}
		slices.SortFunc(ss, func(a, b sighting) int {
			if a.timeNS != b.timeNS {
				return cmpInt(a.timeNS, b.timeNS)
			}
			if a.seq == b.seq {
				return 0
			}
			return cmpInt(a.seq, b.seq)
		})
		b = appendRun(b, day, slices.Compact(ss))
	}
	return day, b
}

// A sighting names an observation by seq and time: one whose observation
// is of another address, or at another time, fails the target's
// timeline (read for its page and its ISP request) loudly rather than
// listing that observation under the endpoint's address, or twice.
func TestTimelineSightingOfAnotherObservationFails(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	a, b := storetest.Observation(r, at, 1), storetest.Observation(r, at.Add(time.Minute), 2)
	a.Endpoint.IP, b.Endpoint.IP = netip.MustParseAddr("10.0.0.5"), netip.MustParseAddr("10.0.0.6")
	if err := st.InsertObservations(ctx, []observe.Observation{a, b}); err != nil {
		t.Fatal(err)
	}
	seqOf := map[int64]int64{}
	if err := eachRow(ctx, st.db(), `SELECT seq, time_ns FROM observations`, func(rows pgx.Rows) error {
		var seq, ns int64
		if err := rows.Scan(&seq, &ns); err != nil {
			return err
		}
		seqOf[ns] = seq
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sa, sb := seqOf[at.UnixNano()], seqOf[at.Add(time.Minute).UnixNano()]
	c := analysis.Changes{Timeline: []analysis.TimelineRef{{Endpoint: 5, TimeNS: at.UnixNano(), Seq: sa}, {Endpoint: 6, TimeNS: at.Add(time.Minute).UnixNano(), Seq: sb}}}
	if err := st.AnalysisSave(ctx, &c); err != nil {
		t.Fatal(err)
	}
	d := &analysis.TargetDetail{Endpoints: []analysis.EndpointInfo{{IP: netip.MustParseAddr("10.0.0.5"), Port: 6881, LastSeen: at}}}
	if err := st.timeline(ctx, d, []int64{5}, 10); err != nil || len(d.Timeline) != 1 {
		t.Fatalf("untampered: %d entries, %v; want 1", len(d.Timeline), err)
	}
	day := dayOf(at.UnixNano())
	for _, tamper := range []struct {
		name string
		run  []sighting
	}{
		{"another address's observation", []sighting{{at.Add(time.Minute).UnixNano(), sb}}},
		{"its own observation at another time", []sighting{{at.UnixNano() + 1, sa}}},
	} {
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = packed || $1 WHERE endpoint = 5`, appendRun(nil, day, tamper.run)); err != nil {
			t.Fatal(err)
		}
		d.Timeline = nil
		err := st.timeline(ctx, d, []int64{5}, 10)
		if err == nil {
			t.Errorf("a sighting of %s: %d entries, no error", tamper.name, len(d.Timeline))
			for _, e := range d.Timeline {
				t.Logf("entry %s at %s, %s", e.ID, e.Time, e.Endpoint)
			}
		}
		if _, err := st.pool.Exec(ctx, `UPDATE analysis_timeline_days SET packed = $1 WHERE endpoint = 5`,
			appendRun(nil, day, []sighting{{at.UnixNano(), sa}})); err != nil {
			t.Fatal(err)
		}
	}
}

// A row beyond the bounds (maxPackedBytes, maxDaySightings; migration
// 0024 holds the same numbers) is refused by both decoders, before its
// sightings are unpacked: the target's timeline (its page, its ISP
// request) names the endpoint, the day and the size, without reading the
// value from the server; retention's vigil_timeline_unpack refuses it
// rather than unpack it for hours.
func TestTimelineRowsBounded(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day := dayOf(at.UnixNano())
	d := &analysis.TargetDetail{Endpoints: []analysis.EndpointInfo{{IP: netip.MustParseAddr("10.0.0.5"), Port: 6881, LastSeen: at}}}
	for _, c := range []struct {
		name   string
		packed []byte
		want   string
	}{
		{"past the count", append(packedOf(day, 1), packedOf(day, maxDaySightings)...), "more than 1048576 sightings"},
		{"past the size", append(packedOf(day, 1), make([]byte, maxPackedBytes)...), "bytes, more than the 8388608"},
	} {
		if _, err := st.pool.Exec(ctx, `INSERT INTO analysis_timeline_days (endpoint, day, packed) VALUES (5, $1, $2)
			ON CONFLICT (endpoint, day) DO UPDATE SET packed = excluded.packed`, day, c.packed); err != nil {
			t.Fatal(err)
		}
		d.Timeline = nil
		err := st.timeline(ctx, d, []int64{5}, 10)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), fmt.Sprintf("endpoint 5 day %d", day)) {
			t.Errorf("%s: timeline %d entries, %v; want the row refused, named, saying %q", c.name, len(d.Timeline), err, c.want)
		}
		var n int
		err = st.pool.QueryRow(ctx, `SELECT count(*) FROM analysis_timeline_days tl, vigil_timeline_unpack(tl.day, tl.packed) u`).Scan(&n)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: retention's unpacking gave %d sightings, %v; want it refused saying %q", c.name, n, err, c.want)
		}
	}
}
