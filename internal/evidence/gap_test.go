package evidence_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
)

// A position of a signed batch that never reached the store (on
// PostgreSQL, one it refused: store/postgres
// TestARefusedSignedObservationLeavesANamedGap): a bundle after it says
// so and 'vigil verify' reports the gap, never passing over it; one
// before it fails with ErrBatchIncomplete naming the seq; a batches.json
// whose gap is made up (signed_from not before first_seq, a missing seq
// outside the gap) fails. Before, the bundle after the gap verified with
// nothing said.
func TestAGapInASignedBatchIsNamed(t *testing.T) {
	obs := signed(t, sample(8)) // batches of seqs 1-4 and 5-8
	kept := append(append(obs[:0:0], obs[:5]...), obs[6:]...)
	f := newFixture(t, kept) // seq 6 never stored
	f.checkpoint(t)
	rep := check(t, f.bundle(t, []string{obs[6].ID}))
	if !rep.OK() || rep.Signed != 1 {
		t.Fatalf("after the gap: %+v; want seq 7 signed", rep)
	}
	if len(rep.Gaps) != 1 || rep.Gaps[0].SignedFrom != 5 || rep.Gaps[0].FirstSeq != 7 || rep.Gaps[0].Head != 8 || len(rep.Gaps[0].Missing) != 1 || rep.Gaps[0].Missing[0] != 6 {
		t.Fatalf("gaps %+v; want the batch of seqs 5 to 8 checked from 7, seq 6 missing", rep.Gaps)
	}
	if s := rep.Gaps[0].String(); !strings.Contains(s, "seqs 5 to 8") || !strings.Contains(s, "seq 6 not in the store") || !strings.Contains(s, "from seq 7") {
		t.Fatalf("the gap in words: %q", s)
	}
	err := evidence.WriteBundle(context.Background(), &bytes.Buffer{}, f.st, f.key, evidence.Export{Target: "T-LAB-1", IDs: []string{obs[4].ID}, Now: t0})
	if !errors.Is(err, evidence.ErrBatchIncomplete) || !strings.Contains(err.Error(), "seq 6 of its sensor's signed batch (seqs 5 to 8)") || !strings.Contains(err.Error(), obs[4].ID) {
		t.Fatalf("before the gap: %v; want ErrBatchIncomplete naming the observation and seq 6", err)
	}
	names, files := unzip(t, f.bundle(t, []string{obs[6].ID}))
	for _, forged := range []map[string]any{
		{"signed_from": 7},
		{"signed_from": 8},
		{"missing": []int{7}},
		{"missing": []int{4}},
		{"missing": []int{}},
		{"missing": []int{6, 6}},
	} {
		var bs []map[string]any
		if err := json.Unmarshal(files[verify.FileBatches], &bs); err != nil || len(bs) != 1 {
			t.Fatalf("batches: %v (%d)", err, len(bs))
		}
		for k, v := range forged {
			bs[0][k] = v
		}
		c := maps(files)
		c[verify.FileBatches], _ = json.Marshal(bs)
		failsOn(t, "gap "+string(c[verify.FileBatches]), check(t, resign(t, f.key, names, c)), verify.FileBatches)
	}
}

// A known limit (docs/deployment.md, "refused"): with two ingests sharing
// a bus, one refuses seq 2 of a batch (the store could not hold it) and
// stores seq 3 and the head; the other, holding seq 1 alone, links it to
// what is stored after it (GateConfig.Stored), and seq 2 is not there:
// seq 1 waits HeadWait and is released failed, as if no head had come.
// The test pins that limit, so that the docs say what the gate does.
func TestGateCannotLinkAcrossARefusedObservationOfAnotherIngest(t *testing.T) {
	obs := signed(t, sample(4)) // one batch: seq 1-4, head at 4
	a, b, stored, cfg := twoIngests()
	now := time.Now()
	for i, o := range obs[1:] { // b: seq 2 (refused by its store), 3 and the head
		for _, r := range b.Add(o, i, now) {
			if r.Failed != "" {
				t.Fatalf("b: %s failed", r.Obs.ID)
			}
			if r.Obs.Chain.Seq != 2 {
				stored[r.Obs.Chain.Seq] = r.Obs.Chain.Prev
			}
		}
	}
	if rs := a.Add(obs[0], 0, now); len(rs) != 0 {
		t.Fatalf("a released %d before any head", len(rs))
	}
	if rs := a.Expire(now.Add(cfg.HeadWait-time.Minute), false); len(rs) != 0 {
		t.Fatalf("a released %+v before HeadWait", rs)
	}
	rs := a.Expire(now.Add(cfg.HeadWait+time.Minute), false)
	if len(rs) != 1 || !strings.Contains(rs[0].Failed, "no signed head") {
		t.Fatalf("a's seq 1 after HeadWait: %+v; want it failed, no head having come", rs)
	}
}

// A known limit (docs/evidence.md, "Checking a bundle"): signed_from and
// missing are the store's word, under the manifest's log key; no sensor
// signs where its batch began. A bundle made without them, its batch
// given from the seq after the gap, verifies with no gap said. The test
// pins that limit, so that the docs say what the verifier can know.
func TestAGapLeftUnsaidByTheBundlesMakerIsNotSeen(t *testing.T) {
	obs := signed(t, sample(8))
	kept := append(append(obs[:0:0], obs[:5]...), obs[6:]...)
	f := newFixture(t, kept)
	f.checkpoint(t)
	names, files := unzip(t, f.bundle(t, []string{obs[6].ID}))
	var bs []map[string]any
	if err := json.Unmarshal(files[verify.FileBatches], &bs); err != nil || len(bs) != 1 || bs[0]["signed_from"] == nil {
		t.Fatalf("batches: %v %v", err, bs)
	}
	delete(bs[0], "signed_from")
	delete(bs[0], "missing")
	c := maps(files)
	c[verify.FileBatches], _ = json.Marshal(bs)
	rep := check(t, resign(t, f.key, names, c))
	if !rep.OK() || rep.Signed != 1 || len(rep.Gaps) != 0 {
		t.Fatalf("the bundle without its gap: %+v; want it verified, signed, no gap said (the limit)", rep)
	}
}
