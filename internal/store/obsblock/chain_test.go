package obsblock

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/evidence"
	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// capture is the bus a test's signer publishes to.
type capture struct{ obs []observe.Observation }

func (c *capture) Publish(_ context.Context, o observe.Observation) error {
	c.obs = append(c.obs, o)
	return nil
}

// signed is obs as evidence.BatchSigner publishes them (a chain of its
// own, its key drawn from seed; batches of 256): the chain hashes are the
// real signer's. The place and agency obs hold (the keys ingest adds) are
// kept: the sensor hash leaves them out.
func signed(tb testing.TB, obs []observe.Observation, seed byte) []observe.Observation {
	tb.Helper()
	c := &capture{}
	s := evidence.NewBatchSigner(c, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)), evidence.SignerConfig{BatchSize: 256})
	for _, o := range obs {
		o.Chain = observe.Chain{}
		if err := s.Publish(context.Background(), o); err != nil {
			tb.Fatal(err)
		}
	}
	if err := s.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return c.obs
}

// signedLab is n lab observations signed by one signer.
func signedLab(tb testing.TB, n int, seed uint64) []observe.Observation {
	return signed(tb, labObservations(n, seed), byte(seed))
}

// interleave merges chains, keeping each one's order, drawing the next
// chain at random.
func interleave(r *rand.Rand, chains ...[]observe.Observation) []observe.Observation {
	var out []observe.Observation
	for {
		var left []int
		for c := range chains {
			if len(chains[c]) > 0 {
				left = append(left, c)
			}
		}
		if len(left) == 0 {
			return out
		}
		c := left[r.IntN(len(left))]
		out, chains[c] = append(out, chains[c][0]), chains[c][1:]
	}
}

// derivedOf reports which rows of blk have their chain hash derived.
func derivedOf(tb testing.TB, blk []byte) []bool {
	tb.Helper()
	b, err := Open(blk)
	if err != nil {
		tb.Fatal(err)
	}
	if err := b.readFlags(); err != nil {
		tb.Fatal(err)
	}
	out := make([]bool, b.n)
	for i, f := range b.flags {
		out[i] = f&flagPrevDerived != 0
	}
	return out
}

// encodeBoth round-trips obs in version 2, checks that At gives every
// row as All does, and returns the block and its derived rows.
func encodeBoth(t *testing.T, obs []observe.Observation) ([]byte, []bool) {
	t.Helper()
	all := roundTrip(t, obs)
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(blk)
	for _, i := range []int{len(obs) - 1, len(obs) / 2, 1, 0} { // the last first: At walks back the whole run
		o, err := b.At(i)
		if err != nil {
			t.Fatalf("At(%d): %v", i, err)
		}
		if d := diff(reflect.ValueOf(o), reflect.ValueOf(all[i]), "Observation"); d != "" {
			t.Fatalf("At(%d): %s", i, d)
		}
	}
	for i := range obs { // a fresh block a row: no hash At kept helps
		b, _ := Open(blk)
		o, err := b.At(i)
		if err != nil || !bytes.Equal(o.Chain.Prev, all[i].Chain.Prev) {
			t.Fatalf("At(%d) alone: %v, chain hash %x, want %x", i, err, o.Chain.Prev, all[i].Chain.Prev)
		}
	}
	return blk, derivedOf(t, blk)
}

// chained is obs in a chain of key and id, in evidence form (0 for form
// 1, or observe.Form2), its hashes stepped as a signer steps them
// (verify.ChainStep); with transcripts, every other row has a
// transcript's bytes, and its SHA-256.
func chained(tb testing.TB, obs []observe.Observation, key []byte, id string, form uint8, transcripts bool) []observe.Observation {
	tb.Helper()
	var prev [32]byte
	for i := range obs {
		o := &obs[i]
		o.Chain = observe.Chain{Key: key, ID: id, Seq: uint64(i + 1), Prev: append([]byte(nil), prev[:]...), Form: form}
		if transcripts && i%2 == 0 {
			o.Transcript.Bytes = []byte("transcript " + strings.Repeat("x", i))
			sum := sha256.Sum256(o.Transcript.Bytes)
			o.Transcript.SHA256 = sum[:]
		}
		h, err := o.SensorHash()
		if err != nil {
			tb.Fatal(err)
		}
		prev = verify.ChainStep(prev[:], h[:])
	}
	return obs
}

