package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// Export is what a bundle holds besides what the log gives.
type Export struct {
	// Target is the target's id.
	Target string
	// IDs are the target's observations, in the order the bundle lists
	// them.
	IDs []string
	// Watch are the watch-list entries the observations' items matched.
	Watch []verify.WatchEntry
	// Links and Annex are the target's links and its ISP request's annex,
	// as JSON.
	Links, Annex json.RawMessage
	// Now is the bundle's time.
	Now time.Time
	// Purged are the target's observations purged under retention, not
	// in IDs: their leaves and proofs go in purged.json.
	Purged []PurgedObservation
}

// PurgedObservation is an observation whose transcript ("transcripts")
// or whole row ("observations") a retention purge removed.
type PurgedObservation struct {
	ID, What string
	Time, At time.Time
}

// WriteBundle writes the bundle (a zip file) of e to w: the observations as
// stored, each checked against its leaf, with inclusion proofs against the
// latest signed checkpoint, signed by key (the log's key). It fails with
// ErrNoCheckpoint when that checkpoint does not cover every observation,
// and refuses an observation whose stored form no longer hashes to its
// leaf, or, in evidence form 2, whose transcript is not the one its
// transcript_sha256 names (the row was edited after it was logged).
func WriteBundle(ctx context.Context, w io.Writer, ls LogStore, key ed25519.PrivateKey, e Export) error {
	cps, err := ls.LogCheckpoints(ctx)
	if err != nil {
		return err
	}
	if len(cps) == 0 {
		return fmt.Errorf("%w: 'vigil evidence checkpoint' signs one", ErrNoCheckpoint)
	}
	cp, err := lastSigned(cps, key)
	if err != nil {
		return err
	}
	all := slices.Clone(e.IDs)
	for _, p := range e.Purged {
		all = append(all, p.ID)
	}
	idx, err := ls.LogIndexes(ctx, all)
	if err != nil {
		return err
	}
	obs := map[string][]byte{}
	var signed []*observe.Observation
	err = ls.ObservationsByID(ctx, e.IDs, func(o *observe.Observation) error {
		line, err := o.Line()
		if err != nil {
			return err
		}
		if o.Chain.Form == observe.Form2 {
			// A form 2 leaf covers the transcript only through
			// transcript_sha256: checkLeaves cannot see its bytes changed.
			if err := form2Transcript(o); err != nil {
				return fmt.Errorf("observation %s: its stored row (evidence form 2) does not hold the transcript it was logged with: %w: the row was changed after it was logged", o.ID, err)
			}
		}
		obs[o.ID] = line
		if o.Signed() {
			c := *o
			signed = append(signed, &c)
		}
		return nil
	})
	if err != nil {
		return err
	}
	batches, err := batchesOf(ctx, ls, signed)
	if err != nil {
		return err
	}
	keys, err := sensorKeys(ctx, ls)
	if err != nil {
		return err
	}
	var lines bytes.Buffer
	var indexes []uint64
	for _, id := range e.IDs {
		i, ok := idx[id]
		switch {
		case obs[id] == nil:
			return fmt.Errorf("observation %s: not in the store", id)
		case !ok:
			return fmt.Errorf("observation %s: not in the evidence log (stored before the log existed?)", id)
		case i >= cp.Size:
			return fmt.Errorf("%w: observation %s is leaf %d, the latest checkpoint has %d leaves; 'vigil evidence checkpoint' signs a new one", ErrNoCheckpoint, id, i, cp.Size)
		}
		indexes = append(indexes, i)
		lines.Write(obs[id])
		lines.WriteByte('\n')
	}
	// The leaves are read a group at a time, once (leafCache), all at
	// once from a LeafBatcher.
	lc := newLeafCache(ls, cp.Size)
	var every []uint64
	for _, i := range idx {
		every = append(every, i)
	}
	if err := lc.prefetch(ctx, every); err != nil {
		return err
	}
	purged, pindexes, err := purgedEntries(ctx, lc, e.Purged, idx)
	if err != nil {
		return err
	}
	proofs, root, err := inclusionProofs(ctx, ls, lc, append(slices.Clone(indexes), pindexes...))
	if err != nil {
		return err
	}
	for j := range purged.Entries {
		purged.Entries[j].Hashes = proofs[purged.Entries[j].LeafIndex]
	}
	if !bytes.Equal(root, cp.Root) {
		return fmt.Errorf("evidence log: the leaves give root %x at size %d, the signed checkpoint %x: the log was changed", root, cp.Size, cp.Root)
	}
	ps := verify.Proofs{Size: cp.Size, Entries: make([]verify.Proof, len(e.IDs))}
	for j, id := range e.IDs {
		ps.Entries[j] = verify.Proof{ID: id, LeafIndex: indexes[j], Hashes: proofs[indexes[j]]}
	}
	if err := checkLeaves(ctx, lc, e.IDs, indexes, obs); err != nil {
		return err
	}
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	files := []bundleFile{
		{verify.FileReadme, []byte(Readme(e.Target, cp))},
		{verify.FileObservations, lines.Bytes()},
		{verify.FileCheckpoint, cp.Note},
		{verify.FileProofs, mustJSON(ps)},
		{verify.FileKeys, mustJSON(verify.Keys{Log: vkey, Sensors: keys})},
		{verify.FileBatches, mustJSON(nonNil(batches))},
		{verify.FileWatchlist, mustJSON(nonNil(e.Watch))},
		{verify.FileLinks, orNull(e.Links)},
		{verify.FileISPAnnex, orNull(e.Annex)},
	}
	if len(purged.Entries) > 0 {
		files = append(files, bundleFile{verify.FilePurged, mustJSON(purged)})
	}
	return writeZip(w, key, e, files)
}

