// Package match holds every watch-list in one compact in-memory index and
// answers, for a hash seen on the network, which lists name it.
//
// A Matcher is built once from all lists with a Builder, is immutable and is
// safe for any number of concurrent readers; when lists change a new Matcher
// is built and swapped in through a Live holder. Each hash kind has its own
// Index (index.go): a sorted, bucketed array of the digests with a line of
// fingerprints per bucket, so that a lookup costs one cache line for a miss
// and one more for a hit, and an entry costs a few bytes beyond its digest.
// Callers holding many hashes at once (a sensor's batch of observations)
// use ContainsBatch, which overlaps the memory waits of the whole batch
// (batch.go) and answers several times faster than a loop of Contains.
//
// Matching is exact. The package must never report a match for a hash that
// is not on a list, nor miss one that is: observations are evidence, so a
// probabilistic structure may only ever narrow the search before the full
// digest is compared. It does no I/O of its own (Load and WatchSet read the
// lists through the store's ActiveEntries) and keeps no copy of the lists'
// other fields (notes, names): those stay in the store.
//
// The rule that a known-benign list suppresses a hash lives here too: the
// Matcher reports such a hash Suppressed, and WatchSet leaves it out of
// what a sensor looks for.
package match

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/vigil-oss/vigil/internal/hashkind"
)

// Source is where a watch-list entry comes from: its list and what the list
// says about the hash.
type Source struct {
	List     string // list name
	Negative bool   // a known-benign list: a hash on it must not alert
	Category string // category as the list gives it
	Severity int    // 0 unset; 1 (lowest) .. 5 (gravest)
}

// Result is what the lists say about one hash.
type Result struct {
	// Matches are the entries of watch-lists (not negative ones) naming
	// the hash, in the order the sources were first added to the Builder.
	Matches []Source
	// Suppressed is set when the hash is on a negative list: it must not
	// alert, though Matches are still reported for the analyst.
	Suppressed bool
	// Negative are the entries of negative lists naming the hash.
	Negative []Source
}

// Alert reports whether the result should raise an alert: the hash is on a
// watch-list and on no negative list.
func (r Result) Alert() bool { return len(r.Matches) > 0 && !r.Suppressed }

// ErrInvalidHash is returned by Builder.Add for the zero Hash or a hash of
// unknown kind.
var ErrInvalidHash = errors.New("match: invalid hash")

// maxKinds bounds the per-kind table; hashkind's kinds are small integers.
const maxKinds = 16

// Builder collects watch-list entries for a Matcher. It is not safe for
// concurrent use. The zero Builder is ready to use.
type Builder struct {
	idx     [maxKinds]*IndexBuilder
	ids     map[Source]uint32
	sources []Source
	strs    map[string]string

	// The last source added and its id: lists are added a list at a time,
	// so this spares the map lookup for almost every entry.
	last   Source
	lastID uint32
	any    bool
}

// intern returns one shared copy of s, so that a list name or category
// repeated on a million entries is stored once.
func (b *Builder) intern(s string) string {
	if v, ok := b.strs[s]; ok {
		return v
	}
	if b.strs == nil {
		b.strs = make(map[string]string)
	}
	b.strs[s] = s
	return s
}

// Grow makes room for n more entries of kind k.
func (b *Builder) Grow(k hashkind.Kind, n int) {
	if ib := b.indexFor(k); ib != nil {
		ib.Grow(n)
	}
}

func (b *Builder) indexFor(k hashkind.Kind) *IndexBuilder {
	if !k.Valid() || int(k) >= maxKinds {
		return nil
	}
	if b.idx[k] == nil {
		ib, err := NewIndexBuilder(k.Size())
		if err != nil {
			return nil
		}
		b.idx[k] = ib
	}
	return b.idx[k]
}

