package match

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// oracle is the plain map the Index must agree with: key → sorted distinct
// values.
type oracle map[string][]uint32

func (o oracle) add(key []byte, v uint32) {
	vs := o[string(key)]
	if i, found := slices.BinarySearch(vs, v); !found {
		vs = slices.Insert(vs, i, v)
	}
	o[string(key)] = vs
}

func (o oracle) entries() int {
	n := 0
	for _, vs := range o {
		n += len(vs)
	}
	return n
}

// pairs is a list of (key, value) pairs to build from, repeats allowed.
type pair struct {
	key []byte
	val uint32
}

func buildBoth(t testing.TB, size int, pairs []pair, tune func(*IndexBuilder)) (*Index, oracle) {
	t.Helper()
	b, err := NewIndexBuilder(size)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(b)
	}
	o := oracle{}
	for _, p := range pairs {
		if err := b.Add(p.key, p.val); err != nil {
			t.Fatalf("Add(%x, %d): %v", p.key, p.val, err)
		}
		o.add(p.key, p.val)
	}
	return b.Build(), o
}

// agree checks x against o for every probe, and the counts.
func agree(t testing.TB, x *Index, o oracle, probes [][]byte) {
	t.Helper()
	if got, want := x.Len(), len(o); got != want {
		t.Fatalf("Len() = %d, want %d", got, want)
	}
	if got, want := x.Entries(), o.entries(); got != want {
		t.Fatalf("Entries() = %d, want %d", got, want)
	}
	for _, p := range probes {
		want, wok := o[string(p)]
		vs, ok := x.Lookup(p)
		if ok != wok {
			t.Fatalf("Lookup(%x) found = %v, want %v", p, ok, wok)
		}
		if got := x.Has(p); got != wok {
			t.Fatalf("Has(%x) = %v, want %v", p, got, wok)
		}
		if !ok {
			continue
		}
		if got := vs.Append(nil); !slices.Equal(got, want) {
			t.Fatalf("Lookup(%x) = %v, want %v", p, got, want)
		}
		if got, want := vs.Len(), len(want); got != want {
			t.Fatalf("Lookup(%x).Len() = %d, want %d", p, got, want)
		}
	}
}

// nearMisses returns key, and copies of it with one bit flipped: in the
// bucket bits, in the stored middle, in the fingerprint, plus one at random.
func nearMisses(r *rand.Rand, key []byte) [][]byte {
	out := [][]byte{key}
	for _, bit := range []int{0, 7, 13, 8 * len(key) / 2, 8*len(key) - 9, 8*len(key) - 1, r.IntN(8 * len(key))} {
		k := bytes.Clone(key)
		k[bit/8] ^= 0x80 >> (bit % 8)
		out = append(out, k)
	}
	return out
}

func randomKey(r *rand.Rand, size int) []byte {
	k := make([]byte, size)
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

// eachProbe runs f once per lookup implementation this machine has.
func eachProbe(t *testing.T, f func(t *testing.T)) {
	for _, mode := range probeModes() {
		t.Run(mode.name, func(t *testing.T) {
			defer mode.set()()
			f(t)
		})
	}
}

func TestIndexAgreesWithMapOnRandomKeys(t *testing.T) {
	const n = 100_000
	cases := []struct {
		name   string
		size   int
		tune   func(*IndexBuilder)
		prefix int // leading bytes the same in every key
	}{
		{"md5", 16, nil, 0},
		{"sha1", 20, nil, 0},
		{"tth", 24, nil, 0},
		{"sha256", 32, nil, 0},
		// One radix partition too big to sort by radix: the build's
		// comparison sort, and a few very full buckets.
		{"sha1-shared-3-bytes", 20, nil, 3},
		// The layouts of larger indexes, reached with fewer keys.
		{"sha1-skip2", 20, func(b *IndexBuilder) { b.forceSkip = 2 }, 0},
		{"sha1-skip0", 20, func(b *IndexBuilder) { b.forceSkip = 0 }, 0},
		{"md5-skip2", 16, func(b *IndexBuilder) { b.forceSkip = 2 }, 0},
		// Overfull lines everywhere: about 40 keys a line, over 29.
		{"sha1-overfull", 20, func(b *IndexBuilder) { b.load = 40 }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(c.size), 99))
			var pairs []pair
			keys := make([][]byte, 0, n)
			for i := range n {
				k := randomKey(r, c.size)
				for j := range c.prefix {
					k[j] = 0x5a
				}
				keys = append(keys, k)
				pairs = append(pairs, pair{k, uint32(i % 1000)})
				// Some keys on several lists, some pairs twice.
				if i%17 == 0 {
					pairs = append(pairs, pair{k, uint32(1000 + i%5)})
				}
				if i%23 == 0 {
					pairs = append(pairs, pair{k, uint32(i % 1000)})
				}
			}
			x, o := buildBoth(t, c.size, pairs, c.tune)
			var probes [][]byte
			for _, k := range keys {
				probes = append(probes, nearMisses(r, k)...)
			}
			for range n {
				probes = append(probes, randomKey(r, c.size))
			}
			eachProbe(t, func(t *testing.T) { agree(t, x, o, probes) })
		})
	}
}

