package obsblock

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store/storetest"
)

// stored is o as a block gives it back: without the transcript's bytes.
func stored(o observe.Observation) observe.Observation {
	o.Transcript.Bytes = nil
	return o
}

// diff names the first field where got and want differ, or "". Times are
// compared as instants and must be in UTC; everything else exactly (nil
// and empty slices told apart).
func diff(got, want reflect.Value, path string) string {
	if t, ok := want.Interface().(time.Time); ok {
		g := got.Interface().(time.Time)
		if !g.Equal(t) || (!g.IsZero() && g.Location() != time.UTC) {
			return fmt.Sprintf("%s: got %v, want %v", path, g, t)
		}
		return ""
	}
	switch want.Kind() {
	case reflect.Struct:
		if want.Type() == reflect.TypeFor[hashkind.Hash]() || want.Type().PkgPath() == "net/netip" {
			if got.Interface() != want.Interface() {
				return fmt.Sprintf("%s: got %v, want %v", path, got.Interface(), want.Interface())
			}
			return ""
		}
		for i := range want.NumField() {
			f := want.Type().Field(i)
			if !f.IsExported() {
				continue // memo: never stored (checked by TestEveryFieldRoundTrips)
			}
			if d := diff(got.Field(i), want.Field(i), path+"."+f.Name); d != "" {
				return d
			}
		}
		return ""
	case reflect.Slice:
		if got.IsNil() != want.IsNil() || got.Len() != want.Len() {
			return fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface())
		}
		for i := range want.Len() {
			if d := diff(got.Index(i), want.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
		return ""
	case reflect.Float64:
		if math.Float64bits(got.Float()) != math.Float64bits(want.Float()) {
			return fmt.Sprintf("%s: got %v, want %v", path, got.Float(), want.Float())
		}
		return ""
	}
	if !reflect.DeepEqual(got.Interface(), want.Interface()) {
		return fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface())
	}
	return ""
}

func roundTrip(t testing.TB, obs []observe.Observation) []observe.Observation {
	t.Helper()
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	got, err := Decode(blk)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(got) != len(obs) {
		t.Fatalf("decoded %d observations, want %d", len(got), len(obs))
	}
	for i := range obs {
		if d := diff(reflect.ValueOf(got[i]), reflect.ValueOf(stored(obs[i])), "Observation"); d != "" {
			t.Fatalf("observation %d: %s", i, d)
		}
	}
	return got
}

// fill sets v (a leaf of Observation) to a value drawn from r that is not
// its zero value, and reports false for a type it does not know.
func fill(v reflect.Value, r *rand.Rand) bool {
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	randString := func() string {
		return strings.Repeat(string(rune('a'+r.IntN(26))), 1+r.IntN(5)) + "é\x00\"" + fmt.Sprint(r.Uint32())
	}
	switch x := v.Addr().Interface().(type) {
	case *time.Time:
		*x = time.Unix(0, r.Int64()-r.Int64()).UTC()
	case *time.Duration:
		*x = time.Duration(r.Int64() - r.Int64())
	case *hashkind.Hash:
		k := hashkind.All()[r.IntN(len(hashkind.All()))]
		*x = hashkind.MustNew(k, randBytes(k.Size()))
	case *netip.Addr:
		if r.IntN(2) == 0 {
			*x = netip.AddrFrom4([4]byte(randBytes(4)))
		} else {
			*x = netip.AddrFrom16([16]byte(randBytes(16))).WithZone([]string{"", "eth0", "lo"}[r.IntN(3)])
		}
	case *netip.AddrPort:
		*x = netip.AddrPortFrom(netip.AddrFrom16([16]byte(randBytes(16))), uint16(r.Uint32()))
	case *[]observe.Match:
		*x = make([]observe.Match, r.IntN(3))
		for i := range *x {
			(*x)[i] = observe.Match{List: randString(), Category: randString()}
		}
	case *[]string:
		*x = make([]string, r.IntN(3))
		for i := range *x {
			(*x)[i] = randString()
		}
	case *[]byte:
		*x = randBytes(r.IntN(70))
	case *string:
		*x = randString()
	case *bool:
		*x = true
	case *float64:
		*x = r.NormFloat64() * 100
	case *int:
		*x = r.IntN(1<<40) - 1<<39
	case *uint64:
		*x = r.Uint64() | 1
	case *uint32, *uint16, *uint8, *observe.Level:
		v.SetUint(1 + r.Uint64N(1<<(8*v.Type().Size())-1))
	default:
		return false
	}
	return true
}

// leaves calls fn with the path and value of every exported leaf field of
// v (a struct), recursing into structs other than the leaf types.
func leaves(v reflect.Value, path string, fn func(string, reflect.Value)) {
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if !f.IsExported() {
			continue
		}
		p := path + "." + f.Name
		if fv.Kind() == reflect.Struct && fv.Type() != reflect.TypeFor[time.Time]() &&
			fv.Type() != reflect.TypeFor[hashkind.Hash]() && fv.Type().PkgPath() != "net/netip" {
			leaves(fv, p, fn)
			continue
		}
		fn(p, fv)
	}
}

