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
	Broken      *Break `json:"broken,omitempty"` // nil: the chain is unbroken
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

// Verify walks the whole chain and reports the first break. With a public
// key, it also checks each checkpoint's signature and that the chain still
// holds the checkpointed record, unchanged. An error is a failure to read,
// not a break.
func Verify(ctx context.Context, st Store, checkpoints []Checkpoint, pub ed25519.PublicKey) (Report, error) {
	var rep Report
	want := map[int64][]byte{}
	var maxCP int64
	if pub != nil {
		kid := KeyID(pub)
		for i := range checkpoints {
			c := &checkpoints[i]
			if c.KeyID != kid || !ed25519.Verify(pub, checkpointMessage(c), c.Sig) {
				rep.Broken = &Break{Seq: c.Seq, Kind: BreakCheckpoint,
					Reason: fmt.Sprintf("the checkpoint of %s for seq %d does not verify with key %s", c.Time.Format(time.RFC3339), c.Seq, kid)}
				return rep, nil
			}
			want[c.Seq] = c.Hash
			maxCP = max(maxCP, c.Seq)
			rep.Checkpoints++
		}
	}
	expect := int64(1)
	var prev []byte
	err := st.AuditRecords(ctx, Filter{}, func(r Record) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case r.Seq > expect:
			rep.Broken = &Break{Seq: expect, Kind: BreakDeleted,
				Reason: fmt.Sprintf("records %d to %d are missing (the next present is %d)", expect, r.Seq-1, r.Seq)}
		case r.Seq < expect:
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakUnchained, Reason: fmt.Sprintf("seq %d appears again after %d", r.Seq, expect-1)}
		case !bytes.Equal(ComputeHash(&r), r.Hash):
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakChanged,
				Reason: fmt.Sprintf("the %s record of %s no longer matches its hash: a field was changed after it was written",
					r.Action, r.Time.UTC().Format(time.RFC3339Nano))}
		case !bytes.Equal(r.PrevHash, prev):
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakUnchained,
				Reason: fmt.Sprintf("it does not chain onto record %d: a record was inserted, replaced or removed before it", r.Seq-1)}
		}
		if h, ok := want[r.Seq]; ok && rep.Broken == nil && !bytes.Equal(h, r.Hash) {
			rep.Broken = &Break{Seq: r.Seq, Kind: BreakCheckpoint,
				Reason: "the record differs from the signed checkpoint: the chain was rewritten from here or before"}
		}
		if rep.Broken != nil {
			return errStop
		}
		rep.Records++
		rep.HeadSeq, rep.HeadHash = r.Seq, hex.EncodeToString(r.Hash)
		prev = r.Hash
		expect = r.Seq + 1
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	if rep.Broken == nil && maxCP > rep.HeadSeq {
		rep.Broken = &Break{Seq: rep.HeadSeq + 1, Kind: BreakTruncated,
			Reason: fmt.Sprintf("a signed checkpoint names record %d but the chain ends at %d: records were cut off", maxCP, rep.HeadSeq)}
	}
	return rep, nil
}

var errStop = errors.New("stop")
