package bittorrent

import (
	"container/heap"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// Discovery finds torrents whose info-hash is on no list but whose files
// are. It walks the key space with BEP 51 sample_infohashes, and for each
// info-hash not seen before asks the node that sampled it for peers,
// fetches the info dictionary from one of them (BEP 9 over BEP 10),
// verifies it against the info-hash, and matches each file: by its v2
// pieces root (btv2), and by its SHA-1 where the file is exactly one v1
// piece (see singlePieceFiles). A torrent with a matching file is watched
// from then on, linked to the entries it matched. The metadata of a
// torrent that matches nothing is dropped at once; only its key stays, in
// the seen-set (seen.go).

// MatchFunc answers which watch-list entries name a file hash (kinds btv2
// and sha1). It must be exact and safe for concurrent use.
type MatchFunc func(hashkind.Hash) []observe.Match

// MatchLive adapts the live matcher: entries of watch-lists, none if the
// hash is also on a negative (known-benign) list.
func MatchLive(l *match.Live) MatchFunc {
	return func(h hashkind.Hash) []observe.Match {
		r := l.Load().Match(h)
		if !r.Alert() {
			return nil
		}
		out := make([]observe.Match, 0, len(r.Matches))
		for _, s := range r.Matches {
			out = append(out, observe.Match{List: s.List, Category: s.Category})
		}
		return out
	}
}

// Discovery records how a discovered torrent came to be watched.
type Discovery struct {
	// Hashes are the torrent's info-hashes now watched (btih, btih2).
	Hashes []hashkind.Hash
	// Name is the torrent's name from its info dictionary.
	Name string
	// Files are the files that matched, each with the hash that matched
	// and the entries naming it.
	Files []DiscoveredFile
	// From is the peer that served the verified info dictionary; Node the
	// DHT node whose sample named the info-hash.
	From, Node netip.AddrPort
	// At is when the match was made.
	At time.Time
}

// DiscoveredFile is one file of a discovered torrent that is on a list.
type DiscoveredFile struct {
	Path    string
	Length  int64
	Hash    hashkind.Hash // btv2 root or sha1 of a single-piece file
	Matched []observe.Match
}

// DiscoveryStats are discovery's counters.
type DiscoveryStats struct {
	Queries        uint64 // sample_infohashes sent
	Unsupported    uint64 // replies without samples (an error, or a node without BEP 51)
	Sampled        uint64 // info-hashes received in samples
	New            uint64 // sampled info-hashes not seen before and queued for metadata
	SeenBefore     uint64 // sampled info-hashes the seen-set already held
	SampledWatched uint64 // sampled info-hashes that are watched (asked for peers at once)
	Deferred       uint64 // new info-hashes left for a later sample because the queue was full
	NoPeers        uint64 // new info-hashes for which no peer was found
	MetaFetched    uint64 // info dictionaries fetched and verified
	MetaFailed     uint64 // fetch attempts in which no peer served the metadata
	InfoUnparsed   uint64 // verified info dictionaries that did not parse (dropped)
	Retries        uint64 // fetches tried again after a failure
	RetriesDropped uint64 // failed fetches not retried: the retry table was full
	Matched        uint64 // torrents that matched a list and are now watched
	Nodes          int    // nodes known to the sampler
	QueueDepth     int    // info-hashes waiting for metadata
	SeenBytes      int    // memory of the seen-set
}

// discoverer is discovery's state; the Sensor owns one when Discover is on.
type discoverer struct {
	s    *Sensor
	seen *seenSet
	q    chan fetchJob

	mu         sync.Mutex
	nodes      map[netip.AddrPort]*dnode
	due        dnodeHeap
	sweep      uint32
	discovered []Discovery
	retry      map[routing.ID]*retryState // failed fetches to try again

	queries, unsupported, sampled, fresh, seenBefore, sampledWatched atomic.Uint64
	deferred, noPeers, metaFetched, metaFailed, matched              atomic.Uint64
	retries, retriesDropped, infoUnparsed                            atomic.Uint64
}

// retryState is a fetch that failed and will be tried again.
type retryState struct {
	job      fetchJob
	attempts int
	next     time.Time
}

// Retries of a failed metadata fetch: a peer that was busy or restarting
// must not cost the match for good (the key is in the seen-set by then).
const (
	maxFetchAttempts = 3
	maxRetryEntries  = 1 << 16
)

// fetchJob is one new info-hash and the node that sampled it.
type fetchJob struct {
	key  routing.ID
	node netip.AddrPort
}

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

func newDiscoverer(s *Sensor) *discoverer {
	return &discoverer{
		s: s, seen: newSeenSet(s.cfg.SeenCapacity),
		q:     make(chan fetchJob, max(s.cfg.DiscoverQueue, 1)),
		nodes: map[netip.AddrPort]*dnode{},
		retry: map[routing.ID]*retryState{},
	}
}

// failed schedules another attempt at a failed fetch, after
// DiscoverMinInterval, doubled at each attempt, until maxFetchAttempts.
func (d *discoverer) failed(job fetchJob) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.retry[job.key]
	if st == nil {
		if len(d.retry) >= maxRetryEntries {
			d.retriesDropped.Add(1)
			return
		}
		st = &retryState{job: job}
		d.retry[job.key] = st
	}
	st.attempts++
	if st.attempts >= maxFetchAttempts {
		delete(d.retry, job.key)
		return
	}
	st.next = d.s.cfg.Clock().Add(max(d.s.cfg.DiscoverMinInterval, 100*time.Millisecond) << st.attempts)
}

