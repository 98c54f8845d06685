// Package routing is a Kademlia routing table (BEP 5): 160 buckets of at
// most K good nodes by XOR distance from one node id, with replacement of
// nodes that stop answering.
//
// It does no I/O and keeps no peers: only nodes (id, address) that the
// sensor may return in find_node and get_peers answers.
package routing

import (
	"bytes"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ID is a 160-bit DHT node id or info-hash.
type ID [20]byte

// Distance is the XOR of two ids.
func Distance(a, b ID) ID {
	var d ID
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}

// CommonPrefix is the number of leading bits a and b share (160 if equal).
func CommonPrefix(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// Closer reports whether a is closer to target than b.
func Closer(target, a, b ID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// Node is a DHT node the table knows.
type Node struct {
	ID       ID
	Addr     netip.AddrPort
	LastSeen time.Time // last reply or query from it
	Fails    int       // queries without a reply since LastSeen
}

// Good reports whether the node answered recently (BEP 5: 15 minutes) and
// has not failed repeatedly since.
func (n *Node) Good(now time.Time) bool {
	return n.Fails < 2 && now.Sub(n.LastSeen) < 15*time.Minute
}

// Table is a routing table around one node id. It is safe for concurrent use.
type Table struct {
	self ID
	k    int
	mu   sync.Mutex
	b    [161][]Node // bucket i holds nodes sharing exactly i prefix bits with self
}

// New returns an empty table for self with buckets of k nodes (BEP 5: 8).
func New(self ID, k int) *Table {
	if k <= 0 {
		k = 8
	}
	return &Table{self: self, k: k}
}

// Self is the table's own id.
func (t *Table) Self() ID { return t.self }

// Seen records that n answered or queried us at now. A new node goes into
// its bucket if there is room or a bad node to replace; otherwise it is
// ignored (Kademlia prefers old, proven nodes). It returns whether n is now
// in the table.
func (t *Table) Seen(id ID, addr netip.AddrPort, now time.Time) bool {
	if id == t.self || !addr.IsValid() || addr.Port() == 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	i := CommonPrefix(t.self, id)
	bucket := t.b[i]
	for j := range bucket {
		if bucket[j].ID == id {
			bucket[j].Addr, bucket[j].LastSeen, bucket[j].Fails = addr, now, 0
			return true
		}
	}
	if len(bucket) < t.k {
		t.b[i] = append(bucket, Node{ID: id, Addr: addr, LastSeen: now})
		return true
	}
	for j := range bucket {
		if !bucket[j].Good(now) {
			bucket[j] = Node{ID: id, Addr: addr, LastSeen: now}
			return true
		}
	}
	return false
}

// Failed records a query to id that got no reply.
func (t *Table) Failed(id ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	bucket := t.b[CommonPrefix(t.self, id)]
	for j := range bucket {
		if bucket[j].ID == id {
			bucket[j].Fails++
			return
		}
	}
}

// Closest returns up to n good nodes closest to target, closest first.
func (t *Table) Closest(target ID, n int, now time.Time) []Node {
	t.mu.Lock()
	out := make([]Node, 0, 4*n)
	for i := range t.b {
		for _, nd := range t.b[i] {
			if nd.Good(now) {
				out = append(out, nd)
			}
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Node) int {
		da, db := Distance(a.ID, target), Distance(b.ID, target)
		return bytes.Compare(da[:], db[:])
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Len is the number of nodes in the table.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for i := range t.b {
		n += len(t.b[i])
	}
	return n
}

// Stale returns nodes that were not heard from for d, for pinging.
func (t *Table) Stale(d time.Duration, now time.Time) []Node {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Node
	for i := range t.b {
		for _, nd := range t.b[i] {
			if now.Sub(nd.LastSeen) > d {
				out = append(out, nd)
			}
		}
	}
	return out
}
