//go:build !amd64 || purego

package digest

// tigerBlocks compresses every whole 64-byte block of p into s.
func tigerBlocks(s *[3]uint64, p []byte) { tigerBlocksGeneric(s, p) }

// tigerBlocks2 compresses the whole blocks of p0 into s0 and of p1 into s1;
// p0 and p1 must have the same length.
func tigerBlocks2(s0, s1 *[3]uint64, p0, p1 []byte) {
	if len(p0) != len(p1) {
		panic("digest: tigerBlocks2 with messages of different lengths")
	}
	tigerBlocksGeneric(s0, p0)
	tigerBlocksGeneric(s1, p1)
}