// succeeded forgets a key's retries.
func (d *discoverer) succeeded(key routing.ID) {
	d.mu.Lock()
	delete(d.retry, key)
	d.mu.Unlock()
}

// requeue puts due retries back on the queue, as room allows.
func (d *discoverer) requeue(now time.Time) {
	d.mu.Lock()
	var due []fetchJob
	for _, st := range d.retry {
		if !st.next.IsZero() && !now.Before(st.next) {
			due = append(due, st.job)
			st.next = time.Time{} // in the queue
		}
	}
	d.mu.Unlock()
	for i, job := range due {
		select {
		case d.q <- job:
			d.retries.Add(1)
		default:
			// Full: try these again at the next tick.
			d.mu.Lock()
			for _, j := range due[i:] {
				if st := d.retry[j.key]; st != nil {
					st.next = now
				}
			}
			d.mu.Unlock()
			return
		}
	}
}

// addNode makes a node a sampling candidate, due now.
func (d *discoverer) addNode(a netip.AddrPort, now time.Time) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 || d.s.isSelf(a) {
		return
	}
	if _, ok := d.s.listenFor(a.Addr()); !ok {
		return // a family the sensor does not run: no identity can ask it
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodes[a]; ok || len(d.nodes) >= d.s.cfg.DiscoverMaxNodes {
		return
	}
	n := &dnode{addr: a, next: now}
	d.nodes[a] = n
	heap.Push(&d.due, n)
}

