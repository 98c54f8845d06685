// Package lab runs a BitTorrent network on loopback for Vigil's demo,
// tests and benchmarks, in-process: DHT nodes and seeding and leeching
// clients built on a real third-party library (anacrolix/dht and
// anacrolix/torrent) and, for scale, light simulated DHT nodes of Vigil's
// own (simdht, which also answer BEP 51), synthetic files of seeded random
// bytes in v1, v2 and hybrid torrents, an HTTP tracker, peers that move
// to a new address keeping their identity, a loopback geolocation
// database, a watch-list, and a manifest of ground truth to check a sensor
// against; and, with StartHostile, hostile devices (liars about pieces, a
// DHT spoofer, a peer-id replayer, node-id forgers, a reassigned address)
// with the truth of what each holds and who it is (internal/lab/accuracy
// measures Vigil against them).
//
// The lab runs on IPv4, on IPv6 or on both (Config.Family): on IPv6 every
// part is on ::1, or each has its own address in the unique local prefix
// LabULA (the IPv6 twin of its 127.0.0.0/8 address, in the same place),
// which the lab uses only inside a network namespace with loopback
// interfaces only (PrepareULA, ULAReady). On both families there is one DHT per family
// (BEP 32) and every peer and the tracker listen on both.
//
// The lab must never send to, listen on or resolve anything outside
// 127.0.0.0/8, ::1 and, in such a namespace, LabULA: every socket is bound
// to a lab address, DHT nodes start from lab nodes only (never the public
// routers), tracker URLs hold lab IPs, and UPnP, NAT-PMP and local peer
// discovery are off. Its content is random bytes with neutral names; it
// must never hold real material or real hashes.
package lab

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/lab/simdht"
)

// SizeRange bounds the synthetic file sizes, in bytes.
type SizeRange struct {
	Min int64 `json:"min"`
	Max int64 `json:"max"`
}

// Config holds the lab's settings.
type Config struct {
	// DHTNodes is the number of DHT nodes. Up to MaxRealDHTNodes of them
	// are anacrolix DHT nodes (127.0.1.1 onwards); any beyond are
	// simulated (see SimDHTNodes), so that 10,000 nodes fit in a process.
	DHTNodes int
	// SimDHTNodes adds this many simulated DHT nodes (internal/lab/simdht,
	// 127.64.0.1 onwards) to the same network: light nodes of Vigil's own
	// that route, store announces and answer BEP 51 sample_infohashes,
	// which the anacrolix nodes do not. Each has its own UDP socket; the
	// lab raises RLIMIT_NOFILE's soft limit as needed (up to the hard one).
	SimDHTNodes int
	// SimDHTInterval is the BEP 51 interval the simulated nodes report
	// (default 10 s).
	SimDHTInterval time.Duration
	// Seeders and Leechers are the numbers of BitTorrent clients of each
	// role. Each seeder seeds at least one torrent; each leecher downloads
	// one torrent from the seeders it finds on the DHT or the tracker.
	Seeders  int
	Leechers int
	// Torrents is the number of synthetic torrents; their layouts cycle
	// through v1, hybrid and v2, single- and multi-file.
	Torrents int
	// Watched is how many torrents (the first ones) go on the watch-list.
	Watched int
	// Seed seeds the PRNG: the same seed gives the same files, hashes,
	// addresses, peer ids and manifest (ports and times aside).
	Seed uint64
	// Dir is the work directory (files, torrents, geo databases,
	// watch-list). Empty: a temporary directory removed by Close.
	Dir string
	// FileSizes bounds each synthetic file's size.
	FileSizes SizeRange
	// Tracker starts the lab's HTTP tracker on 127.0.0.2 and lists it in
	// every other torrent.
	Tracker bool
	// MovePeers is how many seeders move, MoveAfter after Start returns,
	// to an address in another place (the first to the VPN range).
	MovePeers int
	MoveAfter time.Duration
	// MoveOffline is how long a moving peer stays offline between leaving
	// its address and coming back at the new one, as a laptop carried
	// home does. Vigil's analysis takes one peer id at two addresses less
	// than its ConcurrentSlack (2 minutes) apart for a replay, never for
	// a move: the demo's hand-off waits longer than that. 0: at once.
	MoveOffline time.Duration
	// BootstrapNodes is how many DHT node addresses the manifest lists as
	// bootstrap nodes.
	BootstrapNodes int
	// Story casts the first seeders (see Story) in the French départements
	// of the demo's services instead of drawing their places, gives each a
	// watched torrent, and makes the first move a hand-off from Paris (75)
	// to Toulouse (31). The rest is drawn from the seed as without it.
	Story bool
	// Family is the address families the lab runs on: Family4 (the
	// default, also ""), Family6, or FamilyBoth (one DHT per family, every
	// peer and the tracker on both). The simulated DHT nodes and the
	// hostile devices are IPv4 only.
	Family Family
	// IPv6 is where the IPv6 parts live when Family has IPv6:
	// IPv6Loopback (the default, also ""; all on ::1) or IPv6ULA (each
	// its own address in LabULA; needs a namespace PrepareULA made).
	IPv6 IPv6Net
	// Logger receives the lab's logs; the libraries' own logs are passed
	// on at warning level and above. Nil: discard.
	Logger *slog.Logger
}

