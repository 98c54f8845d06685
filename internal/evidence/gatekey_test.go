package evidence_test

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
)

// TestGateKeyOfWrongLength: a hub puts on the bus a signed head whose
// sensor_key is not 32 bytes (any hex decodes). ed25519.Verify panics on
// such a key: the gate must fail the observation, not take ingest down.
func TestGateKeyOfWrongLength(t *testing.T) {
	for _, n := range []int{1, 31, 33, 64} {
		o := signed(t, sample(4))[3] // a head: it carries batch_sig
		o.Chain.Key = make([]byte, n)
		g := evidence.NewGate(evidence.DefaultGateConfig())
		rel := g.Add(o, 1, time.Now())
		rel = append(rel, g.Expire(time.Now(), true)...)
		if len(rel) != 1 || rel[0].Failed == "" {
			t.Fatalf("key of %d bytes: released %+v, want it failed", n, rel)
		}
	}
}

// TestChainCheckerKeyOfWrongLength: the same for ingest's check of what
// it stored (ingest without a gate, of its own sensors' bus).
func TestChainCheckerKeyOfWrongLength(t *testing.T) {
	for _, n := range []int{1, 31, 33} {
		obs := signed(t, sample(4))
		// The chain relinked under that key, so that the check reaches
		// the signature.
		for i := range obs {
			obs[i].Chain.Key = make([]byte, n)
			if i > 0 {
				h, err := obs[i-1].SensorHash()
				if err != nil {
					t.Fatal(err)
				}
				next := verify.ChainStep(obs[i-1].Chain.Prev, h[:])
				obs[i].Chain.Prev = next[:]
			}
		}
		r := evidence.NewChainChecker().Check(obs)
		if r.Batches != 0 || r.Signed != 0 || len(r.Failures) == 0 {
			t.Fatalf("key of %d bytes: %+v, want the batch failed", n, r)
		}
	}
}
