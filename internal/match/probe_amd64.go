//go:build amd64 && !purego

package match

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2 probe over the SSE2 one (read by find in assembly).
var useAVX2 = cpu.X86.HasAVX2

// exactProbe: the vector probes report exactly the equal lanes.
const exactProbe = true

// find is Index.findGo in assembly, with an exact mask: the bucket of the
// key (whose length is x.size) is computed, and its line compared with the
// key's fingerprint 32 bytes at a time (AVX2) or 16 (SSE2).
//
//go:noescape
func find(x *Index, key *byte) (mask uint64, line *[wordsPerLine]uint64)

// prefetchHead returns the bucket of key (which has x.size bytes) and
// starts the fetch of its head; it waits for nothing.
//
//go:noescape
func prefetchHead(x *Index, key *byte) (bucket uint64)

// prefetchLine reports whether key may be in bucket b of x (its head's
// filter has the key's bits) and, if so, starts the fetch of the bucket's
// line and of its first records, as find does. It waits for the head only.
//
//go:noescape
func prefetchLine(x *Index, b uint64, key *byte) bool
