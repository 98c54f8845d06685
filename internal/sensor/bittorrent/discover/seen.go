package discover

import (
	"hash/maphash"
	"sync"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// seenSet remembers which unwatched info-hashes discovery has already
// handled, so that a torrent sampled again and again is fetched once. It
// is a pair of blocked Bloom filters (one 512-bit cache line per key, 7
// bits set in it, 10 bits of filter per key): 1.25 MB per million keys and
// generation, about 1% false positives at capacity.
//
// A false positive only ever makes discovery skip a torrent it has not
// fetched: never a watched one, because discovery asks the exact watch set
// first and the seen-set only for keys that are not watched. The cost of a
// false positive is a delay, not a loss: each generation has its own hash
// seed, so once the generation that answered "seen" is retired (after
// 2×capacity further keys) the same key gets a fresh, independent chance.
//
// Keys are hashed with a random per-generation maphash seed, so that a node
// cannot craft info-hashes that fill the same lines on every sensor.
type seenSet struct {
	mu       sync.Mutex
	cur, old *bloom
	perGen   int
	added    uint64 // keys added since start
}

// newSeenSet returns a seen-set that remembers at least the last capacity
// keys added (and at most twice as many).
func newSeenSet(capacity int) *seenSet {
	capacity = max(capacity, 1024)
	return &seenSet{cur: newBloom(capacity), old: newBloom(1), perGen: capacity}
}

// has reports whether k was (probably) added.
func (s *seenSet) has(k routing.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.has(k) || s.old.has(k)
}

// testAndAdd adds k and reports whether it was (probably) there already.
func (s *seenSet) testAndAdd(k routing.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.has(k) || s.old.has(k) {
		return true
	}
	if s.cur.n >= s.perGen {
		s.old, s.cur = s.cur, newBloom(s.perGen)
	}
	s.cur.add(k)
	s.added++
	return false
}

// bytes is the memory the filters hold.
func (s *seenSet) bytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (len(s.cur.lines) + len(s.old.lines)) * 64
}

// bloomBitsPerKey and bloomK size the filter: 10 bits and 7 probes per key
// give about 0.8% false positives for a classic Bloom filter, a little
// more (~1%) when every probe of a key falls in one cache line.
const (
	bloomBitsPerKey = 10
	bloomK          = 7
)

// bloom is a blocked Bloom filter: each key picks one 512-bit line and sets
// bloomK bits in it, so a test costs one cache miss.
type bloom struct {
	lines [][8]uint64
	seed  maphash.Seed
	n     int
}

func newBloom(capacity int) *bloom {
	lines := max(1, (capacity*bloomBitsPerKey+511)/512)
	return &bloom{lines: make([][8]uint64, lines), seed: maphash.MakeSeed()}
}

// probe returns the key's line and its bloomK bit positions (9 bits each,
// from a remix of the hash independent of the bits that chose the line).
func (b *bloom) probe(k routing.ID) (*[8]uint64, uint64) {
	h := maphash.Bytes(b.seed, k[:])
	line := &b.lines[(h>>32)*uint64(len(b.lines))>>32]
	// splitmix64 finaliser: the bit positions must not repeat the line's bits.
	x := h + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	return line, x
}

func (b *bloom) add(k routing.ID) {
	line, x := b.probe(k)
	for range bloomK {
		bit := x & 511
		line[bit>>6] |= 1 << (bit & 63)
		x >>= 9
	}
	b.n++
}

func (b *bloom) has(k routing.ID) bool {
	line, x := b.probe(k)
	for range bloomK {
		bit := x & 511
		if line[bit>>6]&(1<<(bit&63)) == 0 {
			return false
		}
		x >>= 9
	}
	return true
}
