package kad

import (
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
)

// entry is a contact in the routing table.
type entry struct {
	c        kadwire.Contact
	seen     time.Time // last answer
	failures int
}

// Table is a Kademlia routing table: for each distance bucket (the number
// of leading bits a contact's id shares with the node's), up to K
// contacts, the longest-known first. It keeps nodes only, never peers or
// sources.
type Table struct {
	self    kadwire.ID
	k       int
	mu      sync.Mutex
	buckets [129][]entry
	n       int
}

// NewTable returns an empty table for a node of id self.
func NewTable(self kadwire.ID, k int) *Table { return &Table{self: self, k: k} }

// Len is the number of contacts.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// Add adds or refreshes a contact; answered says it just answered a query
// of ours. A full bucket drops the contact with the most failures to make
// room, or refuses the new one.
func (t *Table) Add(c kadwire.Contact, answered bool, now time.Time) {
	if c.ID == t.self {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := &t.buckets[t.self.Xor(c.ID).LeadingZeros()]
	for i := range *b {
		if (*b)[i].c.ID == c.ID {
			if answered {
				(*b)[i].c, (*b)[i].seen, (*b)[i].failures = c, now, 0
			}
			return
		}
	}
	e := entry{c: c}
	if answered {
		e.seen = now
	}
	if len(*b) < t.k {
		*b = append(*b, e)
		t.n++
		return
	}
	worst := -1
	for i := range *b {
		if (*b)[i].failures > 0 && (worst < 0 || (*b)[i].failures > (*b)[worst].failures) {
			worst = i
		}
	}
	if worst >= 0 {
		(*b)[worst] = e
	}
}

// Failed counts a query the contact did not answer; after three in a row
// it is removed.
func (t *Table) Failed(id kadwire.ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := &t.buckets[t.self.Xor(id).LeadingZeros()]
	for i := range *b {
		if (*b)[i].c.ID == id {
			if (*b)[i].failures++; (*b)[i].failures >= 3 {
				*b = slices.Delete(*b, i, i+1)
				t.n--
			}
			return
		}
	}
}

// Closest returns up to k contacts closest to target.
func (t *Table) Closest(target kadwire.ID, k int) []kadwire.Contact {
	t.mu.Lock()
	all := make([]kadwire.Contact, 0, t.n)
	for _, b := range t.buckets {
		for _, e := range b {
			all = append(all, e.c)
		}
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b kadwire.Contact) int { return a.ID.Xor(target).Cmp(b.ID.Xor(target)) })
	return all[:min(k, len(all))]
}
