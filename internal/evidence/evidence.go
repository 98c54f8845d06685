// Package evidence keeps what backs an observation once it leaves the
// sensor: the evidence log (an append-only RFC 6962 Merkle log of every
// stored observation, whose leaves the store appends in the transaction
// that stores the observations), its signed checkpoints (C2SP
// tlog-checkpoint notes, also handed to a witness outside the store), and
// bundles: a target's observations with their inclusion proofs, the keys,
// the watch-list entries matched, the links and the ISP annex, which
// internal/evidence/verify checks with nothing but the bundle.
//
// It must never rewrite or drop a leaf, sign a checkpoint over leaves (or
// a NodeStore's subtree hashes of them) it did not read, or put into a
// bundle an observation whose stored form no longer hashes to its leaf.
package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/store"
)

// Checkpoint is one signed checkpoint of the log.
type Checkpoint = store.LogCheckpoint

// LogStore is the store's part of the log (store.LogStore).
type LogStore = store.LogStore

var hasher = rfc6962.DefaultHasher

// ErrNoCheckpoint is returned when a bundle would need a checkpoint that
// does not cover its observations yet.
var ErrNoCheckpoint = errors.New("no signed checkpoint covers the observations yet")

// Signer returns the signed-note signer of key under verify.LogKeyName.
func Signer(key ed25519.PrivateKey) (note.Signer, error) {
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	// vkey is name+hash+base64(alg, key); the signer key is
	// PRIVATE+KEY+name+hash+base64(alg, seed).
	parts := strings.Split(vkey, "+")
	skey := "PRIVATE+KEY+" + verify.LogKeyName + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	return note.NewSigner(skey)
}

// VerifierKey is the log key's signed-note verifier key, as keys.json and
// 'vigil verify --log-key' give it.
func VerifierKey(pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(verify.LogKeyName, pub)
}

// LoadOrCreateKey reads the hex ed25519 seed in path, or makes one (0600,
// in a 0700 folder) when the file does not exist.
func LoadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		if _, err := f.WriteString(hex.EncodeToString(seed) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key %s: want %d bytes in hex", path, ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Root computes the log's root over its first size leaves, reading them
// from the store.
func Root(ctx context.Context, ls LogStore, size uint64) ([]byte, error) {
	root, _, err := roots(ctx, ls, size, 0)
	return root, err
}

// NodeStore is a LogStore that keeps the hashes of subtrees rather than
// each leaf (the PostgreSQL store's evidence_tiles, whose leaves it hashes
// again from the observations when asked): roots and proofs are computed
// from its nodes, and from leaves only inside the subtrees a proof goes
// into.
type NodeStore interface {
	// LogNodes calls fn, left to right, with hashes that cover the leaves
	// [from, to) exactly: each the RFC 6962 hash of the subtree of
	// 2^level leaves from index<<level (a leaf at level 0).
	LogNodes(ctx context.Context, from, to uint64, fn func(level uint, index uint64, hash []byte) error) error
}

var factory = &compact.RangeFactory{Hash: hasher.HashChildren}

// appendLog appends the leaves [rng.End(), to) to rng, reporting every
// node it makes or is given to visit (when not nil): from ls' nodes when
// it is a NodeStore, else from its leaves.
func appendLog(ctx context.Context, ls LogStore, rng *compact.Range, to uint64, visit compact.VisitFn) error {
	ns, ok := ls.(NodeStore)
	if !ok {
		return ls.LogLeaves(ctx, rng.End(), to, func(_ uint64, leaf []byte) error { return rng.Append(leaf, visit) })
	}
	return ns.LogNodes(ctx, rng.End(), to, func(level uint, index uint64, hash []byte) error {
		if level == 0 {
			return rng.Append(hash, visit)
		}
		n, err := factory.NewRange(index<<level, (index+1)<<level, [][]byte{hash})
		if err != nil {
			return err
		}
		if visit != nil {
			visit(compact.NewNodeID(level, index), hash)
		}
		return rng.AppendRange(n, visit)
	})
}

// roots computes the root over the first size leaves and, on the way, the
// root over the first at leaves (nil when at is 0 or above size).
func roots(ctx context.Context, ls LogStore, size, at uint64) (root, atRoot []byte, err error) {
	rng := factory.NewEmptyRange(0)
	if at > 0 && at < size {
		if err := appendLog(ctx, ls, rng, at, nil); err != nil {
			return nil, nil, err
		}
		if rng.End() != at {
			return nil, nil, fmt.Errorf("evidence log: read %d leaves, want %d", rng.End(), at)
		}
		if atRoot, err = rng.GetRootHash(nil); err != nil {
			return nil, nil, err
		}
	}
	if err := appendLog(ctx, ls, rng, size, nil); err != nil {
		return nil, nil, err
	}
	if rng.End() != size {
		return nil, nil, fmt.Errorf("evidence log: read %d leaves, want %d", rng.End(), size)
	}
	if size == 0 {
		return hasher.EmptyRoot(), nil, nil
	}
	root, err = rng.GetRootHash(nil)
	return root, atRoot, err
}

// ErrLogChanged is returned when the log's leaves no longer give the root
// of a checkpoint signed before: leaves were changed or removed.
var ErrLogChanged = errors.New("the evidence log was changed")

// CheckpointNote is the signed note of a checkpoint of size leaves with
// root, made at t.
func CheckpointNote(size uint64, root []byte, t time.Time, key ed25519.PrivateKey) ([]byte, error) {
	s, err := Signer(key)
	if err != nil {
		return nil, err
	}
	text := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", verify.LogOrigin, size, base64.StdEncoding.EncodeToString(root),
		t.UTC().Format(time.RFC3339Nano))
	return note.Sign(&note.Note{Text: text}, s)
}

