package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A read by time (Observations, and ObservationsOfAddress, the platform
// check) while compaction moves rows into blocks sees every observation
// once: the blocks and the hot rows are read in one snapshot. Read in
// two (the blocks, then the rows), a row moved between the two reads was
// in neither, and the platform check said an address was not seen.
func TestReadsByTimeSeeEveryObservationWhileCompacting(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(12, 30))
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	addr := netip.MustParseAddr("127.0.0.9")
	const n = 240
	var obs []observe.Observation
	for i := range n {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		o.Endpoint.IP = addr
		obs = append(obs, o)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	readWhileCompacting(t, st, func() string {
		var got, gotAddr int
		if err := st.Observations(ctx, store.ObservationFilter{}, func(*observe.Observation) error { got++; return nil }); err != nil {
			t.Fatal(err)
		}
		if err := st.ObservationsOfAddress(ctx, []netip.Addr{addr}, at, at.Add(time.Hour), func(*observe.Observation) error { gotAddr++; return nil }); err != nil {
			t.Fatal(err)
		}
		if got != n || gotAddr != n {
			return fmt.Sprintf("Observations %d, ObservationsOfAddress %d, want %d", got, gotAddr, n)
		}
		return ""
	})
}

// A signed batch read (ChainObservations, for a bundle's and verify's
// batch checks) while compaction moves its rows into blocks is read
// whole, each position once: read in two snapshots (the rows, then the
// blocks) a row moved between them was read twice, and the batch was
// reported with a gap.
func TestChainObservationsWhileCompacting(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(12, 32))
	signed := signedBatch(t, r, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), 200)
	if err := st.InsertObservations(ctx, signed); err != nil {
		t.Fatal(err)
	}
	chain := signed[0].Chain.ID
	first, head, err := st.ChainBatch(ctx, chain, signed[0].Chain.Seq)
	if err != nil || head < first+100 {
		t.Fatalf("ChainBatch: %d..%d, %v", first, head, err)
	}
	readWhileCompacting(t, st, func() string {
		n := 0
		err := st.ChainObservations(ctx, chain, first, head, func(*observe.Observation) error { n++; return nil })
		if err != nil || uint64(n) != head-first+1 {
			return fmt.Sprintf("%d of %d, %v", n, head-first+1, err)
		}
		return ""
	})
}

// Reads by id (ObservationsByID: a bundle's observations) and of the
// newest observations (RecentObservations: the overview page) while
// compaction moves rows into blocks find every observation once: their
// reads of the hot rows and of the blocks share one snapshot. Read in
// several, a row moved between two reads was in neither: an intact
// observation reported missing, the overview failing on a seq "neither a
// row nor in a block" or one short.
func TestReadsByIDAndNewestWhileCompacting(t *testing.T) {
	ctx := context.Background()
	st := openTest(t, DefaultConfig())
	r := rand.New(rand.NewPCG(12, 34))
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	const n = 240
	var obs []observe.Observation
	var ids []string
	for i := range n {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		obs, ids = append(obs, o), append(ids, o.ID)
	}
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	readWhileCompacting(t, st, func() string {
		got := 0
		errID := st.ObservationsByID(ctx, ids, func(*observe.Observation) error { got++; return nil })
		recent, errRecent := st.RecentObservations(ctx, analysis.Scope{All: true}, n, n)
		if errID != nil || errRecent != nil || got != n || len(recent) != n {
			return fmt.Sprintf("by id %d (%v), newest %d (%v), want %d", got, errID, len(recent), errRecent, n)
		}
		return ""
	})
}

// readWhileCompacting compacts every row of st into blocks of one
// observation, a row a transaction, and meanwhile calls read again and
// again, until compaction is done: a read that says what it found wrong
// (not "") fails t.
func readWhileCompacting(t *testing.T, st *Store, read func() string) {
	t.Helper()
	opt := DefaultCompactOptions()
	opt.Settle, opt.Now, opt.ignoreWatermark, opt.BlockSize, opt.TxRows = 0, time.Unix(0, 1<<62), true, 1, 1
	done := make(chan error, 1)
	go func() { _, err := st.CompactObservations(context.Background(), opt); done <- err }()
	reads, bad := 0, 0
	for compacting := true; compacting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			compacting = false
		default:
		}
		reads++
		if why := read(); why != "" {
			bad++
			if bad <= 3 {
				t.Errorf("read %d while compacting: %s", reads, why)
			}
		}
	}
	t.Logf("%d reads, %d wrong", reads, bad)
}
