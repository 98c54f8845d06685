package pipeline

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// ImportObservations is all or nothing (one transaction): an observation
// the store refuses (store.RefusedError: here one that does not validate,
// as SQLite refuses it; in PostgreSQL a NUL byte in a text field) fails
// the import, naming it, and nothing is stored. Before, ingest left it
// out as it does for a bus, unlogged (an import has no log), stored the
// rest, and `vigil observations import` said it had imported them all.
func TestImportIsAllOrNothingWhenTheStoreRefusesOne(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(11, 11))
	now := time.Now().Add(-time.Hour).UTC()
	obs := []observe.Observation{storetest.Observation(r, now, 0), storetest.Observation(r, now, 1), storetest.Observation(r, now, 2)}
	obs[1].ClockKnown, obs[1].ClockOffset, obs[1].ClockUncertainty = false, time.Second, 0 // an offset with the offset unknown
	if obs[1].Validate() == nil {
		t.Fatal("the refused observation validates: the test no longer tests a refusal")
	}
	st := openStore(t)
	err := ImportObservations(ctx, st, obs)
	if err == nil || !strings.Contains(err.Error(), obs[1].ID) {
		t.Errorf("import with an observation the store refuses: %v; want an error naming %s", err, obs[1].ID)
	}
	n := 0
	if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d of %d stored by an import that %v; want none", n, len(obs), err)
	}
}