// lastSigned returns the stored checkpoint of the largest size (the
// zero Checkpoint when there is none), after checking that every stored
// checkpoint's size and root are what its note says under key's
// signature: the rows are in the store, where an insider could add one
// whose root is that of a log they rewrote (no trigger stops an INSERT,
// and the note cannot be signed without the key, so they would copy an
// old one). ErrLogChanged otherwise.
func lastSigned(cps []Checkpoint, key ed25519.PrivateKey) (Checkpoint, error) {
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return Checkpoint{}, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, err
	}
	var last Checkpoint
	for _, c := range cps {
		n, err := note.Open(c.Note, note.VerifierList(v))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("%w: the checkpoint stored at size %d (%s) is not signed by the log's key: %v", ErrLogChanged, c.Size, c.Time.Format(time.RFC3339), err)
		}
		sc, err := verify.ParseCheckpoint(n.Text)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("%w: the checkpoint stored at size %d (%s): %v", ErrLogChanged, c.Size, c.Time.Format(time.RFC3339), err)
		}
		if sc.Size != c.Size || !bytes.Equal(sc.Hash, c.Root) {
			return Checkpoint{}, fmt.Errorf("%w: the checkpoint stored at size %d (%s) says root %x, its signed note size %d and root %x", ErrLogChanged, c.Size, c.Time.Format(time.RFC3339), c.Root, sc.Size, sc.Hash)
		}
		if c.Size >= last.Size {
			last = c
		}
	}
	return last, nil
}

