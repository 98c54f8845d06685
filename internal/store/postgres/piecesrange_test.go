package postgres

import (
	"context"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack (h-rev9): anyone who may publish on the bus sends an observation
// whose pieces_have or pieces_total is past PostgreSQL's integer column.
// Before, the COPY failed (SQLSTATE 57014, not a refusal ingest leaves
// out, nor an outage it waits for): ingest ended, and the bus handed the
// batch over again at every start. The store must refuse that observation
// alone, by name, as one it can never hold.
func TestPieceCountsPastInt32AreRefusedByName(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := mrand.New(mrand.NewPCG(9, 9))
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		field     string
		have, tot int
	}{
		{"pieces_have", 1 << 31, -1},
		{"pieces_total", 5, 1 << 40},
	} {
		obs := []observe.Observation{storetest.Observation(r, at, 1), storetest.Observation(r, at, 2)}
		obs[1].Possession.PiecesHave, obs[1].Possession.PiecesTotal = tt.have, tt.tot
		err := st.InsertObservations(ctx, obs)
		var re *store.RefusedError
		if !errors.As(err, &re) || re.Index != 1 || !errors.Is(err, observe.ErrInvalid) || !strings.Contains(err.Error(), tt.field) {
			t.Fatalf("%s past int32: InsertObservations = %v, want a RefusedError of observation 1 naming %s", tt.field, err, tt.field)
		}
		if err := st.InsertObservations(ctx, obs[:1]); err != nil {
			t.Fatalf("the batch without it: %v", err)
		}
	}
	if got := exportAll(t, st); len(got) != 2 {
		t.Fatalf("%d observations stored, want 2", len(got))
	}
}