// TestChainStepIsVerifys: the step version 2 derives with is the one
// 'vigil verify' checks chains with.
func TestChainStepIsVerifys(t *testing.T) {
	if chainContext != verify.ChainContext {
		t.Fatalf("chainContext %q, verify's %q: a chain of the new step is kept whole; a new block version is needed to derive it", chainContext, verify.ChainContext)
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 100 {
		prev := make([]byte, r.IntN(40))
		var leaf [32]byte
		for i := range prev {
			prev[i] = byte(r.Uint32())
		}
		for i := range leaf {
			leaf[i] = byte(r.Uint32())
		}
		if chainStep(prev, &leaf) != verify.ChainStep(prev, leaf[:]) {
			t.Fatalf("chainStep(%x, %x) is not verify.ChainStep", prev, leaf)
		}
	}
}

// TestChainHashDerivedFromASigner: lab observations signed by
// evidence.BatchSigner, one chain and two interleaved, come back exactly
// from blocks that store the chain hash of each chain's first row and of
// every keepEvery-th row of a run only, and such a block is at least 28 bytes an
// observation smaller than version 1's.
func TestChainHashDerivedFromASigner(t *testing.T) {
	one := signedLab(t, 1000, 11)
	two := interleave(rand.New(rand.NewPCG(5, 5)), signedLab(t, 600, 12), signedLab(t, 400, 13))
	for name, obs := range map[string][]observe.Observation{"one chain": one, "two chains interleaved": two} {
		blk, derived := encodeBoth(t, obs)
		firsts := map[string]bool{}
		run := map[string]int{}
		for i, o := range obs {
			c := chainOf(o.Chain.Key, o.Chain.ID)
			want := firsts[c] && run[c] < keepEvery-1
			if derived[i] != want {
				t.Fatalf("%s: row %d (seq %d) derived %v, want %v", name, i, o.Chain.Seq, derived[i], want)
			}
			firsts[c] = true
			if want {
				run[c]++
			} else {
				run[c] = 0
			}
		}
		v1, err := encode(nil, obs, version1)
		if err != nil {
			t.Fatal(err)
		}
		if saved := float64(len(v1)-len(blk)) / float64(len(obs)); saved < 28 {
			t.Fatalf("%s: version 2 takes %d bytes, version 1 %d: %.1f bytes an observation saved, want 28 or more", name, len(blk), len(v1), saved)
		}
	}
}

// TestChainHashKeptWhereItDoesNotFollow: chains that lie, are forged,
// changed, repeated, cut or signed in evidence form 1 with transcripts
// come back exactly, and the rows whose chain hash the block cannot
// compute again exactly keep it.
func TestChainHashKeptWhereItDoesNotFollow(t *testing.T) {
	const n = 40
	base := signedLab(t, n, 21)
	other := signedLab(t, n, 22)
	rnd := func(k int) []byte {
		b := make([]byte, k)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}
	cases := []struct {
		name string
		edit func([]observe.Observation) []observe.Observation
		kept []int // the rows after the first that must keep their chain hash
	}{
		{"as signed", func(o []observe.Observation) []observe.Observation { return o }, nil},
		{"a lying chain hash", func(o []observe.Observation) []observe.Observation {
			o[10].Chain.Prev = rnd(32) // row 10 lies; row 11's predecessor then hashes otherwise
			return o
		}, []int{10, 11}},
		{"a forged step", func(o []observe.Observation) []observe.Observation {
			h, _ := o[9].SensorHash()
			h[0] ^= 1
			s := verify.ChainStep(o[9].Chain.Prev, h[:])
			o[10].Chain.Prev = s[:]
			return o
		}, []int{10, 11}},
		{"a field changed after signing", func(o []observe.Observation) []observe.Observation {
			o[10].Endpoint.Port++ // row 10's own chain hash still follows; row 11's does not
			return o
		}, []int{11}},
		{"a chain hash of 31 bytes", func(o []observe.Observation) []observe.Observation {
			o[10].Chain.Prev = o[10].Chain.Prev[:31]
			return o
		}, []int{10, 11}},
		{"a position duplicated", func(o []observe.Observation) []observe.Observation {
			return slices.Insert(o, 11, o[10]) // row 11 repeats seq 11; row 12 then follows row 11, the same content
		}, []int{11}},
		{"a position duplicated with another content", func(o []observe.Observation) []observe.Observation {
			d := o[10]
			d.Client.Name = "other"
			return slices.Insert(o, 11, d)
		}, []int{11, 12}},
		{"a position missing", func(o []observe.Observation) []observe.Observation {
			return slices.Delete(o, 10, 11)
		}, []int{10}},
		{"two rows swapped", func(o []observe.Observation) []observe.Observation {
			o[10], o[11] = o[11], o[10]
			return o
		}, []int{10, 11, 12}},
		{"another sensor's chain interleaved", func(o []observe.Observation) []observe.Observation {
			return interleave(rand.New(rand.NewPCG(1, 2)), o, slices.Clone(other))
		}, nil},
		{"the same chain id under another key", func(o []observe.Observation) []observe.Observation {
			f := chained(t, labObservations(n, 23), bytes.Repeat([]byte{9}, 32), o[0].Chain.ID, observe.Form2, false)
			return interleave(rand.New(rand.NewPCG(3, 4)), o, f) // a chain whose id is ours, under another key
		}, nil},
		{"the key dropped", func(o []observe.Observation) []observe.Observation {
			o[10].Chain.Key = nil // unsigned: its chain hash is kept, and it is no row's predecessor
			return o
		}, []int{10, 11}},
		{"the seq wraps", func(o []observe.Observation) []observe.Observation {
			o[10].Chain.Seq = 1<<64 - 1
			o[11].Chain.Seq = 0
			return o
		}, []int{10, 11, 12}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := c.edit(slices.Clone(base))
			_, derived := encodeBoth(t, obs)
			first := map[string]bool{}
			run := map[string]int{} // derived rows in a row, a chain each
			for i, o := range obs {
				chain := chainOf(o.Chain.Key, o.Chain.ID)
				want := first[chain] && len(o.Chain.Key) > 0 && !slices.Contains(c.kept, i)
				if c.name == "the same chain id under another key" || c.name == "another sensor's chain interleaved" {
					want = first[chain] // every row but each chain's first
				}
				want = want && run[chain] < keepEvery-1
				if derived[i] != want {
					t.Fatalf("row %d (seq %d): derived %v, want %v", i, o.Chain.Seq, derived[i], want)
				}
				if len(o.Chain.Key) > 0 {
					first[chain] = true
				}
				if want {
					run[chain]++
				} else {
					run[chain] = 0
				}
			}
		})
	}
}

