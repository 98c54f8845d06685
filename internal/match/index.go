package match

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// Layout of an Index (why it looks like this).
//
// Keys are cryptographic digests, so their bits are uniform: an Index uses
// them directly, without hashing. It sorts its distinct keys and cuts the
// key space into nb buckets by the leading bits; a bucket is one 64-byte
// cache line of 32 uint16 lanes:
//
//	lanes 0-1  base: index in recs of the bucket's first key
//	lane 2     count of keys in the line (0..lineCap) | overflow flag << 8
//	lanes 3-31 fingerprints: the key's last two bytes, one per key, in key order
//
// A lookup first reads one 64-bit word of a Bloom filter (10 bits a key,
// four bits set per key, about 2% false positives): at about 1.25 bytes a
// key the filter is small enough to stay mostly in the last-level cache,
// so most misses end there without a trip to main memory. A key that
// passes reads its bucket's line and compares its fingerprint with all 29
// lanes at once (two AVX2 compares, four SSE2 ones, or SWAR arithmetic in
// portable Go). With about 14 keys a line, a random miss that got past the
// filter finds an equal fingerprint with probability about 14/65536. Every
// equal lane, and so every key that is present, is confirmed against its
// full record: the filter and the fingerprints only ever narrow the
// search, and the index is exact.
//
// Why so few instructions matter: lookups are independent, and the
// processor overlaps their cache misses only as far as its reorder window
// reaches, so throughput is set by the instructions spent per lookup as
// much as by the misses themselves. Hence the probe in assembly, the
// lookup paths written out rather than layered, and no hashing.
//
// Records hold only what the bucket and fingerprint do not imply. There are
// nb = 2^(8*skip) * m buckets and the bucket of a key is the high half of
// t*nb, t its first eight bytes: that is block*m + sub, where block is the
// key's first skip bytes taken whole and sub below m (m lets the load per
// line be chosen freely rather than by powers of two). A record is
// key[skip:size-2] followed by a little-endian uint32 value word: 20 bytes
// for a SHA-1 entry once skip is 2 (from about four million keys). With
// about 14 keys per 64-byte line the whole index costs about 26 bytes per
// SHA-1 entry, filter and values included.
//
// A bucket that receives more than lineCap keys (adversarial keys sharing a
// long prefix; for uniform keys about one bucket in two thousand) keeps the
// first lineCap in its line and sets its overflow flag; the rest go, whole, to
// a sorted overflow array searched by bisection only when the flag is set.
//
// A key with several values (the same hash on several lists) has a value word
// with the top bit set; the low bits index a range of multiVals.

const (
	lanesPerLine = 32
	wordsPerLine = lanesPerLine / 4
	headerLanes  = 3
	lineCap      = lanesPerLine - headerLanes // fingerprints per line
	flagOverflow = 1 << 8                     // in lane 2, above the count
	multiBit     = 1 << 31                    // in a value word
	fpLen        = 2                          // fingerprint bytes, at the key's end
	defaultLoad  = 14                         // target keys per line
	minKeySize   = 16                         // so that a record's key bytes are at least 8
	maxKeySize   = 64
	// maxSkip bounds the implied prefix: a third byte would take 2^24
	// lines (1 GiB) and only pays from about a billion keys.
	maxSkip       = 2
	lanesLow      = 0x0001000100010001
	lanesHigh     = 0x8000800080008000
	maxIndexCount = 1<<32 - 1
)

// MaxValue is the largest value an Index stores; the top bit of a value word
// is taken by the multi-value marker.
const MaxValue = multiBit - 1

// Errors returned by IndexBuilder.
var (
	// ErrKeySize is returned for a key whose length is not the index's key size.
	ErrKeySize = errors.New("match: wrong key length")
	// ErrValueRange is returned for a value above MaxValue.
	ErrValueRange = errors.New("match: value out of range")
	// ErrTooMany is returned when an index would hold more keys than it can address.
	ErrTooMany = errors.New("match: too many keys")
)

