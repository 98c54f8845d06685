package audit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// A Witness keeps copies of signed checkpoints outside the store, so that
// someone who can write the database (and delete the checkpoints kept in
// it) cannot cut the trail's tail unseen: 'vigil audit verify --witness'
// compares the chain with what the witness holds. A witness should be
// somewhere the database's host cannot rewrite: another machine, an
// append-only mount, a write-once bucket behind a URL.
type Witness interface {
	// Witness hands one signed checkpoint note (CheckpointNote) over.
	Witness(ctx context.Context, note []byte) error
	// String names the witness in logs and errors.
	String() string
}

// FileWitness appends notes to a file, each followed by a blank line,
// and syncs it. The file (and a folder it has to create) is private to
// Vigil's user: 0600 (0700).
type FileWitness struct{ Path string }

func (f FileWitness) String() string { return "witness file " + f.Path }

// Witness appends note to the file.
func (f FileWitness) Witness(ctx context.Context, note []byte) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	fh, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	// One write, so that concurrent appenders (O_APPEND) never interleave.
	buf := append(append(bytes.TrimRight(bytes.Clone(note), "\n"), '\n'), '\n')
	if _, err := fh.Write(buf); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", f, err)
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return fmt.Errorf("%s: %w", f, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("%s: %w", f, err)
	}
	return nil
}

// HTTPWitness POSTs each note (text/plain) to a URL; any 2xx answer
// counts as kept.
type HTTPWitness struct {
	URL    string
	Client *http.Client // nil: a client with a 10-second timeout
}

func (h HTTPWitness) String() string { return "witness URL " + h.URL }

// Witness posts note to the URL.
func (h HTTPWitness) Witness(ctx context.Context, note []byte) error {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(note))
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", h, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: answered %s", h, resp.Status)
	}
	return nil
}

// MaxWitnessNotes bounds what Notes reads of a witness.
const MaxWitnessNotes = 1 << 30

// Notes GETs what the witness at the URL holds: its notes, each followed
// by a blank line, as a witness file holds them (at most
// MaxWitnessNotes bytes).
func (h HTTPWitness) Notes(ctx context.Context) ([]byte, error) {
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s: a GET answered %s", h, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxWitnessNotes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h, err)
	}
	if len(b) > MaxWitnessNotes {
		return nil, fmt.Errorf("%s: over %d bytes", h, MaxWitnessNotes)
	}
	return b, nil
}
