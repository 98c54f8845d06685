package evidence_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// gateRun feeds obs through a gate in the order given, then expires what
// is left, and returns each observation's fate by id: "" covered by a
// signature, else why not.
func gateRun(t *testing.T, cfg evidence.GateConfig, obs []observe.Observation) map[string]string {
	t.Helper()
	g := evidence.NewGate(cfg)
	now := time.Now()
	fate := map[string]string{}
	take := func(rs []evidence.Released) {
		for _, r := range rs {
			if _, dup := fate[r.Obs.ID]; dup {
				t.Fatalf("%s released twice", r.Obs.ID)
			}
			fate[r.Obs.ID] = r.Failed
			if marked := r.Obs.HasMark(observe.MarkSignatureFailed); marked != (r.Failed != "") {
				t.Errorf("%s: failed %q but marked %v", r.Obs.ID, r.Failed, marked)
			}
			if r.Failed != "" && (r.Obs.Signed() || r.Obs.FirstHand()) {
				t.Errorf("%s: failed, yet still signed %v / first-hand %v", r.Obs.ID, r.Obs.Signed(), r.Obs.FirstHand())
			}
		}
	}
	for i, o := range obs {
		take(g.Add(o, i, now))
	}
	if g.Held() > 0 {
		take(g.Expire(now.Add(time.Minute), false))
	}
	if g.Held() > 0 { // what waits for its batch's head
		take(g.Expire(now.Add(2*time.Hour), false))
	}
	if g.Held() != 0 {
		t.Fatalf("%d still held after expiry", g.Held())
	}
	if len(fate) != len(obs) {
		t.Fatalf("released %d of %d", len(fate), len(obs))
	}
	return fate
}

func covered(fate map[string]string, obs []observe.Observation) (ok, failed int) {
	for _, o := range obs {
		if fate[o.ID] == "" {
			ok++
		} else {
			failed++
		}
	}
	return ok, failed
}

// TestGateLetsThroughWhatTheSensorSigned, in any order of arrival: the
// bus (or a hub) may deliver a batch out of order; what the sensor signed
// is still its evidence.
func TestGateLetsThroughWhatTheSensorSigned(t *testing.T) {
	obs := signed(t, sample(10))
	shuffled := append([]observe.Observation(nil), obs...)
	rand.New(rand.NewPCG(3, 3)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for name, in := range map[string][]observe.Observation{"in order": obs, "shuffled": shuffled} {
		fate := gateRun(t, evidence.DefaultGateConfig(), in)
		if ok, failed := covered(fate, obs); failed != 0 {
			t.Errorf("%s: %d covered, %d failed: %v", name, ok, failed, fate)
		}
	}
}

// TestGateFailsWhatAHostileHubForged: a changed field, a reordered batch,
// a batch replayed at another place of its chain, an observation dropped
// from a batch, a key the ingest does not trust. None of it passes as
// sensor evidence; a valid batch after it still does.
func TestGateFailsWhatAHostileHubForged(t *testing.T) {
	base := signed(t, sample(12)) // batches of 4: seq 1-4, 5-8, 9-12
	cases := []struct {
		name   string
		tamper func(obs []observe.Observation) []observe.Observation
		bad    []int // indexes (in base) that must fail; every other must pass
	}{
		{"changed field", func(obs []observe.Observation) []observe.Observation {
			obs[5].Endpoint.Port++
			return obs
		}, []int{4, 5}}, // seq 5 links through 6, which no longer hashes to what was signed
		{"reordered within a batch", func(obs []observe.Observation) []observe.Observation {
			obs[4].Chain.Seq, obs[5].Chain.Seq = obs[5].Chain.Seq, obs[4].Chain.Seq
			return obs
		}, []int{4, 5}},
		{"replayed at another seq", func(obs []observe.Observation) []observe.Observation {
			r := obs[1]
			r.ID = observe.NewID(r.Time.Add(time.Hour)) // a new id, so the store would keep it
			r.Chain.Seq = 13
			return append(obs, r)
		}, []int{12}},
		{"one dropped", func(obs []observe.Observation) []observe.Observation {
			return append(obs[:5:5], obs[6:]...)
		}, []int{4}},
		{"last head signed by another key", func(obs []observe.Observation) []observe.Observation {
			// (A bad signature on a middle head is made good by the next
			// one: the chain hash links the earlier batch to it.)
			other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
			obs[11].Chain.BatchSig = ed25519.Sign(other, []byte("anything"))
			return obs
		}, []int{8, 9, 10, 11}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := c.tamper(clone(base))
			fate := gateRun(t, evidence.DefaultGateConfig(), obs)
			bad := map[string]bool{}
			for _, i := range c.bad {
				bad[obs[i].ID] = true
			}
			for i, o := range obs {
				if c.name == "one dropped" && i >= 5 {
					i++
				}
				if got := fate[o.ID] != ""; got != bad[o.ID] {
					t.Errorf("observation %d (seq %d): failed %v (%q), want %v", i, o.Chain.Seq, got, fate[o.ID], bad[o.ID])
				}
			}
		})
	}
}

