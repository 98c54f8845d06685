package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// MaxPendingPerChain bounds what a ChainChecker holds of one chain while
// it waits for the batch's signed head: a sensor's batches are far
// smaller (DefaultSignerConfig: 256).
const MaxPendingPerChain = 1 << 16

// ChainChecker checks, as ingest stores them, that sensors' observations
// are what the sensors signed: it follows each chain (observations may
// arrive across several ingest batches, in chain order as a sensor
// publishes them), and at each signed head checks the chain of sensor
// hashes and the signature, and in evidence form 2 that each transcript
// is the one its transcript_sha256 names. It does not change or drop anything: what it
// finds is counted and logged, and 'vigil verify' finds the same in a
// bundle. Not safe for concurrent use.
type ChainChecker struct {
	chains map[string]*pendingChain
}

type pendingChain struct {
	key    []byte
	next   uint64 // seq expected next
	prev   []byte // chain hash before next
	count  int    // observations since the last head
	broken bool   // a gap or a bad hash: skip to the next head
	failed bool   // the last batch did not check
}

// CheckResult is what Check found in one batch of observations.
type CheckResult struct {
	Signed   int     // observations under a signature that checked
	Batches  int     // signed heads that checked
	Unsigned int     // observations no sensor signed
	Failures []error // each signed head that did not check, and why
}

// NewChainChecker returns an empty ChainChecker.
func NewChainChecker() *ChainChecker { return &ChainChecker{chains: map[string]*pendingChain{}} }

// Check follows obs (in the order stored).
func (c *ChainChecker) Check(obs []observe.Observation) CheckResult {
	var r CheckResult
	for i := range obs {
		o := &obs[i]
		if !o.Signed() {
			r.Unsigned++
			continue
		}
		pc := c.chains[o.Chain.ID]
		if pc == nil || o.Chain.Seq != pc.next {
			// A chain seen first mid-way (ingest restarted), or a gap:
			// follow it from this observation's own prev.
			if pc != nil && !pc.broken {
				r.Failures = append(r.Failures, fmt.Errorf("chain %s: seq %d after %d: observations missing or out of order", o.Chain.ID, o.Chain.Seq, pc.next-1))
			}
			pc = &pendingChain{key: o.Chain.Key, next: o.Chain.Seq, prev: o.Chain.Prev}
			c.chains[o.Chain.ID] = pc
		}
		if pc.count == 0 && !bytes.Equal(o.Chain.Prev, pc.prev) {
			// A batch starts from the chain hash its sensor signed last;
			// after a batch that failed, follow the sensor's own word.
			if !pc.failed {
				r.Failures = append(r.Failures, fmt.Errorf("chain %s: seq %d does not follow the batch signed before it", o.Chain.ID, o.Chain.Seq))
			}
			pc.prev = o.Chain.Prev
		}
		// Ingest's gate (or a store that hashed a form 2 leaf) remembered
		// the sensor hash, and the gate that the transcript is the one
		// named: both hold while nothing they cover changed.
		h, transcriptChecked, err := o.KnownSensorHashChecked()
		if err != nil || !bytes.Equal(o.Chain.Prev, pc.prev) || !bytes.Equal(o.Chain.Key, pc.key) {
			pc.broken = true
		}
		if o.Chain.Form == observe.Form2 && !transcriptChecked {
			if err := form2Transcript(o); err != nil {
				pc.broken = true
				r.Failures = append(r.Failures, fmt.Errorf("chain %s: seq %d (observation %s, evidence form 2): %w", o.Chain.ID, o.Chain.Seq, o.ID, err))
			}
		}
		step := verify.ChainStep(pc.prev, h[:])
		pc.prev, pc.next = step[:], pc.next+1
		if pc.count++; pc.count > MaxPendingPerChain {
			pc.broken = true
		}
		if len(o.Chain.BatchSig) == 0 {
			continue
		}
		// (A key that is not an ed25519 public key signs nothing; Verify
		// would panic on it.)
		ok := !pc.broken && len(pc.key) == ed25519.PublicKeySize && ed25519.Verify(ed25519.PublicKey(pc.key), verify.BatchMessage(o.Chain.ID, o.Chain.Seq, pc.prev), o.Chain.BatchSig)
		pc.failed = !ok
		if ok {
			r.Batches++
			r.Signed += pc.count
		} else {
			r.Failures = append(r.Failures, fmt.Errorf("chain %s: the batch signed at seq %d does not check (observation %s): a field was changed after the sensor signed it, or the signature is not the key's", o.Chain.ID, o.Chain.Seq, o.ID))
		}
		pc.count, pc.broken = 0, false
	}
	return r
}

// form2Transcript checks what evidence form 2's sensor hash does not: it
// covers the transcript only through transcript_sha256, so the bytes must
// be those it names, and not be missing where it names some (unless
// transcript_ref says where they are kept).
func form2Transcript(o *observe.Observation) error {
	t := &o.Transcript
	switch {
	case len(t.Bytes) > 0:
		if sum := sha256.Sum256(t.Bytes); !bytes.Equal(sum[:], t.SHA256) {
			return fmt.Errorf("the transcript's SHA-256 is %x, not its transcript_sha256 %x", sum, t.SHA256)
		}
	case len(t.SHA256) > 0 && t.Ref == "":
		return fmt.Errorf("the transcript its transcript_sha256 %x names is missing", t.SHA256)
	}
	return nil
}