// take removes and returns a node due by now, or the time the next is due.
func (d *discoverer) take(now time.Time) (*dnode, time.Time) {
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
func (d *discoverer) release(n *dnode, next time.Time) {
	d.mu.Lock()
	n.next = next
	heap.Push(&d.due, n)
	d.mu.Unlock()
}

// target is the next sample target: the top 32 bits step through the key
// space by the golden ratio (evenly spread at any moment), the rest random,
// so that the nodes named in the replies cover the whole key space.
func (d *discoverer) target() krpc.ID {
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

// run runs the sampler and the metadata workers until ctx ends.
func (d *discoverer) run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range max(d.s.cfg.DiscoverFetchWorkers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.fetchWorker(ctx)
		}()
	}
	for i := range max(d.s.cfg.DiscoverConcurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.sampleWorker(ctx, i)
		}()
	}
	// Seed and refresh the candidates from the routing tables and the
	// bootstrap nodes (the replies' nodes do the rest), and requeue
	// failed fetches when due.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		now := d.s.cfg.Clock()
		d.requeue(now)
		if n%20 != 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			continue
		}
		for _, b := range d.s.cfg.Bootstrap {
			d.addNode(b, now)
		}
		for _, n := range d.s.dht.Nodes() {
			var t routing.ID
			binary.BigEndian.PutUint64(t[:8], rand.Uint64())
			for _, nd := range n.Closest(t, 64, now) {
				d.addNode(nd.Addr, now)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sampleWorker asks due nodes for samples, one query at a time.
func (d *discoverer) sampleWorker(ctx context.Context, i int) {
	s := d.s
	for ctx.Err() == nil {
		now := s.cfg.Clock()
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
		id := s.dht.IdentityFor(n.addr.Addr(), i)
		if id == nil { // cannot happen: addNode keeps the sensor's families only
			d.release(n, now.Add(time.Hour))
			continue
		}
		d.queries.Add(1)
		q := &krpc.Msg{Method: krpc.MethodSampleInfohashes}
		q.A.Target = d.target()
		r, _, err := id.Query(ctx, n.addr, q)
		now = s.cfg.Clock()
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
			continue
		}
		n.fails = 0
		interval := time.Duration(max(r.R.Interval, 0)) * time.Second
		d.release(n, now.Add(max(interval, s.cfg.DiscoverMinInterval)))
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
}

// consider handles one sampled info-hash. The exact watch set is asked
// first: a watched info-hash never reaches the seen-set, whose false
// positives may only ever skip an unwatched one.
func (d *discoverer) consider(ctx context.Context, id *dhtnode.Node, key routing.ID, from netip.AddrPort) {
	d.sampled.Add(1)
	if w, ok := d.s.watch.get(key); ok {
		d.sampledWatched.Add(1)
		// The node holds peers of a watched torrent: ask it now.
		d.s.recordPeersFrom(ctx, id, from, key, w)
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

// recordPeersFrom asks one node for the peers of a watched key and
// records each peer it names, as a lookup does.
func (s *Sensor) recordPeersFrom(ctx context.Context, id *dhtnode.Node, from netip.AddrPort, key routing.ID, w Watched) {
	q := &krpc.Msg{Method: krpc.MethodGetPeers}
	q.A.InfoHash = krpc.ID(key)
	r, raw, err := id.Query(ctx, from, q)
	if err != nil || r == nil || r.Kind != krpc.KindResponse {
		return
	}
	s.recordPeers(ctx, w, dhtnode.PeersNamed(r, raw))
}

// fetchWorker fetches the metadata of new info-hashes and matches it.
func (d *discoverer) fetchWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case job := <-d.q:
			d.fetch(ctx, job)
		}
	}
}

// maxFetchPeers is how many peers discovery tries for one info dictionary.
const maxFetchPeers = 3

func (d *discoverer) fetch(ctx context.Context, job fetchJob) {
	s := d.s
	// The node that sampled the key stores it: its peers come first.
	var peers []netip.AddrPort
	q := &krpc.Msg{Method: krpc.MethodGetPeers}
	q.A.InfoHash = krpc.ID(job.key)
	if id := s.dht.ClosestOfFamily(job.key, job.node.Addr()); id != nil {
		if r, _, err := id.Query(ctx, job.node, q); err == nil && r != nil {
			for _, p := range r.R.Values {
				peers = append(peers, netip.AddrPortFrom(p.Addr().Unmap(), p.Port()))
			}
		}
	}
	if len(peers) == 0 {
		for p := range s.dht.LookupPeers(ctx, job.key).Peers {
			peers = append(peers, p)
		}
	}
	tried := 0
	for _, p := range peers {
		if tried == maxFetchPeers || ctx.Err() != nil {
			break
		}
		if p.Port() == 0 || s.isSelf(p) {
			continue
		}
		if _, ok := s.listenFor(p.Addr()); !ok {
			continue // no address of its family to dial from
		}
		if err := s.guard.Check(p); err != nil {
			s.scopeRefused.Add(1)
			continue
		}
		tried++
		// No log line here, at any level: the key is not watched, and a
		// log that pairs an address with an unwatched item is what the
		// sensor must never keep. The counters say how fetches go.
		info, err := s.fetchMetadata(ctx, p, job.key)
		if err != nil {
			continue
		}
		d.metaFetched.Add(1)
		d.succeeded(job.key)
		d.matchInfo(job, p, info)
		return // matched or dropped: the info dictionary goes out of scope here
	}
	if ctx.Err() != nil {
		return
	}
	if tried == 0 {
		d.noPeers.Add(1)
	} else {
		d.metaFailed.Add(1)
	}
	d.failed(job)
}

// fetchMetadata fetches and verifies key's info dictionary from a peer
// (probe.FetchMetadata) within ProbeTimeout and the wire budget. Nothing
// of it is recorded: the torrent is not watched (yet).
func (s *Sensor) fetchMetadata(ctx context.Context, peer netip.AddrPort, key routing.ID) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ProbeTimeout)
	defer cancel()
	if err := s.lim.Acquire(ctx); err != nil {
		return nil, err
	}
	defer s.lim.Release()
	if !s.lim.AllowAddr(peer.Addr(), s.cfg.Clock()) {
		return nil, fmt.Errorf("per-address budget for %v spent", peer.Addr())
	}
	return s.prober.FetchMetadata(ctx, peer, key)
}

