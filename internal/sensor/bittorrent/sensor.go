// Package bittorrent is Vigil's BitTorrent sensor. It runs several DHT node
// identities that behave as correct, quiet DHT nodes, on one IPv4 and one
// IPv6 address at once if given both (BEP 32; family.go), looks up the
// peers of every watched info-hash, records the nodes that announce or
// look for one, and probes peers, each from its own address of the peer's
// family, to learn how surely they hold it.
//
// The Sensor holds the watch set, decides what each conversation proves,
// makes and emits the observations, and counts. Its parts do the talking:
// package dhtnode (the identities, lookups and re-polls), package probe
// (one conversation with one peer), the tracker client (package tracker)
// and package discover (torrents whose files are on a list); each tells
// the Sensor what it heard and none holds a pointer back to it.
//
// The sensor observes; it never helps anyone find material. It never returns
// peers for any info-hash, never announces itself in the DHT, never claims
// to hold any torrent, and never uploads a byte of content. Trackers are
// the one exception to not announcing: a tracker lists peers only to an
// announcer, so to each tracker it asks (Config.Trackers, about every
// watched info-hash, and those a watched item names) the sensor
// announces (event=started, left=1, its DHT port, where no peer listens)
// and withdraws at once (event=stopped); trackers.go says exactly what it
// sends. Every socket goes through
// the scope guard (internal/scope). Observations of items that are not
// watched never leave it.
package bittorrent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/bus"
	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/discover"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
	"github.com/vigil-oss/vigil/internal/timesync"
)

