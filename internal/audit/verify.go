package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Kinds of break that Verify reports.
const (
	BreakChanged    = "changed"    // a record's fields no longer match its hash
	BreakDeleted    = "deleted"    // sequence numbers are missing
	BreakUnchained  = "unchained"  // a record does not chain onto the one before (inserted, replaced or reordered)
	BreakTruncated  = "truncated"  // a signed checkpoint names a record that is gone
	BreakCheckpoint = "checkpoint" // a checkpoint's signature is bad, or it disagrees with the chain
	// BreakCheckpointGone: the witness holds a checkpoint the store no
	// longer has (checkpoints are append-only: it was deleted).
	BreakCheckpointGone = "checkpoint_deleted"
)

// Break is the first place where the chain does not hold.
type Break struct {
	Seq    int64  `json:"seq"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

func (b *Break) Error() string {
	return fmt.Sprintf("audit trail broken at seq %d (%s): %s", b.Seq, b.Kind, b.Reason)
}

// Report is the result of Verify.
type Report struct {
	Records     int64  `json:"records"`
	HeadSeq     int64  `json:"head_seq"`
	HeadHash    string `json:"head_hash"` // hex
	Checkpoints int    `json:"checkpoints_checked"`
	// WitnessCheckpoints is how many checkpoints of the witness were
	// compared with the chain and the store's checkpoints.
	WitnessCheckpoints int `json:"witness_checkpoints_checked"`
	// Signed says whether checkpoint signatures were checked (a public
	// key was given); without, checkpoints are compared but could have
	// been forged by whoever wrote them.
	Signed bool `json:"signatures_checked"`
	// LastGood is the last record that still verifies: every record up to
	// it is present, unchanged and chained (with Broken nil, the head).
	LastGood int64  `json:"last_good_seq"`
	Broken   *Break `json:"broken,omitempty"` // nil: the chain is unbroken
}

// Checkpoint is a signed statement that the chain's record Seq had hash
// Hash at Time.
type Checkpoint struct {
	Seq   int64     `json:"seq"`
	Hash  []byte    `json:"hash"`
	Time  time.Time `json:"time"`
	KeyID string    `json:"key_id"` // hex of the first 8 bytes of SHA-256 of the public key
	Sig   []byte    `json:"sig"`
}

// CheckpointStore keeps checkpoints (append only, like the trail).
type CheckpointStore interface {
	AddAuditCheckpoint(ctx context.Context, c Checkpoint) error
	AuditCheckpoints(ctx context.Context) ([]Checkpoint, error)
}

// KeyID names a public key in checkpoints.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

func checkpointMessage(c *Checkpoint) []byte {
	var b bytes.Buffer
	b.WriteString("vigil-audit-checkpoint-v1\x00")
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(c.Seq))
	b.Write(n[:])
	binary.BigEndian.PutUint64(n[:], uint64(c.Time.UnixNano()))
	b.Write(n[:])
	b.Write(c.Hash)
	return b.Bytes()
}

// ErrEmpty is returned by MakeCheckpoint when the trail has no record yet.
var ErrEmpty = errors.New("the audit trail is empty")

// MakeCheckpoint signs the current head of the chain with key and stores
// the checkpoint.
func MakeCheckpoint(ctx context.Context, st Store, cs CheckpointStore, key ed25519.PrivateKey, now time.Time) (Checkpoint, error) {
	var head *Record
	err := st.AuditRecords(ctx, Filter{Desc: true, Limit: 1}, func(r Record) error { head = &r; return nil })
	if err != nil {
		return Checkpoint{}, err
	}
	if head == nil {
		return Checkpoint{}, ErrEmpty
	}
	c := Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: now.UTC(), KeyID: KeyID(key.Public().(ed25519.PublicKey))}
	c.Sig = ed25519.Sign(key, checkpointMessage(&c))
	if err := cs.AddAuditCheckpoint(ctx, c); err != nil {
		return Checkpoint{}, fmt.Errorf("audit checkpoint at seq %d: %w", c.Seq, err)
	}
	return c, nil
}

// Verify walks the whole chain and reports the first break; see
// VerifyWith. checkpoints are the store's.
func Verify(ctx context.Context, st Store, checkpoints []Checkpoint, pub ed25519.PublicKey) (Report, error) {
	return VerifyWith(ctx, st, VerifyOptions{Checkpoints: checkpoints, Pub: pub})
}

// VerifyOptions is what VerifyWith checks the chain against.
type VerifyOptions struct {
	// Checkpoints are the store's checkpoints.
	Checkpoints []Checkpoint
	// Witness are the checkpoints a witness holds (ReadWitness), nil
	// without a witness.
	Witness []Checkpoint
	// Pub is the checkpoint signer's public key. With it, every store
	// checkpoint's signature is checked (Witness must have been read with
	// it too); without, checkpoints are compared unauthenticated.
	Pub ed25519.PublicKey
}

// VerifyWith walks the whole chain and reports the first break: a record
// changed, missing, inserted or reordered; a record that differs from a
// checkpoint (the store's or the witness's); a checkpoint naming a record
// past the chain's end (the tail was cut); and, with a witness, a
// checkpoint the witness holds that the store no longer has (deleted). An
// error is a failure to read, not a break.
func VerifyWith(ctx context.Context, st Store, o VerifyOptions) (Report, error) {
	var rep Report
	rep.Signed = o.Pub != nil
	type expect struct {
		hash []byte
		from string
	}
	want := map[int64][]expect{}
	var maxCP int64
	var maxFrom string
	add := func(c *Checkpoint, from string) {
		want[c.Seq] = append(want[c.Seq], expect{c.Hash, from})
		if c.Seq > maxCP {
			maxCP, maxFrom = c.Seq, from
		}
	}
	for i := range o.Checkpoints {
		c := &o.Checkpoints[i]
		if o.Pub != nil {
			kid := KeyID(o.Pub)
			if c.KeyID != kid || !ed25519.Verify(o.Pub, checkpointMessage(c), c.Sig) {
				rep.Broken = &Break{Seq: c.Seq, Kind: BreakCheckpoint,
					Reason: fmt.Sprintf("the checkpoint of %s for seq %d does not verify with key %s", c.Time.Format(time.RFC3339), c.Seq, kid)}
				return rep, nil
			}
		}
		add(c, fmt.Sprintf("the store's checkpoint of %s", c.Time.UTC().Format(time.RFC3339)))
		rep.Checkpoints++
	}
	for i := range o.Witness {
		c := &o.Witness[i]
		add(c, fmt.Sprintf("the witness's checkpoint of %s", c.Time.UTC().Format(time.RFC3339)))
		rep.WitnessCheckpoints++
	}
	next := int64(1)
	var prev []byte
	var lastCP int64 // the last record a checkpoint vouched for
	err := st.AuditRecords(ctx, Filter{}, func(r Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case r.Seq > next:
			rep.Broken = &Break{Seq: next, Kind: BreakDeleted,
				Reason: fmt.Sprintf("records %d to %d are missing (the next present is %d)", next, r.Seq-1, r.Seq)}
		case r.Seq < next:
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakUnchained, Reason: fmt.Sprintf("seq %d appears again after %d", r.Seq, next-1)}
		case !bytes.Equal(ComputeHash(&r), r.Hash):
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakChanged,
				Reason: fmt.Sprintf("the %s record of %s no longer matches its hash: a field was changed after it was written",
					r.Action, r.Time.UTC().Format(time.RFC3339Nano))}
		case !bytes.Equal(r.PrevHash, prev):
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakUnchained,
				Reason: fmt.Sprintf("it does not chain onto record %d: a record was inserted, replaced or removed before it", r.Seq-1)}
		}
		if rep.Broken == nil {
			for _, e := range want[r.Seq] {
				if !bytes.Equal(e.hash, r.Hash) {
					rep.Broken = &Break{Seq: r.Seq, Kind: BreakCheckpoint,
						Reason: fmt.Sprintf("the record differs from %s: the chain was rewritten after record %d (the last a checkpoint vouches for) and up to here",
							e.from, lastCP)}
					break
				}
			}
			if len(want[r.Seq]) > 0 && rep.Broken == nil {
				lastCP = r.Seq
			}
		}
		if rep.Broken != nil {
			return errStop
		}
		rep.Records++
		rep.HeadSeq, rep.HeadHash = r.Seq, hex.EncodeToString(r.Hash)
		prev = r.Hash
		next = r.Seq + 1
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	rep.LastGood = rep.HeadSeq
	if rep.Broken != nil {
		rep.LastGood = min(rep.HeadSeq, rep.Broken.Seq-1)
		if rep.Broken.Kind == BreakCheckpoint {
			// The chain before the break holds together, but was rewritten
			// somewhere after the last checkpoint that still matches.
			rep.LastGood = lastCP
		}
		return rep, nil
	}
	if maxCP > rep.HeadSeq {
		rep.Broken = &Break{Seq: rep.HeadSeq + 1, Kind: BreakTruncated,
			Reason: fmt.Sprintf("%s names record %d but the chain ends at %d: records %d to %d (at least) were cut off; record %d is the last that verifies",
				maxFrom, maxCP, rep.HeadSeq, rep.HeadSeq+1, maxCP, rep.HeadSeq)}
		return rep, nil
	}
	// Checkpoints are append-only too: one the witness holds and the
	// store lacks was deleted.
	have := map[int64][][]byte{}
	for _, c := range o.Checkpoints {
		have[c.Seq] = append(have[c.Seq], c.Hash)
	}
	for _, c := range o.Witness {
		found := false
		for _, h := range have[c.Seq] {
			found = found || bytes.Equal(h, c.Hash)
		}
		if !found {
			rep.Broken = &Break{Seq: c.Seq, Kind: BreakCheckpointGone,
				Reason: fmt.Sprintf("the witness holds a checkpoint of %s for record %d that the store no longer has: checkpoints were deleted",
					c.Time.UTC().Format(time.RFC3339), c.Seq)}
			return rep, nil
		}
	}
	return rep, nil
}

var errStop = errors.New("stop")
