package discover

import (
	"container/heap"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// dnode is a node the sampler may ask, and when it may next.
type dnode struct {
	addr  netip.AddrPort
	next  time.Time
	fails int
	idx   int // heap index, -1 while out of the heap (in flight)
}

type dnodeHeap []*dnode

func (h dnodeHeap) Len() int           { return len(h) }
func (h dnodeHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dnodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *dnodeHeap) Push(x any)        { d := x.(*dnode); d.idx = len(*h); *h = append(*h, d) }
func (h *dnodeHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	d.idx = -1
	return d
}

// seed makes the bootstrap nodes and some of every routing table's nodes
// sampling candidates.
func (d *Discoverer) seed(now time.Time) {
	for _, b := range d.cfg.Bootstrap {
		d.addNode(b, now)
	}
	for _, n := range d.p.DHT.Nodes() {
		var t routing.ID
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		for _, nd := range n.Closest(t, 64, now) {
			d.addNode(nd.Addr, now)
		}
	}
}

// addNode makes a node a sampling candidate, due now.
func (d *Discoverer) addNode(a netip.AddrPort, now time.Time) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 || d.p.Sensor.IsSelf(a) {
		return
	}
	if !d.p.DHT.Runs(a.Addr()) {
		return // a family the sensor does not run: no identity can ask it
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodes[a]; ok || len(d.nodes) >= d.cfg.MaxNodes {
		return
	}
	n := &dnode{addr: a, next: now}
	d.nodes[a] = n
	heap.Push(&d.due, n)
}

// take removes and returns a node due by now, or the time the next is due.
func (d *Discoverer) take(now time.Time) (*dnode, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.due) == 0 {
		return nil, now.Add(time.Second)
	}
	if n := d.due[0]; n.next.After(now) {
		return nil, n.next
	}
	return heap.Pop(&d.due).(*dnode), now
}

// release puts a node back, due at next.
func (d *Discoverer) release(n *dnode, next time.Time) {
	d.mu.Lock()
	n.next = next
	heap.Push(&d.due, n)
	d.mu.Unlock()
}

// target is the next sample target: the top 32 bits step through the key
// space by the golden ratio (evenly spread at any moment), the rest random,
// so that the nodes named in the replies cover the whole key space.
func (d *Discoverer) target() krpc.ID {
	d.mu.Lock()
	d.sweep += 0x9e3779b9
	top := d.sweep
	d.mu.Unlock()
	var t krpc.ID
	binary.BigEndian.PutUint32(t[:4], top)
	binary.BigEndian.PutUint64(t[4:12], rand.Uint64())
	binary.BigEndian.PutUint64(t[12:20], rand.Uint64())
	return t
}

// sampleWorker asks due nodes for samples, one query at a time.
func (d *Discoverer) sampleWorker(ctx context.Context, i int) {
	for ctx.Err() == nil {
		now := d.cfg.Clock()
		n, next := d.take(now)
		if n == nil {
			wait := min(max(next.Sub(now), 10*time.Millisecond), time.Second)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			continue
		}
		id := d.p.DHT.IdentityFor(n.addr.Addr(), i)
		if id == nil { // cannot happen: addNode keeps the sensor's families only
			d.release(n, now.Add(time.Hour))
			continue
		}
		d.sample(ctx, id, n)
	}
}

// sample asks one node for samples and takes in its answer: the node is
// due again after its BEP 51 interval (at least MinInterval), or, without
// samples, after a back-off doubling up to an hour.
func (d *Discoverer) sample(ctx context.Context, id *dhtnode.Node, n *dnode) {
	d.queries.Add(1)
	q := &krpc.Msg{Method: krpc.MethodSampleInfohashes}
	q.A.Target = d.target()
	r, _, err := id.Query(ctx, n.addr, q)
	now := d.cfg.Clock()
	if err != nil || r == nil || r.Kind != krpc.KindResponse || !r.R.HasInterval && len(r.R.Samples) == 0 {
		// No BEP 51 here (anacrolix answers "method unknown"), or no
		// answer: back off, doubling up to an hour.
		if ctx.Err() != nil {
			return
		}
		d.unsupported.Add(1)
		n.fails++
		back := min(time.Minute<<min(n.fails-1, 6), time.Hour)
		d.release(n, now.Add(back))
		return
	}
	n.fails = 0
	interval := time.Duration(max(r.R.Interval, 0)) * time.Second
	d.release(n, now.Add(max(interval, d.cfg.MinInterval)))
	for _, ni := range r.R.Nodes {
		d.addNode(ni.Addr, now)
	}
	for _, ni := range r.R.Nodes6 {
		d.addNode(ni.Addr, now)
	}
	for _, ih := range r.R.Samples {
		d.consider(ctx, id, routing.ID(ih), n.addr)
	}
}

// consider handles one sampled info-hash. The exact watch set is asked
// first: a watched info-hash never reaches the seen-set, whose false
// positives may only ever skip an unwatched one.
func (d *Discoverer) consider(ctx context.Context, id *dhtnode.Node, key routing.ID, from netip.AddrPort) {
	d.sampled.Add(1)
	if d.p.Sensor.Watched(key) {
		d.sampledWatched.Add(1)
		// The node holds peers of a watched torrent: ask it now.
		d.peersFrom(ctx, id, from, key)
		return
	}
	if d.seen.has(key) {
		d.seenBefore.Add(1)
		return
	}
	select {
	case d.q <- fetchJob{key: key, node: from}:
		// Added only once queued, so that a key the queue had no room for
		// is not remembered, and is taken when next sampled.
		if d.seen.testAndAdd(key) {
			d.seenBefore.Add(1) // raced with another worker
			return
		}
		d.fresh.Add(1)
	default:
		d.deferred.Add(1)
	}
}

// peersFrom asks one node for the peers of a watched key and hands each
// peer it names to the sensor, as a lookup does.
func (d *Discoverer) peersFrom(ctx context.Context, id *dhtnode.Node, from netip.AddrPort, key routing.ID) {
	q := &krpc.Msg{Method: krpc.MethodGetPeers}
	q.A.InfoHash = krpc.ID(key)
	r, raw, err := id.Query(ctx, from, q)
	if err != nil || r == nil || r.Kind != krpc.KindResponse {
		return
	}
	d.p.Sensor.Peers(ctx, key, dhtnode.PeersNamed(r, raw))
}
