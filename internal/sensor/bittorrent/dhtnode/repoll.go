package dhtnode

import (
	"container/heap"
	"context"
	"hash/maphash"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Re-polls (Config.Repolls): between two full lookups of a watched
// info-hash, one get_peers to the closest node that answered the last
// lookup. BEP 5 stores an announce on the K nodes closest to the
// info-hash, and those are the nodes the lookup ended on: the closest of
// them learns of a new peer when it announces, so asking it alone sees
// the announce for one datagram, where a lookup costs a dozen.
//
// The sensor says when a lookup of a key starts (LookupStarted: a new
// generation, whose start the re-polls are timed from; re-polls of an
// older one are dropped) and what it found (LookupDone).

// maxRepollNames bounds the peers a key remembers as already named since
// its last lookup (re-polls tell only peers not named yet).
const maxRepollNames = 256

// repollSeed hashes peer addresses for the named-since-lookup sets.
var repollSeed = maphash.MakeSeed()

func peerHash(p netip.AddrPort) uint64 {
	b := p.Addr().As16()
	var h maphash.Hash
	h.SetSeed(repollSeed)
	_, _ = h.Write(b[:])
	_ = h.WriteByte(byte(p.Port() >> 8))
	_ = h.WriteByte(byte(p.Port()))
	return h.Sum64()
}

// repollEntry is one re-poll due at a time, for the lookup generation
// gen of key: a re-poll of an older generation (a lookup ran since) is
// dropped.
type repollEntry struct {
	at  time.Time
	key routing.ID
	gen int
}

// repollState is what the last lookup of a key left for its re-polls.
type repollState struct {
	start time.Time // when the lookup of generation gen started
	gen   int       // lookups started
	// closest are the last lookup's closest responders still answering,
	// nearest first (re-poll targets, at most RepollNodes of each
	// family); named hashes the peers named since that lookup.
	closest []netip.AddrPort
	named   []uint64
}

// repolls are the re-polls due (a min-heap by time) and each key's state.
type repolls struct {
	mu    sync.Mutex
	h     repollHeap
	state map[routing.ID]*repollState
}

type repollHeap []repollEntry

func (h repollHeap) Len() int           { return len(h) }
func (h repollHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h repollHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *repollHeap) Push(x any)        { *h = append(*h, x.(repollEntry)) }
func (h *repollHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// popDue removes and returns the entries due at now.
func (q *repolls) popDue(now time.Time) []repollEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []repollEntry
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		out = append(out, heap.Pop(&q.h).(repollEntry))
	}
	return out
}

// LookupStarted says that a lookup of key starts at at: a new generation
// of its re-polls (the older one's are dropped when due).
func (d *DHT) LookupStarted(key routing.ID, at time.Time) {
	if d.cfg.Repolls <= 0 {
		return
	}
	q := &d.rp
	q.mu.Lock()
	defer q.mu.Unlock()
	st := q.state[key]
	if st == nil {
		st = &repollState{}
		q.state[key] = st
	}
	st.start = at
	st.gen++
}

// LookupDone queues key's re-polls after its lookup found res: Repolls of
// them, evenly spaced between the lookup's start and the next one's, to
// the RepollNodes closest responders of each family (a dual-stack
// lookup's closest are each family's, nearest first). The peers it named
// are not told again by the re-polls.
func (d *DHT) LookupDone(key routing.ID, res LookupResult) {
	if d.cfg.Repolls <= 0 {
		return
	}
	var named []uint64
	for p := range res.Peers {
		if len(named) == maxRepollNames {
			break
		}
		named = append(named, peerHash(p))
	}
	var closest []netip.AddrPort
	per := map[bool]int{}
	for _, a := range res.Closest {
		v6 := a.Addr().Unmap().Is6()
		if per[v6] < d.cfg.RepollNodes {
			per[v6]++
			closest = append(closest, a)
		}
	}
	q := &d.rp
	q.mu.Lock()
	defer q.mu.Unlock()
	st, ok := q.state[key]
	if !ok {
		return
	}
	st.closest, st.named = closest, named
	if len(closest) == 0 {
		return
	}
	step := d.cfg.LookupEvery / time.Duration(d.cfg.Repolls+1)
	for i := 1; i <= d.cfg.Repolls; i++ {
		heap.Push(&q.h, repollEntry{at: st.start.Add(time.Duration(i) * step), key: key, gen: st.gen})
	}
}