// TestGateTrustsOnlyTheKeysGiven: a hub that signs its own forgeries with
// a key of its own gets a signature that checks, but not under a key the
// ingest trusts; the sensor's key (listed) still passes.
func TestGateTrustsOnlyTheKeysGiven(t *testing.T) {
	obs := signed(t, sample(8))
	cfg := evidence.DefaultGateConfig()
	cfg.Keys = [][]byte{bytes.Repeat([]byte{1}, 32)}
	if _, failed := covered(gateRun(t, cfg, obs), obs); failed != len(obs) {
		t.Errorf("under an untrusted key: %d of %d failed", failed, len(obs))
	}
	cfg.Keys = append(cfg.Keys, sensorKey.Public().(ed25519.PublicKey))
	if ok, _ := covered(gateRun(t, cfg, obs), obs); ok != len(obs) {
		t.Errorf("under the trusted key: %d of %d covered", ok, len(obs))
	}
}

// TestGateAsksTrustAboutKeysNotGiven: with Trust set and no Keys, a key
// is trusted only once Trust accepts it (asked again for each observation
// until then: a key made after the gate started), and then without
// asking again.
func TestGateAsksTrustAboutKeysNotGiven(t *testing.T) {
	obs := signed(t, sample(8))
	accept, asked := false, 0
	cfg := evidence.DefaultGateConfig()
	cfg.Trust = func(k []byte, _ string) (bool, []string) {
		asked++
		return accept && bytes.Equal(k, sensorKey.Public().(ed25519.PublicKey)), nil
	}
	if _, failed := covered(gateRun(t, cfg, obs), obs); failed != len(obs) || asked != len(obs) {
		t.Errorf("before Trust accepts the key: %d of %d failed, asked %d times", failed, len(obs), asked)
	}
	accept, asked = true, 0
	if ok, _ := covered(gateRun(t, cfg, obs), obs); ok != len(obs) || asked != 1 {
		t.Errorf("once Trust accepts the key: %d of %d covered, asked %d times", ok, len(obs), asked)
	}
}

// TestGateSameObservationTwice: a copy delivered again (a redelivery) is
// released once, with both tags, so that both bus batches are
// acknowledged and the store keeps one.
func TestGateSameObservationTwice(t *testing.T) {
	obs := signed(t, sample(4))
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	var rel []evidence.Released
	for i, o := range obs[:3] {
		rel = append(rel, g.Add(o, i, now)...)
	}
	rel = append(rel, g.Add(obs[1], 9, now)...)
	rel = append(rel, g.Add(obs[3], 3, now)...)
	if len(rel) != 4 || g.Held() != 0 {
		t.Fatalf("released %d, held %d", len(rel), g.Held())
	}
	if got := rel[1].Tags; len(got) != 2 || got[1] != 9 {
		t.Errorf("tags of the copy delivered twice: %v", got)
	}
}

func clone(obs []observe.Observation) []observe.Observation {
	out := make([]observe.Observation, len(obs))
	for i, o := range obs {
		out[i] = o
		out[i].Chain.Prev = bytes.Clone(o.Chain.Prev)
	}
	return out
}

// TestBundleSaysWhatIngestFailed: observations the gate released as
// failed go into the log and a bundle like any other; 'vigil verify'
// counts them apart, as not sensor evidence, and the bundle still checks
// (the mark is what ingest stored; nothing claims a signature).
func TestBundleSaysWhatIngestFailed(t *testing.T) {
	obs := signed(t, sample(8))
	obs[6].Time = obs[6].Time.Add(time.Minute) // changed on the way: seq 5-7 fail, 8 (the head) stands
	fate := gateRun(t, evidence.DefaultGateConfig(), obs)
	g := evidence.NewGate(evidence.DefaultGateConfig())
	var stored []observe.Observation
	for i, o := range obs {
		for _, r := range g.Add(o, i, time.Now()) {
			stored = append(stored, r.Obs)
		}
	}
	for _, r := range g.Expire(time.Now(), true) {
		stored = append(stored, r.Obs)
	}
	f := newFixture(t, stored)
	f.checkpoint(t)
	rep := check(t, f.bundle(t, f.ids))
	if !rep.OK() {
		t.Fatalf("problems: %v", rep.Problems)
	}
	_, failed := covered(fate, obs)
	if failed == 0 || rep.SignatureFailed != failed || rep.Unsigned != failed || rep.Signed != len(obs)-failed {
		t.Fatalf("report signed %d, unsigned %d, signature_failed %d; want %d failed of %d", rep.Signed, rep.Unsigned, rep.SignatureFailed, failed, len(obs))
	}
}