// matchInfo matches a verified info dictionary's files against the lists.
// A match makes the torrent watched; otherwise nothing of it is kept.
func (d *discoverer) matchInfo(job fetchJob, from netip.AddrPort, info []byte) {
	s := d.s
	ti, err := ParseInfo(info)
	if err != nil {
		// Not logged: neither the unwatched key nor the parser's error
		// (which may quote the dictionary) may reach a log line.
		d.infoUnparsed.Add(1)
		return
	}
	var files []DiscoveredFile
	for _, f := range ti.Files {
		if len(f.PiecesRoot) == hashkind.BTV2.Size() {
			h := hashkind.MustNew(hashkind.BTV2, f.PiecesRoot)
			if ms := s.cfg.Match(h); len(ms) > 0 {
				files = append(files, DiscoveredFile{Path: f.Path, Length: f.Length, Hash: h, Matched: ms})
			}
		}
	}
	spf, err := metainfo.SinglePieceFiles(info)
	if err == nil {
		for _, f := range spf {
			h := hashkind.MustNew(hashkind.SHA1, f.SHA1[:])
			if ms := s.cfg.Match(h); len(ms) > 0 {
				files = append(files, DiscoveredFile{Path: f.Path, Length: f.Length, Hash: h, Matched: ms})
			}
		}
	}
	if len(files) == 0 {
		return
	}
	var hashes []hashkind.Hash
	if ti.V1 {
		sum := sha1.Sum(info)
		hashes = append(hashes, hashkind.MustNew(hashkind.BTIH, sum[:]))
	}
	if ti.V2 {
		sum := sha256.Sum256(info)
		hashes = append(hashes, hashkind.MustNew(hashkind.BTIH2, sum[:]))
	}
	var all []observe.Match
	var why []string
	for _, f := range files {
		all = mergeMatches(all, f.Matched)
		lists := make([]string, 0, len(f.Matched))
		for _, m := range f.Matched {
			lists = append(lists, m.List)
		}
		why = append(why, fmt.Sprintf("file %q %s %s on %s", f.Path, f.Hash.Kind(), f.Hash.Hex(), strings.Join(lists, ",")))
	}
	reason := "discovered: " + strings.Join(why, "; ")
	// Two samplers may have queued the same new key at once: the second
	// match of a torrent already discovered adds nothing.
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := s.watch.get(Key(hashes[0])); ok {
		return
	}
	for _, h := range hashes {
		if err := s.Watch(Watched{Hash: h, Matched: all, Reason: reason}); err != nil {
			s.log.Error("discovery: watching a matched torrent", "infohash", h.Hex(), "err", err)
			continue
		}
		s.rememberInfo(Key(h), info)
	}
	d.discovered = append(d.discovered, Discovery{Hashes: hashes, Name: ti.Name, Files: files, From: from, Node: job.node, At: s.cfg.Clock()})
	d.matched.Add(1)
	s.log.Info("discovered a torrent with files on a watch-list; watching it",
		"infohash", hashes[0].Hex(), "name", ti.Name, "files_matched", len(files), "reason", reason, "peer", from, "node", job.node)
}

// Discovered returns the torrents discovery has matched so far.
func (s *Sensor) Discovered() []Discovery {
	if s.disc == nil {
		return nil
	}
	s.disc.mu.Lock()
	defer s.disc.mu.Unlock()
	return append([]Discovery(nil), s.disc.discovered...)
}