// Config is the sensor's configuration. DefaultConfig gives values fit for
// a sensor on an office line; the lab uses faster intervals.
type Config struct {
	// ID names this sensor instance in every observation.
	ID string
	// Version is Vigil's version, recorded in observations.
	Version string
	// Commit, Modified and ConfigSHA256 complete the sensor's identity
	// in its observations (observe.Sensor): the VCS revision it was
	// built from, whether that tree had uncommitted changes, and the
	// SHA-256 of its effective configuration.
	Commit       string
	Modified     bool
	ConfigSHA256 string
	// TimeSync measures the sensor clock's offset, recorded with every
	// observation; nil: the offset is unknown, source "none".
	TimeSync *timesync.Monitor
	// Listen is the address the DHT nodes and probes use (default
	// 127.0.0.1): the one address of a sensor that runs one address
	// family. ListenAddrs, when set, replaces it; Validate then sets
	// Listen to ListenAddrs[0], so that code that reads one address
	// still reads the sensor's first.
	Listen netip.Addr
	// ListenAddrs are the addresses of a sensor that runs both address
	// families at once (BEP 32): at most one IPv4 and one IPv6 address,
	// neither unspecified, no duplicate. Each address runs Identities
	// DHT identities, whose routing tables hold nodes of its family
	// only; a peer is probed from the address of its own family, and one
	// of a family the sensor has no address of is not probed (counted,
	// no_listen_address_for_family). Empty: Listen alone.
	ListenAddrs []netip.Addr
	// Identities is how many DHT node identities to run on each listen
	// address, spread over the key space; each has its own UDP port.
	Identities int
	// Bootstrap are the DHT nodes to join through, IPv4 or IPv6: each
	// family's identities start from those of their family, and from
	// nodes of it that the other family's nodes name (BEP 32 want). The
	// sensor never falls back to public bootstrap routers: with none
	// given it cannot start.
	Bootstrap []netip.AddrPort
	// LookupEvery is how often each watched info-hash is looked up.
	LookupEvery time.Duration
	// LookupConcurrency is how many lookups run at once.
	LookupConcurrency int
	// Repolls is how many times, between two full lookups of a watched
	// info-hash, the sensor asks again the closest node that answered the
	// last lookup: one get_peers each, evenly spaced over LookupEvery
	// (with 2 and a 15-minute interval, at 5 and 10 minutes). BEP 5 stores
	// announces on the K nodes closest to the info-hash, which are the
	// nodes a lookup ends on, so a re-poll sees a new announce for one
	// datagram where a lookup costs a dozen: the wait from an announce to
	// its observation drops from about LookupEvery/2 to
	// LookupEvery/(2·(Repolls+1)). Peers the lookup or an earlier re-poll
	// already named are not recorded again; new ones are recorded as a
	// lookup records them (dht_get_peers, announced) and probed. The full
	// lookup still runs every LookupEvery, to follow churn. 0 turns
	// re-polls off. Default 2.
	Repolls int
	// RepollNodes is how many of the last lookup's closest responders a
	// re-poll may try, nearest first, when one does not answer (a node
	// that does not answer is not asked again until the next lookup).
	// Default 3.
	RepollNodes int
	// Alpha is how many queries one lookup keeps in flight (Kademlia α).
	Alpha int
	// QueryTimeout bounds the wait for one DHT reply.
	QueryTimeout time.Duration
	// RefreshEvery is how often each identity refreshes its routing table.
	RefreshEvery time.Duration
	// Probe enables peer probes (handshake, bitfield, PEX) of found peers.
	Probe bool
	// ProbeTimeout bounds one probe from dial to the last message read.
	ProbeTimeout time.Duration
	// Trackers are asked about every watched info-hash (trackers.go),
	// beside those a watched item names (Watched.Trackers): announce
	// URLs, http://IP[:PORT]/PATH, https://... or udp://IP:PORT, each
	// in scope (New refuses one that is not, naming it).
	Trackers []string
	// TrackerTimeout bounds one tracker announce, retries included (a
	// UDP tracker's BEP 15 back-off runs to hours on its own, and the
	// item's DHT lookup waits for its trackers). 0: the tracker client's
	// own limits only. Default 30 s.
	TrackerTimeout time.Duration
	// ProbePortWait is how long a probe, once it knows what the peer has,
	// waits for a PORT message (its DHT port) from a peer that set the DHT
	// bit and has not sent one yet. Clients send PORT with the handshake
	// or the bitfield, so it has usually come already. 0: no wait.
	// Default 1 s.
	ProbePortWait time.Duration
	// ProbePEXWait is how long a probe, once it knows what the peer has,
	// waits for a first PEX message from a peer whose extension handshake
	// offers ut_pex. libtorrent sends its first PEX within about a second
	// of the extension handshake; Transmission only every 90 s, which no
	// probe waits for. A peer that offers neither PORT nor PEX, or has sent
	// both, is left at once; a quiet peer is left when the wait ends, not
	// at ProbeTimeout. 0: no wait. Default 1 s.
	ProbePEXWait time.Duration
	// ProbeEvery is the least time between two probes of the same peer and
	// info-hash.
	ProbeEvery time.Duration
	// MaxProbed bounds the (peer, info-hash) pairs remembered as probed
	// within ProbeEvery. When it is full, pairs older than ProbeEvery are
	// swept (at most once a second); if it is still full, a new peer is
	// not queued (counted, probe_table_full) until room is made. 0: no
	// bound.
	MaxProbed int
	// ProbeWorkers is how many probes run at once (also capped by Limits).
	ProbeWorkers int
	// Verify enables fetching one piece from a peer to record `verified`.
	// Off by default; a fetched piece is hashed in memory and discarded.
	Verify bool
	// TranscriptLimit bounds the raw bytes kept with one observation.
	TranscriptLimit int
	// Limits is the wire budget (global, per address, connections in flight).
	Limits netlimit.Config
	// Clock returns the time; tests inject one.
	Clock func() time.Time

	// Discover turns on discovery (package discover): BEP 51 sampling of the
	// key space, metadata of new info-hashes, and watching of torrents
	// whose files match a list. It needs Match.
	Discover bool
	// Match answers which list entries name a file hash (btv2, sha1);
	// MatchLive adapts the live matcher.
	Match MatchFunc
	// DiscoverConcurrency is how many sample_infohashes queries are in
	// flight at once.
	DiscoverConcurrency int
	// DiscoverFetchWorkers is how many metadata fetches of new info-hashes
	// run at once (connections also capped by Limits).
	DiscoverFetchWorkers int
	// DiscoverQueue bounds the new info-hashes waiting for metadata; one
	// sampled when it is full is left for a later sample (counted).
	DiscoverQueue int
	// DiscoverMinInterval is the least time between two samples of one
	// node, whatever its BEP 51 interval says.
	DiscoverMinInterval time.Duration
	// DiscoverMaxNodes bounds the nodes the sampler keeps.
	DiscoverMaxNodes int
	// OnFiles, if set, is told the files of a watched torrent each time a
	// peer serves its verified metadata: the other files of a matched
	// torrent are leads for an analyst's review (associated files), never
	// matches. Called from probe workers; it must not block for long.
	OnFiles func(TorrentFiles)
	// SeenCapacity is how many unwatched info-hashes the seen-set
	// remembers at least (1.25 MB per million, twice that at most).
	SeenCapacity int
	// Own are the deployment's own addresses (package own,
	// --own-addresses): its other sensors' hosts or sockets. The sensor
	// records none of them and probes none, in every scope, as it never
	// records itself (self.go); each is counted (deployment_address).
	// nil: none beyond the sensor's own.
	Own *own.Set
}

