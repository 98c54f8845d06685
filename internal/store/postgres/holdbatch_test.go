package postgres

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

type collected struct{ obs []observe.Observation }

func (c *collected) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// signedBatches is raw as a sensor signing with the key of seed (32 times
// the byte) publishes it, in batches of 4.
func signedBatches(t *testing.T, raw []observe.Observation, seed byte) []observe.Observation {
	t.Helper()
	ctx := context.Background()
	c := &collected{}
	s := evidence.NewBatchSigner(c, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)), evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	for _, o := range raw {
		if err := s.Publish(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return c.obs
}

// Attack (court): a hold keeps its target's observations, but their
// sensor's signed batches mix targets; the purge of the other members
// made the held observations' batch signature uncheckable (a bundle of
// the held target failed with evidence.ErrBatchPurged). The purge spares
// every member of a held observation's signed batch, whole partitions
// included.
func TestHoldKeepsItsObservationsSignedBatch(t *testing.T) {
	ctx := context.Background()
	st := openContract(t, DefaultConfig())
	r := rand.New(rand.NewPCG(18, 18))
	var raw []observe.Observation
	for i := range 8 {
		o := storetest.Observation(r, time.Date(2024, 1, 5, i, 0, 0, 0, time.UTC), i+1)
		o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 30+i)), 51413
		o.Chain = observe.Chain{}
		raw = append(raw, o)
	}
	obs := signedBatches(t, raw, 9)
	held := storedAndAnalysed(t, st, obs, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))["192.0.2.31:51413"]
	now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := st.AddHold(ctx, retention.Hold{Target: held, Reason: "court case", By: "a", At: now}); err != nil {
		t.Fatal(err)
	}
	run := &retention.Runner{Store: st, Trail: &audit.Log{Store: st}, Config: retention.DefaultConfig(), Now: func() time.Time { return now }}
	if _, err := run.Run(ctx, false); err != nil {
		t.Fatal(err)
	}
	first, head, err := st.ChainBatch(ctx, obs[1].Chain.ID, obs[1].Chain.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.ChainPurged(ctx, obs[1].Chain.ID, first, head); err != nil || n != 0 {
		t.Fatalf("the held observation's batch (seqs %d to %d) has %d purged members (%v): its signature can no longer be checked", first, head, n, err)
	}
	p, err := st.PurgedObservations(ctx, []string{obs[4].ID, obs[5].ID, obs[6].ID, obs[7].ID})
	if err != nil || len(p) != 4 {
		t.Fatalf("the other batch: %d purged, %v; want all 4", len(p), err)
	}
}

// Attack (court), with blocks (migration 0030): the held observation's
// signed batch is spread over blocks that a purge puts back into rows
// and blocks it does not (after the cutoff): the held observation itself
// after the cutoff, or its batch's head. The purge still spares every
// member of the batch, and purges the other batch whole.
func TestHoldKeepsItsBatchAcrossBlocks(t *testing.T) {
	old, recent := time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		recent int // the observation of the first batch (positions 1..4) given the recent time
	}{{"held observation after the cutoff", 1}, {"batch head after the cutoff", 3}, {"all before", -1}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st := openTest(t, DefaultConfig())
			r := rand.New(rand.NewPCG(18, 18))
			var raw []observe.Observation
			for i := range 8 {
				o := storetest.Observation(r, old.Add(time.Duration(i)*time.Hour), i+1)
				if i == c.recent {
					o.Time = recent
				}
				o.ID = observe.NewID(o.Time)
				o.Endpoint.IP, o.Endpoint.Port = netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 30+i)), 51413
				o.Chain = observe.Chain{}
				raw = append(raw, o)
			}
			obs := signedBatches(t, raw, 9)
			held := storedAndAnalysed(t, st, obs, recent)["192.0.2.31:51413"]
			compactAll(t, st)
			now := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // observations kept 2 years: the cutoff 2025-01-01
			if _, err := st.AddHold(ctx, retention.Hold{Target: held, Reason: "court case", By: "a", At: now}); err != nil {
				t.Fatal(err)
			}
			run := &retention.Runner{Store: st, Trail: &audit.Log{Store: st}, Config: retention.DefaultConfig(), Now: func() time.Time { return now }}
			if _, err := run.Run(ctx, false); err != nil {
				t.Fatal(err)
			}
			first, head, err := st.ChainBatch(ctx, obs[1].Chain.ID, obs[1].Chain.Seq)
			if err != nil {
				t.Fatal(err)
			}
			if n, err := st.ChainPurged(ctx, obs[1].Chain.ID, first, head); err != nil || n != 0 || first != 1 || head != 4 {
				t.Fatalf("the held observation's batch (positions %d to %d) has %d purged members (%v): its signature can no longer be checked", first, head, n, err)
			}
			if err := st.ChainObservations(ctx, obs[1].Chain.ID, 1, 4, func(*observe.Observation) error { return nil }); err != nil {
				t.Fatalf("the held batch reads back: %v", err)
			}
			p, err := st.PurgedObservations(ctx, []string{obs[4].ID, obs[5].ID, obs[6].ID, obs[7].ID})
			if err != nil || len(p) != 4 {
				t.Fatalf("the other batch: %d purged, %v; want all 4", len(p), err)
			}
		})
	}
}

// storedAndAnalysed inserts obs into st, analyses them with the
// analysis's clock at now, and returns the targets' ids by label.
func storedAndAnalysed(t *testing.T, st *Store, obs []observe.Observation, now time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	if err := st.InsertObservations(ctx, obs); err != nil {
		t.Fatal(err)
	}
	acfg := analysis.DefaultConfig()
	acfg.Now = func() time.Time { return now }
	acfg.SaveInterval = 0
	e, err := analysis.New(ctx, st, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Add(ctx, obs); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ts, _, err := st.Targets(ctx, analysis.TargetQuery{Scope: analysis.AllAgencies, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	targets := make(map[string]string, len(ts))
	for _, x := range ts {
		targets[x.Label] = x.ID
	}
	return targets
}