// targets returns the nodes a re-poll of generation gen may ask, nearest
// first.
func (q *repolls) targets(k routing.ID, gen int) ([]netip.AddrPort, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	st, ok := q.state[k]
	if !ok || st.gen != gen || len(st.closest) == 0 {
		return nil, false
	}
	return slices.Clone(st.closest), true
}

// failed drops a node that did not answer a re-poll from key's targets,
// so that the next re-poll starts with the next closest.
func (q *repolls) failed(k routing.ID, gen int, node netip.AddrPort) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st, ok := q.state[k]; ok && st.gen == gen {
		st.closest = slices.DeleteFunc(st.closest, func(a netip.AddrPort) bool { return a == node })
	}
}

// newlyNamed returns the peers not named since key's last lookup (of
// generation gen) and remembers them.
func (q *repolls) newlyNamed(k routing.ID, gen int, peers []netip.AddrPort) []netip.AddrPort {
	q.mu.Lock()
	defer q.mu.Unlock()
	st, ok := q.state[k]
	if !ok || st.gen != gen {
		return nil
	}
	var out []netip.AddrPort
	for _, p := range peers {
		h := peerHash(p)
		if slices.Contains(st.named, h) {
			continue
		}
		out = append(out, p)
		if len(st.named) < maxRepollNames {
			st.named = append(st.named, h)
		}
	}
	return out
}

// repollLoop runs re-polls as they fall due, LookupConcurrency × Alpha at
// once (each is one query at a time).
func (d *DHT) repollLoop(ctx context.Context) error {
	sem := make(chan struct{}, d.cfg.LookupConcurrency*d.cfg.Alpha)
	var wg sync.WaitGroup
	defer wg.Wait()
	// A re-poll is at most this late: small against LookupEvery/(Repolls+1).
	tick := time.NewTicker(min(d.cfg.LookupEvery/time.Duration(8*(d.cfg.Repolls+1)), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, e := range d.rp.popDue(d.cfg.Clock()) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				d.repoll(ctx, e)
			}()
		}
	}
}

// repoll asks the closest responder of key's last lookup for its peers;
// if it does not answer, the next closest, up to RepollNodes: in each
// family's DHT, from the identity of that family closest to the key.
// Peers not named since the last lookup are told the Handler.
func (d *DHT) repoll(ctx context.Context, e repollEntry) {
	targets, ok := d.rp.targets(e.key, e.gen)
	if !ok || !d.h.Watched(krpc.ID(e.key)) {
		return
	}
	answered := map[bool]bool{} // by family
	for _, to := range targets {
		v6 := to.Addr().Unmap().Is6()
		n := d.closestIdentityOf(e.key, v6)
		if answered[v6] || n == nil {
			continue
		}
		q := &krpc.Msg{Method: krpc.MethodGetPeers}
		q.A.InfoHash = krpc.ID(e.key)
		d.repollsSent.Add(1)
		r, raw, err := n.Query(ctx, to, q)
		if err != nil || r == nil || r.Kind != krpc.KindResponse {
			if ctx.Err() != nil {
				return
			}
			d.rp.failed(e.key, e.gen, to)
			continue
		}
		var vals []netip.AddrPort
		for _, p := range r.R.Values {
			p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
			if p.Port() != 0 {
				vals = append(vals, p)
			}
		}
		fresh := d.rp.newlyNamed(e.key, e.gen, vals)
		peers := make(map[netip.AddrPort]PeerSource, len(fresh))
		for _, p := range fresh {
			peers[p] = PeerSource{Node: raw.From, Reply: raw}
		}
		d.repollPeers.Add(uint64(len(fresh)))
		d.h.RepollPeers(ctx, e.key, peers)
		answered[v6] = true
	}
}
