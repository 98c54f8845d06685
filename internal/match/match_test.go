package match

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

var (
	listA   = Source{List: "synthetic-a", Category: "1", Severity: 5}
	listA2  = Source{List: "synthetic-a", Category: "2", Severity: 3}
	listB   = Source{List: "synthetic-b", Category: "1", Severity: 4}
	benign  = Source{List: "synthetic-benign", Negative: true}
	benign2 = Source{List: "synthetic-benign-2", Negative: true, Category: "os"}
)

// digestOf returns a synthetic digest of kind k, a repeating byte pattern
// with the given first byte and last byte.
func digestOf(k hashkind.Kind, first, last byte) hashkind.Hash {
	b := bytes.Repeat([]byte{0x5c}, k.Size())
	b[0], b[len(b)-1] = first, last
	return hashkind.MustNew(k, b)
}

type entry struct {
	h hashkind.Hash
	s Source
}

func build(t testing.TB, entries []entry) *Matcher {
	t.Helper()
	var b Builder
	for _, e := range entries {
		if err := b.Add(e.h, e.s); err != nil {
			t.Fatalf("Add(%s, %+v): %v", e.h, e.s, err)
		}
	}
	return b.Build()
}

func sameSources(a, b []Source) bool { return slices.Equal(a, b) }

func TestMatcherMatch(t *testing.T) {
	h1 := digestOf(hashkind.SHA1, 1, 1)
	h2 := digestOf(hashkind.SHA1, 2, 2)
	h3 := digestOf(hashkind.SHA1, 3, 3)
	h4 := digestOf(hashkind.SHA1, 4, 4)
	h5 := digestOf(hashkind.SHA1, 5, 5)
	m := build(t, []entry{
		{h1, listA},
		{h2, listA}, {h2, listB}, {h2, listA2}, {h2, listA}, // several lists, one repeat
		{h3, listA}, {h3, benign}, // watched and known benign
		{h4, benign}, {h4, benign2}, // only benign
		{h5, listB}, {h5, benign2}, {h5, listA},
	})
	cases := []struct {
		name     string
		h        hashkind.Hash
		matches  []Source
		negative []Source
		contains bool
	}{
		{"hit", h1, []Source{listA}, nil, true},
		{"miss", digestOf(hashkind.SHA1, 9, 9), nil, nil, false},
		{"miss-last-byte", digestOf(hashkind.SHA1, 1, 2), nil, nil, false},
		{"several-lists", h2, []Source{listA, listB, listA2}, nil, true},
		{"suppressed", h3, []Source{listA}, []Source{benign}, false},
		{"negative-only", h4, nil, []Source{benign, benign2}, false},
		{"suppressed-several", h5, []Source{listA, listB}, []Source{benign2}, false},
		{"zero-hash", hashkind.Hash{}, nil, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := m.Match(c.h)
			if !sameSources(r.Matches, c.matches) {
				t.Fatalf("Matches = %+v, want %+v", r.Matches, c.matches)
			}
			if !sameSources(r.Negative, c.negative) {
				t.Fatalf("Negative = %+v, want %+v", r.Negative, c.negative)
			}
			if got, want := r.Suppressed, len(c.negative) > 0; got != want {
				t.Fatalf("Suppressed = %v, want %v", got, want)
			}
			if got, want := r.Alert(), c.contains; got != want {
				t.Fatalf("Alert() = %v, want %v", got, want)
			}
			if got, want := m.Contains(c.h), c.contains; got != want {
				t.Fatalf("Contains = %v, want %v", got, want)
			}
		})
	}
	if got, want := m.Len(), 5; got != want {
		t.Fatalf("Len() = %d, want %d", got, want)
	}
	if got, want := m.Entries(), 12-1; got != want {
		t.Fatalf("Entries() = %d, want %d", got, want)
	}
	if got, want := m.Lists(), []string{"synthetic-a", "synthetic-b", "synthetic-benign", "synthetic-benign-2"}; !slices.Equal(got, want) {
		t.Fatalf("Lists() = %q, want %q", got, want)
	}
}

