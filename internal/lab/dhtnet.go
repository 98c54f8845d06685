package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// peerStore keeps the peers announced to one DHT node. The library's
// peer_store.InMemory (dht v2.23.0) returns broken addresses (NOTES.md), so
// the lab keeps krpc.NodeAddr values itself. Entries never expire: a peer
// that moved stays listed at its old address, as on the real DHT until
// the entry times out.
type peerStore struct {
	mu  sync.Mutex
	m   map[metainfo.Hash][]krpc.NodeAddr
	max int
}

func newPeerStore() *peerStore {
	return &peerStore{m: map[metainfo.Hash][]krpc.NodeAddr{}, max: 200}
}

func (s *peerStore) AddPeer(ih metainfo.Hash, a krpc.NodeAddr) {
	// Keep IPv4 peers in 4-byte form, so that replies use the 6-byte
	// compact encoding.
	if ip4 := a.IP.To4(); ip4 != nil {
		a.IP = ip4
	}
	a.IP = append(net.IP(nil), a.IP...)
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[ih]
	for i, p := range l {
		if p.IP.Equal(a.IP) && p.Port == a.Port {
			// Move to the end: most recently announced last.
			copy(l[i:], l[i+1:])
			l[len(l)-1] = a
			return
		}
	}
	if len(l) >= s.max {
		l = l[1:]
	}
	s.m[ih] = append(l, a)
}

func (s *peerStore) GetPeers(ih metainfo.Hash) []krpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.m[ih]
	out := make([]krpc.NodeAddr, len(l))
	copy(out, l)
	return out
}

// dhtNode is one lab DHT node: a real anacrolix dht.Server.
type dhtNode struct {
	s     *dht.Server
	store *peerStore
	addr  netip.AddrPort
	id    [20]byte
}

// dhtServerConfig is the configuration every DHT server of the lab uses,
// the lab's own nodes and the torrent clients' nodes alike: its own send
// limiter (the library's default is one 25/s bucket shared by the whole
// process), lab starting nodes of its own family only, and a working peer
// store. cfg.Conn must be set: its family decides what the server asks
// for (n6 on IPv6: a node asked only for n4 over IPv6 answers no nodes)
// and which starting nodes it gets.
func dhtServerConfig(cfg *dht.ServerConfig, id [20]byte, starting func() []netip.AddrPort, logger alog.Logger) *peerStore {
	store := newPeerStore()
	v6 := connIs6(cfg.Conn)
	cfg.NodeId = krpc.ID(id)
	cfg.NoSecurity = true
	cfg.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	cfg.PeerStore = store
	cfg.Store = bep44.NewMemory()
	cfg.Exp = 2 * time.Hour
	cfg.DefaultWant = []krpc.Want{krpc.WantNodes}
	if v6 {
		cfg.DefaultWant = []krpc.Want{krpc.WantNodes6}
	}
	cfg.QueryResendDelay = func() time.Duration { return time.Second }
	cfg.Logger = logger
	cfg.StartingNodes = func() ([]dht.Addr, error) {
		var out []dht.Addr
		for _, a := range starting() {
			if is6(a.Addr()) == v6 {
				out = append(out, dht.NewAddr(net.UDPAddrFromAddrPort(a)))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("lab: no starting nodes")
		}
		return out, nil
	}
	return store
}

// is6 reports whether a is an IPv6 address (not an IPv4-mapped one).
func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// connIs6 reports whether c is bound to an IPv6 address. The torrent
// client's uTP sockets have their own address type: their text is read.
func connIs6(c net.PacketConn) bool {
	if c == nil {
		return false
	}
	if ua, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return is6(ua.AddrPort().Addr())
	}
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	return err == nil && is6(ap.Addr())
}

// startDHT starts a DHT node of each id, the i-th on hosts[i] (127.0.1.1
// onwards, their IPv6 twins, or ::1 for all), and joins them into one
// network: each node is told of a few others, then every node bootstraps
// (an iterative find_node for its own id). The hosts are of one family: a
// lab on both runs one network per family (BEP 32).
//
// onQuery, if set, sees every query a node receives before the node
// answers it (the hostile lab's DHT spoofer listens there, as an attacker
// who sees the sensor's queries would).
func startDHT(ctx context.Context, ids [][20]byte, hosts []netip.Addr, logger alog.Logger, slogger *slog.Logger, onQuery func(*krpc.Msg, net.Addr)) ([]*dhtNode, error) {
	nodes := make([]*dhtNode, 0, len(ids))
	var addrs []netip.AddrPort
	var mu sync.Mutex
	starting := func() []netip.AddrPort {
		mu.Lock()
		defer mu.Unlock()
		return append([]netip.AddrPort(nil), addrs...)
	}
	closeAll := func() {
		for _, n := range nodes {
			n.s.Close()
		}
	}
	for i, id := range ids {
		ip := hosts[i]
		network := "udp4"
		if is6(ip) {
			network = "udp6"
		}
		conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("lab DHT node %d on %s: %w", i, ip, err)
		}
		var sc dht.ServerConfig
		sc.Conn = conn
		store := dhtServerConfig(&sc, id, starting, logger)
		if onQuery != nil {
			sc.OnQuery = func(m *krpc.Msg, from net.Addr) bool {
				onQuery(m, from)
				return true
			}
		}
		s, err := dht.NewServer(&sc)
		if err != nil {
			conn.Close()
			closeAll()
			return nil, fmt.Errorf("lab DHT node %d on %s: %w", i, ip, err)
		}
		ap := conn.LocalAddr().(*net.UDPAddr).AddrPort()
		nodes = append(nodes, &dhtNode{s: s, store: store, addr: ap, id: id})
		mu.Lock()
		addrs = append(addrs, ap)
		mu.Unlock()
	}
	// Seed each routing table with a few neighbours, so that bootstrap
	// does not start every node from the same starting list.
	for i, n := range nodes {
		for _, d := range []int{1, 2, 5, 11} {
			if len(nodes) <= d {
				continue
			}
			o := nodes[(i+d)%len(nodes)]
			n.s.AddNode(krpc.NodeInfo{ID: o.id, Addr: krpc.NodeAddr{IP: o.addr.Addr().AsSlice(), Port: int(o.addr.Port())}})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, n := range nodes {
		g.Go(func() error {
			_, err := n.s.BootstrapContext(gctx)
			if err != nil && gctx.Err() == nil {
				slogger.Debug("lab DHT bootstrap", "node", n.addr.String(), "err", err)
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		closeAll()
		return nil, fmt.Errorf("lab DHT bootstrap: %w", err)
	}
	return nodes, nil
}