// adversarial key sets: not uniform, built to defeat the layout's
// assumptions (long shared prefixes fill one bucket; shared suffixes make
// every fingerprint equal; single-bit neighbours).
func adversarialSets(size int) map[string][][]byte {
	sets := map[string][][]byte{}
	mk := func(f func(k []byte, i int)) [][]byte {
		var out [][]byte
		for i := range 3000 {
			k := make([]byte, size)
			f(k, i)
			out = append(out, k)
		}
		return out
	}
	sets["shared-prefix-all-but-2"] = mk(func(k []byte, i int) {
		for j := range k {
			k[j] = 0xab
		}
		k[size-2], k[size-1] = byte(i>>8), byte(i)
	})
	sets["shared-prefix-8"] = mk(func(k []byte, i int) {
		for j := range k {
			k[j] = byte(j * 31)
		}
		k[8], k[9], k[size-1] = byte(i>>8), byte(i), byte(i*7)
	})
	sets["shared-suffix-fingerprint"] = mk(func(k []byte, i int) {
		k[0], k[1], k[2] = byte(i>>8), byte(i), byte(i*13)
		k[size-2], k[size-1] = 0x55, 0x55
	})
	sets["counting-from-zero"] = mk(func(k []byte, i int) {
		k[size-3], k[size-2], k[size-1] = byte(i>>16), byte(i>>8), byte(i)
	})
	sets["counting-from-top"] = mk(func(k []byte, i int) {
		for j := range k {
			k[j] = 0xff
		}
		k[0], k[1] = byte(i>>8), byte(i)
	})
	sets["one-bit-each"] = func() [][]byte {
		var out [][]byte
		out = append(out, make([]byte, size), bytes.Repeat([]byte{0xff}, size))
		for bit := range 8 * size {
			k := make([]byte, size)
			k[bit/8] = 0x80 >> (bit % 8)
			out = append(out, k)
		}
		return out
	}()
	return sets
}

func TestIndexAgreesWithMapOnAdversarialKeys(t *testing.T) {
	for _, size := range []int{16, 20, 24, 32} {
		for name, keys := range adversarialSets(size) {
			t.Run(fmt.Sprintf("%d/%s", size, name), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(size), uint64(len(name))))
				var pairs []pair
				var probes [][]byte
				for i, k := range keys {
					// Leave every fifth key out so that its neighbours probe
					// a full bucket for a key that is not there.
					if i%5 == 4 {
						probes = append(probes, k)
						continue
					}
					pairs = append(pairs, pair{k, uint32(i % 3)})
					probes = append(probes, nearMisses(r, k)...)
				}
				for _, skip := range []int{-1, 2} {
					x, o := buildBoth(t, size, pairs, func(b *IndexBuilder) { b.forceSkip = skip })
					// A shared prefix of eight bytes or more lands every key
					// in one bucket: the overflow path must have been built.
					if strings.HasPrefix(name, "shared-prefix") && len(x.ovWords) == 0 {
						t.Fatalf("no key overflowed its line")
					}
					eachProbe(t, func(t *testing.T) { agree(t, x, o, probes) })
				}
			})
		}
	}
}

func TestIndexDuplicateKeyGivesSortedDistinctValues(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 20)
	cases := []struct {
		name string
		add  []uint32
		want []uint32
	}{
		{"one", []uint32{7}, []uint32{7}},
		{"same-twice", []uint32{7, 7}, []uint32{7}},
		{"several-unsorted", []uint32{9, 3, 9, 1, 3}, []uint32{1, 3, 9}},
		{"max-value", []uint32{MaxValue, 0}, []uint32{0, MaxValue}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pairs []pair
			for _, v := range c.add {
				pairs = append(pairs, pair{key, v})
			}
			x, _ := buildBoth(t, 20, pairs, nil)
			vs, ok := x.Lookup(key)
			if !ok {
				t.Fatalf("Lookup(%x) found nothing", key)
			}
			if got := vs.Append(nil); !slices.Equal(got, c.want) {
				t.Fatalf("values = %v, want %v", got, c.want)
			}
			for i, want := range c.want {
				if got := vs.At(i); got != want {
					t.Fatalf("At(%d) = %d, want %d", i, got, want)
				}
			}
			if got, want := x.Entries(), len(c.want); got != want {
				t.Fatalf("Entries() = %d, want %d", got, want)
			}
		})
	}
}

