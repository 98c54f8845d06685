package evidence_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/evidence"
)

// labWitness is a witness at a URL (loopback): POST keeps a note, GET
// returns the notes it holds. mode makes it misbehave.
type labWitness struct {
	mu    sync.Mutex
	notes [][]byte
	mode  string // "", "drop" (says kept, keeps nothing), "rollback" (GET forgets the last note), "lie" (GET returns lie)
	lie   []byte
}

func (w *labWitness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch r.Method {
	case http.MethodPost:
		b, _ := io.ReadAll(r.Body)
		if w.mode != "drop" {
			w.notes = append(w.notes, b)
		}
	case http.MethodGet:
		notes := w.notes
		if w.mode == "rollback" && len(notes) > 0 {
			notes = notes[:len(notes)-1]
		}
		for _, n := range notes {
			rw.Write(n)
			rw.Write([]byte("\n"))
		}
		if w.mode == "lie" {
			rw.Write(w.lie)
			rw.Write([]byte("\n"))
		}
	}
}

// TestURLWitnessIsReadBack: the witness at a URL is read back and
// compared like the witness file: one that does not keep what it was
// given, that rolls back to an older checkpoint, or that holds a
// checkpoint of another log under the same key, is caught and named; an
// honest one passes.
func TestURLWitnessIsReadBack(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"", "drop", "rollback", "lie"} {
		t.Run("mode="+mode, func(t *testing.T) {
			f := newFixture(t, sample(4))
			lw := &labWitness{}
			if mode == "drop" {
				lw.mode = mode
			}
			srv := httptest.NewServer(lw)
			defer srv.Close()
			file := evidence.FileWitness{Path: filepath.Join(t.TempDir(), "w")}
			url := evidence.URLWitness{HTTPWitness: audit.HTTPWitness{URL: srv.URL}}
			if _, err := evidence.MakeCheckpoint(ctx, f.st, f.key, t0, file, url); err != nil {
				if mode == "drop" && strings.Contains(err.Error(), "did not keep") && strings.Contains(err.Error(), srv.URL) {
					return // caught at once: what it was given is not there
				}
				t.Fatalf("first checkpoint: %v", err)
			}
			if mode == "drop" {
				t.Fatal("a witness that keeps nothing was not caught")
			}
			lw.mu.Lock()
			lw.mode = mode
			if mode == "lie" {
				n, err := evidence.CheckpointNote(4, make([]byte, 32), t0, f.key) // another log's root at the same size, the same key
				if err != nil {
					t.Fatal(err)
				}
				lw.lie = n
			}
			lw.mu.Unlock()
			_, err := evidence.MakeCheckpoint(ctx, f.st, f.key, t0.Add(time.Minute), file, url)
			switch mode {
			case "":
				if err != nil {
					t.Fatalf("honest witness: %v", err)
				}
			case "rollback":
				if err == nil || !strings.Contains(err.Error(), srv.URL) || !strings.Contains(err.Error(), "rolled back") {
					t.Fatalf("a witness that rolled back: err %v", err)
				}
			case "lie":
				if !errors.Is(err, evidence.ErrLogChanged) || !strings.Contains(err.Error(), srv.URL) {
					t.Fatalf("a witness holding another root: err %v", err)
				}
			}
		})
	}
}

// TestExportChecksTheWitnessToo: with a checkpoint already signed (no new
// one to sign), the log is still compared with the witness: a witness
// holding another root at the log's size is a changed log.
func TestExportChecksTheWitnessToo(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, sample(4))
	file := evidence.FileWitness{Path: filepath.Join(t.TempDir(), "w")}
	if _, err := evidence.MakeCheckpoint(ctx, f.st, f.key, t0, file); err != nil {
		t.Fatal(err)
	}
	if behind, err := evidence.CheckWitnessed(ctx, f.st, f.key, file); err != nil || behind != nil {
		t.Fatalf("an honest witness: %v, %v", behind, err)
	}
	n, err := evidence.CheckpointNote(4, make([]byte, 32), t0, f.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := file.Witness(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := evidence.CheckWitnessed(ctx, f.st, f.key, file); !errors.Is(err, evidence.ErrLogChanged) {
		t.Fatalf("a witness holding another root: %v", err)
	}
}
