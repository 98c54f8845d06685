package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vigil-oss/vigil/internal/observe"
)

// The evidence log's tiles (migration 0021): since it, a commit appends
// one evidence_tiles row a block of at most maxBlock leaves, holding no
// leaf. A leaf is a function of its observation (observe.LeafHash), so a
// block keeps what binds its leaves to the observations (their seqs, in
// leaf order: seqRuns) and what binds the observations to the signed
// roots: the hashes of the block's nodes (tileNodes), the RFC 6962
// subtrees of at most 2^level leaves that cover its leaves. A proof, or
// anyone who asks for a leaf, gets the leaves of a node by hashing its
// observations again (or reading the leaf a purge record keeps) and
// checking that they give the node's hash: a row changed after it was
// logged is caught there, as evidence_blocks' stored leaves caught it.

// tileLevel is the level of the nodes a block keeps: one 32-byte hash for
// 16 leaves (2 bytes an observation), and at most 16 rows read again to
// prove one observation.
const tileLevel = 4

// ErrTileCodec is returned for a block whose seqs or nodes cannot be
// decoded.
var ErrTileCodec = errors.New("evidence log: a block's tiles are not whole")

// node is one RFC 6962 subtree: leaves [index<<level, (index+1)<<level).
type node struct {
	level uint
	index uint64
}

func (n node) begin() uint64 { return n.index << n.level }
func (n node) end() uint64   { return (n.index + 1) << n.level }

// tileNodes returns the nodes a block of leaves [begin, end) keeps, left
// to right: at each position the largest aligned subtree of at most
// 2^level leaves that ends within the block.
func tileNodes(begin, end uint64, level uint) []node {
	var out []node
	for p := begin; p < end; {
		h := uint(0)
		for h < level && p&(1<<(h+1)-1) == 0 && p+1<<(h+1) <= end {
			h++
		}
		out = append(out, node{h, p >> h})
		p += 1 << h
	}
	return out
}

// subtreeHash is the RFC 6962 hash of a perfect subtree over leaves (a
// power of two of them).
func subtreeHash(leaves [][32]byte) [32]byte {
	level := make([][]byte, len(leaves))
	for i := range leaves {
		level[i] = leaves[i][:]
	}
	for len(level) > 1 {
		next := level[:len(level)/2]
		for i := range next {
			next[i] = rfc6962.DefaultHasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = next
	}
	var h [32]byte
	copy(h[:], level[0])
	return h
}

// tileHashes returns the concatenated hashes of the nodes of a block of
// leaves from begin (tileNodes).
func tileHashes(begin uint64, leaves [][32]byte, level uint) []byte {
	nodes := tileNodes(begin, begin+uint64(len(leaves)), level)
	out := make([]byte, 0, 32*len(nodes))
	for _, n := range nodes {
		h := subtreeHash(leaves[n.begin()-begin : n.end()-begin])
		out = append(out, h[:]...)
	}
	return out
}

// appendSeqRuns encodes seqs (increasing) after first (seqs[0] >= first):
// each run of consecutive seqs as its gap from the seq after the last run
// (from first) and its length less one, both uvarints. A commit's seqs
// are one run unless a redelivered observation drew a seq it did not
// keep: two bytes a block.
func appendSeqRuns(b []byte, first int64, seqs []int64) ([]byte, error) {
	next := first
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		if seqs[i] < next {
			return nil, fmt.Errorf("evidence log: seq %d after %d: not increasing", seqs[i], next-1)
		}
		b = binary.AppendUvarint(b, uint64(seqs[i]-next))
		b = binary.AppendUvarint(b, uint64(j-i-1))
		next = seqs[j-1] + 1
		i = j
	}
	return b, nil
}

// seqRuns decodes appendSeqRuns' n seqs after first.
func seqRuns(b []byte, first int64, n int) ([]int64, error) {
	if n < 0 || n > maxBlock {
		return nil, fmt.Errorf("%w: %d leaves", ErrTileCodec, n)
	}
	out := make([]int64, 0, n)
	next := first
	for len(b) > 0 {
		gap, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: a seq run is cut short", ErrTileCodec)
		}
		b = b[k:]
		length, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, fmt.Errorf("%w: a seq run is cut short", ErrTileCodec)
		}
		b = b[k:]
		if gap > 1<<62 || length >= uint64(n-len(out)) || next > 1<<62-int64(gap) {
			return nil, fmt.Errorf("%w: a seq run goes past the block's %d leaves", ErrTileCodec, n)
		}
		s := next + int64(gap)
		for i := uint64(0); i <= length; i++ {
			out = append(out, s+int64(i))
		}
		next = s + int64(length) + 1
	}
	if len(out) != n {
		return nil, fmt.Errorf("%w: %d seqs for %d leaves", ErrTileCodec, len(out), n)
	}
	return out, nil
}

