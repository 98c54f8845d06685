//go:build !amd64 || purego

package match

import (
	"encoding/binary"
	"unsafe"
)

// exactProbe: the portable probe's mask is only a hint.
const exactProbe = false

func find(x *Index, key *byte) (uint64, *[wordsPerLine]uint64) {
	return x.findGo(unsafe.Slice(key, x.size))
}

// prefetchHead returns the bucket of key; the portable code cannot prefetch.
func prefetchHead(x *Index, key *byte) uint64 {
	return x.bucket(binary.BigEndian.Uint64(unsafe.Slice(key, 8)))
}

// prefetchLine reports whether key may be in bucket b, by its head's filter.
func prefetchLine(x *Index, b uint64, key *byte) bool {
	m0, m1 := filterMask(unsafe.Slice(key, x.size))
	return x.heads[2*b]&m0 == m0 && x.heads[2*b+1]&m1 == m1
}