// Index is an exact, immutable map from fixed-size keys (digests of one kind)
// to one or more small integer values. It is safe for concurrent use.
// The zero Index and a nil *Index are empty.
type Index struct {
	size   int // key length in bytes
	skip   int // leading key bytes implied by the bucket's block
	mid    int // key bytes stored in a record: size - skip - fpLen
	stride int // record length: mid + 4

	m     uint64 // sub-buckets per block
	nb    uint64 // buckets: 2^(8*skip) * m
	fpOff int    // size - fpLen: where the fingerprint starts

	// Two words per bucket: a 96-bit Bloom filter of the bucket's keys
	// (all of word 0, the low half of word 1) and, in the high half of
	// word 1, the bucket's base (as in its line). Small enough to stay in
	// the processor's last-level cache, they turn most misses away before
	// they touch main memory, and tell a key that passes where its
	// bucket's records are, so that they can be fetched together with
	// the line.
	heads []uint64

	lines []uint64 // wordsPerLine words per bucket
	recs  []byte   // stride bytes per key kept in a line

	// Keys beyond a full line, in key order, whole, with their value words.
	ovKeys  []byte
	ovWords []uint32

	multiStart []uint32 // multiVals[multiStart[i]:multiStart[i+1]] is range i
	multiVals  []uint32

	keys    int // distinct keys
	entries int // distinct (key, value) pairs
}

// Values is the set of values of one key, in ascending order, without
// repeats. It is a view into the Index and allocates nothing.
type Values struct {
	one  uint32
	many []uint32
}

// Len is the number of values.
func (v Values) Len() int {
	if v.many != nil {
		return len(v.many)
	}
	return 1
}

// At returns the i-th value.
func (v Values) At(i int) uint32 {
	if v.many != nil {
		return v.many[i]
	}
	if i != 0 {
		panic(fmt.Sprintf("match: Values.At(%d) of a single value", i))
	}
	return v.one
}

// Append appends the values to dst.
func (v Values) Append(dst []uint32) []uint32 {
	if v.many != nil {
		return append(dst, v.many...)
	}
	return append(dst, v.one)
}

// KeySize is the length of the index's keys in bytes.
func (x *Index) KeySize() int {
	if x == nil {
		return 0
	}
	return x.size
}

// Len is the number of distinct keys.
func (x *Index) Len() int {
	if x == nil {
		return 0
	}
	return x.keys
}

// Entries is the number of distinct (key, value) pairs.
func (x *Index) Entries() int {
	if x == nil {
		return 0
	}
	return x.entries
}

// Bytes is the memory the index holds, in bytes.
func (x *Index) Bytes() int {
	if x == nil {
		return 0
	}
	return 8*len(x.heads) + 8*len(x.lines) + len(x.recs) + len(x.ovKeys) + 4*len(x.ovWords) +
		4*len(x.multiStart) + 4*len(x.multiVals)
}

// Has reports whether key is in the index. A key of the wrong length is not.
func (x *Index) Has(key []byte) bool {
	// word, spelled out: one call less per lookup.
	if x == nil || len(key) != x.size || len(key) == 0 {
		return false
	}
	mask, line := find(x, &key[0])
	if mask == 0 {
		return false
	}
	_, ok := x.hit(line, key, mask)
	return ok
}

// Lookup returns the values of key, and whether it is in the index.
func (x *Index) Lookup(key []byte) (Values, bool) {
	w, ok := x.word(key)
	if !ok {
		return Values{}, false
	}
	return x.values(w), true
}

func (x *Index) values(w uint32) Values {
	if w&multiBit == 0 {
		return Values{one: w}
	}
	r := w &^ multiBit
	return Values{many: x.multiVals[x.multiStart[r]:x.multiStart[r+1]:x.multiStart[r+1]]}
}