// tileBlock is one evidence_tiles row, decoded.
type tileBlock struct {
	begin uint64  // index of its first leaf (first - 1)
	seqs  []int64 // its leaves' observations, in leaf order
	nodes []node  // tileNodes
	hash  []byte  // 32 bytes a node
}

func (b *tileBlock) end() uint64 { return b.begin + uint64(len(b.seqs)) }

// decodeTileBlock checks and decodes a row's columns.
func decodeTileBlock(first, firstSeq int64, n int32, level int16, seqs, hashes []byte) (*tileBlock, error) {
	if first < 1 || level < 0 || level > 12 {
		return nil, fmt.Errorf("%w: block at %d, level %d", ErrTileCodec, first, level)
	}
	ss, err := seqRuns(seqs, firstSeq, int(n))
	if err != nil {
		return nil, fmt.Errorf("block at leaf %d: %w", first-1, err)
	}
	b := &tileBlock{begin: uint64(first - 1), seqs: ss, hash: hashes}
	b.nodes = tileNodes(b.begin, b.end(), uint(level))
	if len(hashes) != 32*len(b.nodes) {
		return nil, fmt.Errorf("%w: block at leaf %d holds %d bytes of nodes, want %d", ErrTileCodec, first-1, len(hashes), 32*len(b.nodes))
	}
	return b, nil
}

// tileBlocksRead bounds the blocks tileBlocks reads at once (4M leaves,
// 8 MB of nodes at level 4): a root over the whole log reads it in pages
// (a variable for the tests, which read in pages of 2 blocks).
var tileBlocksRead = 1024

// tileBlocks returns the evidence_tiles blocks that hold leaves of [from,
// to), in order: the first tileBlocksRead of them.
func (s *Store) tileBlocks(ctx context.Context, from, to uint64) ([]*tileBlock, error) {
	r, err := s.pool.Query(ctx, `SELECT first, first_seq, n, level, seqs, nodes FROM evidence_tiles
		WHERE first >= COALESCE((SELECT MAX(first) FROM evidence_tiles WHERE first <= $1), 0) AND first <= $2 ORDER BY first LIMIT $3`,
		int64(from+1), int64(to), tileBlocksRead)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []*tileBlock
	for r.Next() {
		b, _, err := scanTileBlock(r)
		if err != nil {
			return nil, err
		}
		if b.end() > from {
			out = append(out, b)
		}
	}
	return out, r.Err()
}

// tileLeaves calls fn with the leaves next.. (up to to) that
// evidence_tiles holds, from next on, in order; it returns the index after
// the last leaf handed out.
func (s *Store) tileLeaves(ctx context.Context, next, to uint64, fn func(i uint64, leaf []byte) error) (uint64, error) {
	var prev *tileBlock
	for next < to {
		blocks, err := s.tileBlocks(ctx, next, to)
		if err != nil || len(blocks) == 0 {
			return next, err
		}
		for _, b := range blocks {
			if b.begin > next {
				return next, fmt.Errorf("evidence log: leaf %d missing", next)
			}
			if err := follows(b, next, &prev); err != nil {
				return next, err
			}
			err := s.blockNodes(ctx, b, next, to, true, func(n node, h []byte) error {
				if n.level != 0 || n.index != next {
					return fmt.Errorf("evidence log: leaf %d missing", next)
				}
				next++
				return fn(n.index, h)
			})
			if err != nil {
				return next, err
			}
		}
	}
	return next, nil
}

// follows checks that b, the next block a read of the log from leaf next
// takes, begins right after the block before it (*prev), or, the first,
// holds leaf next; then makes it *prev. Blocks are appended one after
// another: one that begins inside another (an INSERT, which the
// append-only triggers let through) would put its leaves in place of the
// commits' in the next signed checkpoint, and one after a gap would leave
// leaves out.
func follows(b *tileBlock, next uint64, prev **tileBlock) error {
	switch {
	case *prev != nil && b.begin != (*prev).end():
		return fmt.Errorf("evidence log: the block at leaf %d does not follow the block of leaves %d to %d", b.begin, (*prev).begin, (*prev).end()-1)
	case *prev == nil && (b.begin > next || b.end() <= next):
		return fmt.Errorf("evidence log: the block at leaf %d does not hold leaf %d", b.begin, next)
	}
	*prev = b
	return nil
}

