package postgres

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus/inproc"
	"github.com/vigil-oss/vigil/internal/ingest"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// Attack (h-rev7): a hostile hub or sensor puts on the bus an
// observation that decodes and validates (observe.Validate leaves the id
// and the free strings alone) but that PostgreSQL's text cannot hold: a
// NUL byte in its id (JSON "\u0000"), its sensor's name, its chain's id
// or the zone of its sensor_address (the last two the store's check did
// not look at: sensor_chains' INSERT or the COPY failed instead, SQLSTATE
// 22021). The store
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
	obs[0].Endpoint.Local = netip.MustParseAddrPort("[fe80::1%a\x00b]:80")
	obs[4].Chain.Key, obs[4].Chain.ID, obs[4].Chain.Seq, obs[4].Chain.Prev = make([]byte, 32), "chain\x00", 1, make([]byte, 32)
	stats, err := ingest.Run(ctx, inproc.NewSlice(obs), st, ingest.Config{BatchSize: 10, FlushEvery: time.Millisecond})
	if err != nil {
		t.Fatalf("ingest stopped on a batch with four observations PostgreSQL cannot hold: %v", err)
	}
	n := 0 // through the store: rows and blocks (VIGIL_TEST_PG_COMPACT)
	err = st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("%d observations (%v), want the observation PostgreSQL can hold", n, err)
	}
	if stats.Committed != 1 || stats.Refused != 4 {
		t.Fatalf("stats %+v, want 1 committed and 4 refused", stats)
	}
}