// DefaultConfig is a lab for the demo: 50 DHT nodes, 8 seeders, 2
// leechers, 12 torrents of which 4 watched, files from 4 KiB to 2 MiB, a
// tracker, and one peer that moves after 10 seconds.
func DefaultConfig() Config {
	return Config{
		DHTNodes:       50,
		Seeders:        8,
		Leechers:       2,
		Torrents:       12,
		Watched:        4,
		Seed:           1,
		FileSizes:      SizeRange{Min: 4 << 10, Max: 2 << 20},
		Tracker:        true,
		MovePeers:      1,
		MoveAfter:      10 * time.Second,
		BootstrapNodes: 8,
	}
}

// MaxRealDHTNodes is the most anacrolix DHT nodes a lab runs; DHTNodes
// beyond it are simulated.
const MaxRealDHTNodes = 256

// realAndSimNodes splits the configured DHT nodes into anacrolix and
// simulated ones.
func (c *Config) realAndSimNodes() (real, sim int) {
	real = min(c.DHTNodes, MaxRealDHTNodes)
	return real, c.DHTNodes - real + c.SimDHTNodes
}

// ErrConfig: a Config the lab cannot run.
var ErrConfig = errors.New("invalid lab config")

// Validate checks the settings.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.DHTNodes < 2 || c.DHTNodes > 254*200:
		return bad("DHTNodes %d: want 2 to %d", c.DHTNodes, 254*200)
	case c.Seeders < 1 || c.Seeders > 2000:
		return bad("Seeders %d: want 1 to 2000", c.Seeders)
	case c.Leechers < 0 || c.Leechers > 2000:
		return bad("Leechers %d: want 0 to 2000", c.Leechers)
	case c.Torrents < 1 || c.Torrents > 10000:
		return bad("Torrents %d: want 1 to 10000", c.Torrents)
	case c.Watched < 0 || c.Watched > c.Torrents:
		return bad("Watched %d: want 0 to Torrents (%d)", c.Watched, c.Torrents)
	case c.FileSizes.Min < 1 || c.FileSizes.Max < c.FileSizes.Min || c.FileSizes.Max > 64<<20:
		return bad("FileSizes %d-%d: want 1 <= min <= max <= 64 MiB", c.FileSizes.Min, c.FileSizes.Max)
	case c.MovePeers < 0 || c.MovePeers > c.Seeders:
		return bad("MovePeers %d: want 0 to Seeders (%d)", c.MovePeers, c.Seeders)
	case c.MoveAfter < 0:
		return bad("MoveAfter %v is negative", c.MoveAfter)
	case c.MoveOffline < 0:
		return bad("MoveOffline %v is negative", c.MoveOffline)
	case c.BootstrapNodes < 0:
		return bad("BootstrapNodes %d is negative", c.BootstrapNodes)
	case c.SimDHTNodes < 0 || c.SimDHTNodes > 60000:
		return bad("SimDHTNodes %d: want 0 to 60000", c.SimDHTNodes)
	case c.SimDHTInterval < 0:
		return bad("SimDHTInterval %v is negative", c.SimDHTInterval)
	}
	if _, sim := c.realAndSimNodes(); sim > 60000 {
		return bad("%d simulated DHT nodes: want at most 60000", sim)
	}
	if _, err := ParseFamily(string(c.family())); err != nil {
		return err
	}
	if _, err := ParseIPv6Net(string(c.ipv6())); err != nil {
		return err
	}
	if _, sim := c.realAndSimNodes(); sim > 0 && c.family().Has6() {
		return bad("%d simulated DHT nodes on family %s: simulated nodes are IPv4 only (at most %d DHT nodes with IPv6)", sim, c.family(), MaxRealDHTNodes)
	}
	return nil
}

