package bittorrent

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// K is the Kademlia bucket size and the number of closest nodes a lookup
// converges on (BEP 5).
const K = 8

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

func sortByDistance(ns []routing.Node, target routing.ID) {
	slices.SortFunc(ns, func(a, b routing.Node) int {
		da, db := routing.Distance(a.ID, target), routing.Distance(b.ID, target)
		return bytes.Compare(da[:], db[:])
	})
}

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

// lookupResult is what an iterative lookup found.
type lookupResult struct {
	peers map[netip.AddrPort]peerSource // get_peers values, with who gave them
	// closest are the nodes closest to the target that answered, nearest
	// first, up to K: where BEP 5 stores the target's announces.
	closest []netip.AddrPort
	queries int // datagrams sent
}

// peerSource is the node that first named a peer: the address its answer
// came from (query only accepts an answer from the address it queried), and
// the exchange, our get_peers and its answer, for the transcript.
type peerSource struct {
	node  netip.AddrPort
	reply rawReply
}

// iterate runs one Kademlia lookup for target from identity n: get_peers if
// getPeers, else find_node, in the DHT of n's address family (BEP 32). It
// starts from the K closest nodes every identity of that family knows
// (the bootstrap nodes of the family, and nodes of it heard by the other
// family's identities, too when they know fewer than K) and
// keeps Alpha queries in flight to the closest candidates not yet asked.
// It ends, as Kademlia says, only when the K closest candidates it has
// seen have all answered or failed: a reply naming closer nodes keeps it
// going, and one that names none does not stop it while closer nodes
// remain unasked. A query that times out is sent once more before the
// node counts as failed; one the per-address budget refuses is put off,
// not counted as a failure. At most maxLookupQueries datagrams are sent.
func (s *Sensor) iterate(ctx context.Context, n *node, target routing.ID, getPeers bool) lookupResult {
	res := lookupResult{peers: map[netip.AddrPort]peerSource{}}
	now := s.cfg.Clock()
	var mu sync.Mutex
	cands := map[netip.AddrPort]*candidate{}
	own := make(map[routing.ID]bool, len(s.nodes))
	for _, m := range s.nodes {
		own[routing.ID(m.id)] = true
	}
	add := func(id routing.ID, addr netip.AddrPort, known bool) {
		addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
		if !addr.IsValid() || addr.Port() == 0 || addr == n.addr {
			return
		}
		if known && own[id] {
			return // one of our own identities
		}
		if !n.sameFamily(addr.Addr()) {
			// A node of the other family (BEP 32 want): its own
			// family's lookups may start from it, if the sensor runs
			// that family. This lookup cannot ask it from n's socket.
			if known {
				if _, ok := s.listenFor(addr.Addr()); ok {
					s.heard.add(id, addr)
				}
			}
			return
		}
		if c, ok := cands[addr]; ok {
			if known && !c.known {
				c.id, c.known = id, true
			}
			return
		}
		cands[addr] = &candidate{id: id, addr: addr, known: known}
	}
	for _, m := range s.nodes {
		if m.v6 != n.v6 {
			continue
		}
		for _, nd := range m.table.Closest(target, K, now) {
			add(nd.ID, nd.Addr, true)
		}
	}
	if len(cands) < K {
		for _, b := range s.cfg.Bootstrap {
			if n.sameFamily(b.Addr()) {
				add(routing.ID{}, b, false)
			}
		}
		for _, nd := range s.heard.list(n.v6) {
			add(nd.ID, nd.Addr, true)
		}
	}
	// next picks up to want candidates to ask now among the K closest
	// that have not failed (bootstrap nodes, whose ids are unknown, come
	// first and do not count toward K). wait is how long until a put-off
	// candidate may be asked; done reports that the K closest have all
	// answered or failed.
	next := func(want int, now time.Time) (pick []*candidate, wait time.Duration, done bool) {
		list := make([]*candidate, 0, len(cands))
		for _, c := range cands {
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
			da, db := routing.Distance(a.id, target), routing.Distance(b.id, target)
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
	var wg sync.WaitGroup
	inflight, queried := 0, 0
	// wake has room for one pending signal: a completion that finds it full
	// knows the loop will look again anyway.
	wake := make(chan struct{}, 1)
	for ctx.Err() == nil {
		mu.Lock()
		if queried >= maxLookupQueries {
			mu.Unlock()
			break
		}
		want := min(s.cfg.Alpha-inflight, maxLookupQueries-queried-inflight)
		pick, wait, done := next(max(want, 0), s.cfg.Clock())
		for _, c := range pick {
			c.state = candInFlight
		}
		inflight += len(pick)
		mu.Unlock()
		if done {
			break
		}
		if len(pick) == 0 {
			// Wait for an answer, or for a put-off candidate's turn.
			var timer *time.Timer
			var fire <-chan time.Time
			if wait > 0 {
				timer = time.NewTimer(max(wait, 10*time.Millisecond))
				fire = timer.C
			}
			select {
			case <-wake:
			case <-fire:
			case <-ctx.Done():
			}
			if timer != nil {
				timer.Stop()
			}
			continue
		}
		for _, c := range pick {
			wg.Add(1)
			go func(c *candidate) {
				defer wg.Done()
				q := &krpc.Msg{}
				if getPeers {
					q.Method = krpc.MethodGetPeers
					q.A.InfoHash = krpc.ID(target)
				} else {
					q.Method = krpc.MethodFindNode
					q.A.Target = krpc.ID(target)
				}
				r, raw, err := n.query(ctx, c.addr, q)
				mu.Lock()
				defer func() {
					inflight--
					mu.Unlock()
					select {
					case wake <- struct{}{}:
					default:
					}
				}()
				if errors.Is(err, errAddrBudget) && ctx.Err() == nil {
					// Nothing was sent: ask again when the budget allows.
					c.deferrals++
					if c.deferrals > maxBudgetDeferrals {
						c.state = candFailed
						return
					}
					c.state = candNew
					// Jittered, so that lookups waiting on one address
					// do not all come back at the same instant.
					w := s.addrBudgetWait()
					c.notBefore = s.cfg.Clock().Add(w/2 + rand.N(w))
					return
				}
				queried++
				if getPeers {
					s.lookupQueries.Add(1)
				}
				if errors.Is(err, errTimeout) && c.tries < lookupRetries && ctx.Err() == nil {
					// One lost datagram (either way) is not a dead node:
					// ask again, as the node may hold the target's peers.
					c.tries++
					c.state = candNew
					return
				}
				if err != nil || r == nil || r.Kind != krpc.KindResponse {
					c.state = candFailed
					if c.known {
						n.table.Failed(c.id)
					}
					return
				}
				c.state = candAnswered
				if !c.known {
					c.id, c.known = routing.ID(r.R.ID), true
				}
				for _, ni := range r.R.Nodes {
					add(routing.ID(ni.ID), ni.Addr, true)
				}
				for _, ni := range r.R.Nodes6 {
					add(routing.ID(ni.ID), ni.Addr, true)
				}
				for _, p := range r.R.Values {
					p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
					if _, ok := res.peers[p]; !ok && p.Port() != 0 {
						res.peers[p] = peerSource{node: raw.from, reply: raw}
					}
				}
			}(c)
		}
	}
	wg.Wait()
	res.queries = queried
	var answered []*candidate
	for _, c := range cands {
		if c.state == candAnswered && c.known {
			answered = append(answered, c)
		}
	}
	slices.SortFunc(answered, func(a, b *candidate) int {
		da, db := routing.Distance(a.id, target), routing.Distance(b.id, target)
		return bytes.Compare(da[:], db[:])
	})
	for _, c := range answered[:min(len(answered), K)] {
		res.closest = append(res.closest, c.addr)
	}
	return res
}

// addrBudgetWait is how long a lookup puts off a query that the
// per-address budget refused: the time one token takes to come back.
func (s *Sensor) addrBudgetWait() time.Duration {
	if r := s.cfg.Limits.PerAddrPerSecond; r > 0 {
		return time.Duration(float64(time.Second) / r)
	}
	return 100 * time.Millisecond
}

// findNode looks up target from identity n to fill its routing table.
func (s *Sensor) findNode(ctx context.Context, n *node, target routing.ID) {
	s.iterate(ctx, n, target, false)
}

// lookupAll runs a get_peers lookup of key in the DHT of every family the
// sensor runs, at once, each from that family's identity closest to key,
// and merges what they found: the peers of both (a peer named in both is
// filed under the first family's node), and each family's closest
// responders, the first family's first.
func (s *Sensor) lookupAll(ctx context.Context, key routing.ID) lookupResult {
	fams := s.families()
	res := make([]lookupResult, len(fams))
	var wg sync.WaitGroup
	for i, v6 := range fams {
		n := s.closestIdentityOf(key, v6)
		if n == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = s.iterate(ctx, n, key, true)
		}()
	}
	wg.Wait()
	if len(res) == 1 {
		return res[0]
	}
	out := lookupResult{peers: map[netip.AddrPort]peerSource{}}
	for _, r := range res {
		for p, src := range r.peers {
			if _, ok := out.peers[p]; !ok {
				out.peers[p] = src
			}
		}
		out.closest = append(out.closest, r.closest...)
		out.queries += r.queries
	}
	return out
}

// lookupLoop looks up the peers of every watched info-hash every
// LookupEvery, LookupConcurrency at a time.
func (s *Sensor) lookupLoop(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.LookupConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(min(s.cfg.LookupEvery/4, time.Second))
	defer tick.Stop()
	batch := s.cfg.LookupConcurrency * 4
	for {
		// Start every lookup that is due, as fast as the semaphore lets
		// them run: the concurrency bounds the rate, not the tick (a fixed
		// number a tick left 100,000 watched info-hashes looked up every
		// two hours instead of every LookupEvery).
		for {
			due := s.watch.due(s.cfg.Clock(), s.cfg.LookupEvery, batch)
			for _, key := range due {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
				wg.Add(1)
				go func(key routing.ID) {
					defer wg.Done()
					defer func() { <-sem }()
					s.lookupPeers(ctx, key)
				}(key)
			}
			if len(due) < batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// lookupPeers runs one get_peers lookup for a watched key and records each
// peer the network names for it, once per lookup.
func (s *Sensor) lookupPeers(ctx context.Context, key routing.ID) {
	w, ok := s.watch.get(key)
	if !ok {
		return
	}
	// The item's trackers are asked while the DHT lookup runs, not
	// before it: a slow tracker must not delay the DHT's answer.
	trackersDone := make(chan struct{})
	go func() {
		defer close(trackersDone)
		s.askTrackers(ctx, w)
	}()
	res := s.lookupAll(ctx, key)
	<-trackersDone
	s.lookups.Add(1)
	s.scheduleRepolls(key, res)
	s.recordPeers(ctx, w, res.peers)
}

// recordPeers records each peer a node named for a watched key (by a
// lookup, a re-poll or discovery's sampler) and queues its probe.
//
// Such a record is a third party's claim carried by one UDP datagram: the
// node that answered may lie, and nothing authenticates the answer beyond
// its source address and an unguessable transaction id. It is marked
// third_party and spoofable_source, has no sensor address (the endpoint
// never talked to the sensor), and its transcript is our get_peers and the
// answer that named the peer, both with the node's address. Its transport
// is "tcp": the peer's listen port as a BitTorrent peer, where the probe
// goes first (uTP listens on the same port number); nothing was seen on it.
func (s *Sensor) recordPeers(ctx context.Context, w Watched, peers map[netip.AddrPort]peerSource) {
	for peer, src := range peers {
		if s.droppedSelf(peer) {
			continue
		}
		if err := s.guard.Check(peer); err != nil {
			// Out of scope: not probed, but still seen. The record is what
			// the node said, which is all a third-party claim is.
			s.scopeRefused.Add(1)
		}
		tr := newTranscript(s.cfg.TranscriptLimit)
		if len(src.reply.sent) > 0 {
			tr.Sent(src.reply.sentAt, src.node, src.reply.sent)
		}
		tr.Received(src.reply.at, src.node, src.reply.b)
		o := observe.Observation{
			Method: observe.MethodDHTGetPeers, Time: src.reply.at.UTC(),
			Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
			Endpoint:   observe.Endpoint{IP: peer.Addr(), Port: peer.Port(), Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: final(tr),
		}
		o.Mark(observe.MarkThirdParty)
		o.Mark(observe.MarkSpoofableSource)
		s.emit(ctx, o)
		s.enqueueProbe(peer, w, "dht_get_peers")
	}
}

// peersNamed returns the peers an answer names (unmapped, port 0 left
// out), each filed under the node that sent the answer.
func peersNamed(r *krpc.Msg, raw rawReply) map[netip.AddrPort]peerSource {
	out := make(map[netip.AddrPort]peerSource, len(r.R.Values))
	for _, p := range r.R.Values {
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if _, ok := out[p]; !ok && p.Port() != 0 {
			out[p] = peerSource{node: raw.from, reply: raw}
		}
	}
	return out
}

// clientFromV decodes a DHT "v" field (two letters and two version bytes)
// for display; unknown values are shown as printable text or hex.
func clientFromV(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	names := map[string]string{"LT": "libtorrent", "UT": "uTorrent", "TR": "Transmission", "GR": "GetRight",
		"MP": "MooPolice", "UM": "uTorrent Mac", "VG": "Vigil", "lt": "libtorrent", "AZ": "Vuze", "KT": "KTorrent",
		"DE": "Deluge", "qB": "qBittorrent", "BC": "BitComet", "GT": "anacrolix/torrent", "AG": "Ares",
	}
	if len(v) == 4 {
		if n, ok := names[string(v[:2])]; ok {
			return n
		}
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "v=" + hexString(v)
		}
	}
	return string(v)
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
