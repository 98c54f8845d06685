// Package dhtnode is the sensor's part in the BitTorrent DHT (BEP 5, 32,
// 42, 51): several node identities on the sensor's addresses, one UDP
// socket and routing table each, of one address family each (the IPv4
// and IPv6 DHTs are two networks); the answers they give, as correct,
// quiet nodes; the queries they send, matched to their answers; iterative
// lookups (after anacrolix/dht's traversal, lookup.go); the bootstrap and
// upkeep of the routing tables; and re-polls of the nodes a lookup ended
// on (repoll.go).
//
// It tells the sensor (Handler) what it hears about watched info-hashes
// and what lookups find; what that makes of a peer is the sensor's to
// decide. It must never return peers for any info-hash, never announce
// the sensor, never take a reply from an address it did not ask, never
// send outside the scope guard or to the other family from a socket, and
// never keep anything of an info-hash that is not watched.
package dhtnode

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// K is the Kademlia bucket size and the number of closest nodes a lookup
// converges on (BEP 5).
const K = 8

// Config is the DHT part's configuration; the sensor's Config fills it
// and validates it (bittorrent.Config.Validate).
type Config struct {
	// Listen are the sensor's addresses, at most one of each family;
	// Identities identities run on each.
	Listen     []netip.Addr
	Identities int
	// Bootstrap are the nodes to join through, of either family.
	Bootstrap []netip.AddrPort
	// Alpha is how many queries one lookup keeps in flight.
	Alpha int
	// QueryTimeout bounds the wait for one reply.
	QueryTimeout time.Duration
	// RefreshEvery is how often each identity refreshes its table.
	RefreshEvery time.Duration
	// LookupConcurrency bounds the bootstrap's lookups at once (with the
	// number of identities) and, times Alpha, the re-polls at once.
	LookupConcurrency int
	// LookupEvery is how often the sensor looks each watched info-hash
	// up; Repolls re-polls are spread evenly between two lookups, each
	// trying up to RepollNodes of the last lookup's closest responders.
	// Repolls 0: none.
	LookupEvery          time.Duration
	Repolls, RepollNodes int
	// PerAddrPerSecond is the per-address budget's rate (netlimit), for
	// how long a lookup puts off a query the budget refused; 0: none.
	PerAddrPerSecond float64
	// Clock returns the time; tests inject one.
	Clock func() time.Time
}

// Handler is the sensor's side: what the identities hear about watched
// info-hashes, and the peers re-polls name. Its methods are called from
// the identities' read loops and the re-poll workers; a Query's bytes and
// message are valid only during the call.
type Handler interface {
	// Watched reports whether ih is watched: only then is a query about
	// it told, and the answer that carried a token kept.
	Watched(ih krpc.ID) bool
	// GetPeers is told a get_peers query for a watched info-hash, before
	// it is answered.
	GetPeers(ctx context.Context, q Query)
	// Announce is told an announce_peer with a valid token for a watched
	// info-hash.
	Announce(ctx context.Context, a Announce)
	// RepollPeers is told the peers a re-poll of key named that no lookup
	// or re-poll named since key's last lookup.
	RepollPeers(ctx context.Context, key routing.ID, peers map[netip.AddrPort]PeerSource)
}

// Query is a query one of the identities received.
type Query struct {
	Msg   *krpc.Msg      // decoded
	Raw   []byte         // as received
	From  netip.AddrPort // the datagram's source
	Local netip.AddrPort // the identity's socket that received it
	At    time.Time
}

// Announce is an announce_peer whose token is valid for its source
// address and info-hash.
type Announce struct {
	Query
	// ListenPort is where the announcer says it takes peers: the "port"
	// argument, or the source port with implied_port.
	ListenPort uint16
	// Proof is the get_peers that asked for the token and the answer
	// that carried it, as they went over the wire; nil when that answer
	// was not kept (the info-hash was not watched when it went out, or
	// the bounded store dropped it).
	Proof *TokenAnswer
}

// TokenAnswer is a get_peers for a watched info-hash and the answer that
// carried its token.
type TokenAnswer struct {
	To      netip.AddrPort // the querier, where the answer went
	Query   []byte         // the get_peers received
	QueryAt time.Time
	Reply   []byte // the answer sent, with the token
	ReplyAt time.Time
}

