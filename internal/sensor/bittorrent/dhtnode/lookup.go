package dhtnode

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// maxLookupQueries bounds the datagrams one lookup sends, whatever the
// network answers: a hostile node cannot keep a lookup going forever.
const maxLookupQueries = 128

// lookupRetries is how often a lookup asks a node again whose query timed
// out before taking it for failed. With 10 % of datagrams lost each way
// (19 % of round trips), one retry leaves 3.6 % of live nodes unheard
// instead of 19 %; a lookup of a million simulated nodes missed 2 of 300
// pairs without it where anacrolix/dht, which resends, missed none.
const lookupRetries = 1

// maxBudgetDeferrals is how often a lookup puts off a query that the
// per-address budget refused before it gives the candidate up (without
// counting it against the node: it was never asked). Lookups at once
// share an address's budget: with 8, some lookups of the sparse lab gave
// up their turn at one of the 3 nodes every lookup goes through and
// missed its peers. 64 puts-off are about 32 s at the default budget, a
// bound on what a reply naming many ports of one address can cost.
const maxBudgetDeferrals = 64

// candidate states in a lookup.
const (
	candNew      = iota // not asked yet
	candInFlight        // asked, no answer yet
	candAnswered        // answered
	candFailed          // no answer, an error, or given up
)

// candidate is a node a lookup may query. Bootstrap nodes have no known id.
type candidate struct {
	id    routing.ID
	addr  netip.AddrPort
	known bool // id known (not a bootstrap address)
	state int
	// notBefore is set when the per-address budget refused a query to
	// this node: the lookup asks again then, and does not end meanwhile.
	notBefore time.Time
	deferrals int
	tries     int // queries that timed out and were sent again
}

// LookupResult is what an iterative lookup found.
type LookupResult struct {
	// Peers are the get_peers values, each with the node that first
	// named it.
	Peers map[netip.AddrPort]PeerSource
	// Closest are the nodes closest to the target that answered, nearest
	// first, up to K: where BEP 5 stores the target's announces.
	Closest []netip.AddrPort
	// Queries is the datagrams sent.
	Queries int
}

// PeerSource is the node that first named a peer: the address its answer
// came from (Query only accepts an answer from the address it queried),
// and the exchange, our get_peers and its answer, for the transcript.
type PeerSource struct {
	Node  netip.AddrPort
	Reply Reply
}

// PeersNamed returns the peers an answer names (unmapped, port 0 left
// out), each filed under the node that sent the answer.
func PeersNamed(r *krpc.Msg, raw Reply) map[netip.AddrPort]PeerSource {
	out := make(map[netip.AddrPort]PeerSource, len(r.R.Values))
	for _, p := range r.R.Values {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if _, ok := out[p]; !ok && p.Port() != 0 {
			out[p] = PeerSource{Node: raw.From, Reply: raw}
		}
	}
	return out
}

// lookup is one Kademlia lookup for target from identity n: get_peers if
// getPeers, else find_node, in the DHT of n's address family (BEP 32).
// After anacrolix/dht's traversal.Operation, it is the iterative search
// alone: its candidates, which to ask next, and when it is over; the node
// only sends the queries.
//
// It starts from the K closest nodes every identity of that family knows
// (the bootstrap nodes of the family, and nodes of it heard by the other
// family's identities, too when they know fewer than K) and keeps Alpha
// queries in flight to the closest candidates not yet asked. It ends, as
// Kademlia says, only when the K closest candidates it has seen have all
// answered or failed: a reply naming closer nodes keeps it going, and one
// that names none does not stop it while closer nodes remain unasked. A
// query that times out is sent once more before the node counts as
// failed; one the per-address budget refuses is put off, not counted as a
// failure. At most maxLookupQueries datagrams are sent.
type lookup struct {
	d        *DHT
	n        *Node
	target   routing.ID
	getPeers bool
	own      map[routing.ID]bool // the sensor's own identities

	mu                sync.Mutex
	cands             map[netip.AddrPort]*candidate
	peers             map[netip.AddrPort]PeerSource
	inflight, queried int
	// wake has room for one pending signal: a completion that finds it
	// full knows the loop will look again anyway.
	wake chan struct{}
}

// iterate runs one lookup (type lookup) and returns what it found.
func (d *DHT) iterate(ctx context.Context, n *Node, target routing.ID, getPeers bool) LookupResult {
	l := &lookup{d: d, n: n, target: target, getPeers: getPeers, own: make(map[routing.ID]bool, len(d.nodes)),
		cands: map[netip.AddrPort]*candidate{}, peers: map[netip.AddrPort]PeerSource{}, wake: make(chan struct{}, 1)}
	for _, m := range d.nodes {
		l.own[routing.ID(m.id)] = true
	}
	l.seed(d.cfg.Clock())
	l.run(ctx)
	return l.result()
}

