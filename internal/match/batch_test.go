package match

import (
	"math/rand/v2"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// batchCase is a Matcher built from random entries and the truth about a
// mixed stream of probes, from a plain map of the same entries.
type batchCase struct {
	m      *Matcher
	probes []hashkind.Hash
	want   []bool // alert, by the map
}

// newBatchCase builds a Matcher of n random entries over every hash kind,
// on watch-lists and negative lists, and probes made of entries, near
// misses (one bit flipped), fresh digests, the same bytes under another
// kind, the zero Hash, and a run of keys sharing a long prefix (full
// buckets and overflow), shuffled.
func newBatchCase(t *testing.T, seed uint64, n int) batchCase {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 99))
	kinds := hashkind.All()
	sources := []Source{listA, listA2, listB, benign, benign2}
	type verdict struct{ pos, neg bool }
	truth := map[hashkind.Hash]*verdict{}
	var b Builder
	var hashes []hashkind.Hash
	add := func(h hashkind.Hash) {
		hashes = append(hashes, h)
		for range 1 + r.IntN(2) {
			s := sources[r.IntN(len(sources))]
			if err := b.Add(h, s); err != nil {
				t.Fatal(err)
			}
			v := truth[h]
			if v == nil {
				v = &verdict{}
				truth[h] = v
			}
			if s.Negative {
				v.neg = true
			} else {
				v.pos = true
			}
		}
	}
	for range n {
		k := kinds[r.IntN(len(kinds))]
		add(hashkind.MustNew(k, randomKey(r, k.Size())))
	}
	// Keys sharing their first 12 bytes crowd one bucket past a line.
	prefix := randomKey(r, 20)
	for range 3 * lineCap {
		key := randomKey(r, 20)
		copy(key, prefix[:12])
		add(hashkind.MustNew(hashkind.SHA1, key))
	}
	m := b.Build()

	probes := []hashkind.Hash{{}}
	for _, h := range hashes {
		probes = append(probes, h)
		for _, k := range nearMisses(r, h.Bytes())[1:3] {
			probes = append(probes, hashkind.MustNew(h.Kind(), k))
		}
		other := kinds[r.IntN(len(kinds))]
		if other.Size() == h.Kind().Size() {
			probes = append(probes, hashkind.MustNew(other, h.Bytes()))
		}
		k := kinds[r.IntN(len(kinds))]
		probes = append(probes, hashkind.MustNew(k, randomKey(r, k.Size())))
	}
	r.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
	want := make([]bool, len(probes))
	for i, h := range probes {
		if v := truth[h]; v != nil {
			want[i] = v.pos && !v.neg
		}
	}
	return batchCase{m, probes, want}
}

// eachBatchPath runs f on every probe implementation, with the staged
// batch path forced (the test Matchers are small) and with the loop that
// small Matchers use.
func eachBatchPath(t *testing.T, f func(t *testing.T)) {
	for _, p := range []struct {
		name     string
		minBytes int
	}{{"staged", 0}, {"loop", 1 << 62}} {
		t.Run(p.name, func(t *testing.T) {
			defer func(old int) { batchMinBytes = old }(batchMinBytes)
			batchMinBytes = p.minBytes
			eachProbe(t, f)
		})
	}
}

// TestContainsBatchAgreesWithMapAndContains is the property test of the
// batch API: on random Matchers and a random mix of hits and misses, in
// batches of every awkward length, ContainsBatch says what a plain map of
// the same entries says, and what Contains and ContainsRef say key by key.
func TestContainsBatchAgreesWithMapAndContains(t *testing.T) {
	eachBatchPath(t, func(t *testing.T) {
		for seed := range uint64(6) {
			c := newBatchCase(t, seed, 500+int(seed)*4000)
			hits := 0
			for i, h := range c.probes {
				if got := c.m.Contains(h); got != c.want[i] {
					t.Fatalf("seed %d: Contains(%s %s) = %v, want %v", seed, h.Kind(), h, got, c.want[i])
				}
				if got := c.m.ContainsRef(&c.probes[i]); got != c.want[i] {
					t.Fatalf("seed %d: ContainsRef(%s %s) = %v, want %v", seed, h.Kind(), h, got, c.want[i])
				}
				if c.want[i] {
					hits++
				}
			}
			if hits == 0 || hits == len(c.probes) {
				t.Fatalf("seed %d: %d hits in %d probes: the test needs both", seed, hits, len(c.probes))
			}
			for _, size := range []int{1, 2, batchLen - 1, batchLen, batchLen + 1, 3*batchLen + 5, 1000, len(c.probes)} {
				var alert []bool
				for i := 0; i < len(c.probes); i += size {
					j := min(i+size, len(c.probes))
					alert = c.m.ContainsBatch(c.probes[i:j], alert)
					if len(alert) != j-i {
						t.Fatalf("seed %d batch %d: %d results for %d hashes", seed, size, len(alert), j-i)
					}
					for k, got := range alert {
						if got != c.want[i+k] {
							h := c.probes[i+k]
							t.Fatalf("seed %d batch %d: ContainsBatch says %v for %s %s (probe %d), want %v",
								seed, size, got, h.Kind(), h, i+k, c.want[i+k])
						}
					}
				}
			}
		}
	})
}