// word finds key's value word. This is the hot path: one cache line for a
// miss, one more (the record) for a hit. It is kept small enough to be
// inlined into callers, and the probe itself is one call: the processor
// overlaps the cache misses of consecutive lookups only as far as its
// reorder window reaches, so every instruction spent per lookup costs
// throughput.
func (x *Index) word(key []byte) (uint32, bool) {
	if x == nil || len(key) != x.size || len(key) == 0 {
		return 0, false
	}
	mask, line := find(x, &key[0])
	if mask == 0 {
		return 0, false
	}
	return x.hit(line, key, mask)
}

// findGo is the portable probe: the bucket's line and a mask that is
// non-zero when the key may be in it (see headerMask).
func (x *Index) findGo(key []byte) (uint64, *[wordsPerLine]uint64) {
	t := binary.BigEndian.Uint64(key)
	b := x.bucket(t)
	m0, m1 := filterMask(key)
	if x.heads[2*b]&m0 != m0 || x.heads[2*b+1]&m1 != m1 {
		return 0, nil
	}
	fp := uint64(binary.LittleEndian.Uint16(key[len(key)-fpLen:]))
	line := (*[wordsPerLine]uint64)(x.lines[b*wordsPerLine:])
	return probeSWAR(line, fp), line
}

// filterMask returns the filter bits of key in its bucket's head: two in
// word 0 and one in the low half of word 1, taken from its bytes 8 to 11,
// which neither the bucket (bytes 0 to 7) nor the fingerprint (the last
// two) use.
func filterMask(key []byte) (uint64, uint64) {
	u := binary.LittleEndian.Uint32(key[8:])
	return 1<<(u&63) | 1<<(u>>6&63), 1 << (u >> 12 & 31)
}

// hit confirms or refutes the candidates of a non-zero probe mask.
func (x *Index) hit(line *[wordsPerLine]uint64, key []byte, mask uint64) (uint32, bool) {
	// The common case first: one candidate lane and no overflow.
	odd := mask & oddLanes
	if exactProbe && mask&1 == 0 && odd&(odd-1) == 0 {
		hdr := line[0]
		slot := bits.TrailingZeros64(odd)>>1 - headerLanes
		if uint(slot) >= uint(hdr>>32&0xff) {
			return 0, false // an empty lane
		}
		off := (int(uint32(hdr)) + slot) * x.stride
		rec := x.recs[off : off+x.stride : off+x.stride]
		if equalMid(rec, key[x.skip:], x.mid) {
			return binary.LittleEndian.Uint32(rec[x.mid:]), true
		}
		return 0, false
	}
	fp := uint64(binary.LittleEndian.Uint16(key[len(key)-fpLen:]))
	return x.slow(line, key, fp, mask, exactProbe)
}

// oddLanes keeps one probe bit per lane.
const oddLanes = 0xaaaaaaaaaaaaaaaa

// equalMid reports whether a[:n] == b[:n] for n >= 8, eight bytes at a time
// (the last word may overlap the one before), without a call.
func equalMid(a, b []byte, n int) bool {
	a, b = a[:n], b[:n]
	var d uint64
	i := 0
	for ; i+8 <= n; i += 8 {
		d |= binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:])
	}
	if i < n {
		d |= binary.LittleEndian.Uint64(a[n-8:]) ^ binary.LittleEndian.Uint64(b[n-8:])
	}
	return d == 0
}

// A probe returns a mask with bits 2i and 2i+1 set for each fingerprint
// lane i that equals the fingerprint looked for (exactly so in the vector
// probes; the portable one may set more), and bit 0 set when the line's bucket has
// overflowed; the header lanes' own bits are cleared. Zero means a miss.
const (
	headerMask  = 1<<(2*headerLanes) - 1
	overflowBit = 40 // of line[0]: flagOverflow << 32
)

