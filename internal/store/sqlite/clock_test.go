package sqlite

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A row stored before schema 13 held clock_offset_ns and no uncertainty,
// and its sensor measured nothing: after migration 0013 it reads as an
// unknown offset (never the 0 or whatever number the column held), with
// no build, and the view shows NULL for its offset.
func TestMigration0013ReadsOldRowsAsUnknownClock(t *testing.T) {
	ctx := context.Background()
	st, path := openTemp(t, DefaultConfig())
	r := rand.New(rand.NewPCG(12, 12))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 8 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), i)
		if i%4 == 1 && (!o.ClockKnown || o.ClockOffset == 0) {
			t.Fatalf("synthetic observation %d: %+v, want a measured offset", i, o)
		}
		o.Sensor.Commit, o.Sensor.Modified, o.Sensor.Config = "", false, "" // a sensor of schema 12 had none
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	// The file as schema 12 left it: offsets in clock_offset_ns (a sensor
	// of then wrote 0; any number must read as unknown), no uncertainty,
	// facets without builds.
	undoLater(ctx, t, st.db)
	for _, q := range []string{
		`DROP VIEW observation_rows`,
		`ALTER TABLE observations DROP COLUMN clock_uncertainty_ns`,
		`CREATE TABLE facets11 AS SELECT id, sensor, sensor_version, vantage, clock_source, network, method, transport,
			possession, client, client_version, agency_rule FROM facets`,
		`DROP TABLE facets`,
		`ALTER TABLE facets11 RENAME TO facets`,
		`UPDATE observations SET clock_offset_ns = 1500000`,
		`DELETE FROM schema_migrations WHERE version >= 13`,
	} {
		if _, err := st.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(ctx, path, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := exportAll(t, again)
	if len(got) != len(obs) {
		t.Fatalf("%d observations after the migration, want %d", len(got), len(obs))
	}
	for i, o := range got {
		if o.ClockKnown || o.ClockOffset != 0 || o.ClockUncertainty != 0 || o.ClockSource != obs[i].ClockSource {
			t.Fatalf("observation %d: clock known=%v %v ± %v %q, want unknown from %q", i, o.ClockKnown, o.ClockOffset,
				o.ClockUncertainty, o.ClockSource, obs[i].ClockSource)
		}
		if o.Sensor.Commit != "" || o.Sensor.Modified || o.Sensor.Config != "" {
			t.Fatalf("observation %d: sensor %+v, want no build", i, o.Sensor)
		}
	}
	var n int
	if err := again.db.QueryRowContext(ctx, `SELECT count(*) FROM observation_rows WHERE clock_offset_ns IS NOT NULL`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of observation_rows with an offset (%v), want none", n, err)
	}
	// New rows keep theirs beside the old.
	fresh := storetest.Observation(r, at.Add(time.Hour), 5)
	if err := again.InsertObservations(ctx, []observe.Observation{fresh}); err != nil {
		t.Fatal(err)
	}
	got = exportAll(t, again)
	if last := got[len(got)-1]; !last.Equal(&fresh) {
		t.Fatalf("new row after the migration:\ngot  %+v\nwant %+v", last, fresh)
	}
}

// A target's timeline (what the target page, the API and the ISP request
// read) carries each observation's clock and build as stored: a measured
// offset with its uncertainty, an unknown one as unknown; and the API's
// JSON writes them in milliseconds or null.
func TestTimelineCarriesTheClockAndBuild(t *testing.T) {
	ctx := context.Background()
	st, _ := openTemp(t, DefaultConfig())
	r := rand.New(rand.NewPCG(14, 14))
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	byID := map[string]observe.Observation{}
	var obs []observe.Observation
	for i := range 8 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), 0) // one address
		o.Endpoint.Port = 6881
		syntheticClockOf(&o, i)
		obs = append(obs, o)
		byID[o.ID] = o
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	cfg := analysis.DefaultConfig()
	cfg.SaveInterval = 0
	eng, err := analysis.New(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10})
	if err != nil || len(ts) == 0 {
		t.Fatalf("targets %v, %v", ts, err)
	}
	d, err := st.TargetWithTimeline(ctx, ts[0].ID, analysis.AllAgencies, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range d.Timeline {
		o, ok := byID[e.ID]
		if !ok {
			continue
		}
		seen++
		if e.ClockKnown != o.ClockKnown || e.ClockOffset != o.ClockOffset || e.ClockUncertainty != o.ClockUncertainty ||
			e.ClockSource != o.ClockSource || e.Build != o.Sensor.Build() {
			t.Fatalf("timeline entry %s: clock %v %v ± %v %q build %+v; stored %v %v ± %v %q %+v", e.ID, e.ClockKnown, e.ClockOffset,
				e.ClockUncertainty, e.ClockSource, e.Build, o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource, o.Sensor.Build())
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want := "null"
		if o.ClockKnown {
			want = string(*observe.Millis(o.ClockOffset))
		}
		if got := string(m["clock_offset_ms"]); got != want || m["build"] == nil {
			t.Fatalf("entry JSON clock_offset_ms %s, want %s: %s", got, want, b)
		}
	}
	if seen != len(obs) {
		t.Fatalf("%d of %d observations on the timeline", seen, len(obs))
	}
}

// syntheticClockOf gives observation i one of the readings a sensor
// records: unknown, measured, measured at exactly zero.
func syntheticClockOf(o *observe.Observation, i int) {
	o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = false, 0, 0, "none"
	switch i % 3 {
	case 1:
		o.ClockKnown, o.ClockOffset, o.ClockUncertainty, o.ClockSource = true, -1234567*time.Nanosecond, 89*time.Microsecond, "ntp:127.0.0.1:123"
	case 2:
		o.ClockKnown, o.ClockUncertainty, o.ClockSource = true, time.Millisecond, "ntp:[::1]:123"
	}
}
