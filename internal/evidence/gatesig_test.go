package evidence_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// TestGateLinkedCopyWithForeignBatchSig: batch_sig is outside the sensor
// hash, so a hub can hand over a sensor's observation with a batch_sig
// the sensor never wrote (a copy of the genuine one, or the head's with
// its signature swapped). Its chain hash links to what the gate covered
// after it, yet the copy is not what the sensor published: stored, its
// batch_sig would be a batch head's signature that does not check (the
// leaf holds it; 'vigil verify' and ingest's chain check then find the
// sensor's batch broken). The gate covers the sensor's copy, never the
// hub's, whichever comes first; the hub's is failed.
func TestGateLinkedCopyWithForeignBatchSig(t *testing.T) {
	obs := signed(t, sample(8)) // heads at seqs 4 and 8
	junk := bytes.Repeat([]byte{0x5a}, ed25519.SignatureSize)
	for _, tc := range []struct {
		name  string
		order func(forged observe.Observation) []observe.Observation
		seq   int // the position forged (1-based)
	}{
		{"a non-head given a batch_sig, before the genuine run", func(f observe.Observation) []observe.Observation {
			return append([]observe.Observation{f}, obs...)
		}, 2},
		{"a head whose signature was swapped, after the next batch was covered", func(f observe.Observation) []observe.Observation {
			return append(append(append([]observe.Observation{}, obs[4:]...), f), obs[:4]...)
		}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := obs[tc.seq-1]
			f.Chain.BatchSig = junk
			g := evidence.NewGate(evidence.DefaultGateConfig())
			now := time.Now()
			var rel []evidence.Released
			for i, o := range tc.order(f) {
				rel = g.AddTo(rel, o, i, now)
			}
			rel = append(rel, g.Expire(now.Add(2*time.Hour), true)...)
			for _, r := range rel {
				if r.Failed != "" {
					continue
				}
				sig := r.Obs.Chain.BatchSig
				if len(sig) == 0 {
					continue
				}
				if bytes.Equal(sig, junk) {
					t.Fatalf("seq %d released as covered with the hub's batch_sig", r.Obs.Chain.Seq)
				}
				after := verify.ChainStep(r.Obs.Chain.Prev, mustSensorHash(t, &r.Obs))
				if !ed25519.Verify(sensorKey.Public().(ed25519.PublicKey), verify.BatchMessage(r.Obs.Chain.ID, r.Obs.Chain.Seq, after[:]), sig) {
					t.Fatalf("seq %d released as covered with a batch_sig that does not check", r.Obs.Chain.Seq)
				}
			}
			covered := map[uint64]bool{}
			for _, r := range rel {
				if r.Failed == "" {
					covered[r.Obs.Chain.Seq] = true
				}
			}
			if len(covered) != 8 {
				t.Fatalf("%d positions covered; want the sensor's 8", len(covered))
			}
		})
	}
}

func mustSensorHash(t *testing.T, o *observe.Observation) []byte {
	t.Helper()
	h, err := o.SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	return h[:]
}