// probeSWAR is the portable probe: a lane equal to fp becomes zero after
// the xor, and (v - 1) &^ v sets that lane's top bit. The result may also
// flag a lane above a zero one (the borrow), header lanes and empty lanes;
// it is only ever used to decide whether to look closer.
func probeSWAR(line *[wordsPerLine]uint64, fp uint64) uint64 {
	bc := fp * lanesLow
	v0, v1, v2, v3 := line[0]^bc, line[1]^bc, line[2]^bc, line[3]^bc
	v4, v5, v6, v7 := line[4]^bc, line[5]^bc, line[6]^bc, line[7]^bc
	z := (v0-lanesLow)&^v0 | (v1-lanesLow)&^v1 | (v2-lanesLow)&^v2 | (v3-lanesLow)&^v3 |
		(v4-lanesLow)&^v4 | (v5-lanesLow)&^v5 | (v6-lanesLow)&^v6 | (v7-lanesLow)&^v7
	return z&lanesHigh | line[0]>>overflowBit&1
}

// exactMask returns the probe mask of line for fp in the vector probe's
// form: bits 2i and 2i+1 set for each lane i equal to fp.
func exactMask(line *[wordsPerLine]uint64, fp uint64) uint64 {
	var m uint64
	for lane := headerLanes; lane < lanesPerLine; lane++ {
		if uint16(line[lane/4]>>(16*(lane%4))) == uint16(fp) {
			m |= 3 << (2 * lane)
		}
	}
	return m
}

func (x *Index) slow(line *[wordsPerLine]uint64, key []byte, fp, mask uint64, exact bool) (uint32, bool) {
	hdr := line[0]
	if !exact {
		// The portable probe's mask is only a hint.
		mask = exactMask(line, fp)
	}
	// Keep one bit per lane, and only the lanes that hold keys.
	n := uint(hdr>>32) & 0xff
	mask &= oddLanes & (1<<(2*(headerLanes+n)) - 1)
	want := key[x.skip : x.size-fpLen]
	base := int(uint32(hdr)) - headerLanes
	for mask != 0 {
		lane := bits.TrailingZeros64(mask) >> 1
		mask &= mask - 1
		off := (base + lane) * x.stride
		rec := x.recs[off : off+x.stride : off+x.stride]
		if equalMid(rec, want, x.mid) {
			return binary.LittleEndian.Uint32(rec[x.mid:]), true
		}
	}
	if hdr&(flagOverflow<<32) == 0 {
		return 0, false
	}
	return x.overflow(key)
}

func (x *Index) overflow(key []byte) (uint32, bool) {
	n := len(x.ovWords)
	i := sort.Search(n, func(i int) bool {
		return bytes.Compare(x.ovKeys[i*x.size:(i+1)*x.size], key) >= 0
	})
	if i < n && bytes.Equal(x.ovKeys[i*x.size:(i+1)*x.size], key) {
		return x.ovWords[i], true
	}
	return 0, false
}

// IndexBuilder collects (key, value) pairs for an Index. It is not safe for
// concurrent use.
type IndexBuilder struct {
	size int
	keys []byte   // size bytes per pair
	vals []uint32 // one per pair

	// load is the target number of keys per line; 0 means defaultLoad.
	// forceSkip, when >= 0, fixes the implied prefix length (tests use it
	// to reach the large-index layout with few keys).
	load      int
	forceSkip int
}

// NewIndexBuilder returns a builder for keys of keySize bytes (16 to 64).
func NewIndexBuilder(keySize int) (*IndexBuilder, error) {
	if keySize < minKeySize || keySize > maxKeySize {
		return nil, fmt.Errorf("%w: key size %d, want %d to %d", ErrKeySize, keySize, minKeySize, maxKeySize)
	}
	return &IndexBuilder{size: keySize, forceSkip: -1}, nil
}

// Grow makes room for n more pairs.
func (b *IndexBuilder) Grow(n int) {
	b.keys = slices.Grow(b.keys, n*b.size)
	b.vals = slices.Grow(b.vals, n)
}

// Len is the number of pairs added so far, repeats included.
func (b *IndexBuilder) Len() int { return len(b.vals) }

