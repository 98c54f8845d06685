package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// A sensor batch whose signed head was purged under retention cannot be
// checked: a bundle needing it says so (evidence.ErrBatchPurged), not
// that the head was never stored, be it the chain's last batch or not.
func TestABatchWhoseHeadWasPurged(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name      string
		head, ask int // indexes in publish order: seqs head+1, ask+1
	}{
		{"the last batch's head", 7, 5},
		{"an earlier batch's head", 3, 1},
	} {
		st := openTest(t, DefaultConfig())
		r := rand.New(rand.NewPCG(23, 23))
		var raw []observe.Observation
		for i := range 8 {
			at := t0.Add(time.Duration(i) * time.Hour)
			if i == c.head {
				at = t0.Add(-time.Hour)
			}
			o := storetest.Observation(r, at, i+1)
			o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 60+i)), 51413
			o.Chain = observe.Chain{}
			raw = append(raw, o)
		}
		obs := signedBatches(t, raw, 5)
		if obs[c.head].Chain.Seq != uint64(c.head+1) || obs[c.head].Chain.BatchSig == nil {
			t.Fatalf("%s: obs %d is seq %d, signed head %v", c.name, c.head, obs[c.head].Chain.Seq, obs[c.head].Chain.BatchSig != nil)
		}
		if err := st.InsertObservations(ctx, obs); err != nil {
			t.Fatal(err)
		}
		if err := st.AnalysisSave(ctx, &analysis.Changes{Watermark: 100}); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		got, err := st.PurgeChunk(ctx, retention.KindObservations, t0.Add(-time.Minute), 10, now)
		if err != nil || got.N != 1 {
			t.Fatalf("%s: purge %+v, %v; want the head alone", c.name, got, err)
		}
		key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, 32))
		if _, err := evidence.MakeCheckpoint(ctx, st, key, now); err != nil {
			t.Fatal(err)
		}
		err = evidence.WriteBundle(ctx, io.Discard, st, key, evidence.Export{Target: "T", IDs: []string{obs[c.ask].ID}, Now: now,
			Links: json.RawMessage(`[]`), Annex: json.RawMessage(`[]`)})
		if !errors.Is(err, evidence.ErrBatchPurged) {
			t.Fatalf("%s purged: a bundle needing its batch: %v, want ErrBatchPurged", c.name, err)
		}
	}
}
