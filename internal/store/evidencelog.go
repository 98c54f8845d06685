package store

import (
	"context"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
)

// LogCheckpoint is one signed checkpoint of the evidence log.
type LogCheckpoint struct {
	Size uint64
	Root []byte
	Time time.Time
	Note []byte // the signed note (C2SP tlog-checkpoint) as witnessed
}

// LogStore is the store's part of the evidence log (internal/evidence),
// an append-only RFC 6962 Merkle log of every stored observation. A store
// that keeps it appends, in the transaction of InsertObservations, one
// leaf for each observation it stores, in the order stored: the
// observation's LeafHash (observe.Observation.LeafHash, of the row as it
// will read back); an observation skipped because its id is stored
// already appends nothing. Leaves are never changed or removed, also when
// the observation is purged. storetest.RunLogStore is its contract; both
// stores keep it.
type LogStore interface {
	// LogSize is the number of leaves.
	LogSize(ctx context.Context) (uint64, error)
	// LogLeaves calls fn with the leaves of indexes [from, to) in order.
	LogLeaves(ctx context.Context, from, to uint64, fn func(i uint64, leaf []byte) error) error
	// LogIndexes returns the leaf index of each id that has one.
	LogIndexes(ctx context.Context, ids []string) (map[string]uint64, error)
	// AddLogCheckpoint stores a signed checkpoint (a log that did not grow
	// may be signed again, at another time).
	AddLogCheckpoint(ctx context.Context, c LogCheckpoint) error
	// LogCheckpoints returns the stored checkpoints, smallest first, then
	// oldest first.
	LogCheckpoints(ctx context.Context) ([]LogCheckpoint, error)
	// ObservationsByID calls fn for each observation of ids, in the order
	// of ids; ErrNotFound (wrapped) for one not stored.
	ObservationsByID(ctx context.Context, ids []string, fn func(o *observe.Observation) error) error

	// ChainBatch returns the seqs of the first and last observation of
	// the signed batch of chain that holds seq: from the one after the
	// previous signed head to the first signed head at or after seq.
	// ErrNotFound (wrapped) when that head is not stored.
	ChainBatch(ctx context.Context, chain string, seq uint64) (first, head uint64, err error)
	// ChainObservations calls fn for the observations of chain with seqs
	// first..head, in seq order; a *ChainGapError naming the first one
	// missing.
	ChainObservations(ctx context.Context, chain string, first, head uint64, fn func(o *observe.Observation) error) error
	// SensorKeys returns every sensor key the log holds observations of,
	// with the sensor that used it and when first seen, oldest first.
	SensorKeys(ctx context.Context) ([]SensorKey, error)
}

// SensorKey is a sensor's public key as the log has seen it used.
type SensorKey struct {
	Key       []byte // ed25519 public key
	Sensor    string
	FirstSeen time.Time
}