// DiscoveryStats returns discovery's counters (zero when it is off).
func (s *Sensor) DiscoveryStats() DiscoveryStats {
	d := s.disc
	if d == nil {
		return DiscoveryStats{}
	}
	d.mu.Lock()
	nodes := len(d.nodes)
	d.mu.Unlock()
	return DiscoveryStats{
		Queries: d.queries.Load(), Unsupported: d.unsupported.Load(), Sampled: d.sampled.Load(),
		New: d.fresh.Load(), SeenBefore: d.seenBefore.Load(), SampledWatched: d.sampledWatched.Load(),
		Deferred: d.deferred.Load(), NoPeers: d.noPeers.Load(), MetaFetched: d.metaFetched.Load(),
		MetaFailed: d.metaFailed.Load(), InfoUnparsed: d.infoUnparsed.Load(), Matched: d.matched.Load(),
		Retries: d.retries.Load(), RetriesDropped: d.retriesDropped.Load(),
		Nodes: nodes, QueueDepth: len(d.q), SeenBytes: d.seen.bytes(),
	}
}

// DiscoveryCollector exports discovery's counters to Prometheus; register
// it beside Collector when Discover is on.
func (s *Sensor) DiscoveryCollector() prometheus.Collector { return discoveryCollector{s} }

type discoveryCollector struct{ s *Sensor }

var (
	descDiscQueries = prometheus.NewDesc("vigil_bittorrent_discovery_sample_queries_total", "BEP 51 sample_infohashes queries sent.", nil, nil)
	descDiscUnsup   = prometheus.NewDesc("vigil_bittorrent_discovery_sample_unsupported_total", "sample_infohashes queries without samples back (error, timeout, no BEP 51).", nil, nil)
	descDiscSampled = prometheus.NewDesc("vigil_bittorrent_discovery_sampled_infohashes_total", "Info-hashes received in samples, by outcome.", []string{"outcome"}, nil)
	descDiscMeta    = prometheus.NewDesc("vigil_bittorrent_discovery_metadata_total", "Metadata fetches of new info-hashes, by result.", []string{"result"}, nil)
	descDiscMatched = prometheus.NewDesc("vigil_bittorrent_discovery_matched_torrents_total", "Discovered torrents whose files matched a list, now watched.", nil, nil)
	descDiscRetries = prometheus.NewDesc("vigil_bittorrent_discovery_fetch_retries_total", "Failed metadata fetches tried again, or not for want of room.", []string{"outcome"}, nil)
	descDiscNodes   = prometheus.NewDesc("vigil_bittorrent_discovery_nodes", "Nodes known to the sampler.", nil, nil)
	descDiscQueue   = prometheus.NewDesc("vigil_bittorrent_discovery_queue_depth", "New info-hashes waiting for metadata.", nil, nil)
	descDiscSeen    = prometheus.NewDesc("vigil_bittorrent_discovery_seen_set_bytes", "Memory of the seen-set.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c discoveryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDiscQueries, descDiscUnsup, descDiscSampled, descDiscMeta, descDiscMatched, descDiscRetries, descDiscNodes, descDiscQueue, descDiscSeen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c discoveryCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.DiscoveryStats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descDiscQueries, st.Queries)
	counter(descDiscUnsup, st.Unsupported)
	counter(descDiscSampled, st.New, "new")
	counter(descDiscSampled, st.SeenBefore, "seen_before")
	counter(descDiscSampled, st.SampledWatched, "watched")
	counter(descDiscSampled, st.Deferred, "deferred")
	counter(descDiscMeta, st.MetaFetched, "fetched")
	counter(descDiscMeta, st.MetaFailed, "failed")
	counter(descDiscMeta, st.NoPeers, "no_peers")
	counter(descDiscMeta, st.InfoUnparsed, "unparsed")
	counter(descDiscMatched, st.Matched)
	counter(descDiscRetries, st.Retries, "retried")
	counter(descDiscRetries, st.RetriesDropped, "dropped")
	ch <- prometheus.MustNewConstMetric(descDiscNodes, prometheus.GaugeValue, float64(st.Nodes))
	ch <- prometheus.MustNewConstMetric(descDiscQueue, prometheus.GaugeValue, float64(st.QueueDepth))
	ch <- prometheus.MustNewConstMetric(descDiscSeen, prometheus.GaugeValue, float64(st.SeenBytes))
}