// twoIngests is the gates of two ingests sharing a bus, and the chain_prev
// of each seq stored (by either: fill it in), which each asks about.
func twoIngests() (a, b *evidence.Gate, stored map[uint64][]byte, cfg evidence.GateConfig) {
	stored = map[uint64][]byte{}
	cfg = evidence.DefaultGateConfig()
	cfg.Stored = func(_ string, seq uint64) ([]byte, []byte, bool) {
		p, ok := stored[seq]
		return p, sensorKey.Public().(ed25519.PublicKey), ok
	}
	return evidence.NewGate(cfg), evidence.NewGate(cfg), stored, cfg
}

// TestGateBatchSplitBetweenTwoIngests: two ingests sharing a bus each get
// part of a sensor's batch; the one without the head links its part to
// what the other stored, rather than failing the sensor's evidence.
func TestGateBatchSplitBetweenTwoIngests(t *testing.T) {
	obs := signed(t, sample(4)) // one batch: seq 1-4, head at 4
	a, b, stored, _ := twoIngests()
	now := time.Now()
	for i, o := range obs[2:] { // b: seq 3 and the head
		for _, r := range b.Add(o, i, now) {
			if r.Failed != "" {
				t.Fatalf("b: %s failed", r.Obs.ID)
			}
			stored[r.Obs.Chain.Seq] = r.Obs.Chain.Prev
		}
	}
	for i, o := range obs[:2] { // a: seq 1 and 2, no head
		if rs := a.Add(o, i, now); len(rs) != 0 {
			t.Fatalf("a released %d before any head", len(rs))
		}
	}
	rs := a.Expire(now.Add(time.Minute), false)
	if len(rs) != 2 || rs[0].Failed != "" || rs[1].Failed != "" {
		t.Fatalf("a's part: %+v", rs)
	}
}

// TestGateWaitsForTheHeadOfABatchCutOff: a sensor cut off from the bus in
// the middle of a signed batch has published its first part; the rest,
// with the signed head, comes from its queue when the bus returns, after
// --signature-wait. The first part is the sensor's evidence: it waits for
// its head (HeadWait), it is not marked signature_failed.
func TestGateWaitsForTheHeadOfABatchCutOff(t *testing.T) {
	obs := signed(t, sample(8)) // batches of 4: seq 1-4, 5-8
	g := evidence.NewGate(evidence.DefaultGateConfig())
	now := time.Now()
	var rel []evidence.Released
	for i, o := range obs[:6] { // the first batch, and seq 5-6 of the second
		rel = append(rel, g.Add(o, i, now)...)
	}
	if len(rel) != 4 || g.Held() != 2 {
		t.Fatalf("released %d, held %d; want the first batch released and 2 held", len(rel), g.Held())
	}
	for _, after := range []time.Duration{time.Minute, 10 * time.Minute, 59 * time.Minute} {
		if rs := g.Expire(now.Add(after), false); len(rs) != 0 {
			t.Fatalf("after %s, released %d (failed: %q) while the head has not come", after, len(rs), rs[0].Failed)
		}
	}
	rel = nil
	for i, o := range obs[6:] { // the sensor's queue drains
		rel = append(rel, g.Add(o, 6+i, now.Add(59*time.Minute))...)
	}
	if len(rel) != 4 || g.Held() != 0 {
		t.Fatalf("after the head came: released %d, held %d", len(rel), g.Held())
	}
	for _, r := range rel {
		if r.Failed != "" {
			t.Errorf("seq %d failed: %s", r.Obs.Chain.Seq, r.Failed)
		}
	}
}

