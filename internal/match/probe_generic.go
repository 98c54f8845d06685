//go:build !amd64 || purego

package match

import "unsafe"

// exactProbe: the portable probe's mask is only a hint.
const exactProbe = false

func find(x *Index, key *byte) (uint64, *[wordsPerLine]uint64) {
	return x.findGo(unsafe.Slice(key, x.size))
}
