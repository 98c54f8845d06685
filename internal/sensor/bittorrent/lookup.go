package bittorrent

import (
	"bytes"
	"context"
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

// maxLookupQueries bounds the queries one lookup sends, whatever the
// network answers: a hostile node cannot keep a lookup going forever.
const maxLookupQueries = 128

func sortByDistance(ns []routing.Node, target routing.ID) {
	slices.SortFunc(ns, func(a, b routing.Node) int {
		da, db := routing.Distance(a.ID, target), routing.Distance(b.ID, target)
		return bytes.Compare(da[:], db[:])
	})
}

// candidate is a node a lookup may query. Bootstrap nodes have no known id.
type candidate struct {
	id    routing.ID
	addr  netip.AddrPort
	known bool // id known (not a bootstrap address)
	state int  // 0 new, 1 in flight, 2 answered, 3 failed
}

// lookupResult is what an iterative lookup found.
type lookupResult struct {
	peers map[netip.AddrPort]peerSource // get_peers values, with who gave them
	// closest are the nodes closest to the target that answered, nearest
	// first, up to K: where BEP 5 stores the target's announces.
	closest []netip.AddrPort
}

// peerSource is the node that first named a peer: the address its answer
// came from (query only accepts an answer from the address it queried), and
// the exchange, our get_peers and its answer, for the transcript.
type peerSource struct {
	node  netip.AddrPort
	reply rawReply
}

// iterate runs one Kademlia lookup for target from identity n: get_peers if
// getPeers, else find_node. It queries the closest unqueried candidates, α
// at a time, until the K closest known nodes have all answered or failed.
func (s *Sensor) iterate(ctx context.Context, n *node, target routing.ID, getPeers bool) lookupResult {
	res := lookupResult{peers: map[netip.AddrPort]peerSource{}}
	now := s.cfg.Clock()
	var mu sync.Mutex
	cands := map[netip.AddrPort]*candidate{}
	add := func(id routing.ID, addr netip.AddrPort, known bool) {
		if !addr.IsValid() || addr.Port() == 0 || addr == n.addr {
			return
		}
		if known {
			for _, m := range s.nodes {
				if routing.ID(m.id) == id {
					return // one of our own identities
				}
			}
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
		for _, nd := range m.table.Closest(target, K, now) {
			add(nd.ID, nd.Addr, true)
		}
	}
	if len(cands) < K {
		for _, b := range s.cfg.Bootstrap {
			add(routing.ID{}, b, false)
		}
	}
	// next picks up to want unqueried candidates among the closest K
	// non-failed ones; done reports that none is left to ask.
	next := func(want int) (pick []*candidate, done bool) {
		list := make([]*candidate, 0, len(cands))
		for _, c := range cands {
			if c.state != 3 {
				list = append(list, c)
			}
		}
		slices.SortFunc(list, func(a, b *candidate) int {
			// Unknown ids (bootstrap) sort first so they are asked early.
			if a.known != b.known {
				if !a.known {
					return -1
				}
				return 1
			}
			da, db := routing.Distance(a.id, target), routing.Distance(b.id, target)
			return bytes.Compare(da[:], db[:])
		})
		limit := K
		inflight := 0
		for i, c := range list {
			if c.known && i >= limit {
				break
			}
			if !c.known {
				limit++ // bootstrap nodes do not count toward the K closest
			}
			switch c.state {
			case 0:
				if len(pick) < want {
					pick = append(pick, c)
				}
			case 1:
				inflight++
			}
		}
		if len(pick) == 0 && inflight == 0 {
			return nil, true
		}
		return pick, false
	}
	var wg sync.WaitGroup
	inflight, queried := 0, 0
	// wake has room for one pending signal: a completion that finds it full
	// knows the loop will look again anyway.
	wake := make(chan struct{}, 1)
	for queried < maxLookupQueries && ctx.Err() == nil {
		mu.Lock()
		pick, done := next(s.cfg.Alpha - inflight)
		for _, c := range pick {
			c.state = 1
		}
		inflight += len(pick)
		queried += len(pick)
		mu.Unlock()
		if done {
			break
		}
		if len(pick) == 0 {
			select { // wait for an answer before looking again
			case <-wake:
			case <-ctx.Done():
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
				if err != nil || r == nil || r.Kind != krpc.KindResponse {
					c.state = 3
					if c.known {
						n.table.Failed(c.id)
					}
					return
				}
				c.state = 2
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
	var answered []*candidate
	for _, c := range cands {
		if c.state == 2 && c.known {
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

// findNode looks up target from identity n to fill its routing table.
func (s *Sensor) findNode(ctx context.Context, n *node, target routing.ID) {
	s.iterate(ctx, n, target, false)
}

// closestIdentity returns the identity whose id is closest to target, so
// that lookups for a key come from the identity the key's nodes know best.
func (s *Sensor) closestIdentity(target routing.ID) *node {
	best := s.nodes[0]
	for _, n := range s.nodes[1:] {
		if routing.Closer(target, routing.ID(n.id), routing.ID(best.id)) {
			best = n
		}
	}
	return best
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
	s.askTrackers(ctx, w)
	res := s.iterate(ctx, s.closestIdentity(key), key, true)
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
			tr.sent(src.reply.sentAt, src.node, src.reply.sent)
		}
		tr.received(src.reply.at, src.node, src.reply.b)
		o := observe.Observation{
			Method: observe.MethodDHTGetPeers, Time: src.reply.at.UTC(),
			Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
			Endpoint:   observe.Endpoint{IP: peer.Addr(), Port: peer.Port(), Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: tr.final(),
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