// DefaultConfig returns a conservative configuration.
func DefaultConfig() Config {
	return Config{
		ID:                "bittorrent-1",
		Version:           "dev",
		Listen:            netip.MustParseAddr("127.0.0.1"),
		Identities:        8,
		LookupEvery:       15 * time.Minute,
		LookupConcurrency: 4,
		Repolls:           2,
		RepollNodes:       3,
		Alpha:             3,
		QueryTimeout:      3 * time.Second,
		RefreshEvery:      10 * time.Minute,
		Probe:             true,
		ProbeTimeout:      15 * time.Second,
		TrackerTimeout:    30 * time.Second,
		ProbePortWait:     time.Second,
		ProbePEXWait:      time.Second,
		ProbeEvery:        time.Hour,
		MaxProbed:         1 << 20,
		ProbeWorkers:      16,
		TranscriptLimit:   16 << 10,
		Limits:            netlimit.DefaultConfig(),
		Clock:             time.Now,

		DiscoverConcurrency:  4,
		DiscoverFetchWorkers: 8,
		DiscoverQueue:        4096,
		DiscoverMinInterval:  time.Minute,
		DiscoverMaxNodes:     100_000,
		SeenCapacity:         4_000_000,
	}
}

// LabConfig returns DefaultConfig tuned for the loopback lab: short
// intervals and no wire budget beyond the in-flight cap.
func LabConfig() Config {
	c := DefaultConfig()
	c.LookupEvery = 10 * time.Second
	c.QueryTimeout = time.Second
	c.RefreshEvery = 30 * time.Second
	c.ProbeTimeout = 5 * time.Second
	c.ProbeEvery = time.Minute
	c.Limits = netlimit.Unlimited()
	c.DiscoverConcurrency = 32
	c.DiscoverFetchWorkers = 32
	c.DiscoverQueue = 1 << 16
	c.DiscoverMinInterval = time.Second
	return c
}

// Validate reports the first problem with c.
func (c *Config) Validate() error {
	addrs, err := checkListen(c.Listen, c.ListenAddrs)
	if err != nil {
		return err
	}
	if err := checkReach(addrs, c.Bootstrap); err != nil {
		return err
	}
	switch {
	case c.Identities < 1 || c.Identities > 256:
		return fmt.Errorf("bittorrent sensor: identities %d: want 1 to 256", c.Identities)
	case len(c.Bootstrap) == 0:
		return errors.New("bittorrent sensor: no bootstrap nodes given (the sensor never falls back to public routers; pass --bootstrap)")
	case c.LookupEvery <= 0 || c.QueryTimeout <= 0 || c.RefreshEvery <= 0:
		return errors.New("bittorrent sensor: intervals and timeouts must be positive")
	case c.TrackerTimeout < 0:
		return fmt.Errorf("bittorrent sensor: tracker timeout %v: want 0 (none) or more", c.TrackerTimeout)
	case c.Alpha < 1 || c.LookupConcurrency < 1:
		return errors.New("bittorrent sensor: alpha and lookup concurrency must be at least 1")
	case c.ProbePortWait < 0 || c.ProbePEXWait < 0:
		return errors.New("bittorrent sensor: probe waits must not be negative")
	case c.MaxProbed < 0:
		return fmt.Errorf("bittorrent sensor: max probed %d: want 0 (no bound) or more", c.MaxProbed)
	case c.Repolls < 0 || c.Repolls > 100 || (c.Repolls > 0 && (c.RepollNodes < 1 || c.RepollNodes > K)):
		return fmt.Errorf("bittorrent sensor: repolls %d (want 0 to 100) with repoll nodes %d (want 1 to %d)", c.Repolls, c.RepollNodes, K)
	case c.Discover && c.Match == nil:
		return errors.New("bittorrent sensor: discovery needs a matcher (Config.Match)")
	case c.Discover && (c.DiscoverConcurrency < 1 || c.DiscoverFetchWorkers < 1 || c.DiscoverQueue < 1 || c.DiscoverMaxNodes < 1 || c.SeenCapacity < 1 || c.DiscoverMinInterval < 0):
		return errors.New("bittorrent sensor: discovery concurrency, workers, queue, max nodes and seen capacity must be positive")
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c.ListenAddrs, c.Listen = addrs, addrs[0]
	return nil
}

// checkReach refuses a bootstrap node that the listen address of its
// family cannot reach: a socket bound to a loopback address cannot send
// off the host (Linux refuses each IPv4 datagram; IPv6 ones are lost),
// so the sensor would send nothing at all and only find its routing
// tables empty. A node on one of the host's own addresses is reachable
// from loopback (a lab in the same network namespace).
func checkReach(listen []netip.Addr, bootstrap []netip.AddrPort) error {
	var local map[netip.Addr]bool
	for _, b := range bootstrap {
		a := b.Addr().Unmap()
		for _, l := range listen {
			if l.Is6() != a.Is6() || !l.IsLoopback() || a.IsLoopback() {
				continue
			}
			if local == nil {
				local = hostAddrs()
			}
			if !local[a] {
				return fmt.Errorf("bittorrent sensor: listen address %s is loopback: it cannot reach bootstrap node %s (give the sensor's own address in that network with --listen)", l, netip.AddrPortFrom(a, b.Port()))
			}
		}
	}
	return nil
}

// hostAddrs returns the addresses of the host's interfaces (in its
// network namespace); none when they cannot be read.
var hostAddrs = func() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap().WithZone("")] = true
		}
	}
	return out
}

