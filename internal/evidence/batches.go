package evidence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// batchesOf returns the signed sensor batches that hold the signed
// observations among obs: each from the observation after the previous
// signed head to its own head, with the sensor hash of every observation
// in it (hashes only: the other observations' content stays out of the
// bundle).
// ChainPurger is a store that says how many observations of a sensor
// batch a retention purge touched (both stores).
type ChainPurger interface {
	ChainPurged(ctx context.Context, chain string, first, head uint64) (int, error)
}

// ErrBatchPurged: a bundle needs a sensor batch an observation of which
// was purged under retention.
var ErrBatchPurged = errors.New("sensor batch purged in part under retention")

// ErrBatchIncomplete: a bundle needs a sensor batch whose chain cannot be
// rebuilt from the observation it needs to the signed head, because a
// position between them is missing from the store's chain (an
// observation the store refused at ingest, store.RefusedError; one that
// never reached it; one ingest stored marked signature_failed; or one
// deleted after it was stored: the store's observations are not
// append-only, its log is).
var ErrBatchIncomplete = errors.New("sensor batch incomplete in the store")

func batchesOf(ctx context.Context, ls LogStore, obs []*observe.Observation) ([]verify.Batch, error) {
	type span struct {
		chain       string
		first, head uint64
	}
	done := map[span]bool{}
	var out []verify.Batch
	for _, o := range obs {
		if !o.Signed() {
			continue
		}
		first, head, err := ls.ChainBatch(ctx, o.Chain.ID, o.Chain.Seq)
		if errors.Is(err, store.ErrNotFound) {
			err = headPurged(ctx, ls, o, err)
		}
		if err != nil {
			return nil, fmt.Errorf("observation %s: %w", o.ID, err)
		}
		sp := span{o.Chain.ID, first, head}
		if done[sp] {
			continue
		}
		done[sp] = true
		if cp, ok := ls.(ChainPurger); ok {
			n, err := cp.ChainPurged(ctx, o.Chain.ID, first, head)
			if err != nil {
				return nil, fmt.Errorf("observation %s: %w", o.ID, err)
			}
			if n > 0 {
				return nil, fmt.Errorf("observation %s: %w: its sensor's signed batch (chain %s, seqs %d to %d) holds %d observations whose transcript or row was purged under retention, so the batch's chain of sensor hashes cannot be rebuilt and its signature cannot be checked", o.ID, ErrBatchPurged, o.Chain.ID, first, head, n)
			}
		}
		b, prev, err := chainBatch(ctx, ls, o, first, head)
		if err != nil {
			return nil, fmt.Errorf("observation %s: %w", o.ID, err)
		}
		b.Head = hex.EncodeToString(prev)
		out = append(out, b)
	}
	return out, nil
}

// headPurged is the error for a signed observation whose batch's signed
// head is not stored (notFound): ErrBatchPurged when observations of its
// chain at or after its seq were purged under retention (the head among
// them: ingest stores no signed observation before its head), else
// notFound.
func headPurged(ctx context.Context, ls LogStore, o *observe.Observation, notFound error) error {
	cp, ok := ls.(ChainPurger)
	if !ok {
		return notFound
	}
	n, err := cp.ChainPurged(ctx, o.Chain.ID, o.Chain.Seq, math.MaxInt64)
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return fmt.Errorf("%w: its sensor's signed batch (chain %s, from seq %d) has no signed head stored, and %d observations of the chain from seq %d on were purged under retention, the head among them, so the batch's signature cannot be checked", ErrBatchPurged, o.Chain.ID, o.Chain.Seq, n, o.Chain.Seq)
}

// sensorKeys lists every sensor key the log has seen.
func sensorKeys(ctx context.Context, ls LogStore) ([]verify.SensorKey, error) {
	ks, err := ls.SensorKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]verify.SensorKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, verify.SensorKey{Sensor: k.Sensor, PublicKey: hex.EncodeToString(k.Key), FirstSeen: k.FirstSeen.Format(time.RFC3339)})
	}
	return out, nil
}

// chainBatch reads the batch of o, first to head, with the sensor hash of
// each observation, and returns it with the chain hash at its head. Where
// a position of the batch before o is not in the store's chain (ingest
// stored the start of a batch marked signature_failed, with no chain
// fields, or the store refused an observation of it), the batch starts
// at the first stored observation from which the chain runs unbroken to
// the head: the sensor's signature covers that run, whose chain_prev is
// where it starts. The batch then says where its sensor's batch began
// (SignedFrom) and which positions the store lacks (Missing), and 'vigil
// verify' reports them. When no run reaches o, ErrBatchIncomplete names
// the positions missing.
func chainBatch(ctx context.Context, ls LogStore, o *observe.Observation, first, head uint64) (verify.Batch, []byte, error) {
	var err error
	var missing []uint64
	for f := first; f <= o.Chain.Seq; f++ {
		b := verify.Batch{SensorKey: hex.EncodeToString(o.Chain.Key), Chain: o.Chain.ID, FirstSeq: f}
		var prev []byte
		err = ls.ChainObservations(ctx, o.Chain.ID, f, head, func(c *observe.Observation) error {
			if c.Chain.Seq == f {
				prev = c.Chain.Prev
				b.Prev = hex.EncodeToString(prev)
			}
			h, err := SensorHash(c)
			if err != nil {
				return err
			}
			b.Leaves = append(b.Leaves, hex.EncodeToString(h[:]))
			next := verify.ChainStep(prev, h[:])
			prev = next[:]
			if c.Chain.Seq == head {
				b.Signature = hex.EncodeToString(c.Chain.BatchSig)
			}
			return nil
		})
		if err == nil {
			if f > first {
				b.SignedFrom, b.Missing = first, missing
			}
			return b, prev, nil
		}
		var gap *store.ChainGapError
		if !errors.As(err, &gap) {
			return verify.Batch{}, nil, err
		}
		if len(missing) == 0 || missing[len(missing)-1] != gap.Seq {
			missing = append(missing, gap.Seq)
		}
	}
	return verify.Batch{}, nil, fmt.Errorf("%w: chain %s: seq %s of its sensor's signed batch (seqs %d to %d) not in the store (refused at ingest, which logs each refusal with its chain and seq; never received; stored marked signature_failed; or deleted after it was stored), so the chain from seq %d to the signed head cannot be rebuilt and its signature cannot be checked",
		ErrBatchIncomplete, o.Chain.ID, seqList(missing), first, head, o.Chain.Seq)
}

// seqList is seqs as text: "6", "6, 7 and 9".
func seqList(seqs []uint64) string {
	var b strings.Builder
	for i, s := range seqs {
		switch {
		case i == 0:
		case i == len(seqs)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatUint(s, 10))
	}
	return b.String()
}