// TestChainHashKeptAcrossBlocks: a chain cut into blocks keeps the chain
// hash of each block's first row (its predecessor is in the block before).
func TestChainHashKeptAcrossBlocks(t *testing.T) {
	obs := signedLab(t, 300, 31)
	for _, part := range [][]observe.Observation{obs[:100], obs[100:250], obs[250:]} {
		_, derived := encodeBoth(t, part)
		for i, d := range derived {
			if want := i%keepEvery != 0; d != want { // the first, and every keepEvery-th: a run is at most keepEvery-1 long
				t.Fatalf("row %d of %d: derived %v, want %v", i, len(part), d, want)
			}
		}
	}
}

// TestChainHashOfEvidenceForm1: in form 1 a sensor hash covers the
// transcript's bytes, which a block does not keep: a row after one with a
// transcript keeps its chain hash, though the chain holds; a row after
// one without a transcript is derived.
func TestChainHashOfEvidenceForm1(t *testing.T) {
	obs := chained(t, labObservations(40, 41), bytes.Repeat([]byte{4}, 32), "f1", 0, true)
	_, derived := encodeBoth(t, obs)
	for i := range obs {
		if want := i > 0 && i%2 == 0; derived[i] != want { // row i-1 had a transcript when i is odd
			t.Fatalf("row %d: derived %v, want %v", i, derived[i], want)
		}
	}
}

// TestDecodeRefusesAForgedDerivation: a block edited to mark a row's chain
// hash derived where no row before it is its predecessor, and a version-1
// block with the flag, are refused.
func TestDecodeRefusesAForgedDerivation(t *testing.T) {
	obs := signedLab(t, 20, 51)
	obs[5].Chain.Prev = bytes.Repeat([]byte{1}, 32) // kept
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(blk)
	if err := b.parseAll(); err != nil {
		t.Fatal(err)
	}
	prevs := b.b[colChainPrev]
	for name, c := range map[string]struct {
		row     int
		version byte
		want    string
	}{
		"the first row":   {0, version2, "no row before it is in its chain"},
		"an unsigned row": {-1, version2, "no sensor key"},
		"version 1":       {5, version1, "unknown in version 1"},
	} {
		t.Run(name, func(t *testing.T) {
			obs := slices.Clone(obs)
			row := c.row
			if row < 0 {
				row = 7
				obs[7].Chain.Key = nil
			}
			flags := make([]uint64, len(obs))
			var kept [][]byte
			k := 0
			for i := range obs {
				flags[i] = b.flags[i]
				if b.flags[i]&flagPrevDerived == 0 {
					v, _ := prevs.at(k)
					if i != row {
						kept = append(kept, v)
					}
					k++
				}
			}
			flags[row] |= flagPrevDerived
			bl := &blobs{}
			for _, v := range kept {
				bl.add(string(v), false)
			}
			bad := rebuild(t, b, colFlags, appendUints(nil, flags))
			bad = replaceColumn(t, bad, colChainPrev, appendBlobs(nil, bl))
			if c.row < 0 {
				keys := &blobs{}
				for _, o := range obs {
					keys.add(string(o.Chain.Key), o.Chain.Key == nil)
				}
				bad = replaceColumn(t, bad, colChainKey, appendBlobs(nil, keys))
			}
			bad[3] = c.version
			if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want ErrCorrupt saying %q", err, c.want)
			}
		})
	}
}