// checkListen returns the sensor's listen addresses: addrs if given, else
// one. Each must be a valid address, not unspecified, without a zone; at
// most one of each family; no duplicate (an IPv4-mapped address counts
// as the IPv4 address it carries). The error names the address at fault.
func checkListen(one netip.Addr, addrs []netip.Addr) ([]netip.Addr, error) {
	if len(addrs) == 0 {
		addrs = []netip.Addr{one}
	}
	out := make([]netip.Addr, 0, len(addrs))
	var have4, have6 netip.Addr
	for _, a := range addrs {
		switch {
		case !a.IsValid():
			return nil, errors.New("bittorrent sensor: no listen address")
		case a.IsUnspecified():
			// Bound to every address, the sensor could not tell its own
			// connections from peers' (self.go): it would record itself.
			return nil, fmt.Errorf("bittorrent sensor: listen address %s is unspecified: name the one address the sensor uses (of each family)", a)
		case a.Zone() != "":
			return nil, fmt.Errorf("bittorrent sensor: listen address %s: an address with a zone is not supported", a)
		}
		a = a.Unmap()
		if slices.Contains(out, a) {
			return nil, fmt.Errorf("bittorrent sensor: listen address %s is given twice", a)
		}
		prev := &have4
		if a.Is6() {
			prev = &have6
		}
		if prev.IsValid() {
			return nil, fmt.Errorf("bittorrent sensor: listen address %s: %s is already this family's address (name at most one IPv4 and one IPv6 address)", a, *prev)
		}
		*prev = a
		out = append(out, a)
	}
	return out, nil
}

// Stats are the sensor's counters; Health explains them.
type Stats struct {
	Packets       uint64            // datagrams received
	Sent          uint64            // datagrams sent
	BadPackets    uint64            // datagrams that did not decode
	Queries       map[string]uint64 // queries answered, by method
	Timeouts      uint64            // queries of ours that got no reply
	Lookups       uint64            // iterative lookups completed
	Repolls       uint64            // re-poll get_peers sent to a last lookup's closest nodes
	RepollPeers   uint64            // peers first named (since the last lookup) by a re-poll
	Observations  map[string]uint64 // observations emitted, by method
	TrackerErrors uint64            // tracker announces that failed
	Probes        uint64            // probes attempted
	ProbeFailures uint64            // probes that failed (refused, timeout, bad handshake)
	RoutingNodes  int               // nodes in all routing tables
	Watched       int               // info-hashes watched
	ScopeRefused  uint64            // sends the scope guard refused
	LastObserved  time.Time         // time of the newest observation
	Discovery     DiscoveryStats    // discovery's counters (zero when off)
	// Families are the DHT counters of each address family the sensor
	// runs ("ipv4", "ipv6"); the totals above are their sums.
	Families map[string]FamilyStats
}

