package evidence

import (
	"bytes"
	"context"
	"fmt"
)

// leafGroup is how many leaves a leafCache reads at once, aligned: the
// subtree of 16 leaves the PostgreSQL store keeps one hash for (its
// evidence_tiles), whose leaves it hashes again together whichever one is
// asked for. A store that keeps each leaf reads 16 as cheaply as one.
const leafGroup = 16

// leafCache reads a log's leaves below size a group at a time and keeps
// them: a bundle needs the leaf of each of its observations, and the
// leaves beside it inside the subtree its proof goes into.
type leafCache struct {
	ls     LogStore
	size   uint64
	leaves map[uint64][]byte
}

func newLeafCache(ls LogStore, size uint64) *leafCache {
	return &leafCache{ls: ls, size: size, leaves: map[uint64][]byte{}}
}

// leaf returns leaf i.
func (c *leafCache) leaf(ctx context.Context, i uint64) ([]byte, error) {
	if l, ok := c.leaves[i]; ok {
		return l, nil
	}
	if i >= c.size {
		return nil, fmt.Errorf("evidence log: leaf %d of a log of %d", i, c.size)
	}
	begin := i &^ (leafGroup - 1)
	end := min(begin+leafGroup, c.size)
	err := c.ls.LogLeaves(ctx, begin, end, func(j uint64, leaf []byte) error {
		c.leaves[j] = bytes.Clone(leaf)
		return nil
	})
	if err != nil {
		return nil, err
	}
	l, ok := c.leaves[i]
	if !ok {
		return nil, fmt.Errorf("evidence log: leaf %d missing", i)
	}
	return l, nil
}