// seed adds the first candidates: the K closest of the family's tables,
// and with fewer than K the family's bootstrap nodes and heard nodes.
func (l *lookup) seed(now time.Time) {
	for _, m := range l.d.nodes {
		if m.v6 != l.n.v6 {
			continue
		}
		for _, nd := range m.table.Closest(l.target, K, now) {
			l.add(nd.ID, nd.Addr, true)
		}
	}
	if len(l.cands) < K {
		for _, b := range l.d.cfg.Bootstrap {
			if l.n.sameFamily(b.Addr()) {
				l.add(routing.ID{}, b, false)
			}
		}
		for _, nd := range l.d.heard.list(l.n.v6) {
			l.add(nd.ID, nd.Addr, true)
		}
	}
}

// add makes a node a candidate (with its id if known). Called with mu
// held once the lookup runs.
func (l *lookup) add(id routing.ID, addr netip.AddrPort, known bool) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if !addr.IsValid() || addr.Port() == 0 || addr == l.n.addr {
		return
	}
	if known && l.own[id] {
		return // one of our own identities
	}
	if !l.n.sameFamily(addr.Addr()) {
		// A node of the other family (BEP 32 want): its own family's
		// lookups may start from it, if the sensor runs that family. This
		// lookup cannot ask it from n's socket.
		if known && l.d.Runs(addr.Addr()) {
			l.d.heard.add(id, addr)
		}
		return
	}
	if c, ok := l.cands[addr]; ok {
		if known && !c.known {
			c.id, c.known = id, true
		}
		return
	}
	l.cands[addr] = &candidate{id: id, addr: addr, known: known}
}

// next picks up to want candidates to ask now among the K closest that
// have not failed (bootstrap nodes, whose ids are unknown, come first and
// do not count toward K). wait is how long until a put-off candidate may
// be asked; done reports that the K closest have all answered or failed.
func (l *lookup) next(want int, now time.Time) (pick []*candidate, wait time.Duration, done bool) {
	list := make([]*candidate, 0, len(l.cands))
	for _, c := range l.cands {
		if c.state != candFailed {
			list = append(list, c)
		}
	}
	slices.SortFunc(list, func(a, b *candidate) int {
		if a.known != b.known {
			if !a.known {
				return -1
			}
			return 1
		}
		da, db := routing.Distance(a.id, l.target), routing.Distance(b.id, l.target)
		return bytes.Compare(da[:], db[:])
	})
	limit, pending := K, 0
	for i, c := range list {
		if c.known && i >= limit {
			break
		}
		if !c.known {
			limit++
		}
		switch c.state {
		case candNew:
			if d := c.notBefore.Sub(now); d > 0 {
				if wait == 0 || d < wait {
					wait = d
				}
				pending++
			} else if len(pick) < want {
				pick = append(pick, c)
			} else {
				pending++
			}
		case candInFlight:
			pending++
		}
	}
	return pick, wait, len(pick) == 0 && pending == 0
}

// run asks candidates, Alpha at a time, until the lookup is over, the
// query bound is reached, or ctx ends; it returns when every query it
// started has.
func (l *lookup) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		l.mu.Lock()
		if l.queried >= maxLookupQueries {
			l.mu.Unlock()
			return
		}
		want := min(l.d.cfg.Alpha-l.inflight, maxLookupQueries-l.queried-l.inflight)
		pick, wait, done := l.next(max(want, 0), l.d.cfg.Clock())
		for _, c := range pick {
			c.state = candInFlight
		}
		l.inflight += len(pick)
		l.mu.Unlock()
		if done {
			return
		}
		if len(pick) == 0 {
			l.sleep(ctx, wait)
			continue
		}
		for _, c := range pick {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.ask(ctx, c)
			}()
		}
	}
}

// sleep waits for an answer, for a put-off candidate's turn (wait, if
// any), or for ctx to end.
func (l *lookup) sleep(ctx context.Context, wait time.Duration) {
	var timer *time.Timer
	var fire <-chan time.Time
	if wait > 0 {
		timer = time.NewTimer(max(wait, 10*time.Millisecond))
		fire = timer.C
	}
	select {
	case <-l.wake:
	case <-fire:
	case <-ctx.Done():
	}
	if timer != nil {
		timer.Stop()
	}
}