// blockNodes calls fn, left to right, with what covers the leaves of b in
// [from, to): each of b's nodes wholly inside it (unless leaves), and the
// leaves of the others, hashed again from their observations
// (leavesOfSeqs) and checked against the node's hash: a row changed or
// removed after it was logged is an error that names its node.
func (s *Store) blockNodes(ctx context.Context, b *tileBlock, from, to uint64, leaves bool, fn func(n node, hash []byte) error) error {
	expand := make([]bool, len(b.nodes))
	var seqs []int64
	for k, n := range b.nodes {
		switch {
		case n.end() <= from || n.begin() >= to:
		case n.level > 0 && (leaves || n.begin() < from || n.end() > to):
			expand[k] = true
			seqs = append(seqs, b.seqs[n.begin()-b.begin:n.end()-b.begin]...)
		}
	}
	var got map[int64][32]byte
	if len(seqs) > 0 {
		var err error
		if got, err = s.leavesOfSeqs(ctx, seqs); err != nil {
			return err
		}
	}
	for k, n := range b.nodes {
		if n.end() <= from || n.begin() >= to {
			continue
		}
		h := b.hash[32*k : 32*k+32]
		if !expand[k] {
			if err := fn(n, h); err != nil {
				return err
			}
			continue
		}
		ls, err := nodeLeaves(b, k, got)
		if err != nil {
			return err
		}
		for i := max(n.begin(), from); i < min(n.end(), to); i++ {
			if err := fn(node{0, i}, ls[i-n.begin()][:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// nodeLeaves returns the leaves of node k of b from got (leavesOfSeqs),
// checked against the node's hash.
func nodeLeaves(b *tileBlock, k int, got map[int64][32]byte) ([][32]byte, error) {
	n, h := b.nodes[k], b.hash[32*k:32*k+32]
	ls := make([][32]byte, 0, n.end()-n.begin())
	for i := n.begin(); i < n.end(); i++ {
		seq := b.seqs[i-b.begin]
		leaf, ok := got[seq]
		if !ok {
			return nil, fmt.Errorf("evidence log: leaf %d: the observation of seq %d is neither stored nor in a purge record with its leaf: it was removed after it was logged", i, seq)
		}
		ls = append(ls, leaf)
	}
	if sum := subtreeHash(ls); !bytes.Equal(sum[:], h) {
		return nil, fmt.Errorf("evidence log: the observations of leaves %d to %d (seqs %d to %d) hash to %x, the log keeps %x for them: a row was changed after it was logged",
			n.begin(), n.end()-1, b.seqs[n.begin()-b.begin], b.seqs[n.end()-1-b.begin], sum, h)
	}
	return ls, nil
}

// checkNode calls fn with the leaves of node k of b (nodeLeaves).
func checkNode(b *tileBlock, k int, got map[int64][32]byte, fn func(i uint64, leaf []byte) error) error {
	ls, err := nodeLeaves(b, k, got)
	if err != nil {
		return err
	}
	for j := range ls {
		if err := fn(b.nodes[k].begin()+uint64(j), ls[j][:]); err != nil {
			return err
		}
	}
	return nil
}

// leavesOfSeqs returns the leaf of each observation of seqs found: the
// one its purge record keeps (its row as it was before a purge), else
// its row's, hashed again.
func (s *Store) leavesOfSeqs(ctx context.Context, seqs []int64) (out map[int64][32]byte, err error) {
	// Its three reads (purge records, hot rows, blocks) in one snapshot:
	// a row compacted, a block thawed or a row purged between two reads
	// would be in none of them, its leaf missing.
	err = s.snapshotRead(ctx, func(q pgQuerier) error {
		out, err = s.leavesOfSeqsOn(ctx, q, seqs)
		return err
	})
	return out, err
}

// leavesOfSeqsOn is leavesOfSeqs read through q (a purge's transaction).
func (s *Store) leavesOfSeqsOn(ctx context.Context, q pgQuerier, seqs []int64) (map[int64][32]byte, error) {
	out := make(map[int64][32]byte, len(seqs))
	r, err := q.Query(ctx, `SELECT seq, leaf FROM purged_observations WHERE seq = ANY($1) AND leaf IS NOT NULL`, seqs)
	if err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	for r.Next() {
		var seq int64
		var leaf []byte
		if err := r.Scan(&seq, &leaf); err != nil {
			r.Close()
			return nil, fmt.Errorf("evidence log: %w", err)
		}
		var l [32]byte // a leaf of another length is kept as zeros: its node's check fails
		if len(leaf) == 32 {
			l = [32]byte(leaf)
		}
		out[seq] = l
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	rest := make([]int64, 0, len(seqs))
	for _, seq := range seqs {
		if _, ok := out[seq]; !ok {
			rest = append(rest, seq)
		}
	}
	if len(rest) == 0 {
		return out, nil
	}
	// The hot rows, then the blocks (migration 0030) of the seqs not hot:
	// a leaf hashed from a block that did not decode exactly would not
	// match the log's tiles, which check every leaf handed out.
	var got []seqObs
	hot := make(map[int64]bool, len(rest))
	err = s.rowsWhereOn(ctx, q, `o.seq = ANY($1)`, `o.seq`, []any{rest}, func(seq int64, o *observe.Observation) error {
		got, hot[seq] = append(got, seqObs{seq: seq, o: *o}), true
		return nil
	})
	if err != nil {
		return nil, err
	}
	cold := map[int64]bool{}
	var coldSeqs []int64
	for _, seq := range rest {
		if !hot[seq] {
			cold[seq], coldSeqs = true, append(coldSeqs, seq)
		}
	}
	if len(coldSeqs) > 0 {
		c, err := coldObservations(ctx, q, blocksOfSeqsSQL, []any{coldSeqs}, cold, nil)
		if err != nil {
			return nil, err
		}
		got = append(got, c...)
	}
	for k := range got {
		leaf, err := got[k].o.LeafHash()
		if err != nil {
			return nil, fmt.Errorf("evidence log: observation %s (seq %d): %w", got[k].o.ID, got[k].seq, err)
		}
		out[got[k].seq] = leaf
	}
	return out, nil
}

// tileIndex returns the leaf index of the observation of seq in
// evidence_tiles; false when no block holds it.
func (s *Store) tileIndex(ctx context.Context, seq int64) (uint64, bool, error) {
	var first, firstSeq int64
	var n int32
	var level int16
	var seqs []byte
	err := s.pool.QueryRow(ctx, `SELECT first, first_seq, n, level, seqs FROM evidence_tiles WHERE first_seq <= $1 ORDER BY first_seq DESC LIMIT 1`, seq).
		Scan(&first, &firstSeq, &n, &level, &seqs)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	ss, err := seqRuns(seqs, firstSeq, int(n))
	if err != nil {
		return 0, false, fmt.Errorf("block at leaf %d: %w", first-1, err)
	}
	k, ok := slices.BinarySearch(ss, seq)
	return uint64(first-1) + uint64(k), ok, nil
}

// LogNodes calls fn, left to right, with hashes that cover the leaves
// [from, to): the leaves evidence_log and evidence_blocks keep (level 0),
// then each node an evidence_tiles block keeps that lies wholly inside
// [from, to) (the root of the subtree of 2^level leaves from
// index<<level), and the leaves, checked (blockNodes), of those that do
// not. internal/evidence computes roots and proofs from them, hashing no
// observation again but those of the nodes a proof goes inside.
func (s *Store) LogNodes(ctx context.Context, from, to uint64, fn func(level uint, index uint64, hash []byte) error) error {
	tiles, err := s.tilesStart(ctx)
	if err != nil {
		return err
	}
	old := to
	if tiles >= 0 {
		old = min(to, uint64(tiles))
	}
	if from < old {
		if err := s.LogLeaves(ctx, from, old, func(i uint64, leaf []byte) error { return fn(0, i, leaf) }); err != nil {
			return err
		}
		from = old
	}
	if from >= to {
		return nil
	}
	next := from
	var prev *tileBlock
	for next < to {
		blocks, err := s.tileBlocks(ctx, next, to)
		if err != nil {
			return err
		}
		if len(blocks) == 0 {
			break
		}
		for _, b := range blocks {
			if err := follows(b, next, &prev); err != nil {
				return err
			}
			err := s.blockNodes(ctx, b, next, to, false, func(n node, h []byte) error {
				if n.begin() != next {
					return fmt.Errorf("evidence log: leaf %d missing", next)
				}
				next = n.end()
				return fn(n.level, n.index, h)
			})
			if err != nil {
				return err
			}
		}
	}
	if next < to {
		return fmt.Errorf("evidence log: leaf %d missing", next)
	}
	return nil
}

// tilesStart returns the index of evidence_tiles' first leaf, or -1 when
// it holds none yet. Once a block is there the answer never changes (the
// table is append-only): it is kept. The first block must begin where the
// older tables end (olderEnd): one that does not is an error.
func (s *Store) tilesStart(ctx context.Context) (int64, error) {
	if v := s.tilesFrom.Load(); v > 0 {
		return v - 1, nil
	}
	end, err := s.olderEnd(ctx)
	if err != nil {
		return 0, err
	}
	var first int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MIN(first), 0) FROM evidence_tiles`).Scan(&first); err != nil {
		return 0, err
	}
	if first > 0 && first-1 != end {
		return 0, fmt.Errorf("evidence log: evidence_tiles' first block begins at leaf %d, the older tables end at leaf %d (evidence_older_end)", first-1, end)
	}
	if first > 0 {
		s.tilesFrom.Store(first)
	}
	return first - 1, nil
}

// olderEnd returns the leaf index after the last leaf of the older tables,
// evidence_log and evidence_blocks (evidence_older_end, migration 0024):
// a row of theirs at or beyond it is refused (logRowBefore,
// blocksRowBefore), before the first tile as after. It never changes: it
// is kept once read.
func (s *Store) olderEnd(ctx context.Context) (int64, error) {
	if v := s.olderTo.Load(); v > 0 {
		return v - 1, nil
	}
	var end int64
	err := s.pool.QueryRow(ctx, `SELECT leaves FROM evidence_older_end`).Scan(&end)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errors.New("evidence log: evidence_older_end holds no row: where the older tables end is unknown")
	}
	if err != nil {
		return 0, fmt.Errorf("evidence log: %w", err)
	}
	s.olderTo.Store(end + 1)
	return end, nil
}

// LogLeavesAt calls fn with the leaf of each of indexes (below the log's
// size) and with the other leaves of the nodes that hold them, in
// increasing order, each once: the nodes of every index are read
// together (their blocks in one query, their observations in one), so
// that a bundle of observations spread over the log costs a few round
// trips rather than a few an observation. Leaves stored before the
// tiles are read as LogLeaves reads them.
func (s *Store) LogLeavesAt(ctx context.Context, indexes []uint64, fn func(i uint64, leaf []byte) error) error {
	tiles, err := s.tilesStart(ctx)
	if err != nil {
		return err
	}
	idx := slices.Clone(indexes)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	var tiled []int64
	for _, i := range idx {
		if tiles < 0 || i < uint64(tiles) {
			if err := s.LogLeaves(ctx, i, i+1, fn); err != nil {
				return err
			}
			continue
		}
		tiled = append(tiled, int64(i)+1)
	}
	if len(tiled) == 0 {
		return nil
	}
	r, err := s.pool.Query(ctx, `SELECT DISTINCT t.first, t.first_seq, t.n, t.level, t.seqs, t.nodes FROM unnest($1::bigint[]) AS i(first)
		CROSS JOIN LATERAL (SELECT * FROM evidence_tiles e WHERE e.first <= i.first ORDER BY e.first DESC LIMIT 1) t ORDER BY t.first`, tiled)
	if err != nil {
		return err
	}
	var blocks []*tileBlock
	for r.Next() {
		b, _, err := scanTileBlock(r)
		if err != nil {
			r.Close()
			return err
		}
		blocks = append(blocks, b)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return err
	}
	// The node of each index, and the seqs of them all.
	type held struct {
		b *tileBlock
		k int // the node's place in b.nodes
	}
	var want []held
	for _, first := range tiled {
		i := uint64(first - 1)
		at, _ := slices.BinarySearchFunc(blocks, i, func(b *tileBlock, i uint64) int {
			switch {
			case b.end() <= i:
				return -1
			case b.begin > i:
				return 1
			}
			return 0
		})
		if at == len(blocks) || blocks[at].begin > i || blocks[at].end() <= i {
			return fmt.Errorf("evidence log: leaf %d missing", i)
		}
		b := blocks[at]
		k, _ := slices.BinarySearchFunc(b.nodes, i, func(n node, i uint64) int {
			switch {
			case n.end() <= i:
				return -1
			case n.begin() > i:
				return 1
			}
			return 0
		})
		if len(want) > 0 && want[len(want)-1].b == b && want[len(want)-1].k == k {
			continue
		}
		want = append(want, held{b, k})
	}
	// The rows of leavesAtNodes nodes at a time: a bundle of 100,000
	// observations does not hold their 1.6 million neighbours at once.
	for len(want) > 0 {
		part := want[:min(len(want), leavesAtNodes)]
		want = want[len(part):]
		var seqs []int64
		for _, w := range part {
			n := w.b.nodes[w.k]
			seqs = append(seqs, w.b.seqs[n.begin()-w.b.begin:n.end()-w.b.begin]...)
		}
		got, err := s.leavesOfSeqs(ctx, seqs)
		if err != nil {
			return err
		}
		for _, w := range part {
			if err := checkNode(w.b, w.k, got, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// leavesAtNodes bounds the nodes whose rows LogLeavesAt reads in one
// query (4,096 rows at level 4); a variable for the tests.
var leavesAtNodes = 256

// checkedLeaves returns the leaf of each observation of seqs that an
// evidence_tiles block holds, read with the other leaves of its node
// (leavesOfSeqs) and checked against the node's hash (nodeLeaves); seqs
// no block holds are left out. It reads through q: a purge's
// transaction, which must not wait for a second connection while it holds
// legal_holds' lock.
func (s *Store) checkedLeaves(ctx context.Context, q pgQuerier, seqs []int64) (map[int64][32]byte, error) {
	out := map[int64][32]byte{}
	if len(seqs) == 0 {
		return out, nil
	}
	r, err := q.Query(ctx, `SELECT DISTINCT t.first, t.first_seq, t.n, t.level, t.seqs, t.nodes FROM unnest($1::bigint[]) AS u(seq)
		CROSS JOIN LATERAL (SELECT * FROM evidence_tiles e WHERE e.first_seq <= u.seq ORDER BY e.first_seq DESC LIMIT 1) t ORDER BY t.first`, seqs)
	if err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	var blocks []*tileBlock
	var firstSeqs []int64 // of blocks, which the blocks of seqs follow in order
	for r.Next() {
		b, firstSeq, err := scanTileBlock(r)
		if err != nil {
			r.Close()
			return nil, err
		}
		if len(firstSeqs) > 0 && firstSeq <= firstSeqs[len(firstSeqs)-1] {
			r.Close()
			return nil, fmt.Errorf("evidence log: the block at leaf %d starts at seq %d, not after the block before it", b.begin, firstSeq)
		}
		blocks, firstSeqs = append(blocks, b), append(firstSeqs, firstSeq)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	type held struct {
		b *tileBlock
		k int
	}
	seen := map[held]bool{}
	var want []held
	for _, seq := range seqs {
		// The block of the largest first_seq at or below seq (tileIndex).
		at, found := slices.BinarySearch(firstSeqs, seq)
		if !found {
			at--
		}
		if at < 0 {
			continue
		}
		b := blocks[at]
		j, ok := slices.BinarySearch(b.seqs, seq)
		if !ok {
			continue
		}
		i := b.begin + uint64(j)
		k := slices.IndexFunc(b.nodes, func(n node) bool { return n.begin() <= i && i < n.end() })
		if h := (held{b, k}); k >= 0 && !seen[h] {
			seen[h] = true
			want = append(want, h)
		}
	}
	for len(want) > 0 {
		part := want[:min(len(want), leavesAtNodes)]
		want = want[len(part):]
		var all []int64
		for _, w := range part {
			n := w.b.nodes[w.k]
			all = append(all, w.b.seqs[n.begin()-w.b.begin:n.end()-w.b.begin]...)
		}
		got, err := s.leavesOfSeqsOn(ctx, q, all)
		if err != nil {
			return nil, err
		}
		for _, w := range part {
			ls, err := nodeLeaves(w.b, w.k, got)
			if err != nil {
				return nil, err
			}
			n := w.b.nodes[w.k]
			for j := range ls {
				out[w.b.seqs[n.begin()-w.b.begin+uint64(j)]] = ls[j]
			}
		}
	}
	return out, nil
}

// scanTileBlock reads the row r is on, of evidence_tiles' first,
// first_seq, n, level, seqs and nodes in that order, as a block; it
// returns its first_seq too.
func scanTileBlock(r pgx.Rows) (*tileBlock, int64, error) {
	var first, firstSeq int64
	var n int32
	var level int16
	var seqs, hashes []byte
	if err := r.Scan(&first, &firstSeq, &n, &level, &seqs, &hashes); err != nil {
		return nil, 0, fmt.Errorf("evidence log: %w", err)
	}
	b, err := decodeTileBlock(first, firstSeq, n, level, seqs, hashes)
	return b, firstSeq, err
}