func TestIndexEmptyFindsNothing(t *testing.T) {
	b, err := NewIndexBuilder(20)
	if err != nil {
		t.Fatal(err)
	}
	built := b.Build()
	key := make([]byte, 20)
	for name, x := range map[string]*Index{"nil": nil, "zero": {}, "built-empty": built} {
		t.Run(name, func(t *testing.T) {
			if x.Has(key) {
				t.Fatalf("Has(%x) = true on an empty index", key)
			}
			if _, ok := x.Lookup(key); ok {
				t.Fatalf("Lookup(%x) found a value in an empty index", key)
			}
			if got := x.Len(); got != 0 {
				t.Fatalf("Len() = %d, want 0", got)
			}
		})
	}
}

func TestIndexIgnoresKeysOfAnotherLength(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 20)
	x, _ := buildBoth(t, 20, []pair{{key, 1}}, nil)
	for _, k := range [][]byte{nil, key[:19], append(bytes.Clone(key), 1), key[:16]} {
		if x.Has(k) {
			t.Fatalf("Has(%x) = true for a %d-byte key in a 20-byte index", k, len(k))
		}
	}
}

func TestIndexBuilderRejectsBadInput(t *testing.T) {
	if _, err := NewIndexBuilder(8); !errors.Is(err, ErrKeySize) {
		t.Fatalf("NewIndexBuilder(8) error = %v, want ErrKeySize", err)
	}
	b, err := NewIndexBuilder(16)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(make([]byte, 20), 1); !errors.Is(err, ErrKeySize) {
		t.Fatalf("Add(20-byte key) error = %v, want ErrKeySize", err)
	}
	if err := b.Add(make([]byte, 16), MaxValue+1); !errors.Is(err, ErrValueRange) {
		t.Fatalf("Add(value MaxValue+1) error = %v, want ErrValueRange", err)
	}
	if got := b.Len(); got != 0 {
		t.Fatalf("Len() after rejected adds = %d, want 0", got)
	}
}

func TestIndexBuilderCanBeReused(t *testing.T) {
	b, err := NewIndexBuilder(20)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)
	if err := b.Add(k1, 1); err != nil {
		t.Fatal(err)
	}
	first := b.Build()
	if err := b.Add(k2, 2); err != nil {
		t.Fatal(err)
	}
	second := b.Build()
	if first.Has(k2) {
		t.Fatalf("an Index changed after its builder got more keys")
	}
	if !second.Has(k1) || !second.Has(k2) {
		t.Fatalf("second Build lost keys: has k1 %v, k2 %v", second.Has(k1), second.Has(k2))
	}
}

// The memory claim of the layout, checked on a mid-sized index: records
// plus lines stay within a few bytes of the digest per entry.
func TestIndexStaysCompact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	b, err := NewIndexBuilder(20)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1 << 20
	for i := range n {
		if err := b.Add(randomKey(r, 20), uint32(i&7)); err != nil {
			t.Fatal(err)
		}
	}
	x := b.Build()
	if got, limit := float64(x.Bytes())/n, 30.0; got > limit {
		t.Fatalf("%.1f bytes per 20-byte entry, want at most %.0f", got, limit)
	}
}

// An empty lane of a line holds fingerprint 0 and points past the bucket's
// keys, at the first key of the next bucket. A key with fingerprint 0 whose
// middle bytes equal that next key's must not be taken for it.
func TestIndexEmptyLaneIsNotAKey(t *testing.T) {
	const size = 20
	mid := bytes.Repeat([]byte{0x3c}, size-3) // bytes 1..17, shared
	next := append(append([]byte{0x01}, mid...), 0x12, 0x34)
	probe := append(append([]byte{0x00}, mid...), 0x00, 0x00)
	cases := []struct {
		name string
		inB0 int // keys in the probe's bucket (block 0x00)
	}{
		{"one-empty-lane", lineCap - 1}, // the single-candidate path
		{"many-empty-lanes", 1},         // the several-candidate path
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pairs := []pair{{next, 1}}
			for i := range c.inB0 {
				k := make([]byte, size)
				k[1], k[2] = byte(i), 0x99             // other middles
				k[size-2], k[size-1] = byte(i+1), 0x77 // non-zero fingerprints
				pairs = append(pairs, pair{k, 2})
			}
			x, o := buildBoth(t, size, pairs, func(b *IndexBuilder) { b.forceSkip = 1 })
			if x.m != 1 {
				t.Fatalf("layout has %d sub-buckets, the test needs 1", x.m)
			}
			eachProbe(t, func(t *testing.T) { agree(t, x, o, [][]byte{probe, next}) })
		})
	}
}