// Add adds the pair (key, v). Adding a pair twice is harmless.
func (b *IndexBuilder) Add(key []byte, v uint32) error {
	if len(key) != b.size {
		// hex.EncodeToString rather than %x: key must not escape, so that
		// callers can pass a slice of a stack array.
		return fmt.Errorf("%w: key %s has %d bytes, want %d", ErrKeySize, hex.EncodeToString(key), len(key), b.size)
	}
	if v > MaxValue {
		return fmt.Errorf("%w: value %d for key %s (max %d)", ErrValueRange, v, hex.EncodeToString(key), MaxValue)
	}
	if len(b.vals) >= maxIndexCount {
		return fmt.Errorf("%w: key %s would be number %d", ErrTooMany, hex.EncodeToString(key), len(b.vals)+1)
	}
	b.keys = append(b.keys, key...)
	b.vals = append(b.vals, v)
	return nil
}

// Build returns the Index of the pairs added so far. The builder may be
// reused afterwards; the Index shares nothing with it.
func (b *IndexBuilder) Build() *Index {
	items, istride := b.sorted()
	n := len(items) / istride
	size := b.size

	// Pass 1: count distinct keys, distinct pairs and keys with several values.
	keys, entries, multi, multiVals := 0, 0, 0, 0
	for i := 0; i < n; {
		j, nv := groupEnd(items, istride, size, i, n)
		keys++
		entries += nv
		if nv > 1 {
			multi++
			multiVals += nv
		}
		i = j
	}

	x := &Index{size: size, keys: keys, entries: entries}
	x.layout(keys, b.load, b.forceSkip)
	x.heads = make([]uint64, 2*x.nb)
	x.lines = make([]uint64, int(x.nb)*wordsPerLine)
	x.recs = make([]byte, keys*x.stride)
	nrec := 0
	if multi > 0 {
		x.multiStart = make([]uint32, 1, multi+1)
		x.multiVals = make([]uint32, 0, multiVals)
	}

	// Pass 2: fill lines, records and overflow in key order. Buckets are
	// monotonic in the key, so each line is filled in one stretch.
	cur, inLine := uint64(0), 0
	for i := 0; i < n; {
		j, nv := groupEnd(items, istride, size, i, n)
		key := items[i*istride : i*istride+size]
		var w uint32
		if nv == 1 {
			w = binary.LittleEndian.Uint32(items[i*istride+size:])
		} else {
			w = multiBit | uint32(len(x.multiStart)-1)
			var last uint32
			for k := i; k < j; k++ {
				v := binary.LittleEndian.Uint32(items[k*istride+size:])
				if k == i || v != last {
					x.multiVals = append(x.multiVals, v)
				}
				last = v
			}
			x.multiStart = append(x.multiStart, uint32(len(x.multiVals)))
		}
		bk := x.bucket(binary.BigEndian.Uint64(key))
		m0, m1 := filterMask(key)
		x.heads[2*bk] |= m0
		x.heads[2*bk+1] |= m1
		if bk != cur || i == 0 {
			cur, inLine = bk, 0
			x.lines[bk*wordsPerLine] = uint64(uint32(nrec))
			x.heads[2*bk+1] |= uint64(nrec) << 32
		}
		line := x.lines[bk*wordsPerLine : (bk+1)*wordsPerLine]
		if inLine < lineCap {
			lane := headerLanes + inLine
			fp := uint64(binary.LittleEndian.Uint16(key[size-fpLen:]))
			line[lane/4] |= fp << (16 * (lane % 4))
			inLine++
			line[0] = line[0]&^(0xff<<32) | uint64(inLine)<<32
			rec := x.recs[nrec*x.stride : (nrec+1)*x.stride]
			copyWords(rec, key[x.skip:size-fpLen])
			binary.LittleEndian.PutUint32(rec[x.mid:], w)
			nrec++
		} else {
			line[0] |= flagOverflow << 32
			x.ovKeys = append(x.ovKeys, key...)
			x.ovWords = append(x.ovWords, w)
		}
		i = j
	}
	// Lines of empty buckets keep base 0 and count 0: never read past count.
	x.recs = slices.Clip(x.recs[:nrec*x.stride])
	return x
}