// The same digest bytes under two kinds are two different hashes: a sha1
// entry must not match a v1 info-hash with the same 20 bytes.
func TestMatcherKeepsKindsApart(t *testing.T) {
	var entries []entry
	for i, k := range hashkind.All() {
		entries = append(entries, entry{digestOf(k, byte(i), 0x77), Source{List: "synthetic-" + k.String()}})
	}
	m := build(t, entries)
	for i, k := range hashkind.All() {
		t.Run(k.String(), func(t *testing.T) {
			h := digestOf(k, byte(i), 0x77)
			if r := m.Match(h); len(r.Matches) != 1 || r.Matches[0].List != "synthetic-"+k.String() {
				t.Fatalf("Match(%s %s) = %+v, want list synthetic-%s", k, h, r.Matches, k)
			}
			if !m.Contains(h) {
				t.Fatalf("Contains(%s %s) = false", k, h)
			}
			if m.Contains(digestOf(k, byte(i), 0x78)) {
				t.Fatalf("Contains(%s, last byte changed) = true", k)
			}
			for _, other := range hashkind.All() {
				if other == k || other.Size() != k.Size() {
					continue
				}
				// digestOf gives the same bytes for the same (first, last)
				// whatever the kind; the other kind's entry has another
				// first byte, so this probe names bytes only k has.
				if m.Contains(hashkind.MustNew(other, h.Bytes())) {
					t.Fatalf("%s digest %s matched as %s", k, h.Hex(), other)
				}
			}
		})
	}
}

func TestMatcherSharedPrefixes(t *testing.T) {
	// Many sha1 digests equal but for their last bytes: one bucket, an
	// overfull line, and fingerprints that differ only there.
	var entries []entry
	for i := range 200 {
		b := bytes.Repeat([]byte{0xee}, 20)
		b[18], b[19] = byte(i>>8), byte(i*3)
		entries = append(entries, entry{hashkind.MustNew(hashkind.SHA1, b), listA})
	}
	m := build(t, entries)
	for i := range 400 {
		b := bytes.Repeat([]byte{0xee}, 20)
		b[18], b[19] = byte(i>>8), byte(i*3)
		want := i < 200
		if got := m.Contains(hashkind.MustNew(hashkind.SHA1, b)); got != want {
			t.Fatalf("Contains(%x) = %v, want %v", b, got, want)
		}
		b[0] ^= 1 // same fingerprint and middle, other bucket
		if m.Contains(hashkind.MustNew(hashkind.SHA1, b)) {
			t.Fatalf("Contains(%x) = true for a digest differing in its first byte", b)
		}
	}
}

func TestMatcherEmpty(t *testing.T) {
	h := digestOf(hashkind.SHA256, 1, 2)
	var b Builder
	for name, m := range map[string]*Matcher{"nil": nil, "built-empty": b.Build()} {
		t.Run(name, func(t *testing.T) {
			if m.Contains(h) {
				t.Fatalf("Contains = true")
			}
			if r := m.Match(h); r.Matches != nil || r.Negative != nil || r.Suppressed {
				t.Fatalf("Match = %+v, want zero Result", r)
			}
			if m.Len() != 0 || m.Entries() != 0 || len(m.Lists()) != 0 {
				t.Fatalf("Len %d, Entries %d, Lists %q: want all empty", m.Len(), m.Entries(), m.Lists())
			}
		})
	}
}

func TestBuilderRejectsZeroHash(t *testing.T) {
	var b Builder
	if err := b.Add(hashkind.Hash{}, listA); !errors.Is(err, ErrInvalidHash) {
		t.Fatalf("Add(zero Hash) error = %v, want ErrInvalidHash", err)
	}
	if err := b.Add(digestOf(hashkind.MD5, 1, 1), listA); err != nil {
		t.Fatalf("Add after a rejected entry: %v", err)
	}
	if got := b.Build().Len(); got != 1 {
		t.Fatalf("Len() = %d, want 1", got)
	}
}

// List names and categories arrive as fresh strings on every entry (one per
// parsed line); the Matcher must keep one copy of each.
func TestBuilderInternsNames(t *testing.T) {
	var b Builder
	for i := range 3 {
		s := Source{
			List:     strings.Clone("synthetic-interned"),
			Category: strings.Clone("cat"),
			Severity: i % 2,
		}
		if err := b.Add(digestOf(hashkind.SHA1, byte(i), 0), s); err != nil {
			t.Fatal(err)
		}
	}
	srcs := b.Build().Sources()
	if got, want := len(srcs), 2; got != want {
		t.Fatalf("%d distinct sources, want %d", got, want)
	}
	if unsafe.StringData(srcs[0].List) != unsafe.StringData(srcs[1].List) {
		t.Fatalf("list name stored twice")
	}
	if unsafe.StringData(srcs[0].Category) != unsafe.StringData(srcs[1].Category) {
		t.Fatalf("category stored twice")
	}
}