// TestGateHeadWaitIsBounded: a hub that withholds a batch's head does not
// get its part held for ever, nor passed: past HeadWait it is failed,
// saying why; and a part whose head came but does not link fails after
// MaxHold, without waiting for HeadWait.
func TestGateHeadWaitIsBounded(t *testing.T) {
	obs := signed(t, sample(8))
	cfg := evidence.DefaultGateConfig()
	g := evidence.NewGate(cfg)
	now := time.Now()
	for i, o := range obs[4:7] { // seq 5-7; the head (8) withheld
		g.Add(o, i, now)
	}
	if rs := g.Expire(now.Add(cfg.HeadWait-time.Second), false); len(rs) != 0 {
		t.Fatalf("released %d before HeadWait", len(rs))
	}
	rs := g.Expire(now.Add(cfg.HeadWait+time.Second), false)
	if len(rs) != 3 || g.Held() != 0 {
		t.Fatalf("after HeadWait: released %d, held %d", len(rs), g.Held())
	}
	for _, r := range rs {
		if r.Failed == "" || !r.Obs.HasMark(observe.MarkSignatureFailed) || !strings.Contains(r.Failed, "head") {
			t.Errorf("seq %d: %q", r.Obs.Chain.Seq, r.Failed)
		}
	}

	tampered := clone(obs)
	tampered[5].Endpoint.Port++ // seq 6 changed: 5 and 6 link to nothing; 7 and the head pass
	g = evidence.NewGate(cfg)
	for i, o := range tampered[4:] {
		g.Add(o, i, now)
	}
	rs = g.Expire(now.Add(cfg.MaxHold+time.Second), false)
	if len(rs) != 2 || rs[0].Failed == "" || rs[1].Failed == "" {
		t.Fatalf("a part whose head came and does not link: released %d after MaxHold, want 2 failed", len(rs))
	}
}

// TestGateHeadlessPartAsksTheStore: the head went to another ingest,
// which stored it only after this one's MaxHold: the part held here
// waits, asks the store again (every AskEvery), and links to it; a store
// that holds something else after the run fails it at once.
func TestGateHeadlessPartAsksTheStore(t *testing.T) {
	obs := signed(t, sample(4))
	stored := map[uint64][]byte{}
	cfg := evidence.DefaultGateConfig()
	cfg.Stored = func(_ string, seq uint64) ([]byte, []byte, bool) {
		p, ok := stored[seq]
		return p, sensorKey.Public().(ed25519.PublicKey), ok
	}
	g := evidence.NewGate(cfg)
	now := time.Now()
	for i, o := range obs[:2] {
		g.Add(o, i, now)
	}
	if rs := g.Expire(now.Add(time.Minute), false); len(rs) != 0 {
		t.Fatalf("released %d with nothing stored after the run", len(rs))
	}
	stored[3] = obs[2].Chain.Prev // the other ingest stored seq 3 and the head
	if rs := g.Expire(now.Add(time.Minute+cfg.AskEvery/2), false); len(rs) != 0 {
		t.Fatalf("asked the store again within AskEvery: released %d", len(rs))
	}
	rs := g.Expire(now.Add(time.Minute+cfg.AskEvery), false)
	if len(rs) != 2 || rs[0].Failed != "" || rs[1].Failed != "" {
		t.Fatalf("after the store held the rest: %+v", rs)
	}

	g = evidence.NewGate(cfg)
	stored[3] = bytes.Repeat([]byte{7}, 32) // something else stored after the run
	for i, o := range obs[:2] {
		g.Add(o, i, now)
	}
	rs = g.Expire(now.Add(time.Minute), false)
	if len(rs) != 2 || rs[0].Failed == "" || rs[1].Failed == "" {
		t.Fatalf("contradicted by the store: released %d, want 2 failed", len(rs))
	}
}

