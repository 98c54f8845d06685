package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/rowcodec"
	"github.com/vigil-oss/vigil/internal/store/storetest"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// The overview's newest observations and the map's points are the same
// whether the observations are rows, blocks (migration 0030) or both:
// read all hot, then with the older half compacted, then with all of it
// (ties in time across rows and blocks, scopes by routed agency, windows
// smaller and larger than the store).
func TestNewestObservationsReadThroughBlocks(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(30, 4))
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	agencies := []string{"", "fr-a", "fr-b"}
	var obs []observe.Observation
	for i := range 600 {
		o := storetest.Observation(r, at.Add(time.Duration(i/3)*time.Second), i) // three a second: ties
		o.ID = ""
		o.Jurisdiction = observe.Jurisdiction{Agency: agencies[i%3], Rule: "rule"}
		o.Place = observe.Place{}
		if i%4 != 0 {
			o.Place = observe.Place{Country: []string{"FR", "BE", "DE"}[i%3], Subdivisions: []string{"s" + string(rune('a'+i%5))},
				Lat: float64(i%7) + 0.5, Lon: float64(i%11) + 0.25}
		}
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	type view struct {
		recent [][]webviews.RecentObservation
		points [][]webviews.PlacePoint
	}
	scopes := []analysis.Scope{{All: true}, {Agencies: []string{"fr-a"}}, {Agencies: []string{"fr-b", "fr-a"}}}
	read := func() view {
		var v view
		for _, sc := range scopes {
			for _, w := range [][2]int{{10, 10}, {50, 200}, {700, 1000}, {5, 301}} {
				got, err := st.RecentObservations(ctx, sc, w[0], w[1])
				if err != nil {
					t.Fatal(err)
				}
				v.recent = append(v.recent, got)
			}
		}
		for _, w := range []int{1, 37, 300, 5000} {
			got, err := st.PlacePoints(ctx, w)
			if err != nil {
				t.Fatal(err)
			}
			v.points = append(v.points, got)
		}
		return v
	}
	hot := read()
	if len(hot.recent[0]) != 10 || len(hot.points[2]) == 0 {
		t.Fatalf("the test reads too little: %d recent, %d points", len(hot.recent[0]), len(hot.points[2]))
	}
	opt := DefaultCompactOptions()
	opt.Settle, opt.Now, opt.ignoreWatermark, opt.BlockSize = 0, at.Add(100*time.Second+time.Second/2), true, 64
	if res, err := st.CompactObservations(ctx, opt); err != nil || res.Rows == 0 || res.Rows == len(obs) {
		t.Fatalf("compacted %+v (%v): want some of the %d", res, err, len(obs))
	}
	same := func(what string, got view) {
		t.Helper()
		for i := range hot.recent {
			if !reflect.DeepEqual(got.recent[i], hot.recent[i]) {
				t.Fatalf("%s: recent observations, read %d:\n%+v\nall hot:\n%+v", what, i, got.recent[i], hot.recent[i])
			}
		}
		for i := range hot.points {
			if !reflect.DeepEqual(got.points[i], hot.points[i]) {
				t.Fatalf("%s: place points, read %d:\n%+v\nall hot:\n%+v", what, i, got.points[i], hot.points[i])
			}
		}
	}
	same("with the older observations in blocks", read())
	compactAll(t, st)
	same("with every observation in blocks", read())
}

// A purge record that its observation contradicts (it says the
// observation went, or names another seq) is an error, whether the
// observation is a row or in a block (migration 0030).
func TestPurgeRecordContradictedByABlockIsAnError(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(30, 5))
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 3 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Minute), i))
	}
	obs[2].ID = "sensor-7/observation/9" // found through observation_ids_elsewhere
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	seqs := rowSeqs(t, st)
	compactAll(t, st)
	records := []struct {
		id, what string
		seq      int64
	}{
		{obs[0].ID, "observations", seqs[obs[0].ID]},    // the observation went: it did not
		{obs[1].ID, "transcripts", seqs[obs[1].ID] + 7}, // another seq
		{obs[2].ID, "observations", seqs[obs[2].ID]},
	}
	for _, rec := range records {
		if _, err := st.pool.Exec(ctx, `INSERT INTO purged_observations (observation_id, seq, what, time_ns, purged_ns) VALUES ($1, $2, $3, $4, 1)`,
			rec.id, rec.seq, rec.what, at.UnixNano()); err != nil {
			t.Fatal(err)
		}
		got, err := st.PurgedObservations(ctx, []string{rec.id})
		if !errors.Is(err, rowcodec.ErrPurgedLive) {
			t.Errorf("record %+v of an observation in a block: %v, %v; want ErrPurgedLive", rec, got, err)
		}
	}
}