// family and ipv6 are Family and IPv6 with their defaults.
func (c *Config) family() Family {
	if c.Family == "" {
		return Family4
	}
	return c.Family
}

func (c *Config) ipv6() IPv6Net {
	if c.IPv6 == "" {
		return IPv6Loopback
	}
	return c.IPv6
}

// Move records a peer changing address.
type Move struct {
	PeerID string `json:"peer_id"`
	// From and To are in the lab's first family (IPv4 unless the lab is
	// IPv6 only); on a lab of both families From6 and To6 are the IPv6
	// addresses the peer left and took at the same time.
	From  string    `json:"from"`
	To    string    `json:"to"`
	From6 string    `json:"from6,omitempty"`
	To6   string    `json:"to6,omitempty"`
	At    time.Time `json:"at"`
}

// ManifestPeer is one lab client as the manifest describes it.
type ManifestPeer struct {
	// Addr is where the peer listens now (TCP and uTP/DHT on the same
	// port): its IPv4 address, or its IPv6 one on an IPv6-only lab.
	Addr string `json:"addr"`
	// Addr6 is where the peer also listens on a lab of both families, on
	// the same port.
	Addr6  string `json:"addr6,omitempty"`
	Client string `json:"client"`
	// Infohashes are the hex info-hashes of the torrents the peer seeds or
	// downloads: the v1 hash (40 hex) and the full v2 hash (64 hex) as
	// present; on the DHT a v2 hash is looked up by its first 20 bytes.
	Infohashes []string `json:"infohashes"`
	Role       string   `json:"role"`
	PeerID     string   `json:"peer_id"` // hex of the 20 bytes
	NodeID     string   `json:"node_id"` // hex of the client's DHT node id
	Country    string   `json:"country"`
	// Departement is the French département of Addr per the lab geo
	// database, empty outside France.
	Departement string `json:"departement,omitempty"`
	ASN         uint32 `json:"asn"`
	VPN         bool   `json:"vpn,omitempty"`
	// PreviousAddrs lists the addresses the peer left, oldest first (in
	// Addr's family); PreviousAddrs6 the IPv6 ones on a lab of both.
	PreviousAddrs  []string `json:"previous_addrs,omitempty"`
	PreviousAddrs6 []string `json:"previous_addrs6,omitempty"`
	// DataDir is where the peer's torrent data lives (seeders share one).
	DataDir string `json:"data_dir"`
}

// Manifest is the lab's ground truth.
type Manifest struct {
	// Family is the address families the lab runs on: "4", "6" or "both".
	Family Family `json:"family"`
	// Bootstrap lists DHT nodes to join the lab's DHT by (on a lab of
	// both families, IPv4 nodes first, then IPv6 ones).
	Bootstrap []string `json:"bootstrap"`
	// Watchlist is the CSV watch-list of the watched torrents.
	Watchlist string `json:"watchlist"`
	// GeoDB is the lab's flat-record city .mmdb; ASNDB its ASN .mmdb,
	// ASNCSV the same ranges as CSV, Providers the VPN/hosting list.
	GeoDB     string         `json:"geo_db"`
	ASNDB     string         `json:"asn_db"`
	ASNCSV    string         `json:"asn_csv"`
	Providers string         `json:"providers"`
	Peers     []ManifestPeer `json:"peers"`
	// Tracker is the HTTP tracker's announce URL (on a lab of both
	// families, its IPv4 one; Tracker6 the IPv6 one).
	Tracker  string    `json:"tracker,omitempty"`
	Tracker6 string    `json:"tracker6,omitempty"`
	Seed     uint64    `json:"seed"`
	DHTNodes []string  `json:"dht_nodes"`
	Torrents []Torrent `json:"torrents"`
	Moves    []Move    `json:"moves"`
}

