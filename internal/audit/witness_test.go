package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memCheckpoints is an in-memory CheckpointStore (INSERT OR IGNORE on
// seq and key, as the SQLite store does).
type memCheckpoints struct {
	mu  sync.Mutex
	cps []Checkpoint
}

func (m *memCheckpoints) AddAuditCheckpoint(_ context.Context, c Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.cps {
		if x.Seq == c.Seq && x.KeyID == c.KeyID {
			return nil
		}
	}
	m.cps = append(m.cps, c)
	return nil
}

func (m *memCheckpoints) AuditCheckpoints(context.Context) ([]Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Checkpoint(nil), m.cps...), nil
}

func newKey(t testing.TB) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pubOf(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }

func appendN(t testing.TB, st *memStore, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := st.AppendAudit(context.Background(), Record{Action: ActionViewTarget, Object: fmt.Sprintf("target:%d", i),
			Time: time.Date(2026, 12, 1, 0, 0, i, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointNoteRoundTrip(t *testing.T) {
	k := newKey(t)
	c := Checkpoint{Seq: 42, Hash: bytes.Repeat([]byte{7}, HashSize), Time: time.Date(2026, 12, 6, 10, 0, 0, 5, time.UTC)}
	n, err := CheckpointNote(c, k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(n), NoteOrigin+"\n42\n") || !strings.Contains(string(n), "\n\n\u2014 "+NoteKeyName+" ") {
		t.Fatalf("note not in the tlog-checkpoint layout:\n%s", n)
	}
	got, err := OpenCheckpointNote(n, pubOf(k))
	if err != nil || got.Seq != 42 || !bytes.Equal(got.Hash, c.Hash) || !got.Time.Equal(c.Time) {
		t.Fatalf("open: %+v, %v", got, err)
	}
	if _, err := OpenCheckpointNote(n, pubOf(newKey(t))); !errors.Is(err, ErrNoteSignature) {
		t.Fatalf("another key opened the note: %v", err)
	}
	forged := bytes.Replace(n, []byte("\n42\n"), []byte("\n41\n"), 1)
	if _, err := OpenCheckpointNote(forged, pubOf(k)); !errors.Is(err, ErrNoteSignature) {
		t.Fatalf("a changed length still verifies: %v", err)
	}
	if got, err := OpenCheckpointNote(forged, nil); err != nil || got.Seq != 41 {
		t.Fatalf("unauthenticated parse: %+v %v", got, err)
	}
}

func TestReadWitness(t *testing.T) {
	k := newKey(t)
	path := filepath.Join(t.TempDir(), "w", "audit.witness")
	w := FileWitness{Path: path}
	for seq := int64(1); seq <= 3; seq++ {
		n, err := CheckpointNote(Checkpoint{Seq: seq, Hash: bytes.Repeat([]byte{byte(seq)}, HashSize), Time: time.Unix(seq, 0)}, k)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Witness(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]os.FileMode{path: 0o600, filepath.Dir(path): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, want %v (%v)", p, fi.Mode().Perm(), want, err)
		}
	}
	raw, _ := os.ReadFile(path)
	cps, err := ReadWitness(bytes.NewReader(raw), pubOf(k))
	if err != nil || len(cps) != 3 || cps[2].Seq != 3 {
		t.Fatalf("ReadWitness: %d checkpoints, %v", len(cps), err)
	}
	// A note cut short by a crash is an error naming it.
	if _, err := ReadWitness(bytes.NewReader(raw[:len(raw)-60]), pubOf(k)); err == nil || !strings.Contains(err.Error(), "witness note 3") {
		t.Fatalf("torn witness: %v", err)
	}
	// A note signed by another key is an error naming it.
	other, _ := CheckpointNote(Checkpoint{Seq: 4, Hash: make([]byte, HashSize), Time: time.Unix(4, 0)}, newKey(t))
	raw2 := append(append(bytes.Clone(raw), other...), '\n')
	if _, err := ReadWitness(bytes.NewReader(raw2), pubOf(k)); !errors.Is(err, ErrNoteSignature) || !strings.Contains(err.Error(), "witness note 4") {
		t.Fatalf("foreign note: %v", err)
	}
}

// tamper sets up 30 records with a witnessed checkpoint at 30.
func witnessed(t *testing.T) (*memStore, *memCheckpoints, ed25519.PrivateKey, []Checkpoint) {
	t.Helper()
	st, cs, k := &memStore{}, &memCheckpoints{}, newKey(t)
	appendN(t, st, 20)
	var buf bytes.Buffer
	w := writerWitness{&buf}
	if _, err := WitnessCheckpoint(context.Background(), st, cs, k, time.Unix(100, 0), w); err != nil {
		t.Fatal(err)
	}
	appendN(t, st, 10)
	if _, err := WitnessCheckpoint(context.Background(), st, cs, k, time.Unix(200, 0), w); err != nil {
		t.Fatal(err)
	}
	wcps, err := ReadWitness(&buf, pubOf(k))
	if err != nil || len(wcps) != 2 {
		t.Fatalf("witness: %d, %v", len(wcps), err)
	}
	return st, cs, k, wcps
}

type writerWitness struct{ w io.Writer }

func (w writerWitness) String() string { return "buffer" }
func (w writerWitness) Witness(_ context.Context, n []byte) error {
	_, err := w.w.Write(append(bytes.Clone(n), '\n'))
	return err
}

func TestVerifyWithWitness(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		tamper   func(st *memStore, cs *memCheckpoints)
		noWit    bool // verify without the witness
		kind     string
		seq      int64
		lastGood int64
	}{
		{name: "intact", tamper: func(*memStore, *memCheckpoints) {}, lastGood: 30},
		{name: "tail cut", tamper: func(st *memStore, _ *memCheckpoints) { st.recs = st.recs[:20] },
			kind: BreakTruncated, seq: 21, lastGood: 20},
		{name: "tail and store checkpoints cut", tamper: func(st *memStore, cs *memCheckpoints) { st.recs, cs.cps = st.recs[:20], nil },
			kind: BreakTruncated, seq: 21, lastGood: 20},
		{name: "tail and store checkpoints cut, no witness", noWit: true,
			tamper: func(st *memStore, cs *memCheckpoints) { st.recs, cs.cps = st.recs[:20], nil }, lastGood: 20},
		{name: "store checkpoints deleted", tamper: func(_ *memStore, cs *memCheckpoints) { cs.cps = cs.cps[:1] },
			kind: BreakCheckpointGone, seq: 30, lastGood: 30},
		{name: "one record edited", tamper: func(st *memStore, _ *memCheckpoints) { st.recs[11].Object = "target:999" },
			kind: BreakChanged, seq: 12, lastGood: 11},
		{name: "rewritten and resealed from 25", tamper: func(st *memStore, cs *memCheckpoints) {
			recs := st.recs[:24]
			st.recs = recs
			cs.cps = cs.cps[:1]
			appendN(t, st, 6)
		}, kind: BreakCheckpoint, seq: 30, lastGood: 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, cs, k, wcps := witnessed(t)
			c.tamper(st, cs)
			cps, _ := cs.AuditCheckpoints(ctx)
			o := VerifyOptions{Checkpoints: cps, Witness: wcps, Pub: pubOf(k)}
			if c.noWit {
				o.Witness = nil
			}
			rep, err := VerifyWith(ctx, st, o)
			if err != nil {
				t.Fatal(err)
			}
			if c.kind == "" {
				if rep.Broken != nil {
					t.Fatalf("broken: %v", rep.Broken)
				}
			} else if rep.Broken == nil || rep.Broken.Kind != c.kind || rep.Broken.Seq != c.seq {
				t.Fatalf("got %+v, want %s at %d", rep.Broken, c.kind, c.seq)
			}
			if rep.LastGood != c.lastGood {
				t.Fatalf("last good %d, want %d (%v)", rep.LastGood, c.lastGood, rep.Broken)
			}
		})
	}
}

// Without a public key, the store's checkpoints still show a cut tail
// (the old Verify ignored them: a cut tail was "unbroken").
func TestVerifyUnsignedCheckpointsShowACutTail(t *testing.T) {
	st, cs, _, _ := witnessed(t)
	st.recs = st.recs[:25]
	cps, _ := cs.AuditCheckpoints(context.Background())
	rep, err := Verify(context.Background(), st, cps, nil)
	if err != nil || rep.Broken == nil || rep.Broken.Kind != BreakTruncated || rep.Broken.Seq != 26 || rep.Signed {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestCheckpointerSchedule(t *testing.T) {
	ctx := context.Background()
	st, cs, k := &memStore{}, &memCheckpoints{}, newKey(t)
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	c := NewCheckpointer(st, cs, k, []Witness{writerWitness{&buf}}, CheckpointerConfig{Every: 10, Interval: time.Minute})
	c.Now = func() time.Time { return now }
	if made, err := c.Tick(ctx, false); made || err != nil {
		t.Fatalf("empty trail: made %v, %v", made, err)
	}
	appendN(t, st, 10)
	if made, err := c.Tick(ctx, false); !made || err != nil {
		t.Fatalf("after 10 records: made %v, %v", made, err)
	}
	appendN(t, st, 3)
	if made, _ := c.Tick(ctx, false); made {
		t.Fatal("checkpointed 3 records before the interval")
	}
	now = now.Add(time.Minute)
	if made, _ := c.Tick(ctx, false); !made {
		t.Fatal("no checkpoint after the interval")
	}
	appendN(t, st, 1)
	if made, _ := c.Tick(ctx, true); !made {
		t.Fatal("no checkpoint when stopping")
	}
	wcps, err := ReadWitness(&buf, pubOf(k))
	if err != nil || len(wcps) != 3 || wcps[2].Seq != 14 {
		t.Fatalf("witness: %+v %v", wcps, err)
	}
}

func TestCheckpointerRetriesAFailedWitness(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got [][]byte
	fail := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		got = append(got, b)
	}))
	defer srv.Close()
	st, cs, k := &memStore{}, &memCheckpoints{}, newKey(t)
	c := NewCheckpointer(st, cs, k, []Witness{HTTPWitness{URL: srv.URL}}, CheckpointerConfig{Every: 1})
	appendN(t, st, 2)
	if made, err := c.Tick(ctx, false); !made || err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("witness down: made %v, %v", made, err)
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if made, err := c.Tick(ctx, true); !made || err != nil {
		t.Fatalf("retry: made %v, %v", made, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("the witness got %d notes", len(got))
	}
	if cp, err := OpenCheckpointNote(got[0], pubOf(k)); err != nil || cp.Seq != 2 {
		t.Fatalf("posted note: %+v %v", cp, err)
	}
}

func FuzzReadWitness(f *testing.F) {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	n, _ := CheckpointNote(Checkpoint{Seq: 3, Hash: make([]byte, HashSize), Time: time.Unix(3, 0)}, k)
	f.Add(append(bytes.Clone(n), '\n'))
	f.Add(append(append(bytes.Clone(n), '\n'), n[:20]...))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cps, err := ReadWitness(bytes.NewReader(b), pubOf(k))
		for _, c := range cps {
			if c.Seq < 1 || len(c.Hash) != HashSize {
				t.Fatalf("accepted %+v (err %v)", c, err)
			}
		}
		_, _ = ReadWitness(bytes.NewReader(b), nil)
	})
}
