package bittorrent

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

// maxRepollNames bounds the peers a watched key remembers as already
// named since its last lookup (re-polls emit only peers not named yet).
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

// repollQueue is a min-heap of re-polls by time.
type repollQueue struct {
	mu sync.Mutex
	h  repollHeap
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

func (q *repollQueue) push(e repollEntry) {
	q.mu.Lock()
	heap.Push(&q.h, e)
	q.mu.Unlock()
}

// popDue removes and returns the entries due at now.
func (q *repollQueue) popDue(now time.Time) []repollEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []repollEntry
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		out = append(out, heap.Pop(&q.h).(repollEntry))
	}
	return out
}

func (q *repollQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// lookupDone records what a lookup of key found for its re-polls: the
// closest responders, nearest first, and the peers it named. It returns
// when the lookup started and its generation.
func (s *watchSet) lookupDone(k routing.ID, closest []netip.AddrPort, named []uint64) (time.Time, int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byKey[k]
	if !ok {
		return time.Time{}, 0, false
	}
	st.closest = closest
	st.named = named
	return st.lastLookup, st.lookups, true
}

// repollTargets returns the watched item and the nodes a re-poll of
// generation gen may ask, nearest first.
func (s *watchSet) repollTargets(k routing.ID, gen int) (Watched, []netip.AddrPort, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.byKey[k]
	if !ok || st.lookups != gen || len(st.closest) == 0 {
		return Watched{}, nil, false
	}
	return st.w, slices.Clone(st.closest), true
}

// repollFailed drops a node that did not answer a re-poll from key's
// targets, so that the next re-poll starts with the next closest.
func (s *watchSet) repollFailed(k routing.ID, gen int, node netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.byKey[k]; ok && st.lookups == gen {
		st.closest = slices.DeleteFunc(st.closest, func(a netip.AddrPort) bool { return a == node })
	}
}

// newlyNamed returns the peers not named since key's last lookup (of
// generation gen) and remembers them.
func (s *watchSet) newlyNamed(k routing.ID, gen int, peers []netip.AddrPort) []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.byKey[k]
	if !ok || st.lookups != gen {
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

// scheduleRepolls queues key's re-polls after its lookup: Repolls of
// them, evenly spaced between the lookup's start and the next one's.
func (s *Sensor) scheduleRepolls(key routing.ID, res lookupResult) {
	if s.cfg.Repolls <= 0 {
		return
	}
	var named []uint64
	for p := range res.peers {
		if len(named) == maxRepollNames {
			break
		}
		named = append(named, peerHash(p))
	}
	// The RepollNodes closest of each family (a dual-stack lookup's
	// closest are each family's, nearest first).
	var closest []netip.AddrPort
	per := map[bool]int{}
	for _, a := range res.closest {
		v6 := a.Addr().Unmap().Is6()
		if per[v6] < s.cfg.RepollNodes {
			per[v6]++
			closest = append(closest, a)
		}
	}
	start, gen, ok := s.watch.lookupDone(key, closest, named)
	if !ok || len(closest) == 0 {
		return
	}
	step := s.cfg.LookupEvery / time.Duration(s.cfg.Repolls+1)
	for i := 1; i <= s.cfg.Repolls; i++ {
		s.repollQ.push(repollEntry{at: start.Add(time.Duration(i) * step), key: key, gen: gen})
	}
}

// repollLoop runs re-polls as they fall due, LookupConcurrency × Alpha at
// once (each is one query at a time).
func (s *Sensor) repollLoop(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.LookupConcurrency*s.cfg.Alpha)
	var wg sync.WaitGroup
	defer wg.Wait()
	// A re-poll is at most this late: small against LookupEvery/(Repolls+1).
	tick := time.NewTicker(min(s.cfg.LookupEvery/time.Duration(8*(s.cfg.Repolls+1)), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, e := range s.repollQ.popDue(s.cfg.Clock()) {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.repoll(ctx, e)
			}()
		}
	}
}

// repoll asks the closest responder of key's last lookup for its peers;
// if it does not answer, the next closest, up to RepollNodes: in each
// family's DHT, from the identity of that family closest to the key.
// Peers not named since the last lookup are recorded as a lookup records
// them.
func (s *Sensor) repoll(ctx context.Context, e repollEntry) {
	w, targets, ok := s.watch.repollTargets(e.key, e.gen)
	if !ok {
		return
	}
	answered := map[bool]bool{} // by family
	for _, to := range targets {
		v6 := to.Addr().Unmap().Is6()
		n := s.closestIdentityOf(e.key, v6)
		if answered[v6] || n == nil {
			continue
		}
		q := &krpc.Msg{Method: krpc.MethodGetPeers}
		q.A.InfoHash = krpc.ID(e.key)
		s.repolls.Add(1)
		r, raw, err := n.query(ctx, to, q)
		if err != nil || r == nil || r.Kind != krpc.KindResponse {
			if ctx.Err() != nil {
				return
			}
			s.watch.repollFailed(e.key, e.gen, to)
			continue
		}
		var vals []netip.AddrPort
		for _, p := range r.R.Values {
			p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
			if p.Port() != 0 {
				vals = append(vals, p)
			}
		}
		fresh := s.watch.newlyNamed(e.key, e.gen, vals)
		peers := make(map[netip.AddrPort]peerSource, len(fresh))
		for _, p := range fresh {
			peers[p] = peerSource{node: raw.from, reply: raw}
		}
		s.repollPeers.Add(uint64(len(fresh)))
		s.recordPeers(ctx, w, peers)
		answered[v6] = true
	}
}
