package match

import "github.com/vigil-oss/vigil/internal/hashkind"

// Batched lookups.
//
// One lookup waits on memory twice: for its bucket's head (mostly in the
// last-level cache) and, when the filter lets it through, for its line and
// records (main memory). Lookups one at a time overlap those waits only as
// far as the processor's reorder window reaches. A batch instead runs each
// stage for a group of keys before the next stage: first it starts the
// fetch of every key's head, then it checks the filters (the heads have
// arrived meanwhile) and starts the fetch of the lines and records of the
// few keys that pass, and only then probes those lines. The waits of a
// group overlap, and the ~90% of keys that are absent never leave the
// second stage.

// batchLen is the number of keys whose fetches are in flight together:
// enough to cover a trip to main memory with the work of the first two
// stages, few enough for the processor's outstanding-miss buffers.
const batchLen = 32

// batchMinBytes: a Matcher whose indexes hold fewer bytes answers a batch
// with a loop of Contains. Such an index sits in the processor's caches,
// where the stages' prefetches and extra calls are pure cost: at 20,000
// entries (0.5 MB) a batch took 10-25% longer than the loop; at a million
// (26 MB) it took half as long. The threshold between was not tuned. A
// variable so that tests can send small Matchers down both paths.
var batchMinBytes = 4 << 20

// ContainsBatch sets alert[i] to Contains(hs[i]) for every i and returns
// alert[:len(hs)]. alert is reused when it has room for len(hs) results and
// allocated otherwise (pass nil to let it allocate; pass the previous
// result to allocate nothing). The results are exactly those of Contains:
// only the order of memory accesses differs, and that is what makes a
// batch faster than a loop of Contains calls.
func (m *Matcher) ContainsBatch(hs []hashkind.Hash, alert []bool) []bool {
	if cap(alert) < len(hs) {
		alert = make([]bool, len(hs))
	}
	alert = alert[:len(hs)]
	clear(alert)
	if m == nil {
		return alert
	}
	if m.Bytes() < batchMinBytes {
		for i := range hs {
			alert[i] = m.Contains(hs[i])
		}
		return alert
	}
	// The groups are pipelined: the candidates of one group are probed
	// after the next group's first two stages, by which time their lines
	// and records have arrived.
	var c [2]candidates
	cur := 0
	for i := 0; i < len(hs); i += batchLen {
		m.filterGroup(hs, i, min(i+batchLen, len(hs)), &c[cur])
		m.confirm(hs, alert, &c[cur^1])
		cur ^= 1
	}
	m.confirm(hs, alert, &c[cur^1])
	return alert
}

// candidates are the keys of a group that passed their filters: indexes
// into the batch, and their indexes.
type candidates struct {
	n  int
	i  [batchLen]int
	xs [batchLen]*Index
}

// filterGroup runs the first two stages on hs[from:to] (at most batchLen
// hashes) and sets c to the keys that passed.
func (m *Matcher) filterGroup(hs []hashkind.Hash, from, to int, c *candidates) {
	var (
		xs [batchLen]*Index
		bk [batchLen]uint64
	)
	g := hs[from:to]
	// Stage 1: start fetching every key's head.
	for i := range g {
		h := &g[i]
		var x *Index
		if k := h.Kind(); k < maxKinds {
			x = m.idx[k]
		}
		xs[i] = x
		if x != nil {
			bk[i] = prefetchHead(x, &h.Digest()[0])
		}
	}
	// Stage 2: the filters; start fetching lines and records of the keys
	// that pass.
	n := 0
	for i := range g {
		if x := xs[i]; x != nil && prefetchLine(x, bk[i], &g[i].Digest()[0]) {
			c.i[n], c.xs[n] = from+i, x
			n++
		}
	}
	c.n = n
}

// confirm runs the last stage on c: probe the lines and confirm candidates
// against their records.
func (m *Matcher) confirm(hs []hashkind.Hash, alert []bool, c *candidates) {
	for k := range c.n {
		i, x := c.i[k], c.xs[k]
		d := hs[i].Digest()
		if mask, line := find(x, &d[0]); mask != 0 {
			alert[i] = m.alerts(x, line, d, mask)
		}
	}
	c.n = 0
}
