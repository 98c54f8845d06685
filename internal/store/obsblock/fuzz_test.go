package obsblock

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/evidence/verify"
	"github.com/vigil-oss/vigil/internal/observe"
)

// randomObservations are n observations whose fields are each set or left
// zero at random (every field Observation has, found by reflection).
func randomObservations(seed uint64, n int) []observe.Observation {
	r := rand.New(rand.NewPCG(seed, seed>>32|1))
	out := make([]observe.Observation, n)
	for i := range out {
		o := &out[i]
		if i > 0 && r.IntN(3) == 0 {
			*o = out[r.IntN(i)] // repeats, for the dictionaries
		}
		leaves(reflect.ValueOf(o).Elem(), "", func(_ string, v reflect.Value) {
			if r.IntN(2) == 0 {
				fill(v, r)
			}
		})
		if r.IntN(8) == 0 {
			o.Place.Lat = math.Float64frombits(0x7ff8_0000_dead_beef) // a NaN with a payload
			o.Place.Lon = math.Copysign(0, -1)
		}
	}
	return out
}

// FuzzRoundTrip: random observations come back exactly.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []struct {
		seed uint64
		n    uint8
	}{{1, 1}, {2, 7}, {3, 200}, {4, 255}} {
		f.Add(s.seed, s.n)
	}
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		roundTrip(t, randomObservations(seed, 1+int(n)))
	})
}

// FuzzDecode: any bytes are refused with ErrCorrupt or decode to
// observations that encode and decode again to the same; every reader
// of a block (At, Times, Endpoints) holds the same line.
func FuzzDecode(f *testing.F) {
	for _, obs := range [][]observe.Observation{labObservations(30, 1), diskObservations(5), randomObservations(9, 12),
		{{}}, randomObservations(10, 1)} {
		blk, err := Encode(nil, obs)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(blk)
		b, _ := Open(blk)
		f.Add(rebuild(f, b, -1, nil)) // the same, uncompressed: the fuzzer reaches the columns' parsers
	}
	for _, obs := range [][]observe.Observation{chainedObservations(1, 60, 0), chainedObservations(2, 30, 6)} {
		blk, err := Encode(nil, obs) // derived chain hashes: the fuzzer edits the flags and the chain columns
		if err != nil {
			f.Fatal(err)
		}
		f.Add(blk)
		b, _ := Open(blk)
		f.Add(rebuild(f, b, -1, nil))
	}
	f.Add([]byte("VOB\x01"))
	f.Add([]byte("VOB\x02"))
	f.Fuzz(func(t *testing.T, blk []byte) {
		b, err := Open(blk)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			return
		}
		times, terr := b.Times()
		eps, eerr := b.Endpoints()
		ids, ierr := b.IDs()
		got, err := Decode(blk)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode: %v, want ErrCorrupt", err)
			}
			return
		}
		if terr != nil || eerr != nil || ierr != nil {
			t.Fatalf("the block decodes whole, but its times (%v), endpoints (%v) or ids (%v) do not", terr, eerr, ierr)
		}
		for i := range got {
			if !times[i].Equal(got[i].Time) || eps[i] != got[i].Endpoint || ids[i] != got[i].ID {
				t.Fatalf("row %d: the column readers disagree with the block", i)
			}
		}
		o, err := b.At(len(got) - 1)
		if err != nil || !o.Equal(&got[len(got)-1]) {
			t.Fatalf("At(last): %v", err)
		}
		roundTrip(t, got)
	})
}

// labPool is lab observations that chainedObservations draws from.
var labPool = sync.OnceValue(func() []observe.Observation { return labObservations(512, 1) })