// PurgedNote heads purged.json.
const PurgedNote = "These observations of the target were purged under the retention policy (docs/deployment.md, \"Retention and legal holds\"): " +
	"their content is gone, their evidence-log leaves are not. Each leaf is proven in the log at the checkpoint; what the observation said cannot be checked. " +
	"\"transcripts\": the row stays without its transcript (remaining, not checked against the leaf); \"observations\": the row is gone."

// purgedEntries reads the leaf of each purged observation (and, for a
// purged transcript, the row as now stored) for purged.json; the proofs
// are filled in by the caller.
func purgedEntries(ctx context.Context, lc *leafCache, ps []PurgedObservation, idx map[string]uint64) (verify.Purged, []uint64, error) {
	ls, size := lc.ls, lc.size
	out := verify.Purged{Note: PurgedNote, Entries: []verify.PurgedEntry{}}
	var indexes []uint64
	for _, p := range ps {
		i, ok := idx[p.ID]
		switch {
		case !ok:
			return out, nil, fmt.Errorf("observation %s (purged under retention): not in the evidence log", p.ID)
		case i >= size:
			return out, nil, fmt.Errorf("%w: purged observation %s is leaf %d, the latest checkpoint has %d leaves", ErrNoCheckpoint, p.ID, i, size)
		}
		en := verify.PurgedEntry{ID: p.ID, What: p.What, Time: p.Time.UTC().Format(time.RFC3339Nano), PurgedAt: p.At.UTC().Format(time.RFC3339Nano), LeafIndex: i}
		leaf, err := lc.leaf(ctx, i)
		if err != nil {
			return out, nil, err
		}
		en.Leaf = leaf
		if p.What == "transcripts" {
			err := ls.ObservationsByID(ctx, []string{p.ID}, func(o *observe.Observation) error {
				line, err := o.Line()
				en.Remaining = bytes.TrimSpace(line)
				return err
			})
			if err != nil {
				return out, nil, err
			}
		}
		out.Entries = append(out.Entries, en)
		indexes = append(indexes, i)
	}
	return out, indexes, nil
}

type bundleFile struct {
	name string
	data []byte
}

// checkLeaves refuses an observation whose stored form no longer hashes
// to the leaf the log holds for it.
func checkLeaves(ctx context.Context, lc *leafCache, ids []string, indexes []uint64, lines map[string][]byte) error {
	want := map[uint64]string{}
	for j, i := range indexes {
		want[i] = ids[j]
	}
	// Leaves are read a group at a time (lc): a bundle holds a target's
	// observations, not the log.
	for i, id := range want {
		leaf, err := lc.leaf(ctx, i)
		if err != nil {
			return err
		}
		c, err := canonLeaf(lines[id])
		if err != nil {
			return fmt.Errorf("observation %s: %w", id, err)
		}
		if !bytes.Equal(c[:], leaf) {
			return fmt.Errorf("observation %s: its stored row no longer hashes to its leaf %d in the evidence log: the row was changed after it was logged", id, i)
		}
	}
	return nil
}

func writeZip(w io.Writer, key ed25519.PrivateKey, e Export, files []bundleFile) error {
	var manifest bytes.Buffer
	fmt.Fprintf(&manifest, "%s\ntarget %s\ncreated %s\n", verify.ManifestOrigin, e.Target, e.Now.UTC().Format(time.RFC3339))
	for _, f := range files {
		fmt.Fprintf(&manifest, "%x  %s\n", sha256.Sum256(f.data), f.name)
	}
	s, err := Signer(key)
	if err != nil {
		return err
	}
	signed, err := note.Sign(&note.Note{Text: manifest.String()}, s)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	for _, f := range append([]bundleFile{{verify.FileManifest, signed}}, files...) {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: e.Now.UTC()})
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.data); err != nil {
			return err
		}
	}
	return zw.Close()
}

func mustJSON(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only the package's own types are marshalled
	}
	return append(b, '\n')
}

func orNull(b json.RawMessage) []byte {
	if len(b) == 0 {
		return []byte("null\n")
	}
	return b
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
