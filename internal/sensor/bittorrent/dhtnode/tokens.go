package dhtnode

import (
	"net/netip"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

// Kept token answers. A dht_announce is first-hand because its write token
// proves that its source address received the sensor's answer to a
// get_peers. So that the transcript proves it too, each node keeps, for
// watched info-hashes only and for as long as a token stays valid
// (tokenLifetime), the get_peers it answered and the answer that carried
// the token, and puts both before the announce in the announce's
// transcript. Nothing is kept for an info-hash that is not watched.

const (
	// maxTokenReplies bounds the answers one node keeps (about 0.5 KB
	// each: 2 MB a node). When it is full the oldest goes first (counted):
	// a flood of get_peers from forged addresses can push real answers
	// out, but cannot grow memory.
	maxTokenReplies = 4096
	// maxTokenRepliesPerKey bounds the answers kept for one address and
	// info-hash (several ports behind one address, or a token of each
	// secret); the oldest goes first.
	maxTokenRepliesPerKey = 4
)

// tokenReply is one get_peers for a watched info-hash and the sensor's
// answer, as they went over the wire.
type tokenReply struct {
	to       netip.AddrPort // the querier, where the answer went
	infohash krpc.ID
	token    string
	query    []byte // the get_peers datagram received
	queryAt  time.Time
	reply    []byte // the answer sent, with the token
	replyAt  time.Time
	dead     bool // replaced or evicted; its place in the queue is stale
}

type tokenKey struct {
	ip       netip.Addr
	infohash krpc.ID
}

// tokenReplies is a node's kept answers: by address and info-hash, and in
// the order they were sent, for expiry.
type tokenReplies struct {
	mu      sync.Mutex
	byKey   map[tokenKey][]*tokenReply
	queue   []*tokenReply // oldest first; dead entries are skipped
	head    int
	live    int
	evicted uint64 // dropped before they expired, for want of room
}

// keep stores r, first forgetting answers older than tokenLifetime.
func (t *tokenReplies) keep(r tokenReply) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byKey == nil {
		t.byKey = map[tokenKey][]*tokenReply{}
	}
	t.expire(r.replyAt)
	k := tokenKey{r.to.Addr(), r.infohash}
	list := t.byKey[k]
	for i, old := range list {
		if old.to == r.to && old.token == r.token {
			// The same token to the same address again: keep the newest.
			t.remove(k, i)
			list = t.byKey[k]
			break
		}
	}
	if len(list) >= maxTokenRepliesPerKey {
		t.remove(k, 0)
		t.evicted++
	}
	for t.live >= maxTokenReplies {
		t.dropOldest()
		t.evicted++
	}
	p := &r
	t.byKey[k] = append(t.byKey[k], p)
	t.queue = append(t.queue, p)
	t.live++
	t.compact()
}

// find returns the kept answer that carried token to from (address and
// port: the token is bound to both) for infohash and has not expired at
// now.
func (t *tokenReplies) find(from netip.AddrPort, infohash krpc.ID, token string, now time.Time) (tokenReply, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	var best *tokenReply
	for _, r := range t.byKey[tokenKey{from.Addr(), infohash}] {
		if r.token == token && r.to == from {
			best = r // the newest of the same token to the same port
		}
	}
	if best == nil {
		return tokenReply{}, false
	}
	return *best, true
}

// expire drops answers whose token can no longer be valid at now.
func (t *tokenReplies) expire(now time.Time) {
	for t.head < len(t.queue) {
		r := t.queue[t.head]
		switch {
		case r.dead: // already out of byKey: only its place goes
			t.queue[t.head] = nil
			t.head++
		case now.Sub(r.replyAt) >= tokenLifetime:
			t.dropOldest()
		default:
			return
		}
	}
}

// dropOldest removes the oldest live answer (and the dead places before
// it in the queue).
func (t *tokenReplies) dropOldest() {
	for t.head < len(t.queue) {
		r := t.queue[t.head]
		t.queue[t.head] = nil
		t.head++
		if r.dead {
			continue
		}
		k := tokenKey{r.to.Addr(), r.infohash}
		for i, x := range t.byKey[k] {
			if x == r {
				t.remove(k, i)
				break
			}
		}
		return
	}
}

// remove takes the i-th answer of key k out and marks it dead in the queue.
func (t *tokenReplies) remove(k tokenKey, i int) {
	list := t.byKey[k]
	list[i].dead = true
	t.live--
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(t.byKey, k)
		return
	}
	t.byKey[k] = list
}

// compact keeps the queue's memory in proportion to the live entries.
func (t *tokenReplies) compact() {
	if t.head > len(t.queue)/2 || len(t.queue)-t.head > 2*maxTokenReplies {
		q := make([]*tokenReply, 0, t.live+16)
		for _, r := range t.queue[t.head:] {
			if !r.dead {
				q = append(q, r)
			}
		}
		t.queue, t.head = q, 0
	}
}

// stats returns the live entries and the evictions so far.
func (t *tokenReplies) stats() (live int, evicted uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.live, t.evicted
}