func TestMatcherContainsDoesNotAllocate(t *testing.T) {
	h := digestOf(hashkind.SHA1, 1, 1)
	m := build(t, []entry{{h, listA}, {h, benign}, {digestOf(hashkind.SHA1, 2, 2), listB}})
	miss := digestOf(hashkind.SHA1, 3, 3)
	if n := testing.AllocsPerRun(100, func() {
		m.Contains(h)
		m.Contains(miss)
	}); n != 0 {
		t.Fatalf("Contains allocates %.1f times a call", n)
	}
}

// TestMatcherAgreesWithMapOracle builds a Matcher of 1e5 sha1 entries over
// a few lists, some negative, and compares Contains and Match with what a
// plain map of the same entries says, on every entry, near misses (one bit
// flipped) and fresh digests.
func TestMatcherAgreesWithMapOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	sources := []Source{listA, listA2, listB, benign, benign2}
	type want struct{ pos, neg []Source }
	oracle := map[hashkind.Hash]*want{}
	var b Builder
	var hashes []hashkind.Hash
	var firstSeen []Source
	for range 100_000 {
		h := hashkind.MustNew(hashkind.SHA1, randomKey(r, 20))
		hashes = append(hashes, h)
		for range 1 + r.IntN(2) {
			s := sources[r.IntN(len(sources))]
			if err := b.Add(h, s); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(firstSeen, s) {
				firstSeen = append(firstSeen, s)
			}
			w := oracle[h]
			if w == nil {
				w = &want{}
				oracle[h] = w
			}
			list := &w.pos
			if s.Negative {
				list = &w.neg
			}
			if !slices.Contains(*list, s) {
				*list = append(*list, s)
			}
		}
	}
	m := b.Build()
	order := func(ss []Source) []Source { // the Matcher's order: by first Add
		slices.SortFunc(ss, func(a, b Source) int {
			return slices.Index(firstSeen, a) - slices.Index(firstSeen, b)
		})
		return ss
	}
	var probes []hashkind.Hash
	for _, h := range hashes {
		for _, k := range nearMisses(r, h.Bytes()) {
			probes = append(probes, hashkind.MustNew(hashkind.SHA1, k))
		}
		probes = append(probes, hashkind.MustNew(hashkind.BTIH, h.Bytes())) // same bytes, other kind
	}
	eachProbe(t, func(t *testing.T) {
		for _, h := range probes {
			w := oracle[h]
			if w == nil {
				w = &want{}
			}
			pos, neg := order(slices.Clone(w.pos)), order(slices.Clone(w.neg))
			r := m.Match(h)
			if !sameSources(r.Matches, pos) || !sameSources(r.Negative, neg) {
				t.Fatalf("Match(%s %s) = %+v, want matches %+v negative %+v", h.Kind(), h, r, pos, neg)
			}
			if got, want := m.Contains(h), len(pos) > 0 && len(neg) == 0; got != want {
				t.Fatalf("Contains(%s) = %v, want %v", h, got, want)
			}
		}
	})
	if got, want := m.Len(), len(oracle); got != want {
		t.Fatalf("Len() = %d, want %d", got, want)
	}
}

// Readers keep looking up while the lists are rebuilt and swapped; run
// with -race.
func TestLiveSwapsMatchersUnderReaders(t *testing.T) {
	var live Live
	h := digestOf(hashkind.SHA1, 7, 7)
	if live.Load().Contains(h) {
		t.Fatalf("an empty Live matched")
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := live.Load()
				// Every Matcher stored holds h, suppressed or not, and
				// Contains agrees with Match on the same snapshot.
				if m != nil && m.Contains(h) != m.Match(h).Alert() {
					t.Errorf("Contains and Match disagree on one snapshot")
					return
				}
			}
		}()
	}
	for i := range 50 {
		entries := []entry{{h, listA}}
		if i%2 == 1 {
			entries = append(entries, entry{h, benign})
		}
		live.Store(build(t, entries))
	}
	close(stop)
	wg.Wait()
	live.Store(build(t, []entry{{h, listA}}))
	if !live.Load().Contains(h) {
		t.Fatalf("the last Matcher stored is not the one loaded")
	}
}