// Lab is a running lab. Its methods are safe for concurrent use.
type Lab struct {
	cfg       Config
	dir       string
	tempDir   bool
	logger    *slog.Logger
	nodes     []*dhtNode
	sim       *simdht.Network
	tracker   *tracker
	torrents  []*Torrent
	peers     []*peer
	geo       GeoFiles
	watchlist string

	started      time.Time
	runCtx       context.Context // ends when Close is called
	cancel       context.CancelFunc
	wg           sync.WaitGroup
	plannedMoves []plannedMove
	movesStarted bool
	movesDone    chan struct{}

	// queryTap, if set, sees every query the lab's DHT nodes receive
	// (SetQueryTap).
	queryTap atomic.Pointer[func(*krpc.Msg, net.Addr)]

	mu       sync.Mutex
	moves    []Move
	moveErr  error
	closed   bool
	closeErr error
}

// Start builds and starts a lab. It returns once every DHT node has
// bootstrapped and every peer has announced its torrents on the DHT of
// each family (again, up to three times, while no lab node stores an
// announce; a warning is logged if one still is not stored); moves
// happen later (see WaitMoves), leechers download in the background (see
// WaitLeechers). ctx bounds the start only; Close stops the lab.
func Start(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Family, cfg.IPv6 = cfg.family(), cfg.ipv6()
	if cfg.Family.Has6() && cfg.IPv6 == IPv6ULA {
		if err := ULAReady(); err != nil {
			return nil, err
		}
	}
	l := &Lab{cfg: cfg, logger: cfg.Logger, movesDone: make(chan struct{}), started: time.Now()}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "vigil-lab-")
		if err != nil {
			return nil, fmt.Errorf("lab work dir: %w", err)
		}
		cfg.Dir, l.tempDir = d, true
	} else if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("lab work dir %s: %w", cfg.Dir, err)
	}
	l.dir, l.cfg = cfg.Dir, cfg
	runCtx, cancel := context.WithCancel(context.Background())
	l.runCtx, l.cancel = runCtx, cancel
	defer func() {
		if err != nil {
			l.Close()
		}
	}()

	libLog := slog.New(minLevel{l.logger.Handler(), slog.LevelWarn})
	alogger := alog.NewLogger("lab")
	alogger.SetHandlers(alog.SlogHandlerAsHandler{SlogHandler: libLog.Handler()})
	alogger = alogger.WithFilterLevel(alog.Warning)

	ids := rand.New(rand.NewPCG(cfg.Seed, 0x1d))
	nReal, nSim := cfg.realAndSimNodes()
	nodeIDs := make([][20]byte, nReal)
	for i := range nodeIDs {
		nodeIDs[i] = randID(ids)
	}

	if l.geo, err = WriteGeo(filepath.Join(cfg.Dir, "geo")); err != nil {
		return nil, err
	}
	trackerURL, trackerURL6 := "", ""
	if cfg.Tracker {
		if l.tracker, err = startTracker(l.logger, l.hosts(trackerAddr)); err != nil {
			return nil, err
		}
		trackerURL, trackerURL6 = l.tracker.urls[0], ""
		if len(l.tracker.urls) > 1 {
			trackerURL6 = l.tracker.urls[1]
		}
	}
	if l.torrents, err = makeContent(&cfg, trackerURL, trackerURL6); err != nil {
		return nil, err
	}
	l.watchlist = filepath.Join(cfg.Dir, "watchlist.csv")
	if err = writeWatchlist(l.watchlist, l.torrents); err != nil {
		return nil, err
	}

	t0 := time.Now()
	// One DHT per family (BEP 32); a node keeps its id on both, as BEP 32
	// allows, so the two networks have the same shape.
	for _, v6 := range []bool{false, true} {
		if (v6 && !cfg.Family.Has6()) || (!v6 && !cfg.Family.Has4()) {
			continue
		}
		hosts := make([]netip.Addr, len(nodeIDs))
		for i := range hosts {
			ip, err := infraAddr(i)
			if err != nil {
				return nil, err
			}
			if v6 {
				ip = ipv6Of(ip, cfg.IPv6)
			}
			hosts[i] = ip
		}
		nodes, err := startDHT(ctx, nodeIDs, hosts, alogger, l.logger, l.tapQuery)
		l.nodes = append(l.nodes, nodes...)
		if err != nil {
			return nil, err
		}
	}
	for _, n := range l.nodes {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			n.s.TableMaintainer() // returns when the server is closed
		}()
	}
	if nSim > 0 {
		if err = l.startSim(ctx, nSim); err != nil {
			return nil, err
		}
	}
	l.logger.Info("lab DHT up", "nodes", len(l.nodes), "simulated", nSim, "took", time.Since(t0).Round(time.Millisecond))

	starting := func() []netip.AddrPort {
		out := make([]netip.AddrPort, len(l.nodes))
		for i, n := range l.nodes {
			out[i] = n.addr
		}
		return out
	}
	if err = l.planPeers(ids, starting, alogger, libLog); err != nil {
		return nil, err
	}
	t0 = time.Now()
	// Seeders first, so that leechers find them.
	for _, role := range []string{RoleSeeder, RoleLeecher} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(4)
		for _, p := range l.peers {
			if p.role == role {
				g.Go(func() error { return p.start(gctx) })
			}
		}
		if err = g.Wait(); err != nil {
			return nil, err
		}
	}
	l.logger.Info("lab peers up", "seeders", cfg.Seeders, "leechers", cfg.Leechers,
		"torrents", len(l.torrents), "took", time.Since(t0).Round(time.Millisecond))
	l.startMoves(runCtx, ids)
	return l, nil
}