// groupEnd returns the end of the run of items equal in key to item i, and
// the number of distinct values in it (items are sorted by key, then value).
func groupEnd(items []byte, istride, size, i, n int) (int, int) {
	key := items[i*istride : i*istride+size]
	nv := 1
	last := binary.LittleEndian.Uint32(items[i*istride+size:])
	j := i + 1
	for ; j < n && equalMid(items[j*istride:], key, size); j++ {
		if v := binary.LittleEndian.Uint32(items[j*istride+size:]); v != last {
			nv++
			last = v
		}
	}
	return j, nv
}

// layout chooses skip and m for n distinct keys: as many whole leading bytes
// as can be implied while blocks still hold a full line's worth of keys, then
// enough sub-buckets for about load keys per line.
func (x *Index) layout(n, load, forceSkip int) {
	if load <= 0 {
		load = defaultLoad
	}
	skip := 0
	for skip < maxSkip && (4*uint64(load))<<(8*(skip+1)) <= uint64(n) {
		skip++
	}
	if forceSkip >= 0 {
		skip = min(forceSkip, maxSkip)
	}
	blocks := uint64(1) << (8 * skip)
	m := (uint64(n) + blocks*uint64(load)/2) / (blocks * uint64(load))
	x.skip = skip
	x.mid = x.size - skip - fpLen
	x.stride = x.mid + 4
	x.m = max(m, 1)
	x.nb = blocks * x.m
	x.fpOff = x.size - fpLen
}

// bucket returns the bucket of a key whose first eight bytes, big-endian,
// are t: hi64(t * nb). With t = B*2^(64-8*skip) + r, that is B*m +
// floor(r*m / 2^(64-8*skip)): the block B (the key's first skip bytes) times
// m, plus a sub-bucket below m. So a bucket implies its keys' first skip
// bytes, and buckets follow key order.
func (x *Index) bucket(t uint64) uint64 {
	b, _ := bits.Mul64(t, x.nb)
	return b
}

// sorted returns the builder's pairs as one array of items (key, then a
// little-endian value), sorted by key then value. Keys are uniform, so a
// radix sort on their leading bits does almost all the work: one scatter
// into a few thousand partitions (their write heads stay in cache), then,
// per partition and on every processor, a second scatter on the next bits
// within cache, and an insertion sort of the tiny runs left. Partitions
// too big for that (only adversarial keys make them) are sorted by
// comparison.
func (b *IndexBuilder) sorted() ([]byte, int) {
	size := b.size
	istride := size + 4
	n := len(b.vals)
	items := make([]byte, n*istride)
	if n == 0 {
		return items, istride
	}
	r1 := min(max(bits.Len(uint(n))-12, 0), 16)
	part := func(k []byte) uint64 { return binary.BigEndian.Uint64(k) >> 1 >> (63 - r1) }
	start := make([]uint32, (1<<r1)+1)
	for i := range n {
		start[part(b.keys[i*size:])+1]++
	}
	for p := 1; p < len(start); p++ {
		start[p] += start[p-1]
	}
	next := slices.Clone(start[:len(start)-1])
	for i := range n {
		k := b.keys[i*size : (i+1)*size]
		p := part(k)
		at := int(next[p]) * istride
		next[p]++
		copyWords(items[at:at+size], k)
		binary.LittleEndian.PutUint32(items[at+size:], b.vals[i])
	}
	next = nil
	// The partitions are independent: sort them on every processor.
	workers := min(runtime.GOMAXPROCS(0), max(n>>16, 1))
	var wg sync.WaitGroup
	parts := len(start) - 1
	for w := range workers {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			var s subSorter
			for p := from; p < to; p++ {
				lo, hi := int(start[p]), int(start[p+1])
				s.sort(items[lo*istride:hi*istride], istride, r1, 0)
			}
		}(parts*w/workers, parts*(w+1)/workers)
	}
	wg.Wait()
	return items, istride
}

// subSorter sorts one partition; it keeps its buffers between partitions.
type subSorter struct {
	tmp    []byte
	counts [][]uint32 // one per level of recursion
	one    [maxKeySize + 4]byte
}

const maxRadixPart = 1 << 16 // larger partitions are sorted by comparison

