package ingest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// gatedRun publishes n observations through a sensor's BatchSigner
// (evidence form 2, batches of 4) and runs a gated ingest of them, placed
// and routed, into st; onCommit sees each committed batch.
func gatedRun(t *testing.T, st store.Store, n int, onCommit func([]observe.Observation)) {
	t.Helper()
	r := rand.New(rand.NewPCG(9, 9))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &collected{}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32))
	s := evidence.NewBatchSigner(c, key, evidence.SignerConfig{BatchSize: 4, Interval: time.Hour})
	for i := range n {
		o := storetest.Observation(r, at.Add(time.Duration(i)*time.Second), i)
		o.Place, o.Jurisdiction, o.Chain = observe.Place{}, observe.Jurisdiction{}, observe.Chain{}
		if err := s.Publish(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.obs) != n || c.obs[0].Chain.Form != observe.Form2 {
		t.Fatalf("signer published %d observations (form %d)", len(c.obs), c.obs[0].Chain.Form)
	}
	cfg := DefaultConfig()
	cfg.FlushEvery = time.Millisecond
	cfg.Gate = evidence.NewGate(evidence.DefaultGateConfig())
	cfg.Enrich = func(o *observe.Observation) { // routing: keys ingest adds
		o.Place = observe.Place{Country: "FR", City: "Lyon", ASN: 64500}
		o.Jurisdiction = observe.Jurisdiction{Agency: "fr-test", Rule: "test"}
	}
	cfg.OnCommit = onCommit
	steps := []*scriptedBatch{{obs: c.obs[:n/2]}, {obs: c.obs[n/2:]}}
	stats, err := Run(context.Background(), &scripted{steps: steps}, st, cfg)
	if err != nil || stats.Committed != n {
		t.Fatalf("Run: %+v, %v; want %d committed", stats, err, n)
	}
}

