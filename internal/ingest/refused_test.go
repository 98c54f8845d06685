package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// pickyStore refuses, as PostgreSQL's does, any batch holding an
// observation whose id has a NUL byte, naming it (store.RefusedError).
type pickyStore struct {
	store.Store
	batches int
}

func (p *pickyStore) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	p.batches++
	for i := range obs {
		if strings.IndexByte(obs[i].ID, 0) >= 0 {
			return &store.RefusedError{Index: i, Err: fmt.Errorf("observation %d: %w", i, observe.ErrInvalid)}
		}
	}
	return p.Store.InsertObservations(ctx, obs)
}

// A batch whose every observation, or some, the store can never hold is
// stored without them, and ingest goes on; the bus's own slice is left
// as it was handed over.
func TestRefusedObservationsLeftOutOfTheirBatch(t *testing.T) {
	ctx := context.Background()
	st := &pickyStore{Store: openStore(t)}
	r := rand.New(rand.NewPCG(3, 3))
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 6 {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		if i%2 == 0 {
			o.ID = fmt.Sprintf("bad\x00%d", i)
		}
		obs = append(obs, o)
	}
	given := append([]observe.Observation(nil), obs...)
	// First batch: 3 bad, 3 good; second: all bad.
	obs = append(obs, given[0], given[2])
	stats, err := Run(ctx, inproc.NewSlice(obs), st, Config{BatchSize: 6, FlushEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Committed != 3 || stats.Refused != 5 || stats.Batches != 2 {
		t.Fatalf("stats %+v, want 3 committed, 5 refused, 2 batches", stats)
	}
	for i := range given {
		if obs[i].ID != given[i].ID {
			t.Fatalf("the bus's observation %d changed: id %q, was %q", i, obs[i].ID, given[i].ID)
		}
	}
	var n int
	if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("%d stored (%v), want 3", n, err)
	}
}
