package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/vigil-oss/vigil/internal/audit"
)

// URLWitness is a witness at a URL: each note is POSTed to it
// (audit.HTTPWitness), and a GET of the same URL returns the notes it
// holds, each followed by a blank line, as a witness file does. It is
// read back like the file: after each POST (the note must be there), and
// before each checkpoint, whose log is compared with the largest
// checkpoint the witness holds, and that checkpoint with the other
// witnesses' (a witness that holds less than another was given rolled
// back, or lost notes).
type URLWitness struct{ audit.HTTPWitness }

// Witness POSTs n, then reads the witness back: it must hold n.
func (u URLWitness) Witness(ctx context.Context, n []byte) error {
	if err := u.HTTPWitness.Witness(ctx, n); err != nil {
		return err
	}
	notes, err := u.Notes(ctx)
	if err != nil {
		return err
	}
	if !bytes.Contains(notes, bytes.TrimSpace(n)) {
		return fmt.Errorf("%s did not keep the checkpoint it was given: a GET does not return it", u)
	}
	return nil
}

// CheckWitnessed compares the log with what each witness among ws that
// can be read back holds, as MakeCheckpoint does before it signs (for an
// export whose checkpoint is already signed): ErrLogChanged when the log
// does not give a witness's largest checkpoint. A witness behind the
// store or another witness is returned apart (behind), not as a change.
func CheckWitnessed(ctx context.Context, ls LogStore, key ed25519.PrivateKey, ws ...Witness) (behind, err error) {
	size, err := ls.LogSize(ctx)
	if err != nil {
		return nil, err
	}
	cps, err := ls.LogCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	last, err := lastSigned(cps, key)
	if err != nil {
		return nil, err
	}
	return checkWitnessed(ctx, ls, key, size, last, ws)
}