// chainedObservations are n lab observations drawn from labPool by seed,
// in two chains (or one) stepped as a signer steps them
// (verify.ChainStep), each chain in evidence form 1 or 2, some rows with
// a transcript's bytes; then edits random edits: any field of a row set
// at random (its chain fields too), a row repeated, dropped or moved, a
// chain hash replaced or forged, a time in another zone, a transcript's
// bytes added.
func chainedObservations(seed uint64, n int, edits int) []observe.Observation {
	r := rand.New(rand.NewPCG(seed, 77))
	pool := labPool()
	obs := make([]observe.Observation, n)
	type chain struct {
		key  []byte
		id   string
		form uint8
		seq  uint64
		prev [32]byte
	}
	chains := []*chain{{key: bytes.Repeat([]byte{1}, 32), id: "a"}, {key: bytes.Repeat([]byte{2}, 32), id: "b"}}
	if r.IntN(3) == 0 {
		chains[1].id = chains[0].id // one id, two keys
	}
	for _, c := range chains {
		if r.IntN(2) == 0 {
			c.form = observe.Form2
		}
	}
	one := r.IntN(4) == 0
	for i := range obs {
		o := &obs[i]
		*o = pool[r.IntN(len(pool))]
		var id [16]byte
		for k := range id {
			id[k] = byte(r.Uint32())
		}
		o.ID = formatUUID(id)
		c := chains[0]
		if !one && r.IntN(2) == 0 {
			c = chains[1]
		}
		if r.IntN(4) == 0 {
			o.Transcript.Bytes = []byte{byte(i), 'x'}
		}
		c.seq++
		o.Chain = observe.Chain{Key: c.key, ID: c.id, Seq: c.seq, Prev: append([]byte(nil), c.prev[:]...), Form: c.form}
		if h, err := o.SensorHash(); err == nil {
			c.prev = verify.ChainStep(c.prev[:], h[:])
		}
	}
	for range edits {
		i := r.IntN(len(obs))
		switch r.IntN(8) {
		case 0:
			var target reflect.Value
			k, chosen := 0, r.IntN(60)
			leaves(reflect.ValueOf(&obs[i]).Elem(), "", func(_ string, v reflect.Value) {
				if k == chosen {
					target = v
				}
				k++
			})
			if target.IsValid() {
				fill(target, r)
			}
		case 1:
			obs = slices.Insert(obs, r.IntN(len(obs)+1), obs[i])
		case 2:
			if len(obs) > 1 {
				obs = slices.Delete(obs, i, i+1)
			}
		case 3:
			j := r.IntN(len(obs))
			obs[i], obs[j] = obs[j], obs[i]
		case 4:
			obs[i].Chain.Prev = bytes.Repeat([]byte{byte(r.Uint32())}, 32)
		case 5:
			if i > 0 {
				h, _ := obs[i-1].SensorHash()
				h[r.IntN(32)] ^= 1
				s := verify.ChainStep(obs[i-1].Chain.Prev, h[:])
				obs[i].Chain.Prev = s[:]
			}
		case 6:
			obs[i].Time = obs[i].Time.In(time.FixedZone("lab", 3600*(1+r.IntN(5))))
		case 7:
			obs[i].Transcript.Bytes = []byte("late")
		}
	}
	return obs
}

// FuzzRoundTripChains: chains stepped as a signer steps them, edited at
// random (chainedObservations), come back exactly from a block of either
// version, whole and a row at a time (At on a fresh block, walking back
// the derived rows).
func FuzzRoundTripChains(f *testing.F) {
	for _, s := range []struct {
		seed    uint64
		n, edit uint8
	}{{1, 60, 0}, {2, 200, 3}, {3, 20, 12}, {4, 255, 40}} {
		f.Add(s.seed, s.n, s.edit)
	}
	f.Fuzz(func(t *testing.T, seed uint64, n, edits uint8) {
		obs := chainedObservations(seed, 1+int(n), int(edits%64))
		all := roundTrip(t, obs)
		blk, err := Encode(nil, obs)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(seed, 3))
		for range 3 {
			i := r.IntN(len(obs))
			b, err := Open(blk)
			if err != nil {
				t.Fatal(err)
			}
			o, err := b.At(i)
			if err != nil {
				t.Fatalf("At(%d): %v", i, err)
			}
			if d := diff(reflect.ValueOf(o), reflect.ValueOf(all[i]), "Observation"); d != "" {
				t.Fatalf("At(%d): %s", i, d)
			}
		}
		v1, err := encode(nil, obs, version1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(v1)
		if err != nil {
			t.Fatalf("version 1: %v", err)
		}
		for i := range obs {
			if d := diff(reflect.ValueOf(got[i]), reflect.ValueOf(stored(obs[i])), "Observation"); d != "" {
				t.Fatalf("version 1, observation %d: %s", i, d)
			}
		}
	})
}

// TestChainedObservationsDerive: the fuzz targets' chains, unedited, give
// blocks with derived rows (else FuzzRoundTripChains would test version 1
// twice).
func TestChainedObservationsDerive(t *testing.T) {
	for seed := range uint64(8) {
		blk, err := Encode(nil, chainedObservations(seed, 100, 0))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(slices.DeleteFunc(derivedOf(t, blk), func(d bool) bool { return !d })); n < 30 {
			t.Fatalf("seed %d: %d rows of 100 derived", seed, n)
		}
	}
}