// checkWitnessed compares the log (size leaves) with the largest
// checkpoint each WitnessReader among ws holds: the store's checkpoints
// can be deleted by whoever rewrote its leaves, the witness's cannot. A
// witness's checkpoint the log does not match is ErrLogChanged (nothing
// is signed). The witnesses are then compared with one another: one
// whose largest checkpoint is smaller than another's, or than the
// store's last (each was handed every checkpoint), rolled back or lost
// notes; that is returned apart (behind), to be reported once the new
// checkpoint is signed and handed to every witness.
func checkWitnessed(ctx context.Context, ls LogStore, key ed25519.PrivateKey, size uint64, last Checkpoint, ws []Witness) (behind, err error) {
	type held struct {
		w   Witness
		top Checkpoint
	}
	var tops []held
	for _, w := range ws {
		wr, ok := w.(WitnessReader)
		if !ok {
			continue
		}
		notes, err := wr.Notes(ctx)
		if err != nil {
			return nil, fmt.Errorf("evidence log: reading %s: %w", w, err)
		}
		cps, err := WitnessedCheckpoints(notes, key)
		if err != nil {
			return nil, err
		}
		var top Checkpoint
		for _, c := range cps {
			if c.Size > top.Size {
				top = c
			}
		}
		tops = append(tops, held{w, top})
		if top.Size == 0 {
			continue
		}
		if top.Size > size {
			return nil, fmt.Errorf("%w: %d leaves, %s holds a checkpoint of %d (or it is another store's witness: give each store its own key folder)", ErrLogChanged, size, w, top.Size)
		}
		root, err := Root(ctx, ls, top.Size)
		if err != nil {
			return nil, err
		}
		for _, c := range cps {
			// Every note of that size: two roots at one size is a fork.
			if c.Size == top.Size && !bytes.Equal(root, c.Root) {
				return nil, fmt.Errorf("%w: its first %d leaves give root %x, the checkpoint %s holds says %x (or it is another store's witness: give each store its own key folder)", ErrLogChanged, top.Size, root, w, c.Root)
			}
		}
	}
	most, from := last.Size, "the store's checkpoints"
	for _, h := range tops {
		if h.top.Size > most {
			most, from = h.top.Size, h.w.String()
		}
	}
	var errs []error
	for _, h := range tops {
		if h.top.Size < most {
			errs = append(errs, fmt.Errorf("%s holds checkpoints up to %d leaves, %s up to %d: it rolled back or lost notes (or a checkpoint was never handed to it: see the log)", h.w, h.top.Size, from, most))
		}
	}
	return errors.Join(errs...), nil
}

// Witness takes copies of checkpoint notes outside the store
// (audit.FileWitness and audit.HTTPWitness are ones).
type Witness interface {
	Witness(ctx context.Context, note []byte) error
	String() string
}