func TestContainsBatchResultSlice(t *testing.T) {
	h := digestOf(hashkind.SHA1, 1, 1)
	miss := digestOf(hashkind.SHA1, 2, 2)
	m := build(t, []entry{{h, listA}})
	tests := []struct {
		name  string
		m     *Matcher
		hs    []hashkind.Hash
		alert []bool
		want  []bool
	}{
		{"nil slice is allocated", m, []hashkind.Hash{miss, h}, nil, []bool{false, true}},
		{"short slice is replaced", m, []hashkind.Hash{h, miss, h}, []bool{true}, []bool{true, false, true}},
		{"long slice is cut and overwritten", m, []hashkind.Hash{miss}, []bool{true, true, true}, []bool{false}},
		{"no hashes", m, nil, []bool{true}, []bool{}},
		{"nil matcher alerts on nothing", nil, []hashkind.Hash{h, miss}, []bool{true, true}, []bool{false, false}},
		{"empty matcher alerts on nothing", &Matcher{}, []hashkind.Hash{h, {}}, nil, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.ContainsBatch(tt.hs, tt.alert)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestContainsBatchDoesNotAllocate(t *testing.T) {
	c := newBatchCase(t, 42, 2000)
	alert := make([]bool, len(c.probes))
	eachBatchPath(t, func(t *testing.T) {
		if n := testing.AllocsPerRun(20, func() {
			alert = c.m.ContainsBatch(c.probes, alert)
		}); n != 0 {
			t.Fatalf("ContainsBatch allocates %.1f times a call with room for its results", n)
		}
	})
}

func TestLiveContainsBatchUsesCurrentMatcher(t *testing.T) {
	a, b := digestOf(hashkind.SHA1, 1, 1), digestOf(hashkind.BTIH, 2, 2)
	hs := []hashkind.Hash{a, b}
	var l Live
	if got := l.ContainsBatch(hs, nil); got[0] || got[1] {
		t.Fatalf("empty Live: %v, want no alerts", got)
	}
	l.Store(build(t, []entry{{a, listA}}))
	if got := l.ContainsBatch(hs, nil); !got[0] || got[1] {
		t.Fatalf("first Matcher: %v, want [true false]", got)
	}
	l.Store(build(t, []entry{{b, listB}}))
	if got := l.ContainsBatch(hs, nil); got[0] || !got[1] {
		t.Fatalf("second Matcher: %v, want [false true]", got)
	}
}

// A Matcher with one kind of a digest length answers that length without
// asking for the kind first (Contains); the kind must still decide.
func TestMatcherWithOneKindOfALengthKeepsKindsApart(t *testing.T) {
	for _, k := range hashkind.All() {
		h := digestOf(k, 0x42, 0x24)
		m := build(t, []entry{{h, listA}})
		if !m.Contains(h) || !m.ContainsBatch([]hashkind.Hash{h}, nil)[0] {
			t.Fatalf("only %s indexed: its own entry %s not found", k, h)
		}
		for _, other := range hashkind.All() {
			if other == k || other.Size() != k.Size() {
				continue
			}
			o := hashkind.MustNew(other, h.Bytes())
			if m.Contains(o) || m.ContainsBatch([]hashkind.Hash{o}, nil)[0] || len(m.Match(o).Matches) != 0 {
				t.Fatalf("only %s indexed: %s with the same bytes %s matched", k, other, h.Hex())
			}
		}
	}
}

func TestContainsRefOfNothing(t *testing.T) {
	var m *Matcher
	h := hashkind.MustNew(hashkind.SHA1, make([]byte, 20))
	if m.ContainsRef(&h) {
		t.Fatal("a nil Matcher alerts")
	}
	c := newBatchCase(t, 1, 100)
	if c.m.ContainsRef(nil) {
		t.Fatal("a nil hash alerts")
	}
}