// DHT is the sensor's DHT identities and what they do.
type DHT struct {
	cfg   Config
	guard *scope.Guard
	lim   *netlimit.Limiter
	log   *slog.Logger
	h     Handler

	nodes []*Node       // set once by Listen before ready is closed
	ready chan struct{} // closed when the identities listen
	heard heardNodes    // nodes of one family named to the other's identities (family.go)
	rp    repolls       // re-polls due (repoll.go)

	packets, sent, badPackets, timeouts, scopeRefused atomic.Uint64
	lookupQueries                                     atomic.Uint64 // queries sent by get_peers lookups
	repollsSent, repollPeers                          atomic.Uint64
	queries                                           queryCounts
	// bootstrapTook is how long the identities' bootstrap before the
	// first lookup round took (ns; 0 until it has ended).
	bootstrapTook atomic.Int64
}

// New returns the DHT part; Listen opens its sockets, Run runs it. Every
// socket goes through guard; lim is the sensor's wire budget.
func New(cfg Config, guard *scope.Guard, lim *netlimit.Limiter, h Handler, log *slog.Logger) (*DHT, error) {
	switch {
	case guard == nil:
		return nil, errors.New("dht: no scope guard")
	case lim == nil:
		return nil, errors.New("dht: no wire budget")
	case h == nil:
		return nil, errors.New("dht: no handler")
	case len(cfg.Listen) == 0 || cfg.Identities < 1:
		return nil, errors.New("dht: no listen address or no identity")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Listen = slices.Clone(cfg.Listen)
	return &DHT{cfg: cfg, guard: guard, lim: lim, log: log, h: h, ready: make(chan struct{}),
		rp: repolls{state: map[routing.ID]*repollState{}}}, nil
}

// Listen opens the identities' sockets: Identities on each listen
// address, each address's spread over the whole key space (each family's
// DHT is a network of its own). On an error it closes what it opened.
func (d *DHT) Listen(ctx context.Context) error {
	var nodes []*Node
	for _, listen := range d.cfg.Listen {
		for _, id := range spreadIDs(listen, d.cfg.Identities) {
			n, err := d.newNode(ctx, len(nodes), id, listen)
			if err != nil {
				for _, m := range nodes {
					m.conn.Close()
				}
				return err
			}
			nodes = append(nodes, n)
		}
	}
	d.nodes = nodes
	close(d.ready)
	return nil
}

// Run reads every identity's socket, fills the routing tables (the
// bootstrap; joined is closed when it ends), keeps them fresh, and runs
// the re-polls, until ctx ends. Listen must have succeeded. It returns
// after every goroutine it started has stopped, closing the sockets.
func (d *DHT) Run(ctx context.Context, joined chan<- struct{}) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, n := range d.nodes {
		g.Go(func() error { return n.readLoop(ctx) })
	}
	g.Go(func() error {
		<-ctx.Done()
		for _, n := range d.nodes {
			n.conn.Close()
		}
		return nil
	})
	// The first lookup round waits for the identities' tables: started on
	// empty ones, it would ask only the bootstrap nodes.
	g.Go(func() error {
		d.bootstrap(ctx)
		close(joined)
		return d.maintain(ctx)
	})
	if d.cfg.Repolls > 0 {
		g.Go(func() error { return d.repollLoop(ctx) })
	}
	return g.Wait()
}

// Ready is closed once the identities listen.
func (d *DHT) Ready() <-chan struct{} { return d.ready }

func (d *DHT) isReady() bool {
	select {
	case <-d.ready:
		return true
	default:
		return false
	}
}

// Nodes returns the identities; none until Ready.
func (d *DHT) Nodes() []*Node {
	if !d.isReady() {
		return nil
	}
	return d.nodes
}

// Addrs returns the identities' UDP addresses; empty until Ready.
func (d *DHT) Addrs() []netip.AddrPort {
	nodes := d.Nodes()
	out := make([]netip.AddrPort, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.addr)
	}
	return out
}

// IsIdentity reports whether ap is one of the identities' sockets.
func (d *DHT) IsIdentity(ap netip.AddrPort) bool {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for _, n := range d.Nodes() {
		if n.addr == ap {
			return true
		}
	}
	return false
}

// HasPort reports whether port is the UDP port of one of the identities
// (of either family).
func (d *DHT) HasPort(port uint16) bool {
	for _, n := range d.Nodes() {
		if n.addr.Port() == port {
			return true
		}
	}
	return false
}