// TestEveryFieldRoundTrips sets each field of an Observation in turn
// (found by reflection: a field added later is set too) to random values,
// on an empty observation and on a full one, and checks that a block
// gives every field back: a field the codec does not keep fails here. The
// transcript's bytes alone are left out (stored apart), and must come back
// nil; the one unexported field, memo, is never stored.
func TestEveryFieldRoundTrips(t *testing.T) {
	var unexported []string
	ot := reflect.TypeFor[observe.Observation]()
	for i := range ot.NumField() {
		if f := ot.Field(i); !f.IsExported() {
			unexported = append(unexported, f.Name)
		}
	}
	if !slices.Equal(unexported, []string{"memo"}) {
		t.Fatalf("Observation's unexported fields are %v: say here whether a block keeps each", unexported)
	}
	r := rand.New(rand.NewPCG(1, 2))
	full := storetest.Observation(r, time.Date(2026, 11, 23, 13, 34, 13, 123456789, time.UTC), 1)
	full.Chain = observe.Chain{Key: bytes.Repeat([]byte{7}, 32), ID: "c0ffee", Seq: 9, Prev: bytes.Repeat([]byte{8}, 32),
		BatchSig: bytes.Repeat([]byte{9}, 64), Form: observe.Form2}
	n := 0
	for _, base := range []observe.Observation{{}, full} {
		leaves(reflect.ValueOf(&base).Elem(), "Observation", func(path string, _ reflect.Value) {
			for range 3 {
				o := base
				var target reflect.Value
				leaves(reflect.ValueOf(&o).Elem(), "Observation", func(p string, v reflect.Value) {
					if p == path {
						target = v
					}
				})
				if !fill(target, r) {
					t.Fatalf("%s (%s): the test does not know how to fill it", path, target.Type())
				}
				got := roundTrip(t, []observe.Observation{o, base, o})
				if path == "Observation.Transcript.Bytes" {
					if got[0].Transcript.Bytes != nil {
						t.Fatalf("the transcript's bytes came back from a block")
					}
					continue
				}
				if d := diff(reflect.ValueOf(got[0]), reflect.ValueOf(stored(o)), "Observation"); d != "" {
					t.Fatalf("set %s: %s", path, d)
				}
				n++
			}
		})
	}
	if n < 2*3*50 {
		t.Fatalf("only %d fields tried", n)
	}
}

// TestNilAndEmptyAreToldApart: a nil slice and an empty one come back as
// they went in.
func TestNilAndEmptyAreToldApart(t *testing.T) {
	var a, b observe.Observation
	b.Marks, b.Item.Matched, b.Place.Subdivisions = []string{}, []observe.Match{}, []string{}
	b.Client.PeerID, b.Transcript.SHA256, b.Chain.Key = []byte{}, []byte{}, []byte{}
	got := roundTrip(t, []observe.Observation{a, b, a})
	if got[0].Marks != nil || got[1].Marks == nil || got[1].Client.PeerID == nil || got[2].Chain.Key != nil {
		t.Fatalf("nil and empty mixed up: %#v", got)
	}
}

func TestEncodeIsDeterministic(t *testing.T) {
	obs := labObservations(2000, 3)
	a, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Encode(nil, slices.Clone(obs))
	if !bytes.Equal(a, b) {
		t.Fatal("the same observations gave two blocks")
	}
}