func randID(r *rand.Rand) (id [20]byte) {
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

// planPeers gives every peer its identity, address and torrents, all
// drawn from the seeded PRNG.
func (l *Lab) planPeers(r *rand.Rand, starting func() []netip.AddrPort, alogger alog.Logger, libLog *slog.Logger) error {
	cfg := l.cfg
	hosts := map[netip.Prefix]int{}
	next := func(p Place) (netip.Addr, error) {
		n := hosts[p.Prefix]
		hosts[p.Prefix] = n + 1
		return hostIn(p.Prefix, n)
	}
	n := cfg.Seeders + cfg.Leechers
	for i := range n {
		p := &peer{
			index:    i,
			family:   cfg.Family,
			ipv6:     cfg.IPv6,
			role:     RoleSeeder,
			nodeID:   randID(r),
			starting: starting,
			stored:   l.stored,
			alogger:  alogger,
			logger:   libLog.With("lab_peer", i),
			dataDir:  filepath.Join(l.dir, "data"),
		}
		// A BEP 20 peer id: anacrolix's prefix, then printable random bytes.
		copy(p.peerID[:], "-GT0003-")
		const alnum = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		for k := 8; k < 20; k++ {
			p.peerID[k] = alnum[r.IntN(len(alnum))]
		}
		if i >= cfg.Seeders {
			p.role = RoleLeecher
			p.dataDir = filepath.Join(l.dir, "leech", fmt.Sprintf("peer-%03d", i))
		}
		// Peers start in France or abroad, never on the VPN: moving there
		// is what a move shows.
		place := Places[r.IntN(len(Places)-1)]
		if cfg.Story && i < min(cfg.Seeders, len(Story)) {
			place = placeIn(Story[i].Departement)
		}
		addr, err := next(place)
		if err != nil {
			return err
		}
		p.addr = addr
		l.peers = append(l.peers, p)
	}
	// Every torrent gets one to three seeders; every seeder at least one
	// torrent.
	seeders := l.peers[:cfg.Seeders]
	for _, t := range l.torrents {
		k := 1 + r.IntN(min(3, len(seeders)))
		for _, s := range r.Perm(len(seeders))[:k] {
			if !slices.Contains(seeders[s].torrents, t) {
				seeders[s].torrents = append(seeders[s].torrents, t)
			}
		}
	}
	for i, s := range seeders {
		if len(s.torrents) == 0 {
			s.torrents = append(s.torrents, l.torrents[i%len(l.torrents)])
		}
	}
	for _, p := range l.peers[cfg.Seeders:] {
		p.torrents = []*Torrent{l.torrents[r.IntN(len(l.torrents))]}
	}
	movers := r.Perm(len(seeders))[:cfg.MovePeers]
	if cfg.Story {
		l.castStory(seeders, &movers)
	}
	// Plan the moves now, so that the manifest's future addresses follow
	// from the seed too.
	l.plannedMoves = nil
	for k, s := range movers {
		to := VPNPlace
		switch {
		case cfg.Story && k == 0 && s < len(Story) && Story[s].MovesTo != "":
			to = placeIn(Story[s].MovesTo)
		case k > 0:
			to = Places[r.IntN(len(Places)-1)]
		}
		addr, err := next(to)
		if err != nil {
			return err
		}
		l.plannedMoves = append(l.plannedMoves, plannedMove{peer: seeders[s], to: addr})
	}
	return nil
}

type plannedMove struct {
	peer *peer
	to   netip.Addr
}

// startMoves moves the planned peers MoveAfter from now, one after the
// other.
func (l *Lab) startMoves(ctx context.Context, _ *rand.Rand) {
	l.movesStarted = true
	if len(l.plannedMoves) == 0 {
		close(l.movesDone)
		return
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.movesDone)
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.cfg.MoveAfter):
		}
		for _, m := range l.plannedMoves {
			from, err := m.peer.move(ctx, m.to, l.cfg.MoveOffline)
			if err != nil && ctx.Err() != nil {
				return // the lab is closing: not a failed move
			}
			l.mu.Lock()
			if err != nil {
				l.moveErr = errors.Join(l.moveErr, err)
			}
			to := m.peer.addrPort()
			mv := Move{
				PeerID: hex.EncodeToString(m.peer.peerID[:]),
				From:   m.peer.primary(from).String(),
				To:     m.peer.primary(to).String(),
				At:     time.Now().UTC(),
			}
			if l.cfg.Family == FamilyBoth {
				mv.From6, mv.To6 = m.peer.on(from, true).String(), m.peer.on(to, true).String()
			}
			l.moves = append(l.moves, mv)
			l.mu.Unlock()
			if err != nil {
				l.logger.Warn("lab peer move failed", "peer", m.peer.index, "err", err)
				continue
			}
			l.logger.Info("lab peer moved", "peer", m.peer.index, "from", mv.From, "to", mv.To)
		}
	}()
}