// replaceColumn is blk (every column stored raw, as rebuild writes) with
// column c's raw bytes replaced.
func replaceColumn(t testing.TB, blk []byte, c int, raw []byte) []byte {
	t.Helper()
	b, err := Open(blk)
	if err != nil {
		t.Fatal(err)
	}
	out := rebuild(t, b, c, raw)
	out[3] = blk[3]
	return out
}

// TestRewrittenBlockKeepsWhatNoLongerFollows: a block rewritten without
// some of its rows (retention's purge of a block holding due rows decodes
// it, drops them and encodes the rest) gives the rest back exactly: a row
// whose predecessor was dropped now keeps its chain hash.
func TestRewrittenBlockKeepsWhatNoLongerFollows(t *testing.T) {
	obs := signedLab(t, 200, 61)
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	all, err := Decode(blk)
	if err != nil {
		t.Fatal(err)
	}
	var left, want []observe.Observation
	for i := range all {
		if i%7 != 3 { // the due rows
			left, want = append(left, all[i]), append(want, obs[i])
		}
	}
	_, derived := encodeBoth(t, left)
	got := roundTrip(t, left)
	for i := range want {
		if d := diff(reflect.ValueOf(got[i]), reflect.ValueOf(stored(want[i])), "Observation"); d != "" {
			t.Fatalf("row %d: %s", i, d)
		}
		if i > 0 && want[i-1].Chain.Seq != want[i].Chain.Seq-1 && derived[i] {
			t.Fatalf("row %d: its predecessor was dropped, and its chain hash is derived", i)
		}
	}
}

// TestEditedBlockDecodesAndTheLeavesCatchIt: the decoder refuses a
// malformed block, not an edited one. A block whose column an editor
// changed in place (one peer's port here) decodes to what the editor
// wrote, and in version 2 the chain hash of the row after the edited row,
// derived from it, follows the edit: the chain still steps there, where
// version 1's stored hash no longer follows. What catches the edit is the
// evidence log's leaves, which cover each row's chain hash (its sensor
// hash does): the edited row's and the derived rows' after it
// (docs/architecture.md, the obsblock row).
func TestEditedBlockDecodesAndTheLeavesCatchIt(t *testing.T) {
	obs := signedLab(t, 8, 71)
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	derived := derivedOf(t, blk)
	if !derived[4] {
		t.Fatalf("row 4 is not derived (%v): the test no longer tests a derived row", derived)
	}
	all, err := Decode(blk)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Open(blk)
	if err := b.parseAll(); err != nil {
		t.Fatal(err)
	}
	ports := slices.Clone(b.u[colPort])
	ports[3] ^= 1
	got, err := Decode(replaceColumn(t, blk, colPort, appendUints(nil, ports)))
	if err != nil {
		t.Fatalf("edited block refused: %v", err)
	}
	if got[3].Endpoint.Port == all[3].Endpoint.Port {
		t.Fatal("the edit did not come back")
	}
	h, err := got[3].SensorHash()
	if err != nil {
		t.Fatal(err)
	}
	if step := verify.ChainStep(got[3].Chain.Prev, h[:]); !bytes.Equal(got[4].Chain.Prev, step[:]) || bytes.Equal(got[4].Chain.Prev, all[4].Chain.Prev) {
		t.Fatalf("row 4's chain hash %x does not follow the edited row 3 (step %x; stored %x)", got[4].Chain.Prev, step, all[4].Chain.Prev)
	}
	for i := range all {
		was, _ := all[i].LeafHash()
		now, _ := got[i].LeafHash()
		changed := i == 3 || i > 3 && derived[i] && !bytes.Equal(got[i].Chain.Prev, all[i].Chain.Prev)
		if changed && was == now {
			t.Errorf("row %d: the edited block gives the leaf the log holds: nothing would catch the edit", i)
		}
		if !changed && was != now {
			t.Errorf("row %d, not edited, gives another leaf", i)
		}
	}
}
