package postgres

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack (h-rev7): a hostile hub or sensor puts on the bus an
// observation that decodes and validates (observe.Validate leaves the id
// and the free strings alone) but that PostgreSQL's text cannot hold: a
// NUL byte in its id (JSON "\u0000") or in its sensor's name. The store
// refused the whole batch (checkObservation), ingest ended with the
// error and handed the batch back, and a durable bus handed it over
// again at every start: ingest stopped for good on one observation, the
// good ones of its batch never stored. The store must say which
// observation it cannot hold (store.RefusedError), and ingest store the
// others and go on.
func TestObservationPostgresCannotHoldDoesNotStopIngest(t *testing.T) {
	st := openTest(t, DefaultConfig())
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 30))
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	var obs []observe.Observation
	for i := range 5 {
		obs = append(obs, storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i))
	}
	obs[1].ID = "sensor-7/\x00/42"
	obs[3].Sensor.ID = "hub\x00"
	stats, err := ingest.Run(ctx, inproc.NewSlice(obs), st, ingest.Config{BatchSize: 10, FlushEvery: time.Millisecond})
	if err != nil {
		t.Fatalf("ingest stopped on a batch with two observations PostgreSQL cannot hold: %v", err)
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM observations`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d rows (%v), want the 3 observations PostgreSQL can hold", n, err)
	}
	if stats.Committed != 3 || stats.Refused != 2 {
		t.Fatalf("stats %+v, want 3 committed and 2 refused", stats)
	}
}