// FamilyStats are one address family's DHT counters.
type FamilyStats = dhtnode.FamilyStats

// Sensor is a running BitTorrent sensor. It holds the watch set, makes
// observations of what its parts hear and emits them, and counts; the
// parts are the DHT identities (dht, package dhtnode), the prober
// (package probe), the tracker client and discovery.
type Sensor struct {
	cfg   Config
	guard *scope.Guard
	pub   bus.Publisher
	log   *slog.Logger
	lim   *netlimit.Limiter

	watch *watchSet
	dht   *dhtnode.DHT // identities, lookups, re-polls

	probeQ chan probeJob
	disc   *discover.Discoverer // nil unless Config.Discover

	trackers *tracker.Client
	// trackerNext is when each tracker may next be asked about each
	// info-hash: the interval its last answer asked for (trackers.go).
	trackerMu   sync.Mutex
	trackerNext map[trackerAsk]time.Time
	peerID      [20]byte      // the peer id the sensor's probes and announces use
	prober      *probe.Prober // probes and metadata fetches (package probe)

	lookups, probes, probeFailures, scopeRefused, trackerErrors atomic.Uint64
	obs                                                         keyedCounts // observations published, by method
	lastObserved                                                atomic.Pointer[time.Time]

	probedMu sync.Mutex
	probed   map[probeKey]time.Time // when each peer was last queued for a torrent (Config.MaxProbed)
	// probedSwept is when probed was last swept of expired pairs.
	probedSwept time.Time
	infoMu      sync.Mutex
	infos       map[routing.ID]*TorrentInfo // what verified info dictionaries say

	self  selfSet     // the sensor's own addresses, never recorded (self.go)
	drops keyedCounts // observations and probes not made, by reason (self.go)
	// queueFullLogged is when the probe queue's being full was last logged
	// (Unix ns): at most once a minute.
	queueFullLogged atomic.Int64
	// lookupTick, when set (by a test, before Run), replaces the lookup
	// loop's ticker: the loop waits on it once every due lookup has
	// started, and a test that feeds it counts rounds, not seconds.
	lookupTick <-chan time.Time
}