// TestGateBatchDealtInTurnToTwoIngests: after a crash, NATS hands the
// messages it redelivers to two ingests in turn, one each: each ingest
// holds every other observation of a batch, and neither can link its
// own to the head alone. Each covers a step once the other stored the
// next: the batch is covered from its head down, nothing failed
// (found by the fault test with NATS killed: 220 observations of a
// batch were stored as signature_failed).
func TestGateBatchDealtInTurnToTwoIngests(t *testing.T) {
	obs := signed(t, sample(12)) // batches of 4: heads at 4, 8, 12
	stored := map[uint64][]byte{}
	cfg := evidence.DefaultGateConfig()
	cfg.Stored = func(_ string, seq uint64) ([]byte, []byte, bool) {
		p, ok := stored[seq]
		return p, sensorKey.Public().(ed25519.PublicKey), ok
	}
	gates := []*evidence.Gate{evidence.NewGate(cfg), evidence.NewGate(cfg)}
	now := time.Now()
	fate := map[uint64]string{}
	take := func(rs []evidence.Released) {
		for _, r := range rs {
			fate[r.Obs.Chain.Seq] = r.Failed
			if r.Failed == "" {
				stored[r.Obs.Chain.Seq] = r.Obs.Chain.Prev
			}
		}
	}
	for i, o := range obs {
		take(gates[i%2].Add(o, i, now))
	}
	for round := 1; round <= 20 && gates[0].Held()+gates[1].Held() > 0; round++ {
		at := now.Add(cfg.MaxHold + time.Duration(round)*cfg.AskEvery)
		take(gates[0].Expire(at, false))
		take(gates[1].Expire(at, false))
	}
	if n := gates[0].Held() + gates[1].Held(); n != 0 {
		t.Fatalf("%d still held after 20 rounds", n)
	}
	for seq := uint64(1); seq <= 12; seq++ {
		if why, ok := fate[seq]; !ok || why != "" {
			t.Errorf("seq %d: released %v, failed %q", seq, ok, why)
		}
	}
}

// TestGateAsksTheStoreBoundedAndInTurn: a hub floods the bus with forged
// observations that nothing covers nor contradicts (each of a chain of
// its own): each waits, and a pass of the gate asks the store about at
// most MaxAsks of them, in turn, so that none is starved and the store
// is not asked about each every AskEvery.
func TestGateAsksTheStoreBoundedAndInTurn(t *testing.T) {
	const n = 1000
	asked := map[string]int{}
	calls := 0
	cfg := evidence.DefaultGateConfig()
	cfg.Stored = func(chain string, _ uint64) ([]byte, []byte, bool) { asked[chain]++; calls++; return nil, nil, false }
	g := evidence.NewGate(cfg)
	now := time.Now()
	for i := range n {
		o := signed(t, sample(1))[0]
		o.Chain.ID = fmt.Sprintf("forged%04d", i)
		o.Chain.BatchSig = nil // no head: it can only wait
		g.Add(o, i, now)
	}
	passes := (n + cfg.MaxAsks - 1) / cfg.MaxAsks
	for p := 1; p <= passes; p++ {
		calls = 0
		if rs := g.Expire(now.Add(cfg.MaxHold+time.Duration(p)*cfg.AskEvery), false); len(rs) != 0 {
			t.Fatalf("pass %d released %d", p, len(rs))
		}
		if calls > cfg.MaxAsks {
			t.Fatalf("pass %d asked the store %d times, more than MaxAsks (%d)", p, calls, cfg.MaxAsks)
		}
	}
	if len(asked) != n {
		t.Fatalf("after %d passes, %d of %d waiting observations were asked about", passes, len(asked), n)
	}
	if rs := g.Expire(now.Add(cfg.HeadWait+time.Second), false); len(rs) != n {
		t.Fatalf("after HeadWait released %d of %d", len(rs), n)
	}
}

// TestGateStoredUnderAnotherKeyCoversNothing: the store keeps a chain id
// under each key it came with. A hub that forges an observation under a
// sensor's key and chain (no signature of it), and has another ingest
// store, under a key of its own (any key checks without --sensor-keys),
// the next seq of that chain id linking to the forgery, must not get the
// forgery covered as the sensor's evidence by the store's answer.
func TestGateStoredUnderAnotherKeyCoversNothing(t *testing.T) {
	genuine := signed(t, sample(4))
	chain := genuine[0].Chain.ID
	forged := sample(5)[4]
	forged.Chain = observe.Chain{Key: genuine[0].Chain.Key, ID: chain, Seq: 100, Prev: bytes.Repeat([]byte{1}, 32)}
	fh, err := forged.SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	after := verify.ChainStep(forged.Chain.Prev, fh[:])
	hub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	link := sample(6)[5]
	link.Chain = observe.Chain{Key: hub.Public().(ed25519.PublicKey), ID: chain, Seq: 101, Prev: after[:]}
	lh, err := link.SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	head := verify.ChainStep(link.Chain.Prev, lh[:])
	link.Chain.BatchSig = ed25519.Sign(hub, verify.BatchMessage(chain, 101, head[:]))

	type row struct{ prev, key []byte }
	stored := map[uint64]row{}
	cfg := evidence.DefaultGateConfig()
	cfg.Stored = func(_ string, seq uint64) ([]byte, []byte, bool) {
		r, ok := stored[seq]
		return r.prev, r.key, ok
	}
	other, g := evidence.NewGate(cfg), evidence.NewGate(cfg)
	now := time.Now()
	for _, r := range other.Add(link, 0, now) { // the other ingest stores it
		if r.Failed != "" {
			t.Fatalf("the hub's own signed observation failed: %s", r.Failed)
		}
		stored[r.Obs.Chain.Seq] = row{r.Obs.Chain.Prev, r.Obs.Chain.Key}
	}
	if len(stored) != 1 {
		t.Fatal("the hub's observation was not released")
	}
	g.Add(forged, 0, now)
	for _, at := range []time.Duration{cfg.MaxHold + time.Second, cfg.HeadWait + time.Second} {
		for _, r := range g.Expire(now.Add(at), false) {
			if r.Failed == "" {
				t.Fatalf("after %s: the forgery under the sensor's key was released as covered, through what the store holds under the hub's key", at)
			}
		}
	}
}