// WaitMoves waits until every planned move has happened, and reports any
// that failed.
func (l *Lab) WaitMoves(ctx context.Context) error {
	select {
	case <-l.movesDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.moveErr
}

// WaitLeechers waits until every leecher has completed its torrent.
func (l *Lab) WaitLeechers(ctx context.Context) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := true
		for _, p := range l.peers {
			if p.role == RoleLeecher && !p.complete() {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab leechers: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Dir is the lab's work directory.
func (l *Lab) Dir() string { return l.dir }

// Bootstrap returns the addresses of the lab's DHT nodes named as
// bootstrap nodes in the manifest: the first BootstrapNodes (at least
// one) of each family the lab runs on, IPv4 first.
func (l *Lab) Bootstrap() []netip.AddrPort {
	return append(l.BootstrapOf(false), l.BootstrapOf(true)...)
}

// BootstrapOf returns the bootstrap nodes of one family (IPv6 if v6),
// none if the lab does not run on it.
func (l *Lab) BootstrapOf(v6 bool) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range l.nodes {
		if is6(n.addr.Addr()) == v6 && len(out) < max(1, l.cfg.BootstrapNodes) {
			out = append(out, n.addr)
		}
	}
	return out
}

// Family is the address families the lab runs on.
func (l *Lab) Family() Family { return l.cfg.Family }

// hosts returns where a part planned at the IPv4 address a listens: a
// itself, its IPv6 address (IPv6Twin or ::1), or both, IPv4 first.
func (l *Lab) hosts(a netip.Addr) []netip.Addr {
	var out []netip.Addr
	if l.cfg.Family.Has4() {
		out = append(out, a)
	}
	if l.cfg.Family.Has6() {
		out = append(out, ipv6Of(a, l.cfg.IPv6))
	}
	return out
}

// Manifest returns the lab's ground truth now: peers at their current
// addresses, moves so far.
func (l *Lab) Manifest() Manifest {
	m := Manifest{
		Family:    l.cfg.Family,
		Watchlist: l.watchlist,
		GeoDB:     l.geo.City,
		ASNDB:     l.geo.ASN,
		ASNCSV:    l.geo.ASNCSV,
		Providers: l.geo.Providers,
		Seed:      l.cfg.Seed,
		Peers:     []ManifestPeer{},
		Torrents:  []Torrent{},
		Moves:     []Move{},
	}
	for _, a := range l.Bootstrap() {
		m.Bootstrap = append(m.Bootstrap, a.String())
	}
	for _, n := range l.nodes {
		m.DHTNodes = append(m.DHTNodes, n.addr.String())
	}
	if l.sim != nil {
		for _, n := range l.sim.Nodes() {
			m.DHTNodes = append(m.DHTNodes, n.Addr.String())
		}
	}
	if l.tracker != nil {
		m.Tracker = l.tracker.urls[0]
		if len(l.tracker.urls) > 1 {
			m.Tracker6 = l.tracker.urls[1]
		}
	}
	for _, t := range l.torrents {
		m.Torrents = append(m.Torrents, *t)
	}
	for _, p := range l.peers {
		p.mu.Lock()
		plan := netip.AddrPortFrom(p.addr, p.port)
		mp := ManifestPeer{
			Addr:       p.primary(plan).String(),
			Client:     ClientName,
			Infohashes: []string{},
			Role:       p.role,
			PeerID:     hex.EncodeToString(p.peerID[:]),
			NodeID:     hex.EncodeToString(p.nodeID[:]),
			DataDir:    p.dataDir,
		}
		if l.cfg.Family == FamilyBoth {
			mp.Addr6 = p.on(plan, true).String()
		}
		for _, a := range p.prev {
			mp.PreviousAddrs = append(mp.PreviousAddrs, p.primary(a).String())
			if l.cfg.Family == FamilyBoth {
				mp.PreviousAddrs6 = append(mp.PreviousAddrs6, p.on(a, true).String())
			}
		}
		if pl, ok := PlaceOf(p.primary(plan).Addr()); ok {
			mp.Country, mp.Departement, mp.ASN, mp.VPN = pl.Country, pl.Departement, pl.ASN, pl.VPN
		}
		p.mu.Unlock()
		for _, t := range p.torrents {
			if t.InfoHash != "" {
				mp.Infohashes = append(mp.Infohashes, t.InfoHash)
			}
			if t.InfoHashV2 != "" {
				mp.Infohashes = append(mp.Infohashes, t.InfoHashV2)
			}
		}
		m.Peers = append(m.Peers, mp)
	}
	l.mu.Lock()
	m.Moves = append(m.Moves, l.moves...)
	l.mu.Unlock()
	return m
}

// WriteManifest writes the manifest as indented JSON to path.
func (l *Lab) WriteManifest(path string) error {
	b, err := json.MarshalIndent(l.Manifest(), "", "  ")
	if err != nil {
		return fmt.Errorf("lab manifest %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab manifest %s: %w", path, err)
	}
	return nil
}

// Close stops the moves, the clients, the DHT nodes and the tracker, and
// waits for their goroutines. A temporary work directory is removed.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return l.closeErr
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	if l.movesStarted {
		<-l.movesDone
	}
	for _, p := range l.peers {
		p.stop()
	}
	for _, n := range l.nodes {
		n.s.Close()
	}
	if l.sim != nil {
		l.sim.Close()
	}
	var err error
	if l.tracker != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = l.tracker.close(ctx)
		cancel()
	}
	l.wg.Wait()
	if l.tempDir {
		removeAllQuiet(l.dir)
	}
	l.mu.Lock()
	l.closeErr = err
	l.mu.Unlock()
	return err
}

