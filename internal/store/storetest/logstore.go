package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

// LogStore is a store that keeps the evidence log.
type LogStore interface {
	store.Store
	store.LogStore
}

// RunLogStore runs the contract of store.LogStore (the evidence log). open
// must return a new, empty store for t and close it when t ends.
func RunLogStore(t *testing.T, open func(t *testing.T) LogStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st LogStore)
	}{
		{"LeavesFollowStoredObservations", testLeavesFollowStoredObservations},
		{"RedeliveryAppendsNoLeaf", testRedeliveryAppendsNoLeaf},
		{"ReplayAmongNewAppendsOnlyTheNew", testReplayAmongNewAppendsOnlyTheNew},
		{"ChainRoundTripsAndBatches", testChainRoundTripsAndBatches},
		{"CheckpointsKeptInOrder", testCheckpointsKeptInOrder},
		{"EvidenceFormRoundTrips", testEvidenceFormRoundTrips},
		{"RememberedSensorHashOfAChangedObservationIsNotLogged", testRememberedSensorHashOfAChangedObservation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

func leaves(t *testing.T, st LogStore) [][]byte {
	t.Helper()
	n, err := st.LogSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	if err := st.LogLeaves(context.Background(), 0, n, func(i uint64, leaf []byte) error {
		if i != uint64(len(out)) {
			t.Fatalf("leaf %d handed out as %d", len(out), i)
		}
		out = append(out, bytes.Clone(leaf))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every stored observation has a leaf, the hash of the row as it reads
// back, at the index LogIndexes gives.
func testLeavesFollowStoredObservations(t *testing.T, st LogStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 5))
	obs := make([]observe.Observation, 40)
	for i := range obs {
		obs[i] = Observation(r, t0.Add(time.Duration(i)*time.Second), i)
	}
	insert(t, st, slices.Clone(obs[:25]))
	insert(t, st, slices.Clone(obs[25:]))
	ls := leaves(t, st)
	if len(ls) != len(obs) {
		t.Fatalf("%d leaves for %d observations", len(ls), len(obs))
	}
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
	}
	idx, err := st.LogIndexes(ctx, append(ids, "01a00000-0000-7000-8000-000000000000"))
	if err != nil || len(idx) != len(obs) {
		t.Fatalf("LogIndexes: %d of %d (%v)", len(idx), len(obs), err)
	}
	err = st.ObservationsByID(ctx, ids, func(o *observe.Observation) error {
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:], ls[idx[o.ID]]) {
			t.Errorf("observation %s: read back, hashes to %x, its leaf %d is %x", o.ID, h, idx[o.ID], ls[idx[o.ID]])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ObservationsByID(ctx, []string{"01a00000-0000-7000-8000-000000000000"}, func(*observe.Observation) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ObservationsByID of an unknown id: %v", err)
	}
}

func testRedeliveryAppendsNoLeaf(t *testing.T, st LogStore) {
	r := rand.New(rand.NewPCG(6, 6))
	obs := []observe.Observation{Observation(r, t0, 1), Observation(r, t0.Add(time.Second), 2)}
	insert(t, st, slices.Clone(obs))
	before := leaves(t, st)
	insert(t, st, slices.Clone(obs))
	if after := leaves(t, st); len(after) != len(before) {
		t.Fatalf("a redelivered batch grew the log from %d to %d leaves", len(before), len(after))
	}
}

// A batch that mixes new observations with replayed ids (one already
// stored, one twice in the batch, each replay with a field changed, as a
// forger would send them) appends a leaf for each new observation only,
// in the order stored, hashing what was stored first: a replay neither
// grows the log nor replaces a leaf.
func testReplayAmongNewAppendsOnlyTheNew(t *testing.T, st LogStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(8, 8))
	a, b := Observation(r, t0, 1), Observation(r, t0.Add(time.Second), 2)
	insert(t, st, []observe.Observation{a, b})
	c, d := Observation(r, t0.Add(2*time.Second), 3), Observation(r, t0.Add(3*time.Second), 4)
	forgedB, forgedC := b, c
	forgedB.Possession.PiecesHave, forgedC.Possession.PiecesHave = 99, 98
	insert(t, st, []observe.Observation{c, forgedB, d, forgedC})
	ls := leaves(t, st)
	want := make([][32]byte, 0, 4)
	for _, o := range []observe.Observation{a, b, c, d} {
		h, err := o.LeafHash()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, h)
	}
	if len(ls) != len(want) {
		t.Fatalf("%d leaves after a batch of 2 new and 2 replayed observations over 2, want 4", len(ls))
	}
	for i := range want {
		if !bytes.Equal(ls[i], want[i][:]) {
			t.Errorf("leaf %d is %x, want %x (the observation as first stored)", i, ls[i], want[i])
		}
	}
	idx, err := st.LogIndexes(ctx, []string{a.ID, b.ID, c.ID, d.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{a.ID, b.ID, c.ID, d.ID} {
		if got, ok := idx[id]; !ok || got != uint64(i) {
			t.Errorf("LogIndexes[%s] = %d, %v; want %d", id, got, ok, i)
		}
	}
}

// A sensor's chain reads back with the observation, and its batches are
// found by chain and seq.
func testChainRoundTripsAndBatches(t *testing.T, st LogStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 7))
	key := bytes.Repeat([]byte{9}, 32)
	obs := make([]observe.Observation, 6)
	for i := range obs {
		// Out of time order, as a sensor publishes when its probes end.
		obs[i] = Observation(r, t0.Add(time.Duration(6-i)*time.Second), i)
		obs[i].Chain = observe.Chain{Key: key, ID: "c0ffee", Seq: uint64(i + 1), Prev: bytes.Repeat([]byte{byte(i)}, 32)}
	}
	obs[2].Chain.BatchSig = bytes.Repeat([]byte{1}, 64)
	obs[5].Chain.BatchSig = bytes.Repeat([]byte{2}, 64)
	insert(t, st, slices.Clone(obs))
	first, head, err := st.ChainBatch(ctx, "c0ffee", 4)
	if err != nil || first != 4 || head != 6 {
		t.Fatalf("ChainBatch(4) = %d, %d, %v; want 4, 6", first, head, err)
	}
	if first, head, err = st.ChainBatch(ctx, "c0ffee", 1); err != nil || first != 1 || head != 3 {
		t.Fatalf("ChainBatch(1) = %d, %d, %v; want 1, 3", first, head, err)
	}
	var got []observe.Observation
	if err := st.ChainObservations(ctx, "c0ffee", 1, 6, func(o *observe.Observation) error {
		got = append(got, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 6 {
		t.Fatalf("ChainObservations gave %d", len(got))
	}
	for i := range got {
		if !got[i].Equal(&obs[i]) {
			t.Errorf("seq %d: read back %+v, want %+v", i+1, got[i].Chain, obs[i].Chain)
		}
	}
	keys, err := st.SensorKeys(ctx)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Key, key) || keys[0].Sensor != obs[0].Sensor.ID {
		t.Fatalf("SensorKeys = %+v, %v", keys, err)
	}
	more := Observation(r, t0.Add(time.Hour), 9)
	more.Chain = observe.Chain{Key: key, ID: "c0ffee", Seq: 7, Prev: make([]byte, 32)}
	insert(t, st, []observe.Observation{more})
	if _, _, err := st.ChainBatch(ctx, "c0ffee", 7); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a batch whose head is not stored: %v", err)
	}
}

func testCheckpointsKeptInOrder(t *testing.T, st LogStore) {
	ctx := context.Background()
	for _, c := range []store.LogCheckpoint{
		{Size: 5, Root: []byte("r5"), Time: t0.Add(time.Minute), Note: []byte("n5")},
		{Size: 3, Root: []byte("r3"), Time: t0, Note: []byte("n3")},
		{Size: 5, Root: []byte("r5"), Time: t0.Add(2 * time.Minute), Note: []byte("n5b")},
	} {
		if err := st.AddLogCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := st.LogCheckpoints(ctx)
	if err != nil || len(cps) != 3 {
		t.Fatalf("%d checkpoints (%v)", len(cps), err)
	}
	if cps[0].Size != 3 || string(cps[1].Note) != "n5" || string(cps[2].Note) != "n5b" || !cps[2].Time.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("checkpoints out of order: %+v", cps)
	}
}

// Each observation reads back in the evidence form it came in, also where
// one chain comes in both (a line relabelled on the way), and its leaf is
// the hash of its form: a bundle gives the line back as it was stored.
func testEvidenceFormRoundTrips(t *testing.T, st LogStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(9, 9))
	key := bytes.Repeat([]byte{3}, 32)
	var obs []observe.Observation
	for i := range 4 {
		o := Observation(r, t0.Add(time.Duration(i)*time.Second), i)
		o.Chain = observe.Chain{Key: key, ID: "c0ffee", Seq: uint64(i + 1), Prev: make([]byte, 32)}
		if i%2 == 0 {
			o.Chain.Form = observe.Form2
			if len(o.Transcript.Bytes) == 0 {
				o.Transcript.Bytes = []byte{1, 2, 3}
			}
			sum := sha256.Sum256(o.Transcript.Bytes)
			o.Transcript.SHA256 = sum[:]
		}
		obs = append(obs, o)
	}
	insert(t, st, slices.Clone(obs[:2]))
	insert(t, st, slices.Clone(obs[2:]))
	ls := leaves(t, st)
	idx, err := st.LogIndexes(ctx, []string{obs[0].ID, obs[1].ID, obs[2].ID, obs[3].ID})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*observe.Observation{}
	for i := range obs {
		want[obs[i].ID] = &obs[i]
	}
	n := 0
	err = st.ObservationsByID(ctx, []string{obs[0].ID, obs[1].ID, obs[2].ID, obs[3].ID}, func(o *observe.Observation) error {
		n++
		w := want[o.ID]
		if o.Chain.Form != w.Chain.Form || !o.Equal(w) {
			t.Errorf("observation %s: read back in form %d, stored in form %d (equal %v)", o.ID, o.Chain.Form, w.Chain.Form, o.Equal(w))
		}
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:], ls[idx[o.ID]]) {
			t.Errorf("observation %s (form %d): read back, hashes to %x, its leaf is %x", o.ID, o.Chain.Form, h, ls[idx[o.ID]])
		}
		return nil
	})
	if err != nil || n != len(obs) {
		t.Fatalf("%d of %d read back: %v", n, len(obs), err)
	}
}

