package evidence

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

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
type URLWitness struct {
	URL    string
	Client *http.Client // nil: a client with a 10-second timeout
}

func (u URLWitness) String() string { return audit.HTTPWitness{URL: u.URL}.String() }

func (u URLWitness) client() *http.Client {
	if u.Client != nil {
		return u.Client
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// Witness POSTs n, then reads the witness back: it must hold n.
func (u URLWitness) Witness(ctx context.Context, n []byte) error {
	if err := (audit.HTTPWitness{URL: u.URL, Client: u.Client}).Witness(ctx, n); err != nil {
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

// Notes GETs what the witness holds (at most MaxWitnessFile bytes).
func (u URLWitness) Notes(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	resp, err := u.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: a GET answered %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxWitnessFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if len(b) > MaxWitnessFile {
		return nil, fmt.Errorf("%s: over %d bytes", u, MaxWitnessFile)
	}
	return b, nil
}
