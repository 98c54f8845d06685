package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
)

// WitnessReader is a Witness whose notes can be read back: MakeCheckpoint
// compares the log with the checkpoints it holds as well as with the
// store's, since the store's can be deleted by whoever can write to it.
type WitnessReader interface {
	Witness
	// Notes returns what the witness holds: signed notes, each followed
	// by a blank line (nothing when it holds none yet).
	Notes(ctx context.Context) ([]byte, error)
}

// FileWitness is the log's witness file: audit.FileWitness appends each
// note to it, and Notes reads them back.
type FileWitness struct{ Path string }

func (f FileWitness) String() string { return audit.FileWitness{Path: f.Path}.String() }

// Witness appends n to the file.
func (f FileWitness) Witness(ctx context.Context, n []byte) error {
	return audit.FileWitness{Path: f.Path}.Witness(ctx, n)
}

// MaxWitnessFile bounds what Notes reads of a witness file.
const MaxWitnessFile = 1 << 30

// Notes reads the file (nothing when it does not exist yet).
func (f FileWitness) Notes(ctx context.Context) ([]byte, error) {
	fh, err := os.Open(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxWitnessFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	if len(b) > MaxWitnessFile {
		return nil, fmt.Errorf("%s: over %d bytes", f, MaxWitnessFile)
	}
	return b, nil
}

// WitnessedCheckpoints returns the checkpoints of the evidence log among
// notes (as a WitnessReader gives them) that are signed by key. Notes of
// another origin (the audit trail's, when both share a file) or another
// key are skipped.
func WitnessedCheckpoints(notes []byte, key ed25519.PrivateKey) ([]Checkpoint, error) {
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	// A note is its text, a blank line and its signatures; the witness
	// follows each with a blank line.
	parts := bytes.Split(bytes.TrimSpace(notes), []byte("\n\n"))
	var out []Checkpoint
	for i := 0; i+1 < len(parts); i += 2 {
		raw := append(append(append(bytes.Clone(parts[i]), "\n\n"...), parts[i+1]...), '\n')
		n, err := note.Open(raw, note.VerifierList(v))
		if err != nil {
			continue
		}
		cp, err := verify.ParseCheckpoint(n.Text)
		if err != nil {
			continue
		}
		out = append(out, Checkpoint{Size: cp.Size, Root: cp.Hash, Note: raw})
	}
	return out, nil
}
