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

// bigMessages is a scripted batch whose observations each came in a bus
// message of its own of 1 MiB (MessageOf), as a JetStream batch keeps
// them until they are acknowledged.
type bigMessages struct{ scriptedBatch }

func (b *bigMessages) MessageOf(i int) (int, int) { return i, 1 << 20 }

// sizedScript hands out its batches in turn, then reports closed.
type sizedScript struct{ msgs []*bigMessages }

func (c *sizedScript) Fetch(ctx context.Context, most int, wait time.Duration) (bus.Batch, error) {
	if len(c.msgs) == 0 {
		return nil, bus.ErrClosed
	}
	b := c.msgs[0]
	c.msgs = c.msgs[1:]
	return b, nil
}
func (c *sizedScript) Len() int { return 0 }
func (c *sizedScript) Close()   {}

// Attack (h-rev9): a publisher who knows a sensor's key and name puts on
// the bus messages of nearly a megabyte (NATS's default max_payload),
// each of one small headless observation under that key and of
// observations that are stored at once (unsigned ones, or lines that
// are not observations at all). The gate holds the headless one for up
// to an hour, and the bus batch keeps its whole message, unacknowledged,
// as long: the gate's bound counted the observation's own bytes, a
// kilobyte, and 65,536 messages held 64 GiB. What ingest holds must be
// bounded by the messages it keeps.
func TestGatedIngestBoundsTheMessagesItKeeps(t *testing.T) {
	st := openStore(t)
	r := rand.New(rand.NewPCG(7, 8))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	var msgs []*bigMessages
	const n = 320
	for i := range n {
		c := &collected{}
		s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 2, Interval: time.Hour})
		for j := range 2 {
			if err := s.Publish(context.Background(), storetest.Observation(r, at.Add(time.Duration(i)*time.Second), 2*i+j)); err != nil {
				t.Fatal(err)
			}
		}
		b := &bigMessages{scriptedBatch{obs: c.obs[:1]}} // the head withheld
		b.obs[0].ID = fmt.Sprintf("held-%03d", i)
		msgs = append(msgs, b)
	}
	cfg := DefaultConfig()
	cfg.FlushEvery = time.Millisecond
	gate := evidence.NewGate(evidence.DefaultGateConfig())
	cfg.Gate = gate
	c := &sizedScript{msgs: msgs}
	if _, err := Run(context.Background(), c, st, cfg); err != nil {
		t.Fatal(err)
	}
	const bound = 256 << 20
	if held := gate.Held(); held<<20 > bound {
		t.Fatalf("ingest keeps %d messages of 1 MiB for the observations its gate holds, past %d MiB", held, bound>>20)
	}
	failed := 0
	err := st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
		if !o.HasMark(observe.MarkSignatureFailed) {
			t.Errorf("%s stored as the sensor's evidence", o.ID)
		}
		failed++
		return nil
	})
	if err != nil || failed+gate.Held() != n {
		t.Fatalf("%d stored as failed and %d held (%v), want %d in all", failed, gate.Held(), err, n)
	}
}