// TestGateMaxHeldCountsCopies: a publisher that puts one headless
// observation on the bus many times, each message with an id of its own
// (the stream then keeps every one), gets one observation held and every
// message unacknowledged: past the stream's limit of unacknowledged
// messages ('vigil ingest' sets it to MaxHeld and four batches) it
// delivers nothing more, heads included, for HeadWait. The gate's bound
// counts the messages it holds, copies included.
func TestGateMaxHeldCountsCopies(t *testing.T) {
	o := signed(t, sample(1))[0]
	o.Chain.BatchSig = nil // no head: it can only wait
	cfg := evidence.DefaultGateConfig()
	cfg.MaxHeld = 4
	g := evidence.NewGate(cfg)
	now := time.Now()
	for i := range 10 {
		if rs := g.Add(o, i, now); len(rs) != 0 {
			t.Fatalf("copy %d released at once", i)
		}
	}
	rs := g.Expire(now, false)
	if len(rs) != 1 || rs[0].Failed == "" || len(rs[0].Tags) != 10 {
		t.Fatalf("10 messages of one observation held with MaxHeld 4: released %d", len(rs))
	}
	if g.Held() != 0 {
		t.Fatalf("still held: %d", g.Held())
	}
}

// TestGateDealtInTurnAmongManyWaiting: the batch dealt in turn to two
// ingests is covered a step a pass even while thousands of other
// observations wait (a backlog after a crash, or a hub's flood): the run
// just below a position the gate covered is asked about first, with a
// budget of its own. Taking its turn among 2,000 others, each step would
// wait some 30 passes (a reviewer's finding: a batch of 256 could then
// outlast --head-wait and be stored signature_failed).
func TestGateDealtInTurnAmongManyWaiting(t *testing.T) {
	c := &collect{}
	s := evidence.NewBatchSigner(c, sensorKey, evidence.SignerConfig{BatchSize: 64, Interval: time.Hour})
	for _, o := range sample(64) {
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	obs := c.obs
	stored := map[uint64][]byte{}
	cfg := evidence.DefaultGateConfig()
	cfg.Stored = func(chain string, seq uint64) ([]byte, []byte, bool) {
		if chain != obs[0].Chain.ID {
			return nil, nil, false
		}
		p, ok := stored[seq]
		return p, sensorKey.Public().(ed25519.PublicKey), ok
	}
	gates := []*evidence.Gate{evidence.NewGate(cfg), evidence.NewGate(cfg)}
	now := time.Now()
	for i := range 4000 { // 2,000 forged observations waiting in each gate
		o := signed(t, sample(1))[0]
		o.Chain.ID = fmt.Sprintf("backlog%04d", i)
		o.Chain.BatchSig = nil
		gates[i%2].Add(o, i, now)
	}
	failed := 0
	take := func(rs []evidence.Released) {
		for _, r := range rs {
			if r.Obs.ID == "" || r.Obs.Chain.ID != obs[0].Chain.ID && r.Failed == "" {
				continue
			}
			if r.Failed != "" {
				if r.Obs.HasMark(observe.MarkSignatureFailed) && !strings.HasPrefix(r.Failed, "no signature of its sensor covered it within") {
					failed++
				}
				continue
			}
			stored[r.Obs.Chain.Seq] = r.Obs.Chain.Prev
		}
	}
	for i, o := range obs {
		take(gates[i%2].Add(o, 10000+i, now))
	}
	rounds := 0
	for ; rounds < 400 && len(stored) < len(obs); rounds++ {
		at := now.Add(cfg.MaxHold + time.Duration(rounds+1)*cfg.AskEvery)
		take(gates[0].Expire(at, false))
		take(gates[1].Expire(at, false))
	}
	if failed != 0 || len(stored) != len(obs) {
		t.Fatalf("after %d rounds: %d of %d covered, %d failed", rounds, len(stored), len(obs), failed)
	}
	if rounds > 150 {
		t.Fatalf("the batch took %d rounds to cover (one step a round: ~64 expected)", rounds)
	}
	t.Logf("covered in %d rounds", rounds)
}

// TestGateChainIDSquattedByAnotherKey: without --sensor-keys, a hub that
// relays a sensor's messages puts first on the bus an observation of its
// own, signed with its own key, under the sensor's chain id. The genuine
// chain must still be covered: a chain is the sensor key's, not its id's.
func TestGateChainIDSquattedByAnotherKey(t *testing.T) {
	genuine := signed(t, sample(8))
	hub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	squat := sample(9)[8]
	squat.Chain = observe.Chain{Key: hub.Public().(ed25519.PublicKey), ID: genuine[0].Chain.ID, Seq: 1, Prev: make([]byte, 32)}
	sh, err := squat.SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	head := verify.ChainStep(squat.Chain.Prev, sh[:])
	squat.Chain.BatchSig = ed25519.Sign(hub, verify.BatchMessage(squat.Chain.ID, 1, head[:]))
	fate := gateRun(t, evidence.DefaultGateConfig(), append([]observe.Observation{squat}, genuine...))
	if ok, failed := covered(fate, genuine); failed != 0 {
		t.Errorf("the sensor's own chain, after a hub squatted its id: %d covered, %d failed", ok, failed)
	}
}

// TestGateForgetsIdleChains: each start of a sensor begins a chain, and
// the gate remembered every chain it ever saw (up to 8,192 covered
// positions each) for as long as ingest ran: months of restarts grew
// without bound. A chain with nothing held and nothing added for
// HeadWait is forgotten; what comes of it later is linked through the
// store (Stored), as another ingest's part is.
func TestGateForgetsIdleChains(t *testing.T) {
	cfg := evidence.DefaultGateConfig()
	g := evidence.NewGate(cfg)
	now := time.Now()
	for i := range 20 { // 20 sensor starts, one batch each
		for _, o := range signed(t, sample(4)) {
			for _, r := range g.Add(o, i, now) {
				if r.Failed != "" {
					t.Fatalf("start %d: %s failed: %s", i, r.Obs.ID, r.Failed)
				}
			}
		}
	}
	if g.Chains() != 20 {
		t.Fatalf("chains remembered after 20 starts: %d", g.Chains())
	}
	later := signed(t, sample(4))
	g.Add(later[0], 99, now.Add(cfg.HeadWait)) // a chain still being published
	g.Expire(now.Add(cfg.HeadWait+time.Second), false)
	if g.Chains() != 1 {
		t.Errorf("chains remembered after HeadWait idle: %d, want the one still held", g.Chains())
	}
}

// TestGateChainsBounded: a hub without --sensor-keys signs each message
// with a key of its own under a new chain id; each is a chain the gate
// would remember for HeadWait. Past the bound, the idlest are forgotten.
func TestGateChainsBounded(t *testing.T) {
	cfg := evidence.DefaultGateConfig()
	cfg.MaxChains = 64
	g := evidence.NewGate(cfg)
	now := time.Now()
	one := sample(1)
	const n = 300
	for i := range n {
		for _, r := range g.Add(signed(t, one)[0], i, now.Add(time.Duration(i)*time.Microsecond)) {
			if r.Failed != "" {
				t.Fatalf("%d: failed: %s", i, r.Failed)
			}
		}
	}
	g.Expire(now.Add(time.Second), false)
	if g.Chains() > cfg.MaxChains {
		t.Errorf("chains remembered after %d one-observation chains: %d", n, g.Chains())
	}
}

// TestGateFailsAForm2TranscriptNotItsSHA256: in evidence form 2 the
// sensor hash covers a transcript only through its transcript_sha256, so
// a hub that swaps or drops the transcript's bytes keeps the signature
// good. The gate ('vigil ingest') must compare the bytes with
// transcript_sha256, as ingest's check in one process does: what does not
// match never passes as sensor evidence; the copy the sensor published,
// delivered beside it, still does.
func TestGateFailsAForm2TranscriptNotItsSHA256(t *testing.T) {
	base := signed(t, sample(12)) // batches of 4; index 4 (seq 5) a peer probe
	if base[4].Chain.Form != observe.Form2 || len(base[4].Transcript.Bytes) == 0 {
		t.Fatalf("index 4: form %d, %d transcript bytes", base[4].Chain.Form, len(base[4].Transcript.Bytes))
	}
	for _, c := range []struct {
		name   string
		tamper func(o *observe.Observation)
	}{
		{"bytes changed", func(o *observe.Observation) {
			o.Transcript.Bytes = bytes.Clone(o.Transcript.Bytes)
			o.Transcript.Bytes[len(o.Transcript.Bytes)-1] ^= 1
		}},
		{"bytes dropped", func(o *observe.Observation) { o.Transcript.Bytes = nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			obs := clone(base)
			c.tamper(&obs[4])
			fate := gateRun(t, evidence.DefaultGateConfig(), obs)
			for i, o := range obs {
				if got := fate[o.ID] != ""; got != (i == 4) {
					t.Errorf("observation %d (seq %d): failed %v (%q)", i, o.Chain.Seq, got, fate[o.ID])
				}
			}
			// The hub's copy first, then the sensor's: the sensor's is
			// covered, the hub's is not (the store keeps the first of an
			// id it stores: the covered one comes out first).
			g := evidence.NewGate(evidence.DefaultGateConfig())
			now := time.Now()
			var rel []evidence.Released
			rel = append(rel, g.Add(obs[4], 100, now)...)
			for i, o := range base {
				rel = append(rel, g.Add(o, i, now)...)
			}
			rel = append(rel, g.Expire(now.Add(2*time.Hour), true)...)
			var good, bad int
			for _, r := range rel {
				if r.Obs.ID != base[4].ID {
					continue
				}
				if r.Failed == "" {
					good++
					if !bytes.Equal(r.Obs.Transcript.Bytes, base[4].Transcript.Bytes) {
						t.Error("the copy covered is the hub's")
					}
				} else {
					bad++
				}
			}
			if good != 1 || bad != 1 {
				t.Errorf("the sensor's copy and the hub's: %d covered, %d failed", good, bad)
			}
			if len(rel) == 0 || rel[0].Obs.ID == base[4].ID && rel[0].Failed != "" {
				t.Error("the hub's copy came out before the sensor's")
			}
		})
	}
}

// TestGateSeveralAtOneSeq: a forgery at the seq of a genuine observation,
// before or after it, and delivered again: the genuine one is covered,
// the forgery fails once with both its tags, in whichever order they
// came (the gate keeps the first observation at a seq, and its first tag,
// without a slice of their own).
func TestGateSeveralAtOneSeq(t *testing.T) {
	obs := signed(t, sample(4)) // one batch: seq 1-4, the head at 4
	forged := obs[1]
	forged.ID = observe.NewID(forged.Time.Add(time.Hour))
	forged.Endpoint.Port++
	for _, forgedFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("forged first ", forgedFirst), func(t *testing.T) {
			g := evidence.NewGate(evidence.DefaultGateConfig())
			now := time.Now()
			var rel []evidence.Released
			add := func(o observe.Observation, tag int) { rel = g.AddTo(rel, o, tag, now) }
			add(obs[0], 0)
			if forgedFirst {
				add(forged, 10)
				add(obs[1], 1)
			} else {
				add(obs[1], 1)
				add(forged, 10)
			}
			add(forged, 11) // delivered again
			add(obs[2], 2)
			add(obs[3], 3)
			if len(rel) != 4 || g.Held() != 1 {
				t.Fatalf("released %d, held %d; want 4 and the forgery", len(rel), g.Held())
			}
			for i, r := range rel {
				if r.Obs.ID != obs[i].ID || r.Failed != "" || len(r.Tags) != 1 || r.Tags[0] != i {
					t.Fatalf("release %d: %s tags %v failed %q; want %s, tag %d, covered", i, r.Obs.ID, r.Tags, r.Failed, obs[i].ID, i)
				}
			}
			rest := g.Expire(now.Add(time.Minute), false)
			if len(rest) != 1 || rest[0].Obs.ID != forged.ID || rest[0].Failed == "" || fmt.Sprint(rest[0].Tags) != "[10 11]" || g.Held() != 0 {
				t.Fatalf("expired %+v, held %d; want the forgery failed with tags [10 11]", rest, g.Held())
			}
			// The genuine observation delivered again after its release is
			// covered again, alone.
			again := g.AddTo(nil, obs[1], 5, now)
			if len(again) != 1 || again[0].Failed != "" || fmt.Sprint(again[0].Tags) != "[5]" {
				t.Fatalf("delivered again after release: %+v", again)
			}
		})
	}
}