// Add adds the entry: hash h is on the list s names. Adding the same entry
// twice is harmless.
func (b *Builder) Add(h hashkind.Hash, s Source) error {
	ib := b.indexFor(h.Kind())
	if ib == nil {
		return fmt.Errorf("%w: kind %s (list %q)", ErrInvalidHash, h.Kind(), s.List)
	}
	id, ok := b.lastID, b.any && s == b.last
	if !ok {
		id, ok = b.ids[s]
	}
	if !ok {
		if len(b.sources) >= MaxValue {
			return fmt.Errorf("%w: more than %d distinct sources (list %q)", ErrTooMany, MaxValue, s.List)
		}
		s.List, s.Category = b.intern(s.List), b.intern(s.Category)
		if b.ids == nil {
			b.ids = make(map[Source]uint32)
		}
		id = uint32(len(b.sources))
		b.ids[s] = id
		b.sources = append(b.sources, s)
	}
	b.last, b.lastID, b.any = s, id, true
	if err := ib.Add(h.Bytes(), id); err != nil {
		return fmt.Errorf("list %q hash %s: %w", s.List, h, err)
	}
	return nil
}

// Build returns the Matcher of the entries added so far.
func (b *Builder) Build() *Matcher {
	m := &Matcher{
		sources:  slices.Clone(b.sources),
		negative: make([]bool, len(b.sources)),
	}
	seen := make(map[string]bool)
	for i, s := range m.sources {
		m.negative[i] = s.Negative
		if !seen[s.List] {
			seen[s.List] = true
			m.lists = append(m.lists, s.List)
		}
	}
	slices.Sort(m.lists)
	for k, ib := range b.idx {
		if ib == nil || ib.Len() == 0 {
			continue
		}
		x := ib.Build()
		m.idx[k] = x
		m.keys += x.Len()
		m.entries += x.Entries()
	}
	var kinds [maxKeySize + 1]int // indexed kinds per digest length
	for k, x := range m.idx {
		if x != nil {
			kinds[x.size]++
			m.bySize[x.size] = sizeIndex{x, hashkind.Kind(k)}
		}
	}
	for size, n := range kinds {
		if n > 1 {
			m.bySize[size] = sizeIndex{}
		}
	}
	return m
}

// Matcher answers which watch-lists name a hash. It is immutable and safe
// for concurrent use; a nil *Matcher is empty.
type Matcher struct {
	idx      [maxKinds]*Index
	bySize   [maxKeySize + 1]sizeIndex // by digest length
	sources  []Source                  // by id, the Index values
	negative []bool                    // by id: hot-path copy of sources[id].Negative
	lists    []string                  // sorted, distinct
	keys     int
	entries  int
}

// sizeIndex is the index of the only kind of a digest length that has
// one; x is nil when no kind or several kinds of that length have one.
type sizeIndex struct {
	x    *Index
	kind hashkind.Kind
}

func (m *Matcher) index(k hashkind.Kind) *Index {
	if m == nil || int(k) >= maxKinds {
		return nil
	}
	return m.idx[k]
}

// Contains reports whether h should alert: it is on at least one watch-list
// and on no negative list. It allocates nothing.
//
// It repeats Index.word rather than calling it, because every instruction
// on this path costs throughput (see Index.word), and it reads the digest
// in place through Hash.Digest. It asks for h's kind only once the probe
// has found a candidate, when a single kind of h's digest length is
// indexed (the usual case): Hash.Kind copies the whole Hash, and copying
// a Hash the caller has just written to the stack stalls on the
// processor's store forwarding, which made a cached lookup 30% slower.
func (m *Matcher) Contains(h hashkind.Hash) bool {
	if m == nil {
		return false
	}
	d := h.Digest()
	s := m.bySize[len(d)]
	if s.x == nil {
		return m.containsShared(h)
	}
	mask, line := find(s.x, &d[0])
	if mask == 0 || h.Kind() != s.kind {
		return false
	}
	return m.alerts(s.x, line, d, mask)
}