// BootstrapTook is how long the bootstrap before the first lookup round
// took; 0 until it has ended.
func (d *DHT) BootstrapTook() time.Duration { return time.Duration(d.bootstrapTook.Load()) }

// Stats are the DHT part's counters.
type Stats struct {
	Packets       uint64            // datagrams received
	Sent          uint64            // datagrams sent
	BadPackets    uint64            // datagrams that did not decode
	Queries       map[string]uint64 // queries answered, by method (those seen only)
	Timeouts      uint64            // queries of ours that got no reply
	ScopeRefused  uint64            // sends the scope guard refused
	LookupQueries uint64            // queries sent by get_peers lookups
	Repolls       uint64            // re-poll get_peers sent
	RepollPeers   uint64            // peers first named by a re-poll since the last lookup
	RoutingNodes  int               // nodes in all routing tables
	// Families are each family's counters ("ipv4", "ipv6"), the
	// families the sensor runs only.
	Families map[string]FamilyStats
	// The anti-spoofing and token counters, summed over the identities.
	WrongSource, UnknownTx           uint64 // replies dropped, by reason
	AnnounceProven, AnnounceUnproven uint64 // valid-token announces, by whether the token's answer was kept
	TokenEvicted                     uint64 // kept answers dropped for want of room
	TokenKept                        int    // kept answers
}

// FamilyStats are one address family's DHT counters.
type FamilyStats struct {
	Listen       netip.Addr // the sensor's address of the family
	Identities   int        // DHT identities on it
	Packets      uint64     // datagrams received
	Sent         uint64     // datagrams sent
	RoutingNodes int        // nodes in its identities' routing tables
}

// Stats returns the counters.
func (d *DHT) Stats() Stats {
	st := Stats{
		Packets: d.packets.Load(), Sent: d.sent.Load(), BadPackets: d.badPackets.Load(),
		Timeouts: d.timeouts.Load(), ScopeRefused: d.scopeRefused.Load(), LookupQueries: d.lookupQueries.Load(),
		Repolls: d.repollsSent.Load(), RepollPeers: d.repollPeers.Load(), Queries: d.queries.snapshot(),
		Families: map[string]FamilyStats{},
	}
	for _, l := range d.cfg.Listen {
		st.Families[FamilyOf(l)] = FamilyStats{Listen: l}
	}
	for _, n := range d.Nodes() {
		l := n.table.Len()
		st.RoutingNodes += l
		f := st.Families[FamilyName(n.v6)]
		f.Identities++
		f.Packets += n.rx.Load()
		f.Sent += n.tx.Load()
		f.RoutingNodes += l
		st.Families[FamilyName(n.v6)] = f
		st.WrongSource += n.dropWrongSource.Load()
		st.UnknownTx += n.dropUnknownTx.Load()
		st.AnnounceProven += n.announceProven.Load()
		st.AnnounceUnproven += n.announceUnproven.Load()
		live, ev := n.replies.stats()
		st.TokenKept += live
		st.TokenEvicted += ev
	}
	return st
}

// queryCounts counts the queries answered, by method: one atomic counter
// each, for the methods a node answers and the two refusals.
type queryCounts struct {
	ping, findNode, getPeers, announcePeer, sampleInfohashes atomic.Uint64
	badToken, unknown                                        atomic.Uint64
}

// Names of the methods counted, as the metric's label says them.
const (
	queryBadToken = "announce_peer_bad_token"
	queryUnknown  = "unknown"
)

func (q *queryCounts) counter(m krpc.Method) *atomic.Uint64 {
	switch m {
	case krpc.MethodPing:
		return &q.ping
	case krpc.MethodFindNode:
		return &q.findNode
	case krpc.MethodGetPeers:
		return &q.getPeers
	case krpc.MethodAnnouncePeer:
		return &q.announcePeer
	case krpc.MethodSampleInfohashes:
		return &q.sampleInfohashes
	}
	return &q.unknown
}

// snapshot returns the counts of the methods seen, by name.
func (q *queryCounts) snapshot() map[string]uint64 {
	out := map[string]uint64{}
	for _, m := range []krpc.Method{krpc.MethodPing, krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodAnnouncePeer, krpc.MethodSampleInfohashes} {
		if v := q.counter(m).Load(); v > 0 {
			out[m.String()] = v
		}
	}
	if v := q.badToken.Load(); v > 0 {
		out[queryBadToken] = v
	}
	if v := q.unknown.Load(); v > 0 {
		out[queryUnknown] = v
	}
	return out
}
