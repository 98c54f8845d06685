package evidence_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Attack (h-rev9): anyone who may publish on the bus takes a trusted
// sensor's public key and name (a bundle's keys.json gives both) and
// publishes headless observations under it, each in a chain of its own,
// each with a transcript of nearly a megabyte (NATS's default
// max_payload). Nothing contradicts them, so each waits HeadWait (1 h);
// MaxHeld counted observations only: 65,536 of them held some 64 GiB
// (and their messages as much again), and ingest ran out of memory at
// every start, the bus handing them over again. The gate must bound the
// bytes it holds too, releasing the oldest as failed past the bound.
func TestGateBoundsTheBytesItHolds(t *testing.T) {
	tmpl := signed(t, sample(1))[0]
	big := make([]byte, 1<<20) // shared: the test holds one megabyte
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	const n = 320
	var released []evidence.Released
	for i := range n {
		o := tmpl
		o.ID = fmt.Sprintf("forged-%03d", i)
		o.Chain.ID = fmt.Sprintf("%016x", i)
		o.Chain.Form, o.Chain.BatchSig = 0, nil // evidence form 1: the sensor hash covers the bytes
		o.Transcript.Bytes, o.Transcript.SHA256 = big, nil
		released = append(released, g.Add(o, i, now)...)
		released = append(released, g.Expire(now, false)...)
	}
	const bound = 256 << 20
	if held := g.Held(); held*len(big) > bound {
		t.Fatalf("the gate holds %d observations of 1 MiB each, past %d MiB", held, bound>>20)
	}
	if len(released) == 0 {
		t.Fatal("nothing released")
	}
	for j, r := range released {
		if r.Failed == "" || !r.Obs.HasMark(observe.MarkSignatureFailed) {
			t.Fatalf("%s released as covered", r.Obs.ID)
		}
		if !strings.Contains(r.Failed, "256 MiB") {
			t.Fatalf("%s failed as %q, which does not name the bound", r.Obs.ID, r.Failed)
		}
		if want := fmt.Sprintf("forged-%03d", j); r.Obs.ID != want {
			t.Fatalf("released %d is %s, want the oldest first (%s)", j, r.Obs.ID, want)
		}
	}
	if got := len(released) + g.Held(); got != n {
		t.Fatalf("released %d and held %d of %d", len(released), g.Held(), n)
	}
}

// A message several observations held came in counts once towards
// MaxHeldBytes, and until the last of them goes: a sensor's batch of 256
// split across messages is held whole without counting its message 256
// times, and a message is let go only with all of its observations.
func TestGateCountsAMessageOnceWhileItsObservationsAreHeld(t *testing.T) {
	tmpl := signed(t, sample(1))[0]
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	var released []evidence.Released
	add := func(i int, msg uint64) {
		o := tmpl
		o.ID = fmt.Sprintf("held-%03d", i)
		o.Chain.ID = fmt.Sprintf("%016x", i)
		o.Chain.BatchSig = nil
		released = append(released, g.AddRefIn(nil, &o, i, now, evidence.Message{Key: msg, Bytes: 1 << 20})...)
		g.Detach()
		released = append(released, g.Expire(now, false)...)
	}
	for i := range 300 { // 150 messages of two observations each
		add(i, uint64(i/2))
	}
	if len(released) != 0 || g.Held() != 300 {
		t.Fatalf("150 MiB of messages: released %d, held %d; want all 300 held", len(released), g.Held())
	}
	for i := 300; i < 450; i++ { // 150 more of one each: 300 MiB
		add(i, uint64(i))
	}
	if n := len(released); n < 88 || n > 92 || n%2 != 0 {
		t.Fatalf("300 MiB of messages: released %d, want the 44 or 45 oldest messages' observations, both of each", n)
	}
	for j, r := range released {
		if want := fmt.Sprintf("held-%03d", j); r.Obs.ID != want || r.Failed == "" {
			t.Fatalf("released %d: %s (failed %q), want %s, failed", j, r.Obs.ID, r.Failed, want)
		}
	}
}
