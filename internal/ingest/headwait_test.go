package ingest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// scripted hands out its batches in turn, an empty one (after wait) for
// each nil, then reports closed. Its batches count InProgress calls and
// acknowledgements, as a JetStream batch would take them.
type scripted struct{ steps []*scriptedBatch }

type scriptedBatch struct {
	obs                     []observe.Observation
	inProgress, acked, nakd int
	ackedSome               [][]int
}

func (b *scriptedBatch) Observations() []observe.Observation { return b.obs }
func (b *scriptedBatch) Ack(context.Context) error           { b.acked++; return nil }
func (b *scriptedBatch) Nak()                                { b.nakd++ }
func (b *scriptedBatch) InProgress()                         { b.inProgress++ }
func (b *scriptedBatch) Redelivers() bool                    { return true }
func (b *scriptedBatch) AckSome(_ context.Context, idx []int) error {
	b.ackedSome = append(b.ackedSome, idx)
	return nil
}

func (c *scripted) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if len(c.steps) == 0 {
		return nil, bus.ErrClosed
	}
	b := c.steps[0]
	c.steps = c.steps[1:]
	if b == nil {
		time.Sleep(wait)
		return bus.Delivered(nil), nil
	}
	return b, nil
}
func (c *scripted) Len() int { return 0 }
func (c *scripted) Close()   {}

type collected struct{ obs []observe.Observation }

func (c *collected) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// A sensor cut off from the bus in the middle of a signed batch: its
// first part reaches ingest long before the rest (with the signed head)
// comes from the sensor's queue. Ingest holds that part past
// --signature-wait, tells the bus it is still working on it (or the bus
// would hand it to another ingest), and stores it as the sensor's
// evidence once the head comes: nothing genuine is marked
// signature_failed (found in the fault test: a sensor cut off for a
// minute had its first part stored as failed).
func TestGatedIngestWaitsForTheHeadOfACutOffBatch(t *testing.T) {
	st := openStore(t)
	r := rand.New(rand.NewPCG(5, 6))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &collected{}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	for i := range 8 {
		if err := s.Publish(context.Background(), storetest.Observation(r, at, i)); err != nil {
			t.Fatal(err)
		}
	}
	first := &scriptedBatch{obs: c.obs[:6]} // batch 1, and seq 5-6 of batch 2
	rest := &scriptedBatch{obs: c.obs[6:]}
	steps := []*scriptedBatch{first}
	for range 15 { // 15 x 10 ms: past MaxHold (20 ms) and KeepAlive (30 ms)
		steps = append(steps, nil)
	}
	steps = append(steps, rest)
	cfg := DefaultConfig()
	cfg.FlushEvery = 10 * time.Millisecond
	cfg.KeepAlive = 30 * time.Millisecond
	cfg.Gate = evidence.NewGate(evidence.GateConfig{MaxHold: 20 * time.Millisecond, HeadWait: time.Hour})
	stats, err := Run(context.Background(), &scripted{steps: steps}, st, cfg)
	if err != nil || stats.Committed != 8 {
		t.Fatalf("Run: %+v, %v; want 8 committed", stats, err)
	}
	// The first batch's observations are acknowledged one by one as they
	// are committed: while seq 5-6 wait, only their own messages stay
	// unacknowledged (whole bus batches held for one observation each
	// would fill the stream's limit and stop it delivering the heads).
	if fmt.Sprint(first.ackedSome) != "[[0 1 2 3]]" {
		t.Errorf("first batch acknowledged in parts: %v, want [[0 1 2 3]] (the batch committed while seq 5-6 wait; they by Ack)", first.ackedSome)
	}
	if len(rest.ackedSome) != 0 {
		t.Errorf("a batch committed whole was acknowledged in parts: %v", rest.ackedSome)
	}
	if first.inProgress == 0 || first.acked != 1 || rest.acked != 1 || first.nakd+rest.nakd != 0 {
		t.Errorf("first batch: %d in progress, %d acked, %d handed back; rest: %d acked", first.inProgress, first.acked, first.nakd, rest.acked)
	}
	n := 0
	err = st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		n++
		if o.HasMark(observe.MarkSignatureFailed) || !o.Signed() {
			t.Errorf("seq %d stored marked %v, signed %v", o.Chain.Seq, o.Marks, o.Signed())
		}
		return nil
	})
	if err != nil || n != 8 {
		t.Fatalf("stored %d (%v), want 8", n, err)
	}
}
