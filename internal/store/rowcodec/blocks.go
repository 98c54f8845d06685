package rowcodec

import "fmt"

// BlockLeaves hands fn the leaves of one evidence_blocks row (first: the
// 1-based index of its first leaf; leaves: 32 bytes each) from leaf next
// up to, not including, to, and returns the next leaf wanted. A block
// that is not whole, or one that skips a leaf, is an error naming it.
func BlockLeaves(next, to uint64, first int64, leaves []byte, fn func(i uint64, leaf []byte) error) (uint64, error) {
	if len(leaves)%32 != 0 || first < 1 {
		return next, fmt.Errorf("evidence log: the block at leaf %d is not whole", first-1)
	}
	for k := uint64(0); k < uint64(len(leaves)/32) && next < to; k++ {
		i := uint64(first-1) + k
		if i < next {
			continue
		}
		if i != next {
			return next, fmt.Errorf("evidence log: leaf %d missing", next)
		}
		if err := fn(next, leaves[k*32:k*32+32]); err != nil {
			return next, err
		}
		next++
	}
	return next, nil
}