// sort sorts the items of one partition, whose keys share their first
// used bits.
func (s *subSorter) sort(items []byte, istride, used, depth int) {
	k := len(items) / istride
	switch {
	case k < 2:
		return
	case k <= 24:
		insertionSort(items, istride, s.one[:istride])
		return
	case k > maxRadixPart || used >= 48:
		sort.Sort(&itemSorter{items: items, stride: istride, tmp: s.one[:istride]})
		return
	}
	r2 := bits.Len(uint(k))
	sub := func(item []byte) uint64 { return binary.BigEndian.Uint64(item) << used >> (64 - r2) }
	if len(s.counts) <= depth {
		s.counts = append(s.counts, nil)
	}
	if cap(s.counts[depth]) < (1<<r2)+1 {
		s.counts[depth] = make([]uint32, (1<<r2)+1)
	}
	count := s.counts[depth][:(1<<r2)+1]
	clear(count)
	for i := range k {
		count[sub(items[i*istride:])+1]++
	}
	for p := 1; p < len(count); p++ {
		count[p] += count[p-1]
	}
	if cap(s.tmp) < len(items) {
		s.tmp = make([]byte, len(items))
	}
	tmp := s.tmp[:len(items)]
	for i := range k {
		it := items[i*istride : (i+1)*istride]
		p := sub(it)
		at := int(count[p]) * istride
		count[p]++
		copyWords(tmp[at:at+istride], it)
	}
	copy(items, tmp)
	// count[p] is now where run p ends; runs are a few items long.
	lo := 0
	for p := 0; p+1 < len(count); p++ {
		hi := int(count[p])
		if hi-lo > 1 {
			s.sort(items[lo*istride:hi*istride], istride, used+r2, depth+1)
		}
		lo = hi
	}
}

// copyWords copies src to dst (len(src) >= 8) eight bytes at a time, the
// last word overlapping the one before: for the small fixed-size copies of
// a build, a call to memmove costs more than the copy.
func copyWords(dst, src []byte) {
	n := len(src)
	dst = dst[:n]
	i := 0
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(src[i:]))
	}
	if i < n {
		binary.LittleEndian.PutUint64(dst[n-8:], binary.LittleEndian.Uint64(src[n-8:]))
	}
}

// lessItem orders items by key bytes, then by value.
func lessItem(a, b []byte, size int) bool {
	// Keys almost always differ in their first eight bytes.
	if x, y := binary.BigEndian.Uint64(a), binary.BigEndian.Uint64(b); x != y {
		return x < y
	}
	if c := bytes.Compare(a[8:size], b[8:size]); c != 0 {
		return c < 0
	}
	return binary.LittleEndian.Uint32(a[size:]) < binary.LittleEndian.Uint32(b[size:])
}

func insertionSort(items []byte, stride int, tmp []byte) {
	size := stride - 4
	n := len(items) / stride
	for i := 1; i < n; i++ {
		j := i
		if !lessItem(items[j*stride:(j+1)*stride], items[(j-1)*stride:j*stride], size) {
			continue
		}
		copyWords(tmp, items[i*stride:(i+1)*stride])
		for j > 0 && lessItem(tmp, items[(j-1)*stride:j*stride], size) {
			copyWords(items[j*stride:(j+1)*stride], items[(j-1)*stride:j*stride])
			j--
		}
		copyWords(items[j*stride:(j+1)*stride], tmp)
	}
}

type itemSorter struct {
	items  []byte
	stride int
	tmp    []byte
}

func (s *itemSorter) Len() int { return len(s.items) / s.stride }
func (s *itemSorter) Less(i, j int) bool {
	st := s.stride
	return lessItem(s.items[i*st:(i+1)*st], s.items[j*st:(j+1)*st], st-4)
}
func (s *itemSorter) Swap(i, j int) {
	st := s.stride
	a, b := s.items[i*st:(i+1)*st], s.items[j*st:(j+1)*st]
	copy(s.tmp, a)
	copy(a, b)
	copy(b, s.tmp)
}