// startSim starts n simulated DHT nodes that know the anacrolix nodes,
// tells each anacrolix node of a few of them, and has the anacrolix nodes
// bootstrap again so that their tables take in the simulated network.
func (l *Lab) startSim(ctx context.Context, n int) error {
	var known []simdht.NodeInfo
	for _, d := range l.nodes {
		known = append(known, simdht.NodeInfo{ID: d.id, Addr: d.addr})
	}
	sc := simdht.DefaultConfig()
	sc.Nodes, sc.Known, sc.Seed, sc.Logger = n, known, l.cfg.Seed, l.logger
	if l.cfg.SimDHTInterval > 0 {
		sc.Interval = l.cfg.SimDHTInterval
	}
	sim, err := simdht.Start(ctx, sc)
	if err != nil {
		return fmt.Errorf("lab simulated DHT: %w", err)
	}
	l.sim = sim
	sn := sim.Nodes()
	r := rand.New(rand.NewPCG(l.cfg.Seed, 0x5eed))
	for _, d := range l.nodes {
		for range min(32, len(sn)) {
			o := sn[r.IntN(len(sn))]
			d.s.AddNode(krpc.NodeInfo{ID: o.ID, Addr: krpc.NodeAddr{IP: o.Addr.Addr().AsSlice(), Port: int(o.Addr.Port())}})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, d := range l.nodes {
		g.Go(func() error {
			_, err := d.s.BootstrapContext(gctx)
			if err != nil && gctx.Err() == nil {
				l.logger.Debug("lab DHT bootstrap into the simulated nodes", "node", d.addr.String(), "err", err)
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("lab DHT bootstrap: %w", err)
	}
	return nil
}

// stored reports whether a lab DHT node of at's family stores at under
// key.
func (l *Lab) stored(key [20]byte, at netip.AddrPort) bool {
	for _, n := range l.nodes {
		if is6(n.addr.Addr()) != is6(at.Addr()) {
			continue
		}
		for _, a := range n.store.GetPeers(key) {
			ip, ok := netip.AddrFromSlice(a.IP)
			if ok && netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)) == at {
				return true
			}
		}
	}
	return false
}

// SetQueryTap has fn see every query the lab's anacrolix DHT nodes
// receive, before they answer it (nil: none). The hostile lab's DHT
// spoofer uses it.
func (l *Lab) SetQueryTap(fn func(*krpc.Msg, net.Addr)) {
	if fn == nil {
		l.queryTap.Store(nil)
		return
	}
	l.queryTap.Store(&fn)
}

func (l *Lab) tapQuery(m *krpc.Msg, from net.Addr) {
	if fn := l.queryTap.Load(); fn != nil {
		(*fn)(m, from)
	}
}

// SimDHT returns the lab's simulated DHT nodes, nil if it has none (for
// benchmarks that preload info-hashes).
func (l *Lab) SimDHT() *simdht.Network { return l.sim }

// minLevel passes on records at or above a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= h.min && h.Handler.Enabled(ctx, lv)
}

func (h minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(a), h.min}
}

func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }

// castStory gives the story's seeders their watched torrent and puts the
// story's mover first among the movers, when there are moves at all.
func (l *Lab) castStory(seeders []*peer, movers *[]int) {
	for i, s := range seeders[:min(len(seeders), len(Story))] {
		if l.cfg.Watched == 0 {
			break
		}
		t := l.torrents[Story[i].Watched%l.cfg.Watched]
		if !slices.Contains(s.torrents, t) {
			s.torrents = append([]*Torrent{t}, s.torrents...)
		}
	}
	ms := *movers
	if len(ms) == 0 || len(seeders) <= StoryMover {
		return
	}
	if k := slices.Index(ms, StoryMover); k >= 0 {
		ms[0], ms[k] = ms[k], ms[0]
	} else {
		ms[0] = StoryMover
	}
}