func TestEncodeRefuses(t *testing.T) {
	ok := observe.Observation{Time: time.Unix(5, 0)}
	for name, obs := range map[string][]observe.Observation{
		"none":           nil,
		"too many":       make([]observe.Observation, MaxObservations+1),
		"time past 2262": {ok, {Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"db before 1677": {{Place: observe.Place{DBBuild: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	} {
		if _, err := Encode(nil, obs); !errors.Is(err, ErrUnencodable) {
			t.Errorf("%s: %v, want ErrUnencodable", name, err)
		}
	}
}

// TestAtAndColumnReadersAgreeWithAll: an observation decoded alone, and
// the times, endpoints and ids read alone, are what the whole decode gives.
func TestAtAndColumnReadersAgreeWithAll(t *testing.T) {
	obs := labObservations(1500, 4)
	r := rand.New(rand.NewPCG(3, 3))
	for i := range obs {
		if i%7 == 0 {
			obs[i].ID = "not-a-uuid-" + fmt.Sprint(i) // kept as written, beside UUIDs
		}
		if i%11 == 0 {
			obs[i].Place.DBBuild = time.Time{}
		}
		if i%13 == 0 {
			obs[i] = storetest.Observation(r, obs[i].Time, i)
		}
	}
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	all := roundTrip(t, obs)
	for _, i := range []int{0, 1, 7, 13, 700, 1499} {
		b, err := Open(blk)
		if err != nil {
			t.Fatal(err)
		}
		o, err := b.At(i)
		if err != nil {
			t.Fatal(err)
		}
		if d := diff(reflect.ValueOf(o), reflect.ValueOf(all[i]), "Observation"); d != "" {
			t.Fatalf("At(%d): %s", i, d)
		}
	}
	b, _ := Open(blk)
	times, err := b.Times()
	if err != nil {
		t.Fatal(err)
	}
	eps, err := b.Endpoints()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := b.IDs()
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if !times[i].Equal(all[i].Time) || eps[i] != all[i].Endpoint || ids[i] != all[i].ID {
			t.Fatalf("row %d: column readers give %v %v %q, the block %v %v %q", i, times[i], eps[i], ids[i], all[i].Time, all[i].Endpoint, all[i].ID)
		}
	}
	if _, err := b.At(len(all)); err == nil {
		t.Fatal("At past the end gave no error")
	}
}

// TestDecodeRefusesEveryCutAndFlip: every truncation of a block, and a
// flip of each byte, is refused with ErrCorrupt or decodes to
// observations that encode again (never a panic; a flip inside a value
// may give another valid block).
func TestDecodeRefusesEveryCutAndFlip(t *testing.T) {
	obs := labObservations(40, 5)
	blk, err := Encode(nil, obs)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(blk) {
		if _, err := Decode(blk[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("cut at %d of %d: %v, want ErrCorrupt", n, len(blk), err)
		}
	}
	if _, err := Decode(append(slices.Clone(blk), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a byte past the end: %v", err)
	}
	refused := 0
	for i := range blk {
		c := slices.Clone(blk)
		c[i] ^= 0x5a
		got, err := Decode(c)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip at %d: %v, want ErrCorrupt", i, err)
			}
			refused++
			continue
		}
		if _, err := Encode(nil, got); err != nil {
			t.Fatalf("flip at %d decoded to observations that do not encode: %v", i, err)
		}
	}
	if refused == 0 {
		t.Fatal("no flip refused")
	}
}

// TestDecodeNamesWhatBroke: hand-made faults are refused naming the
// column and the fault.
func TestDecodeNamesWhatBroke(t *testing.T) {
	obs := labObservations(50, 6)
	blk, _ := Encode(nil, obs)
	b, _ := Open(blk)
	// Rebuild a block whose port column holds a value too large for a port.
	bad := rebuild(t, b, colPort, appendUints(nil, slices.Repeat([]uint64{70000}, 50)))
	if _, err := Decode(bad); err == nil || !strings.Contains(err.Error(), "column port") {
		t.Fatalf("a port of 70000: %v", err)
	}
	bad = rebuild(t, b, colLevel, appendUints(nil, slices.Repeat([]uint64{2}, 49)))
	if _, err := Decode(bad); err == nil || !strings.Contains(err.Error(), "column level") {
		t.Fatalf("a level column one value short: %v", err)
	}
	huge := []byte{'V', 'O', 'B', 1, 1, numCols}
	for range numCols {
		huge = append(huge, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1)
	}
	if _, err := Decode(huge); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "longer than a block") {
		t.Fatalf("a 4 GiB column: %v", err)
	}
}

// rebuild returns b's block with every column stored raw and column c's
// raw bytes replaced by raw (none when c < 0).
func rebuild(t testing.TB, b *Block, c int, raw []byte) []byte {
	t.Helper()
	out := append([]byte(nil), magic[:]...)
	out = appendUvarint(out, b.n)
	out = append(out, numCols)
	var cols [numCols][]byte
	for i := range numCols {
		r, err := b.column(i)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = r
	}
	if c >= 0 {
		cols[c] = raw
	}
	for i := range numCols {
		out = append(out, storeRaw)
		out = appendUvarint(out, len(cols[i]))
		out = appendUvarint(out, len(cols[i]))
	}
	for i := range numCols {
		out = append(out, cols[i]...)
	}
	return out
}

func appendUvarint(b []byte, n int) []byte {
	for n >= 0x80 {
		b = append(b, byte(n)|0x80)
		n >>= 7
	}
	return append(b, byte(n))
}

// TestFixedWidthColumns: a column of one-length values with nil ones
// among them is stored fixed-width and comes back; its bitmap may not
// mark a string nil nor set bits past the last value.
func TestFixedWidthColumns(t *testing.T) {
	c := &blobs{}
	for i := range 20 {
		if i%3 == 0 {
			c.add("", true)
		} else {
			c.add(strings.Repeat(string(rune('a'+i)), 32), false)
		}
	}
	raw := appendBlobs(nil, c)
	if raw[0] != blobsFixed {
		t.Fatalf("mode %d, want fixed-width", raw[0])
	}
	col, err := parseBlobs(colTranscriptSHA, raw, 20)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		v, null := col.at(i)
		if null != c.null[i] || string(v) != c.vals[i] {
			t.Fatalf("value %d: %q %v, want %q %v", i, v, null, c.vals[i], c.null[i])
		}
	}
	if _, err := parseBlobs(colTranscriptRef, raw, 20); err == nil || !strings.Contains(err.Error(), "nil in a column of strings") {
		t.Fatalf("a nil string: %v", err)
	}
	spare := slices.Clone(raw)
	spare[2+2] |= 0x80 // the bitmap's third byte holds rows 16-19; bit 7 is past row 19
	if _, err := parseBlobs(colTranscriptSHA, spare, 20); err == nil || !strings.Contains(err.Error(), "past the last value") {
		t.Fatalf("a spare bit: %v", err)
	}
}