// ContainsRef is Contains reading h where it lies. Passed by value, h is
// first copied to the stack and the probe then reads it there; on some
// processors (seen on an Intel Xeon VM, not on AMD EPYC) that store and
// load, repeated lookup after lookup, keep the lookups from overlapping
// their cache misses: 190-220 ns a lookup against 50 in place
// (docs/benchmarks.md, "Matcher, third session"). A caller that holds
// many hashes, such as a slice or its observations, should pass a pointer.
func (m *Matcher) ContainsRef(h *hashkind.Hash) bool {
	if m == nil || h == nil {
		return false
	}
	d := h.Digest()
	s := m.bySize[len(d)]
	if s.x == nil {
		return m.containsShared(*h)
	}
	mask, line := find(s.x, &d[0])
	if mask == 0 || h.Kind() != s.kind {
		return false
	}
	return m.alerts(s.x, line, d, mask)
}

// containsShared is Contains for a digest length that several indexed
// kinds share (or none has): the kind picks the index first.
func (m *Matcher) containsShared(h hashkind.Hash) bool {
	k := h.Kind()
	if k >= maxKinds {
		return false
	}
	x := m.idx[k]
	if x == nil {
		return false
	}
	// x exists only for a valid kind, whose digest has x.size bytes.
	d := h.Digest()
	mask, line := find(x, &d[0])
	if mask == 0 {
		return false
	}
	return m.alerts(x, line, d, mask)
}

// alerts finishes Contains for a key whose probe found candidates.
func (m *Matcher) alerts(x *Index, line *[wordsPerLine]uint64, key []byte, mask uint64) bool {
	w, ok := x.hit(line, key, mask)
	if !ok {
		return false
	}
	return m.alertsWord(x, w)
}

// alertsWord reports whether the sources of value word w call for an alert.
func (m *Matcher) alertsWord(x *Index, w uint32) bool {
	if w&multiBit == 0 {
		return !m.negative[w]
	}
	for _, id := range x.values(w).many {
		if m.negative[id] {
			return false
		}
	}
	return true
}

// Match returns what the lists say about h; the zero Result if nothing.
func (m *Matcher) Match(h hashkind.Hash) Result {
	x := m.index(h.Kind())
	if x == nil {
		return Result{}
	}
	vs, ok := x.Lookup(h.Digest())
	if !ok {
		return Result{}
	}
	var r Result
	for i := range vs.Len() {
		s := m.sources[vs.At(i)]
		if s.Negative {
			r.Negative = append(r.Negative, s)
		} else {
			r.Matches = append(r.Matches, s)
		}
	}
	r.Suppressed = len(r.Negative) > 0
	return r
}

// Len is the number of distinct hashes, over all kinds.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return m.keys
}

// Entries is the number of distinct (hash, source) entries.
func (m *Matcher) Entries() int {
	if m == nil {
		return 0
	}
	return m.entries
}

// Lists returns the names of the lists, sorted.
func (m *Matcher) Lists() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.lists)
}

// Sources returns the distinct sources, in the order first added.
func (m *Matcher) Sources() []Source {
	if m == nil {
		return nil
	}
	return slices.Clone(m.sources)
}

// Bytes is the memory held by the indexes, in bytes (sources not counted).
func (m *Matcher) Bytes() int {
	if m == nil {
		return 0
	}
	n := 0
	for _, x := range m.idx {
		n += x.Bytes()
	}
	return n
}

// Live holds the current Matcher. Readers Load it for each lookup (or batch
// of lookups); the owner of the lists builds a new one and Stores it. A
// reader never sees a half-built Matcher. The zero Live holds none, and Load
// then returns nil, which is a valid, empty Matcher.
type Live struct {
	p atomic.Pointer[Matcher]
}

// Load returns the current Matcher.
func (l *Live) Load() *Matcher { return l.p.Load() }

// Store makes m the current Matcher.
func (l *Live) Store(m *Matcher) { l.p.Store(m) }

// ContainsBatch is Load().ContainsBatch: the whole batch is answered by
// the one Matcher current when it starts.
func (l *Live) ContainsBatch(hs []hashkind.Hash, alert []bool) []bool {
	return l.Load().ContainsBatch(hs, alert)
}
