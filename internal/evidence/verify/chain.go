package verify

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	tlog "github.com/transparency-dev/formats/log"
)

// ParseCheckpoint reads a checkpoint note's text (C2SP tlog-checkpoint:
// origin, size, base64 root hash, then extension lines) and checks that
// its origin is LogOrigin.
func ParseCheckpoint(text string) (tlog.Checkpoint, error) {
	var cp tlog.Checkpoint
	if _, err := cp.Unmarshal([]byte(text)); err != nil {
		return cp, err
	}
	if cp.Origin != LogOrigin {
		return cp, fmt.Errorf("origin %q, want %q", cp.Origin, LogOrigin)
	}
	if len(cp.Hash) != sha256.Size {
		return cp, fmt.Errorf("root of %d bytes, want %d", len(cp.Hash), sha256.Size)
	}
	return cp, nil
}

// ChainStep is one step of a sensor's hash chain: the chain hash after an
// observation whose sensor hash is leaf, given the chain hash before it
// (32 zero bytes before the first).
func ChainStep(prev, leaf []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(ChainContext))
	h.Write(prev)
	h.Write(leaf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// BatchMessage is what a sensor signs for a batch: the chain, the seq of
// its head and the head's chain hash.
func BatchMessage(chain string, seq uint64, head []byte) []byte {
	return fmt.Appendf(nil, "%s\nchain %s\nseq %d\nhead %x\n", BatchContext, chain, seq, head)
}

type chainPos struct {
	key, chain string
	seq        uint64
}

type chainEntry struct {
	leaf, prev string
}

// batches checks each batch's chain and signature, then that every
// observation that names a sensor key is in a checked batch, unchanged.
func (v *verifier) batches() {
	var bs []Batch
	if err := strictJSON(v.files[FileBatches], &bs); err != nil {
		v.rep.fail(FileBatches, "", "not the batches' JSON: %v", err)
		return
	}
	var keys Keys
	_ = strictJSON(v.files[FileKeys], &keys) // read and checked in keys()
	published := map[string]bool{}
	listed := map[string][]string{} // key → the sensors keys.json gives it
	for _, k := range keys.Sensors {
		published[k.PublicKey] = true
		listed[k.PublicKey] = append(listed[k.PublicKey], k.Sensor)
	}
	entries := map[chainPos]chainEntry{}
	for i, b := range bs {
		field := fmt.Sprintf("[%d]", i)
		pub, ok := sensorKey(b.SensorKey)
		if !ok {
			v.rep.fail(FileBatches, field+".sensor_key", "not a hex ed25519 public key")
			continue
		}
		if !published[b.SensorKey] {
			v.rep.fail(FileBatches, field+".sensor_key", "not among the sensor keys of %s", FileKeys)
			continue
		}
		if v.pinned != nil && !v.pinned[b.SensorKey] {
			v.rep.fail(FileBatches, field+".sensor_key", "%s is not among the sensor keys given: its batch covers nothing", b.SensorKey)
			continue
		}
		prev, err := hex.DecodeString(b.Prev)
		if err != nil || len(prev) != sha256.Size || len(b.Leaves) == 0 || b.FirstSeq == 0 {
			v.rep.fail(FileBatches, field, "prev, leaves or first_seq malformed")
			continue
		}
		local := map[chainPos]chainEntry{}
		bad := false
		for j, l := range b.Leaves {
			leaf, err := hex.DecodeString(l)
			if err != nil || len(leaf) != sha256.Size {
				v.rep.fail(FileBatches, fmt.Sprintf("%s.leaves[%d]", field, j), "not a hex SHA-256")
				bad = true
				break
			}
			local[chainPos{b.SensorKey, b.Chain, b.FirstSeq + uint64(j)}] = chainEntry{leaf: l, prev: hex.EncodeToString(prev)}
			next := ChainStep(prev, leaf)
			prev = next[:]
		}
		if bad {
			continue
		}
		if hex.EncodeToString(prev) != b.Head {
			v.rep.fail(FileBatches, field+".head", "the chain of leaves leads to %x, not %s", prev, b.Head)
			continue
		}
		sig, err := hex.DecodeString(b.Signature)
		head := b.FirstSeq + uint64(len(b.Leaves)) - 1
		if err != nil || !ed25519.Verify(pub, BatchMessage(b.Chain, head, prev), sig) {
			v.rep.fail(FileBatches, field+".signature", "not the sensor key's signature of chain %s up to seq %d", b.Chain, head)
			continue
		}
		if b.SignedFrom != 0 || len(b.Missing) > 0 {
			if !gapOK(b) {
				v.rep.fail(FileBatches, field+".signed_from", "%d with missing %v: want a seq before first_seq %d, and the missing seqs in order between", b.SignedFrom, b.Missing, b.FirstSeq)
				continue
			}
			v.rep.Gaps = append(v.rep.Gaps, Gap{Chain: b.Chain, SignedFrom: b.SignedFrom, FirstSeq: b.FirstSeq, Head: head, Missing: b.Missing})
		}
		for p, e := range local {
			entries[p] = e
		}
		v.rep.Batches++
	}
	signed := map[string]int{}
	for i := range v.obs {
		if v.signedBy(&v.obs[i], entries) && v.signedFor(&v.obs[i], listed) {
			signed[v.obs[i].sensorKey]++
		}
	}
	v.rep.SensorKeys = []SensorKeyUse{}
	for _, k := range keys.Sensors {
		if n := signed[k.PublicKey]; n > 0 {
			v.rep.SensorKeys = append(v.rep.SensorKeys, SensorKeyUse{Sensor: k.Sensor, PublicKey: k.PublicKey, FirstSeen: k.FirstSeen, Observations: n})
			delete(signed, k.PublicKey) // a key listed twice is counted once
		}
	}
}

// gapOK reports whether b's SignedFrom and Missing say a gap: SignedFrom
// before FirstSeq, and one or more missing seqs, in order, from
// SignedFrom to FirstSeq-1.
func gapOK(b Batch) bool {
	if b.SignedFrom == 0 || b.SignedFrom >= b.FirstSeq || len(b.Missing) == 0 {
		return false
	}
	last := b.SignedFrom - 1
	for _, m := range b.Missing {
		if m <= last || m >= b.FirstSeq {
			return false
		}
		last = m
	}
	return true
}

// signedBy checks that o is the observation its sensor signed, and
// reports whether it is.
func (v *verifier) signedBy(o *observation, entries map[chainPos]chainEntry) bool {
	if o.sensorKey == "" {
		// Not a failure: the report counts it, and says that such an
		// observation is not sensor evidence (imports, and observations
		// stored before sensors signed their batches).
		v.rep.Unsigned++
		if o.signatureFailed {
			v.rep.SignatureFailed++
		}
		return false
	}
	e, ok := entries[chainPos{o.sensorKey, o.chain, o.chainSeq}]
	switch {
	case !ok:
		v.rep.fail(FileObservations, o.field("chain_seq"), "no checked batch of %s covers sensor key %.16s…, chain %s, seq %d", FileBatches, o.sensorKey, o.chain, o.chainSeq)
	case e.leaf != hex.EncodeToString(o.sensorHash[:]):
		v.rep.fail(FileObservations, o.field(""), "the sensor signed another content (its hash %s, this line's in evidence form %d %x): a field the sensor wrote was changed", e.leaf, o.form, o.sensorHash)
	case e.prev != o.chainPrev:
		v.rep.fail(FileObservations, o.field("chain_prev"), "%s, the batch's chain has %s", o.chainPrev, e.prev)
	default:
		v.rep.Signed++
		return true
	}
	return false
}

// signedFor checks that the sensor o names is one its key signs for:
// one the caller bound the key to (Options.SensorNames), and one keys.json
// lists with the key (the store records the sensor of each chain under
// its key: a chain of one sensor whose observations name another was not
// signed as the sensor keys.json names). A sensor's signature checking
// says which key signed, not which sensor holds the key.
func (v *verifier) signedFor(o *observation, listed map[string][]string) bool {
	if ns, ok := v.pinnedNames[o.sensorKey]; ok && !slices.Contains(ns, o.sensor) {
		v.rep.fail(FileObservations, o.field("sensor"), "%q, but its sensor key %.16s… is given (--sensor-keys) for sensor %s only: another sensor signed it in that sensor's name", o.sensor, o.sensorKey, quoteNames(ns))
		return false
	}
	if ns := listed[o.sensorKey]; !slices.Contains(ns, o.sensor) && !slices.Contains(ns, PurgedSensor) {
		v.rep.fail(FileObservations, o.field("sensor"), "%q, but %s lists its sensor key %.16s… for sensor %s only", o.sensor, FileKeys, o.sensorKey, quoteNames(ns))
		return false
	}
	return true
}

// PurgedSensor is the sensor keys.json names for a chain whose first
// observation was purged under retention before the store recorded its
// sensor (PostgreSQL migration 0016; the stores' PurgedSensor): its
// sensor is not known, so such an entry binds its key to no name and
// signedFor accepts any name under it.
const PurgedSensor = "(first observation purged under retention)"

// quoteNames is names quoted, joined with " or ".
func quoteNames(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, " or ")
}

func hasMark(marks []string, m string) bool {
	for _, x := range marks {
		if strings.EqualFold(x, m) {
			return x == m
		}
	}
	return false
}