// ask queries one candidate and takes in its answer.
func (l *lookup) ask(ctx context.Context, c *candidate) {
	q := &krpc.Msg{}
	if l.getPeers {
		q.Method = krpc.MethodGetPeers
		q.A.InfoHash = krpc.ID(l.target)
	} else {
		q.Method = krpc.MethodFindNode
		q.A.Target = krpc.ID(l.target)
	}
	r, raw, err := l.n.Query(ctx, c.addr, q)
	l.mu.Lock()
	defer func() {
		l.inflight--
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}()
	if errors.Is(err, errAddrBudget) && ctx.Err() == nil {
		l.putOff(c)
		return
	}
	l.queried++
	if l.getPeers {
		l.d.lookupQueries.Add(1)
	}
	if errors.Is(err, ErrTimeout) && c.tries < lookupRetries && ctx.Err() == nil {
		// One lost datagram (either way) is not a dead node: ask again, as
		// the node may hold the target's peers.
		c.tries++
		c.state = candNew
		return
	}
	if err != nil || r == nil || r.Kind != krpc.KindResponse {
		c.state = candFailed
		if c.known {
			l.n.table.Failed(c.id)
		}
		return
	}
	l.answered(c, r, raw)
}

// putOff asks a candidate again when the per-address budget allows:
// nothing was sent. Called with mu held.
func (l *lookup) putOff(c *candidate) {
	c.deferrals++
	if c.deferrals > maxBudgetDeferrals {
		c.state = candFailed
		return
	}
	c.state = candNew
	// Jittered, so that lookups waiting on one address do not all come
	// back at the same instant.
	w := l.d.addrBudgetWait()
	c.notBefore = l.d.cfg.Clock().Add(w/2 + rand.N(w))
}

// answered takes in a candidate's answer: the nodes it names become
// candidates, the peers it names are filed under it. Called with mu held.
func (l *lookup) answered(c *candidate, r *krpc.Msg, raw Reply) {
	c.state = candAnswered
	if !c.known {
		c.id, c.known = routing.ID(r.R.ID), true
	}
	for _, ni := range r.R.Nodes {
		l.add(routing.ID(ni.ID), ni.Addr, true)
	}
	for _, ni := range r.R.Nodes6 {
		l.add(routing.ID(ni.ID), ni.Addr, true)
	}
	for _, p := range r.R.Values {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if _, ok := l.peers[p]; !ok && p.Port() != 0 {
			l.peers[p] = PeerSource{Node: raw.From, Reply: raw}
		}
	}
}

// result is what the lookup found: its peers, the K closest nodes that
// answered (nearest first), and the datagrams sent.
func (l *lookup) result() LookupResult {
	res := LookupResult{Peers: l.peers, Queries: l.queried}
	var answered []*candidate
	for _, c := range l.cands {
		if c.state == candAnswered && c.known {
			answered = append(answered, c)
		}
	}
	slices.SortFunc(answered, func(a, b *candidate) int {
		da, db := routing.Distance(a.id, l.target), routing.Distance(b.id, l.target)
		return bytes.Compare(da[:], db[:])
	})
	for _, c := range answered[:min(len(answered), K)] {
		res.Closest = append(res.Closest, c.addr)
	}
	return res
}

// addrBudgetWait is how long a lookup puts off a query that the
// per-address budget refused: the time one token takes to come back.
func (d *DHT) addrBudgetWait() time.Duration {
	if r := d.cfg.PerAddrPerSecond; r > 0 {
		return time.Duration(float64(time.Second) / r)
	}
	return 100 * time.Millisecond
}

// findNode looks up target from identity n to fill its routing table.
func (d *DHT) findNode(ctx context.Context, n *Node, target routing.ID) {
	d.iterate(ctx, n, target, false)
}

// LookupPeers runs a get_peers lookup of key in the DHT of every family
// the sensor runs, at once, each from that family's identity closest to
// key, and merges what they found: the peers of both (a peer named in
// both is filed under the first family's node), and each family's
// closest responders, the first family's first.
func (d *DHT) LookupPeers(ctx context.Context, key routing.ID) LookupResult {
	fams := d.families()
	res := make([]LookupResult, len(fams))
	var wg sync.WaitGroup
	for i, v6 := range fams {
		n := d.closestIdentityOf(key, v6)
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = d.iterate(ctx, n, key, true)
		}()
	}
	wg.Wait()
	if len(res) == 1 {
		return res[0]
	}
	out := LookupResult{Peers: map[netip.AddrPort]PeerSource{}}
	for _, r := range res {
		for p, src := range r.Peers {
			if _, ok := out.Peers[p]; !ok {
				out.Peers[p] = src
			}
		}
		out.Closest = append(out.Closest, r.Closest...)
		out.Queries += r.Queries
	}
	return out
}
