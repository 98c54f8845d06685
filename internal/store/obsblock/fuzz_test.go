package obsblock

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

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
	f.Add([]byte("VOB\x01"))
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
