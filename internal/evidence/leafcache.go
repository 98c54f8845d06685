package evidence

import (
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
	leaves map[uint64][32]byte
}

// LeafBatcher is a LogStore that reads the leaves of many indexes at
// once (the PostgreSQL store, which hashes each index's subtree of
// observations again: one query for them all rather than a few an index).
type LeafBatcher interface {
	// LogLeavesAt calls fn with the leaf of each of indexes, and may call
	// it with others (those beside them that it read too), in increasing
	// order, each once.
	LogLeavesAt(ctx context.Context, indexes []uint64, fn func(i uint64, leaf []byte) error) error
}

// prefetch reads the leaves of indexes (below size) at once when the
// store is a LeafBatcher.
func (c *leafCache) prefetch(ctx context.Context, indexes []uint64) error {
	lb, ok := c.ls.(LeafBatcher)
	if !ok {
		return nil
	}
	var want []uint64
	for _, i := range indexes {
		if _, ok := c.leaves[i]; !ok && i < c.size {
			want = append(want, i)
		}
	}
	if len(want) == 0 {
		return nil
	}
	return lb.LogLeavesAt(ctx, want, c.keep)
}

func newLeafCache(ls LogStore, size uint64) *leafCache {
	return &leafCache{ls: ls, size: size, leaves: map[uint64][32]byte{}}
}

// leaf returns leaf i.
func (c *leafCache) leaf(ctx context.Context, i uint64) ([]byte, error) {
	if l, ok := c.leaves[i]; ok {
		return l[:], nil
	}
	if i >= c.size {
		return nil, fmt.Errorf("evidence log: leaf %d of a log of %d", i, c.size)
	}
	begin := i &^ (leafGroup - 1)
	end := min(begin+leafGroup, c.size)
	err := c.ls.LogLeaves(ctx, begin, end, c.keep)
	if err != nil {
		return nil, err
	}
	l, ok := c.leaves[i]
	if !ok {
		return nil, fmt.Errorf("evidence log: leaf %d missing", i)
	}
	return l[:], nil
}

// keep keeps leaf j (below size).
func (c *leafCache) keep(j uint64, leaf []byte) error {
	if len(leaf) != 32 {
		return fmt.Errorf("evidence log: leaf %d has %d bytes, not 32", j, len(leaf))
	}
	if j < c.size {
		c.leaves[j] = [32]byte(leaf)
	}
	return nil
}