// checkLeaves: each stored observation, read back, hashes to its leaf in
// the store's evidence log, and its chain checks.
func checkLeaves(t *testing.T, st *sqlite.Store, n int) {
	t.Helper()
	ctx := context.Background()
	size, err := st.LogSize(ctx)
	if err != nil || size != uint64(n) {
		t.Fatalf("log size %d (%v), want %d", size, err, n)
	}
	var ls [][]byte
	if err := st.LogLeaves(ctx, 0, size, func(_ uint64, leaf []byte) error {
		ls = append(ls, bytes.Clone(leaf))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var back []observe.Observation
	if err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		back = append(back, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range back {
		ids = append(ids, o.ID)
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil || len(idx) != n {
		t.Fatalf("LogIndexes: %d (%v), want %d", len(idx), err, n)
	}
	for i := range back {
		h, err := back[i].LeafHash()
		if err != nil || !bytes.Equal(h[:], ls[idx[back[i].ID]]) {
			t.Errorf("observation %s (seq %d) read back hashes to %x (%v), its leaf is %x", back[i].ID, back[i].Chain.Seq, h, err, ls[idx[back[i].ID]])
		}
	}
	// The store reads back in time order; a chain checks in its own.
	slices.SortFunc(back, func(a, b observe.Observation) int {
		return cmp.Or(cmp.Compare(a.Chain.ID, b.Chain.ID), cmp.Compare(a.Chain.Seq, b.Chain.Seq))
	})
	if r := evidence.NewChainChecker().Check(back); r.Signed != n || len(r.Failures) != 0 {
		t.Errorf("read back: %d signed of %d, failures %v", r.Signed, n, r.Failures)
	}
}

// TestGatedIngestHandsTheGatesSensorHashOn: through a gated ingest, the
// sensor hash the gate computed (and that it found each transcript to be
// the one named) reaches the store and ingest's check with each
// observation: for every one committed it is still the one known, and it
// equals the sensor hash computed afresh; what the store logged is the
// leaf of each row as it reads back.
func TestGatedIngestHandsTheGatesSensorHashOn(t *testing.T) {
	st := openStore(t)
	const n = 24
	seen, known := 0, 0
	gatedRun(t, st, n, func(obs []observe.Observation) {
		for i := range obs {
			o := &obs[i]
			seen++
			if o.HasMark(observe.MarkSignatureFailed) || !o.Signed() {
				t.Errorf("seq %d committed marked %v", o.Chain.Seq, o.Marks)
			}
			if o.TranscriptChecked() {
				known++
			}
			got, err := o.KnownSensorHash()
			want, err2 := o.SensorHash()
			if err != nil || err2 != nil || got != want {
				t.Errorf("seq %d: known sensor hash %x (%v), computed afresh %x (%v)", o.Chain.Seq, got, err, want, err2)
			}
		}
	})
	if seen != n || known != n {
		t.Fatalf("%d committed, %d with the gate's sensor hash still known, want %d", seen, known, n)
	}
	checkLeaves(t, st, n)
}

// changingStore changes a field the sensor hash covers in each
// observation handed to it, as a store or a step between the gate and
// the store could, before storing it.
type changingStore struct {
	*sqlite.Store
	change func(o *observe.Observation)
}

func (s changingStore) InsertObservations(ctx context.Context, obs []observe.Observation) error {
	_, err := s.InsertObservationsCounted(ctx, obs)
	return err
}

func (s changingStore) InsertObservationsCounted(ctx context.Context, obs []observe.Observation) (int, error) {
	for i := range obs {
		s.change(&obs[i])
	}
	return s.Store.InsertObservationsCounted(ctx, obs)
}

// TestFieldChangedAfterTheGateIsNotLoggedUnderItsOldHash: a field the
// sensor hash covers, changed after the gate hashed the observation (a
// mark added, the id the store would assign), is not covered by the hash
// the gate remembered: the store's leaf is of the row as stored, and
// ingest's check finds the chain broken, as 'vigil verify' would.
func TestFieldChangedAfterTheGateIsNotLoggedUnderItsOldHash(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(o *observe.Observation)
	}{
		{"a mark added", func(o *observe.Observation) { o.Marks = append(o.Marks, "zz_after_gate") }},
		{"no id (the store assigns one)", func(o *observe.Observation) { o.ID = "" }},
		{"pieces changed in place", func(o *observe.Observation) { o.Possession.PiecesHave++ }},
		{"peer id changed in place", func(o *observe.Observation) {
			if len(o.Client.PeerID) > 0 {
				o.Client.PeerID[0] ^= 1
			} else {
				o.Client.PeerID = []byte{1}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := openStore(t)
			const n = 8
			var checked evidence.CheckResult
			gatedRun(t, changingStore{st, c.change}, n, func(obs []observe.Observation) {
				for i := range obs {
					if obs[i].TranscriptChecked() {
						t.Errorf("seq %d: changed after the gate, its transcript still taken as checked", obs[i].Chain.Seq)
					}
				}
				r := evidence.NewChainChecker().Check(obs)
				checked.Signed += r.Signed
				checked.Failures = append(checked.Failures, r.Failures...)
			})
			if checked.Signed != 0 || len(checked.Failures) == 0 {
				t.Errorf("ingest's check of what was changed after the gate: %d signed, failures %v", checked.Signed, checked.Failures)
			}
			// The leaves are of the rows as stored (the rows' own sensor
			// hashes): not of what the gate hashed.
			size, err := st.LogSize(context.Background())
			if err != nil || size != n {
				t.Fatalf("log size %d (%v)", size, err)
			}
			var ls [][]byte
			st.LogLeaves(context.Background(), 0, size, func(_ uint64, leaf []byte) error {
				ls = append(ls, bytes.Clone(leaf))
				return nil
			})
			var back []observe.Observation
			st.Observations(context.Background(), store.ObservationFilter{}, func(o *observe.Observation) error {
				back = append(back, *o)
				return nil
			})
			var ids []string
			for _, o := range back {
				ids = append(ids, o.ID)
			}
			idx, err := st.LogIndexes(context.Background(), ids)
			if err != nil || len(idx) != n {
				t.Fatalf("LogIndexes: %d (%v)", len(idx), err)
			}
			for i := range back {
				h, _ := back[i].LeafHash()
				if !bytes.Equal(h[:], ls[idx[back[i].ID]]) {
					t.Errorf("observation %s read back hashes to %x, its leaf is %x: logged under the hash the gate remembered", back[i].ID, h, ls[idx[back[i].ID]])
				}
			}
		})
	}
}
