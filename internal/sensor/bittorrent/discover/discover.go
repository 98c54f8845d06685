// Package discover finds torrents whose info-hash is on no list but whose
// files are. It walks the key space with BEP 51 sample_infohashes, and
// for each info-hash not seen before asks the node that sampled it for
// peers, fetches the info dictionary from one of them (BEP 9 over BEP
// 10), verifies it against the info-hash, and matches each file: by its
// v2 pieces root (btv2), and by its SHA-1 where the file is exactly one
// v1 piece (metainfo.SinglePieceFiles). A torrent with a matching file is
// handed to the sensor to watch from then on, linked to the entries it
// matched. The metadata of a torrent that matches nothing is dropped at
// once; only its key stays, in the seen-set (seen.go).
//
// It must never record anything of an info-hash that is not watched, nor
// write it to a log line at any level (a log that pairs an address with
// an unwatched item is what the sensor must never keep): its counters
// say how discovery goes. It never decides that a watched info-hash was
// seen: the exact watch set is asked before the seen-set's filter.
package discover

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// MatchFunc answers which watch-list entries name a file hash (kinds btv2
// and sha1). It must be exact and safe for concurrent use.
type MatchFunc func(hashkind.Hash) []observe.Match

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

// Stats are discovery's counters.
type Stats struct {
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

// Config is discovery's configuration; the sensor's Config fills it and
// validates it.
type Config struct {
	// Concurrency is how many sample_infohashes queries are in flight.
	Concurrency int
	// FetchWorkers is how many metadata fetches run at once.
	FetchWorkers int
	// Queue bounds the new info-hashes waiting for metadata; one sampled
	// when it is full is left for a later sample (counted).
	Queue int
	// MinInterval is the least time between two samples of one node,
	// whatever its BEP 51 interval says.
	MinInterval time.Duration
	// MaxNodes bounds the nodes the sampler keeps.
	MaxNodes int
	// SeenCapacity is how many unwatched info-hashes the seen-set
	// remembers at least.
	SeenCapacity int
	// FetchTimeout bounds one metadata fetch.
	FetchTimeout time.Duration
	// Bootstrap are nodes to sample first (beside the routing tables').
	Bootstrap []netip.AddrPort
	// Match answers which list entries name a file hash.
	Match MatchFunc
	// Clock returns the time; tests inject one.
	Clock func() time.Time
}

// Sensor is what discovery needs of the sensor: its exact watch set, and
// where what it finds goes.
type Sensor interface {
	// Watched reports whether key is watched.
	Watched(key routing.ID) bool
	// Peers records each peer a DHT node named for a watched key, as a
	// lookup records them, and probes it.
	Peers(ctx context.Context, key routing.ID, peers map[netip.AddrPort]dhtnode.PeerSource)
	// Watch watches a discovered torrent's info-hash, linked to the
	// entries its files matched and why, and keeps its verified info
	// dictionary.
	Watch(h hashkind.Hash, matched []observe.Match, reason string, info []byte) error
	// IsSelf reports whether an address is one of the sensor's own.
	IsSelf(netip.AddrPort) bool
}

// Parts are the sensor's parts discovery uses.
type Parts struct {
	DHT    *dhtnode.DHT
	Prober *probe.Prober
	Guard  *scope.Guard
	Limits *netlimit.Limiter
	Sensor Sensor
	Log    *slog.Logger
}

// Discoverer is discovery's state.
type Discoverer struct {
	cfg Config
	p   Parts

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
	retries, retriesDropped, infoUnparsed, scopeRefused              atomic.Uint64
}

// New returns a Discoverer; Run runs it.
func New(cfg Config, p Parts) (*Discoverer, error) {
	switch {
	case cfg.Match == nil:
		return nil, errors.New("discovery needs a matcher")
	case p.DHT == nil || p.Prober == nil || p.Guard == nil || p.Limits == nil || p.Sensor == nil:
		return nil, errors.New("discovery: a part is missing")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	return &Discoverer{
		cfg: cfg, p: p, seen: newSeenSet(cfg.SeenCapacity),
		q:     make(chan fetchJob, max(cfg.Queue, 1)),
		nodes: map[netip.AddrPort]*dnode{},
		retry: map[routing.ID]*retryState{},
	}, nil
}

// Run runs the sampler and the metadata workers until ctx ends, and
// returns when they have stopped.
func (d *Discoverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for range max(d.cfg.FetchWorkers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.fetchWorker(ctx)
		}()
	}
	for i := range max(d.cfg.Concurrency, 1) {
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
		now := d.cfg.Clock()
		d.requeue(now)
		if n%20 == 0 {
			d.seed(now)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Discovered returns the torrents discovery has matched so far.
func (d *Discoverer) Discovered() []Discovery {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Discovery(nil), d.discovered...)
}

// Seen reports whether the seen-set (probably) holds key: whether an
// unwatched key sampled now would be skipped.
func (d *Discoverer) Seen(key routing.ID) bool { return d.seen.has(key) }

// ScopeRefused is how many peers discovery did not dial because the scope
// guard refused them.
func (d *Discoverer) ScopeRefused() uint64 { return d.scopeRefused.Load() }

// Stats returns discovery's counters.
func (d *Discoverer) Stats() Stats {
	d.mu.Lock()
	nodes := len(d.nodes)
	d.mu.Unlock()
	return Stats{
		Queries: d.queries.Load(), Unsupported: d.unsupported.Load(), Sampled: d.sampled.Load(),
		New: d.fresh.Load(), SeenBefore: d.seenBefore.Load(), SampledWatched: d.sampledWatched.Load(),
		Deferred: d.deferred.Load(), NoPeers: d.noPeers.Load(), MetaFetched: d.metaFetched.Load(),
		MetaFailed: d.metaFailed.Load(), InfoUnparsed: d.infoUnparsed.Load(), Matched: d.matched.Load(),
		Retries: d.retries.Load(), RetriesDropped: d.retriesDropped.Load(),
		Nodes: nodes, QueueDepth: len(d.q), SeenBytes: d.seen.bytes(),
	}
}