// A form 2 observation comes with the sensor hash ingest's gate
// remembered (observe.RememberSensorHash), and a field it covers changed
// after (a mark added, no id, so that the store assigns one, the pieces,
// peer id bytes changed in place): the leaf logged is of the row as
// stored, never of the hash remembered, and the observation handed back
// knows the sensor hash of what was stored.
func testRememberedSensorHashOfAChangedObservation(t *testing.T, st LogStore) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(10, 10))
	key := bytes.Repeat([]byte{4}, 32)
	changes := []func(o *observe.Observation){
		func(o *observe.Observation) { o.Mark(observe.MarkThirdParty) },
		func(o *observe.Observation) { o.ID = "" },
		func(o *observe.Observation) { o.Possession.PiecesHave++ },
		func(o *observe.Observation) { o.Client.PeerID[0] ^= 1 },
		func(o *observe.Observation) {}, // unchanged: the hash remembered holds
	}
	obs := make([]observe.Observation, len(changes))
	for i := range obs {
		o := Observation(r, t0.Add(time.Duration(i)*time.Second), i)
		o.Chain = observe.Chain{Key: key, ID: "c0ffee", Seq: uint64(i + 1), Prev: make([]byte, 32), Form: observe.Form2}
		if len(o.Transcript.Bytes) == 0 {
			o.Transcript.Bytes = []byte{1, 2, 3}
		}
		sum := sha256.Sum256(o.Transcript.Bytes)
		o.Transcript.SHA256 = sum[:]
		o.Client.PeerID = append([]byte{7}, o.Client.PeerID...)
		h, err := o.SensorHash()
		if err != nil {
			t.Fatal(err)
		}
		o.RememberSensorHash(h)
		o.Place.City, o.Jurisdiction.Agency = "Lyon", "fr-test" // routed: not in the sensor hash
		changes[i](&o)
		obs[i] = o
	}
	insert(t, st, obs)
	ls := leaves(t, st)
	ids := make([]string, len(obs))
	for i := range obs {
		ids[i] = obs[i].ID
		want, err := obs[i].SensorHash()
		if got, err2 := obs[i].KnownSensorHash(); err != nil || err2 != nil || got != want {
			t.Errorf("observation %d handed back: known sensor hash %x, its sensor hash %x", i, got, want)
		}
	}
	idx, err := st.LogIndexes(ctx, ids)
	if err != nil || len(idx) != len(obs) {
		t.Fatalf("LogIndexes: %d (%v)", len(idx), err)
	}
	n := 0
	err = st.ObservationsByID(ctx, ids, func(o *observe.Observation) error {
		n++
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		if !bytes.Equal(h[:], ls[idx[o.ID]]) {
			t.Errorf("observation %s: read back, hashes to %x, its leaf is %x (the remembered sensor hash logged)", o.ID, h, ls[idx[o.ID]])
		}
		return nil
	})
	if err != nil || n != len(obs) {
		t.Fatalf("%d of %d read back: %v", n, len(obs), err)
	}
}