// MakeCheckpoint signs the log's current head, after checking that the
// leaves still give the root of the last checkpoint signed (ErrLogChanged
// otherwise: nothing is signed), stores the checkpoint, then
// hands its note to every witness (a witness never holds a checkpoint the
// store lacks). A log that did not grow since the last checkpoint is
// signed again (a fresh time), so that on-demand checkpoints always
// answer. The witnesses' errors are returned joined, with the checkpoint.
func MakeCheckpoint(ctx context.Context, ls LogStore, key ed25519.PrivateKey, now time.Time, ws ...Witness) (Checkpoint, error) {
	size, err := ls.LogSize(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	cps, err := ls.LogCheckpoints(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	last, err := lastSigned(cps, key)
	if err != nil {
		return Checkpoint{}, err
	}
	behind, err := checkWitnessed(ctx, ls, key, size, last, ws)
	if err != nil {
		return Checkpoint{}, err
	}
	if last.Size > size {
		return Checkpoint{}, fmt.Errorf("%w: %d leaves, the checkpoint signed %s had %d", ErrLogChanged, size, last.Time.Format(time.RFC3339), last.Size)
	}
	root, lastRoot, err := roots(ctx, ls, size, last.Size)
	if err != nil {
		return Checkpoint{}, err
	}
	if last.Size == size {
		lastRoot = root
	}
	// Never sign over a log whose older part is not what was signed.
	if last.Size > 0 && !bytes.Equal(lastRoot, last.Root) {
		return Checkpoint{}, fmt.Errorf("%w: its first %d leaves give root %x, the checkpoint signed %s says %x", ErrLogChanged, last.Size, lastRoot, last.Time.Format(time.RFC3339), last.Root)
	}
	n, err := CheckpointNote(size, root, now, key)
	if err != nil {
		return Checkpoint{}, err
	}
	c := Checkpoint{Size: size, Root: root, Time: now.UTC(), Note: n}
	if err := ls.AddLogCheckpoint(ctx, c); err != nil {
		return Checkpoint{}, fmt.Errorf("evidence log checkpoint: %w", err)
	}
	var errs []error
	if behind != nil {
		errs = append(errs, fmt.Errorf("evidence checkpoint at size %d signed, but a witness was behind before it: %w", size, behind))
	}
	for _, w := range ws {
		if err := w.Witness(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("evidence checkpoint at size %d: %w", size, err))
		}
	}
	return c, errors.Join(errs...)
}

// insideNodes computes the nodes of want that the log's nodes did not
// give (those inside a subtree a NodeStore keeps whole), from the leaves
// of the span of each proof's missing nodes.
func insideNodes(ctx context.Context, lc *leafCache, nodes map[uint64]proofNodes, want map[compact.NodeID][]byte) error {
	for _, n := range nodes {
		begin, end := uint64(math.MaxUint64), uint64(0)
		for _, id := range n.IDs {
			if want[id] == nil {
				b, e := id.Coverage()
				begin, end = min(begin, b), max(end, min(e, lc.size))
			}
		}
		if begin >= end {
			continue
		}
		rng := factory.NewEmptyRange(begin)
		for i := begin; i < end; i++ {
			leaf, err := lc.leaf(ctx, i)
			if err != nil {
				return err
			}
			err = rng.Append(leaf, func(id compact.NodeID, h []byte) {
				if v, ok := want[id]; ok && v == nil {
					want[id] = h
				}
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// InclusionProofs returns the RFC 6962 inclusion proof of each leaf index
// in a log of size leaves, reading the leaves once, or a NodeStore's
// nodes once and the leaves of the subtrees the proofs go inside.
func InclusionProofs(ctx context.Context, ls LogStore, size uint64, indexes []uint64) (map[uint64][][]byte, []byte, error) {
	return inclusionProofs(ctx, ls, newLeafCache(ls, size), indexes)
}

// inclusionProofs is InclusionProofs in a log of lc.size leaves, reading
// the leaves a proof needs through lc.
func inclusionProofs(ctx context.Context, ls LogStore, lc *leafCache, indexes []uint64) (map[uint64][][]byte, []byte, error) {
	size := lc.size
	want := map[compact.NodeID][]byte{}
	nodes := make(map[uint64]proofNodes, len(indexes))
	for _, i := range indexes {
		n, err := inclusion(i, size)
		if err != nil {
			return nil, nil, err
		}
		nodes[i] = n
		for _, id := range n.IDs {
			want[id] = nil
		}
	}
	visit := func(id compact.NodeID, h []byte) {
		if _, ok := want[id]; ok {
			want[id] = h
		}
	}
	rng := factory.NewEmptyRange(0)
	if err := appendLog(ctx, ls, rng, size, visit); err != nil {
		return nil, nil, err
	}
	if rng.End() != size {
		return nil, nil, fmt.Errorf("evidence log: read %d leaves, want %d", rng.End(), size)
	}
	root, err := rng.GetRootHash(visit)
	if err != nil {
		return nil, nil, err
	}
	if err := insideNodes(ctx, lc, nodes, want); err != nil {
		return nil, nil, err
	}
	out := make(map[uint64][][]byte, len(indexes))
	for i, n := range nodes {
		hs := make([][]byte, len(n.IDs))
		for j, id := range n.IDs {
			if hs[j] = want[id]; hs[j] == nil {
				return nil, nil, fmt.Errorf("evidence log: node %v of leaf %d's proof not computed", id, i)
			}
		}
		if out[i], err = n.Rehash(hs, hasher.HashChildren); err != nil {
			return nil, nil, err
		}
	}
	return out, root, nil
}