// New returns a sensor that publishes observations to pub. guard must be
// the scope guard of this process.
func New(cfg Config, guard *scope.Guard, pub bus.Publisher, log *slog.Logger) (*Sensor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if guard == nil {
		return nil, errors.New("bittorrent sensor: no scope guard")
	}
	for _, b := range cfg.Bootstrap {
		if err := guard.Check(b); err != nil {
			return nil, fmt.Errorf("bittorrent sensor: bootstrap node %v: %w", b, err)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Sensor{
		peerID: sensorPeerID(),
		cfg:    cfg, guard: guard, pub: pub, log: log.With("sensor", cfg.ID),
		lim:    netlimit.New(cfg.Limits),
		watch:  newWatchSet(),
		probeQ: make(chan probeJob, 4096),
		probed: map[probeKey]time.Time{},
	}
	tcfg := trackerConfig(cfg)
	// A tracker sees the source of the sensor's request (self.go).
	tcfg.Dialled = func(local netip.AddrPort) { s.self.add(local, s.cfg.Clock(), !s.labScope()) }
	var err error
	if s.trackers, err = tracker.New(tcfg, guard); err != nil {
		return nil, fmt.Errorf("bittorrent sensor: tracker client: %w", err)
	}
	// Before any socket: a configured tracker out of scope (or that the
	// client cannot speak to) stops the sensor, named.
	for _, u := range cfg.Trackers {
		if err := s.trackers.Check(u); err != nil {
			return nil, fmt.Errorf("bittorrent sensor: %w", err)
		}
	}
	s.dht, err = dhtnode.New(dhtnode.Config{
		Listen: cfg.ListenAddrs, Identities: cfg.Identities, Bootstrap: cfg.Bootstrap,
		Alpha: cfg.Alpha, QueryTimeout: cfg.QueryTimeout, RefreshEvery: cfg.RefreshEvery,
		LookupConcurrency: cfg.LookupConcurrency, LookupEvery: cfg.LookupEvery,
		Repolls: cfg.Repolls, RepollNodes: cfg.RepollNodes,
		PerAddrPerSecond: cfg.Limits.PerAddrPerSecond, Clock: cfg.Clock,
	}, guard, s.lim, (*dhtEvents)(s), s.log)
	if err != nil {
		return nil, fmt.Errorf("bittorrent sensor: %w", err)
	}
	s.prober, err = probe.New(probe.Config{
		PeerID: s.peerID, Listen: cfg.ListenAddrs,
		PortWait: cfg.ProbePortWait, PEXWait: cfg.ProbePEXWait, Verify: cfg.Verify,
		TranscriptLimit: cfg.TranscriptLimit, Clock: cfg.Clock,
		Info: s.Info, Remember: s.rememberInfo,
		// A connection's source port is the sensor's own (self.go).
		Dialled: func(local netip.AddrPort) { s.self.add(local, s.cfg.Clock(), !s.labScope()) },
	}, guard)
	if err != nil {
		return nil, fmt.Errorf("bittorrent sensor: %w", err)
	}
	if cfg.Discover {
		if s.disc, err = s.newDiscoverer(); err != nil {
			return nil, fmt.Errorf("bittorrent sensor: %w", err)
		}
	}
	return s, nil
}

// Watch adds info-hashes to watch. Only btih and btih2 hashes are accepted.
func (s *Sensor) Watch(ws ...Watched) error {
	for _, w := range ws {
		if k := w.Hash.Kind(); k != hashkind.BTIH && k != hashkind.BTIH2 {
			return fmt.Errorf("bittorrent sensor: cannot watch %s %s: only btih and btih2", k, w.Hash.Hex())
		}
		s.watch.add(w)
	}
	return nil
}

// Run starts the DHT identities, joins the network, and runs lookups and
// probes until ctx ends. It returns after every goroutine it started has
// stopped.
func (s *Sensor) Run(ctx context.Context) error {
	if err := s.dht.Listen(ctx); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	// The first lookup round waits for the identities' tables: started on
	// empty ones, it would ask only the bootstrap nodes.
	joined := make(chan struct{})
	g.Go(func() error { return s.dht.Run(ctx, joined) })
	g.Go(func() error {
		select {
		case <-joined:
		case <-ctx.Done():
			return nil
		}
		return s.lookupLoop(ctx)
	})
	if s.disc != nil {
		g.Go(func() error { return s.disc.Run(ctx) })
	}
	if s.cfg.Probe {
		for i := 0; i < max(s.cfg.ProbeWorkers, 1); i++ {
			g.Go(func() error { return s.probeWorker(ctx) })
		}
	}
	s.log.Info("bittorrent sensor started", "identities", len(s.dht.Nodes()), "listen", s.cfg.ListenAddrs,
		"bootstrap", len(s.cfg.Bootstrap), "watched", s.watch.len(), "probe", s.cfg.Probe)
	err := g.Wait()
	st := s.Stats()
	s.log.Info("bittorrent sensor stopped", "packets", st.Packets, "lookups", st.Lookups,
		"observations", st.Observations, "probes", st.Probes, "scope_refused", st.ScopeRefused)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Ready is closed once the sensor's identities are listening.
func (s *Sensor) Ready() <-chan struct{} { return s.dht.Ready() }

// Addrs returns the UDP addresses of the sensor's DHT identities; it is
// empty until Ready.
func (s *Sensor) Addrs() []netip.AddrPort { return s.dht.Addrs() }

// Stats returns the counters: the sensor's own, and its parts'.
func (s *Sensor) Stats() Stats {
	ds := s.dht.Stats()
	st := Stats{
		Packets: ds.Packets, Sent: ds.Sent, BadPackets: ds.BadPackets, Queries: ds.Queries,
		Timeouts: ds.Timeouts, Lookups: s.lookups.Load(), Repolls: ds.Repolls, RepollPeers: ds.RepollPeers,
		Observations: s.obs.snapshot(), TrackerErrors: s.trackerErrors.Load(),
		Probes: s.probes.Load(), ProbeFailures: s.probeFailures.Load(), RoutingNodes: ds.RoutingNodes,
		Watched: s.watch.len(), ScopeRefused: s.scopeRefused.Load() + ds.ScopeRefused + s.discoveryScopeRefused(),
		Families: ds.Families,
	}
	if t := s.lastObserved.Load(); t != nil {
		st.LastObserved = *t
	}
	st.Discovery = s.DiscoveryStats()
	return st
}

// discoveryScopeRefused is how many peers discovery did not dial because
// the scope guard refused them (0 when it is off).
func (s *Sensor) discoveryScopeRefused() uint64 {
	if s.disc == nil {
		return 0
	}
	return s.disc.ScopeRefused()
}

// Health explains, in a sentence, whether the sensor is working and, if
// not, why: a sensor that stops finding anything must say so.
func (s *Sensor) Health() (ok bool, why string) {
	st := s.Stats()
	var emptyFam string
	for _, l := range s.cfg.ListenAddrs {
		if f := st.Families[familyOf(l)]; f.RoutingNodes == 0 && emptyFam == "" {
			emptyFam = familyOf(l)
		}
	}
	switch {
	case st.RoutingNodes == 0:
		return false, "no DHT nodes in the routing tables: the bootstrap nodes did not answer"
	case emptyFam != "":
		return false, fmt.Sprintf("no %s DHT nodes in the routing tables: no %s bootstrap node answered, and none was heard through the other family", emptyFam, emptyFam)
	case st.Watched == 0:
		return false, "no info-hashes are watched: import a watch-list"
	case st.Packets == 0:
		return false, "no packets received"
	}
	return true, fmt.Sprintf("%d routing nodes, %d watched, %d lookups, %d observations", st.RoutingNodes, st.Watched, st.Lookups, sum(st.Observations))
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// emit publishes one observation of a watched item. It blocks rather than
// drop: an observation of a watched item is evidence. Two kinds are never
// published, and are counted by reason (vigil_bittorrent_dropped_total):
// the sensor itself (its DHT identities, the source port of any of its
// connections, in internet scope its own address) or a fellow sensor of
// its deployment (Config.Own), and, outside lab
// scope, a non-public address named by a third party (admit, self.go).
// A transcript with cut or paused records marks the observation so.
func (s *Sensor) emit(ctx context.Context, o observe.Observation) {
	if r := s.admit(&o); r != "" {
		s.countDrop(r)
		return
	}
	for _, m := range transcriptMarks(o.Transcript.Bytes) {
		o.Mark(m)
	}
	now := s.cfg.Clock().UTC()
	if o.Time.IsZero() {
		o.Time = now
	}
	o.ID = observe.NewID(o.Time)
	o.Sensor = observe.Sensor{ID: s.cfg.ID, Version: s.cfg.Version, Vantage: s.vantage(&o).String(),
		Commit: s.cfg.Commit, Modified: s.cfg.Modified, Config: s.cfg.ConfigSHA256}
	o.Network = observe.NetBitTorrent
	s.cfg.TimeSync.Stamp(&o)
	if err := s.pub.Publish(ctx, o); err != nil {
		// Never silent: an observation that did not reach the bus is
		// counted (vigil_bittorrent_dropped_total{reason="publish_failed"})
		// and, while the sensor runs, logged: at the 1st, 2nd, 4th, 8th...
		// failure, for a full sensor queue fails every publish and must
		// not flood the log.
		if n := s.drops.add("publish_failed"); ctx.Err() == nil && n&(n-1) == 0 {
			s.log.Error("publishing observation", "err", err, "method", o.Method, "failed_so_far", n)
		}
		return
	}
	s.obs.add(o.Method)
	t := o.Time
	s.lastObserved.Store(&t)
}

// vantage is the sensor's own address in an observation: the address of
// its end of the conversation (Endpoint.Local) where the endpoint talked
// to it, else its listen address of the endpoint's family, else its
// first.
func (s *Sensor) vantage(o *observe.Observation) netip.Addr {
	if o.Endpoint.Local.IsValid() {
		return o.Endpoint.Local.Addr().Unmap()
	}
	if a, ok := s.listenFor(o.Endpoint.IP); ok && o.Endpoint.IP.IsValid() {
		return a
	}
	return s.cfg.Listen
}

// keyedCounts counts by a key (an observation's method, a drop's reason),
// one atomic counter each, made the first time its key is seen; usable as
// its zero value.
type keyedCounts struct{ m sync.Map } // key -> *atomic.Uint64

func (c *keyedCounts) add(key string) uint64 {
	v, ok := c.m.Load(key)
	if !ok {
		v, _ = c.m.LoadOrStore(key, new(atomic.Uint64))
	}
	return v.(*atomic.Uint64).Add(1)
}

// snapshot returns the counts of the keys seen.
func (c *keyedCounts) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	c.m.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return out
}
