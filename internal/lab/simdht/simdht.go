// Package simdht is a light DHT of Vigil's own for the lab: thousands of
// BEP 5 nodes on loopback, each with its own UDP socket and node id, that
// route, hand out write tokens, store announced peers, return them, and
// answer BEP 51 sample_infohashes, which the third-party nodes of the lab
// (anacrolix/dht) do not. It exists for scale: ten thousand simulated
// nodes holding a million synthetic info-hashes cost a few hundred MB,
// where as many full third-party nodes would not fit.
//
// Messages are encoded and decoded with anacrolix/dht's krpc package, a
// codec independent of the sensor's: a bug in the sensor's BEP 51 decoding
// cannot hide behind the same bug in the nodes it talks to.
//
// It must never send to, listen on or learn of anything outside
// 127.0.0.0/8: sockets bind to loopback addresses, and nodes neither store
// nor hand out a node or peer address outside it. The one wildcard socket
// of a Massive network (a million nodes and more, massive.go) is opened
// only in a namespace whose interfaces are all loopback, and answers only
// 127.0.0.0/8.
package simdht

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// ID is a node id or info-hash.
type ID = [20]byte

// NodeInfo is a node's id and address.
type NodeInfo struct {
	ID   ID
	Addr netip.AddrPort
}

// Config is a simulated network's configuration.
type Config struct {
	// Nodes is how many nodes to run (1 to 60,000).
	Nodes int
	// FirstAddr is the address of node 0; node i listens on the i-th usable
	// address after it (host bytes .0 and .255 are skipped). It must be in
	// 127.0.0.0/8. Default 127.64.0.1, clear of the lab's places.
	FirstAddr netip.Addr
	// K is the bucket size and the number of nodes a reply names (8).
	K int
	// Interval is the BEP 51 "interval" the nodes report: how long a
	// sampler should wait before asking the same node again.
	Interval time.Duration
	// Samples is the most info-hashes one sample_infohashes reply carries
	// (20 fit a datagram comfortably with 8 nodes).
	Samples int
	// MaxPeers bounds the peers kept per info-hash on one node; MaxHashes
	// the announced info-hashes one node keeps (preloaded ones aside).
	MaxPeers, MaxHashes int
	// Known are nodes outside this network (the lab's anacrolix nodes)
	// that every node knows from the start.
	Known []NodeInfo
	// Seed seeds the node ids and the initial routing tables.
	Seed uint64
	// Logger receives start and stop records. Nil: discard.
	Logger *slog.Logger
}

// DefaultConfig is a network of 1000 nodes sampling every 10 seconds.
func DefaultConfig() Config {
	return Config{
		Nodes: 1000, FirstAddr: netip.MustParseAddr("127.64.0.1"), K: 8,
		Interval: 10 * time.Second, Samples: 20, MaxPeers: 100, MaxHashes: 10000, Seed: 1,
	}
}

// ErrConfig is a Config the network cannot run.
var ErrConfig = errors.New("simdht: invalid config")

func (c *Config) validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > 60000:
		return fmt.Errorf("%w: Nodes %d: want 1 to 60000", ErrConfig, c.Nodes)
	case !c.FirstAddr.Is4() || !c.FirstAddr.IsLoopback():
		return fmt.Errorf("%w: FirstAddr %v: want an IPv4 address in 127.0.0.0/8", ErrConfig, c.FirstAddr)
	case c.K < 1 || c.K > 32:
		return fmt.Errorf("%w: K %d: want 1 to 32", ErrConfig, c.K)
	case c.Samples < 0 || c.Samples > 100:
		return fmt.Errorf("%w: Samples %d: want 0 to 100", ErrConfig, c.Samples)
	case c.Interval < 0 || c.Interval > 6*time.Hour:
		return fmt.Errorf("%w: Interval %v: want 0 to 6h", ErrConfig, c.Interval)
	case c.MaxPeers < 1 || c.MaxHashes < 1:
		return fmt.Errorf("%w: MaxPeers and MaxHashes must be positive", ErrConfig)
	}
	for _, k := range c.Known {
		if !k.Addr.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("%w: known node %v is not on loopback", ErrConfig, k.Addr)
		}
	}
	if _, err := nodeAddr(c.FirstAddr, c.Nodes-1); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

// nodeAddr is the i-th usable address from first.
func nodeAddr(first netip.Addr, i int) (netip.Addr, error) {
	b := first.As4()
	base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	// Skip host bytes 0 and 255: 254 usable addresses per /24.
	off := uint32(base&0xff) - 1
	if base&0xff == 0 || base&0xff == 255 {
		return netip.Addr{}, fmt.Errorf("first address %v ends in .0 or .255", first)
	}
	n := uint64(off) + uint64(i)
	v := uint64(base&^0xff) + (n/254)<<8 + n%254 + 1
	if v>>24 != 127 {
		return netip.Addr{}, fmt.Errorf("node %d would be outside 127.0.0.0/8", i)
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// Network is a running simulated DHT.
type Network struct {
	cfg   Config
	nodes []*Node
	byID  []int // node indexes sorted by id
	log   *slog.Logger
	wg    sync.WaitGroup

	// Loss, as fractions of 1<<32 (0: none): queries dropped on arrival
	// and replies dropped before sending. See SetLoss.
	queryDrop, replyDrop atomic.Uint64
	left, joined         atomic.Uint64 // churn events so far

	done      chan struct{} // closed by Close: stops churn
	closeOnce sync.Once
}

// Stats are a network's counters, summed over its nodes.
type Stats struct {
	Queries     map[string]uint64 // queries answered, by method
	BadPackets  uint64            // datagrams that did not decode
	Announces   uint64            // announce_peer with a valid token
	BadTokens   uint64            // announce_peer refused for its token
	Hashes      int               // info-hashes held, over all nodes
	TableLen    int               // routing entries, over all nodes
	SampledOut  uint64            // info-hashes sent in sample_infohashes replies
	QueriesSent uint64            // queries the nodes sent (pings of known nodes)
	Dropped     uint64            // queries and replies dropped by SetLoss
	Silent      int               // nodes silent now (churn: gone, or not yet joined)
	Left        uint64            // nodes that went silent through churn
	Joined      uint64            // nodes that came up through churn
}

// Start opens one UDP socket per node, builds every node's routing table
// (Kademlia buckets filled from the whole network, as if each node had run
// for a while), adds the known outside nodes, and serves until Close.
func Start(ctx context.Context, cfg Config) (*Network, error) {
	def := DefaultConfig()
	if !cfg.FirstAddr.IsValid() {
		cfg.FirstAddr = def.FirstAddr
	}
	if cfg.K == 0 {
		cfg.K = def.K
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = def.MaxPeers
	}
	if cfg.MaxHashes == 0 {
		cfg.MaxHashes = def.MaxHashes
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := raiseFileLimit(uint64(cfg.Nodes) + 1024); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nw := &Network{cfg: cfg, log: log, done: make(chan struct{})}
	r := mrand.New(mrand.NewPCG(cfg.Seed, 0x51d))
	t0 := time.Now()
	for i := range cfg.Nodes {
		if err := ctx.Err(); err != nil {
			nw.Close()
			return nil, err
		}
		ip, _ := nodeAddr(cfg.FirstAddr, i)
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			nw.Close()
			return nil, fmt.Errorf("simdht node %d on %v: %w", i, ip, err)
		}
		var id ID
		for k := range id {
			id[k] = byte(r.Uint32())
		}
		n := &Node{nw: nw, id: id, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
			store: map[ID]int32{}, rnd: mrand.New(mrand.NewPCG(r.Uint64(), uint64(i)))}
		_, _ = rand.Read(n.secret[0][:])
		n.secret[1] = n.secret[0]
		n.secretAt = time.Now()
		nw.nodes = append(nw.nodes, n)
	}
	nw.byID = make([]int, len(nw.nodes))
	for i := range nw.byID {
		nw.byID[i] = i
	}
	slices.SortFunc(nw.byID, func(a, b int) int { return bytes.Compare(nw.nodes[a].id[:], nw.nodes[b].id[:]) })
	for _, n := range nw.nodes {
		nw.fillTable(n, r)
		for _, k := range cfg.Known {
			n.learn(k.ID, k.Addr)
		}
	}
	for _, n := range nw.nodes {
		nw.wg.Add(1)
		go func() {
			defer nw.wg.Done()
			n.serve()
		}()
	}
	log.Info("simulated DHT up", "nodes", len(nw.nodes), "first", nw.nodes[0].addr.String(),
		"took", time.Since(t0).Round(time.Millisecond))
	return nw, nil
}

// raiseFileLimit makes room for need open files, up to the hard limit.
// Go raises the soft limit to the hard one at start-up on Linux; this
// covers programs that lowered it, and names the problem if the hard
// limit itself is too low.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil // not knowable here: let the sockets say
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		return fmt.Errorf("simdht: %d nodes need %d open files, but RLIMIT_NOFILE's hard limit is %d (raise it with ulimit -Hn)", need-1024, need, lim.Max)
	}
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("simdht: raising RLIMIT_NOFILE to %d: %w", need, err)
	}
	return nil
}

// fillTable gives n up to K nodes of every non-empty bucket: the ids
// sharing a prefix with n are a contiguous run of the sorted ids, so each
// bucket is found by binary searches.
func (nw *Network) fillTable(n *Node, r *mrand.Rand) {
	for d := 0; d < 160; d++ {
		// Nodes sharing at least d leading bits with n: if only n, every
		// deeper bucket is empty.
		a, b := nw.prefixRun(n.id, d)
		if b-a <= 1 {
			break
		}
		// Bucket d: the first d bits equal, bit d different.
		flipped := n.id
		flipped[d/8] ^= 0x80 >> (d % 8)
		a, b = nw.prefixRun(flipped, d+1)
		if a >= b {
			continue
		}
		cnt := b - a
		for _, j := range r.Perm(cnt)[:min(cnt, nw.cfg.K)] {
			m := nw.nodes[nw.byID[a+j]]
			n.learn(m.id, m.addr)
		}
	}
}

// prefixRun is the range of sorted indexes whose ids share the first bits
// bits of x.
func (nw *Network) prefixRun(x ID, bits int) (int, int) {
	lo, hi := x, x
	for i := bits; i < 160; i++ {
		m := byte(0x80) >> (i % 8)
		lo[i/8] &^= m
		hi[i/8] |= m
	}
	a := nw.search(lo)
	b := nw.search(hi)
	if b < len(nw.byID) && nw.nodes[nw.byID[b]].id == hi {
		b++
	}
	return a, b
}

// search is the index of the first sorted id >= x.
func (nw *Network) search(x ID) int {
	i, _ := slices.BinarySearchFunc(nw.byID, x, func(j int, x ID) int { return bytes.Compare(nw.nodes[j].id[:], x[:]) })
	return i
}

// Nodes returns every node's id and address.
func (nw *Network) Nodes() []NodeInfo {
	out := make([]NodeInfo, len(nw.nodes))
	for i, n := range nw.nodes {
		out[i] = NodeInfo{ID: n.id, Addr: n.addr}
	}
	return out
}

// Closest returns the k nodes of the network closest to target (XOR),
// exactly: it descends the implicit binary trie of the sorted ids, taking
// the subtree on target's side of each bit before the other.
func (nw *Network) Closest(target ID, k int) []NodeInfo {
	var pick []int
	var walk func(a, b, d int)
	walk = func(a, b, d int) {
		if a >= b || len(pick) >= k {
			return
		}
		if b-a <= k-len(pick) || d == 160 {
			pick = append(pick, nw.byID[a:b]...)
			return
		}
		m := byte(0x80) >> (d % 8)
		// Ids in [a,b) share d leading bits: those with bit d clear come first.
		mid := a + sortSearch(b-a, func(i int) bool { return nw.nodes[nw.byID[a+i]].id[d/8]&m != 0 })
		if target[d/8]&m == 0 {
			walk(a, mid, d+1)
			walk(mid, b, d+1)
		} else {
			walk(mid, b, d+1)
			walk(a, mid, d+1)
		}
	}
	walk(0, len(nw.byID), 0)
	out := make([]NodeInfo, 0, len(pick))
	for _, j := range pick {
		out = append(out, NodeInfo{ID: nw.nodes[j].id, Addr: nw.nodes[j].addr})
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmpDist(target, a.ID, b.ID) })
	return out[:min(k, len(out))]
}

func sortSearch(n int, f func(int) bool) int {
	lo, hi := 0, n
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if !f(h) {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo
}

// Preload stores info-hashes with their peers in bulk, each on the
// replicas nodes closest to it, as if announced. It is for benchmarks: a
// million info-hashes take a second or two. Preloaded entries do not count
// against MaxHashes. Peers outside 127.0.0.0/8 are dropped.
func (nw *Network) Preload(hashes []ID, peers func(i int) []netip.AddrPort, replicas int) {
	replicas = max(1, replicas)
	for i, h := range hashes {
		ps := slices.DeleteFunc(slices.Clone(peers(i)), func(p netip.AddrPort) bool { return !p.Addr().Unmap().IsLoopback() })
		for _, ni := range nw.Closest(h, replicas) {
			n := nw.nodeAt(ni.Addr)
			if n == nil {
				continue
			}
			n.mu.Lock()
			n.addPeersLocked(h, ps, true)
			n.mu.Unlock()
		}
	}
}

func (nw *Network) nodeAt(a netip.AddrPort) *Node {
	first := nw.cfg.FirstAddr.As4()
	b := a.Addr().As4()
	fb := uint32(first[0])<<24 | uint32(first[1])<<16 | uint32(first[2])<<8 | uint32(first[3])
	ab := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if ab < fb {
		return nil
	}
	// Invert nodeAddr: count usable addresses from first to a.
	n := (ab>>8-fb>>8)*254 + (ab & 0xff) - (fb & 0xff)
	if int(n) >= len(nw.nodes) || nw.nodes[n].addr != a {
		return nil
	}
	return nw.nodes[n]
}

// Holders returns the nodes that hold info-hash ih (announced or
// preloaded): ground truth for tests.
func (nw *Network) Holders(ih ID) []NodeInfo {
	var out []NodeInfo
	for _, n := range nw.nodes {
		n.mu.Lock()
		_, ok := n.store[ih]
		n.mu.Unlock()
		if ok {
			out = append(out, NodeInfo{ID: n.id, Addr: n.addr})
		}
	}
	return out
}

// Stats sums the nodes' counters.
func (nw *Network) Stats() Stats {
	st := Stats{Queries: map[string]uint64{}, Left: nw.left.Load(), Joined: nw.joined.Load()}
	for _, n := range nw.nodes {
		for m := range methods {
			st.Queries[methods[m]] += n.queries[m].Load()
		}
		st.BadPackets += n.bad.Load()
		st.Announces += n.announces.Load()
		st.BadTokens += n.badTokens.Load()
		st.SampledOut += n.sampledOut.Load()
		st.QueriesSent += n.sent.Load()
		st.Dropped += n.dropped.Load()
		if n.silent.Load() {
			st.Silent++
		}
		n.mu.Lock()
		st.Hashes += len(n.items)
		st.TableLen += len(n.table)
		n.mu.Unlock()
	}
	return st
}

// Close stops every node and waits for their goroutines.
func (nw *Network) Close() error {
	nw.closeOnce.Do(func() {
		close(nw.done)
		for _, n := range nw.nodes {
			n.conn.Close()
		}
		nw.wg.Wait()
		nw.log.Info("simulated DHT stopped", "nodes", len(nw.nodes))
	})
	return nil
}

// Method indexes for the per-node counters.
var methods = [...]string{"ping", "find_node", "get_peers", "announce_peer", "sample_infohashes", "unknown"}

func methodIndex(q string) int {
	for i, m := range methods[:len(methods)-1] {
		if m == q {
			return i
		}
	}
	return len(methods) - 1
}

// Node is one simulated DHT node.
type Node struct {
	nw   *Network
	id   ID
	addr netip.AddrPort
	conn *net.UDPConn

	mu       sync.Mutex
	table    []entry      // at most K per bucket
	items    []item       // stored info-hashes, for sampling
	store    map[ID]int32 // info-hash -> index in items
	rnd      *mrand.Rand  // under mu
	secret   [2][16]byte  // token secrets, current and previous
	secretAt time.Time    // when secret[0] was made

	queries                               [len(methods)]atomic.Uint64
	bad, announces, badTokens, sampledOut atomic.Uint64
	sent, dropped                         atomic.Uint64
	announcedHashes                       int
	// silent is a node that answers nothing: gone, or not yet joined
	// (churn). Its socket stays open so that its address is not reused.
	silent atomic.Bool
}

type entry struct {
	id     ID
	addr   netip.AddrPort
	bucket uint8
}

type item struct {
	ih        ID
	peers     []netip.AddrPort
	preloaded bool
}

// ID is the node's id.
func (n *Node) ID() ID { return n.id }

// Addr is the node's UDP address.
func (n *Node) Addr() netip.AddrPort { return n.addr }

// learn adds a node to the routing table if its bucket has room. Nodes
// outside loopback are never kept.
func (n *Node) learn(id ID, a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if id == n.id || !a.Addr().IsLoopback() || a.Port() == 0 {
		return
	}
	b := uint8(commonPrefix(n.id, id))
	n.mu.Lock()
	defer n.mu.Unlock()
	inBucket := 0
	for i := range n.table {
		e := &n.table[i]
		if e.id == id {
			e.addr = a
			return
		}
		if e.bucket == b {
			inBucket++
		}
	}
	if inBucket >= n.nw.cfg.K {
		return
	}
	n.table = append(n.table, entry{id: id, addr: a, bucket: b})
}

// closest returns up to K known nodes closest to target.
func (n *Node) closest(target ID) krpc.CompactIPv4NodeInfo {
	n.mu.Lock()
	es := slices.Clone(n.table)
	n.mu.Unlock()
	// The table never holds the node itself (learn refuses it), so a reply
	// names K other nodes even when the node is among the closest.
	slices.SortFunc(es, func(a, b entry) int { return cmpDist(target, a.id, b.id) })
	k := min(len(es), n.nw.cfg.K)
	out := make(krpc.CompactIPv4NodeInfo, 0, k)
	for _, e := range es[:k] {
		out = append(out, krpc.NodeInfo{ID: e.id, Addr: krpc.NodeAddr{IP: e.addr.Addr().AsSlice(), Port: int(e.addr.Port())}})
	}
	return out
}

func (n *Node) addPeersLocked(ih ID, ps []netip.AddrPort, preloaded bool) {
	i, ok := n.store[ih]
	if !ok {
		if !preloaded && n.announcedHashes >= n.nw.cfg.MaxHashes {
			return
		}
		if !preloaded {
			n.announcedHashes++
		}
		i = int32(len(n.items))
		n.items = append(n.items, item{ih: ih, preloaded: preloaded})
		n.store[ih] = i
	}
	it := &n.items[i]
	for _, p := range ps {
		if slices.Contains(it.peers, p) {
			continue
		}
		if len(it.peers) >= n.nw.cfg.MaxPeers {
			it.peers = it.peers[1:]
		}
		it.peers = append(it.peers, p)
	}
}

// token is the write token for ip.
func (n *Node) token(ip netip.Addr, prev bool) string {
	n.mu.Lock()
	if time.Since(n.secretAt) > 5*time.Minute {
		n.secret[1] = n.secret[0]
		_, _ = rand.Read(n.secret[0][:])
		n.secretAt = time.Now()
	}
	sec := n.secret[0]
	if prev {
		sec = n.secret[1]
	}
	n.mu.Unlock()
	h := sha1.New()
	h.Write(sec[:])
	b := ip.Unmap().As16()
	h.Write(b[:])
	return string(h.Sum(nil)[:8])
}

func (n *Node) serve() {
	// KRPC queries fit one Ethernet frame; a larger datagram is read
	// truncated and fails to decode. 10,000 nodes × 4 KiB is 40 MB, where
	// 64 KiB buffers would take 640 MB.
	buf := make([]byte, 4<<10)
	for {
		sz, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if !from.Addr().IsLoopback() || n.silent.Load() {
			continue
		}
		if n.drop(&n.nw.queryDrop) {
			continue
		}
		var m krpc.Msg
		if err := bencode.Unmarshal(buf[:sz], &m); err != nil {
			n.bad.Add(1)
			continue
		}
		if m.Y != krpc.YQuery || m.A == nil {
			continue // the nodes send no queries of their own; replies are unsolicited
		}
		if out := n.handle(&m, from); out != nil {
			if n.drop(&n.nw.replyDrop) {
				continue
			}
			if _, err := n.conn.WriteToUDPAddrPort(out, from); err == nil {
				n.sent.Add(1)
			}
		}
	}
}

// handle answers one query; it returns the datagram to send back.
func (n *Node) handle(q *krpc.Msg, from netip.AddrPort) []byte {
	mi := methodIndex(q.Q)
	n.queries[mi].Add(1)
	if !q.ReadOnly {
		n.learn(q.A.ID, from)
	}
	r := &krpc.Return{ID: n.id}
	switch q.Q {
	case "ping":
	case "find_node":
		r.Nodes = n.closest(q.A.Target)
	case "get_peers":
		tok := n.token(from.Addr(), false)
		r.Token = &tok
		n.mu.Lock()
		if i, ok := n.store[q.A.InfoHash]; ok {
			for _, p := range n.items[i].peers {
				r.Values = append(r.Values, krpc.NodeAddr{IP: p.Addr().AsSlice(), Port: int(p.Port())})
			}
		}
		n.mu.Unlock()
		r.Nodes = n.closest(q.A.InfoHash)
	case "announce_peer":
		if q.A.Token != n.token(from.Addr(), false) && q.A.Token != n.token(from.Addr(), true) {
			n.badTokens.Add(1)
			return n.errorReply(q.T, krpc.ErrorCodeProtocolError, "bad token")
		}
		port := from.Port()
		if !q.A.ImpliedPort {
			if q.A.Port == nil || *q.A.Port <= 0 || *q.A.Port > 65535 {
				return n.errorReply(q.T, krpc.ErrorCodeProtocolError, "no port")
			}
			port = uint16(*q.A.Port)
		}
		n.announces.Add(1)
		n.mu.Lock()
		n.addPeersLocked(q.A.InfoHash, []netip.AddrPort{netip.AddrPortFrom(from.Addr(), port)}, false)
		n.mu.Unlock()
	case "sample_infohashes":
		n.mu.Lock()
		num := int64(len(n.items))
		k := min(len(n.items), n.nw.cfg.Samples)
		samples := make([]byte, 0, 20*k)
		if k == len(n.items) {
			for _, it := range n.items {
				samples = append(samples, it.ih[:]...)
			}
		} else {
			// A random sample without repetition: k distinct indexes.
			picked := make(map[int]bool, k)
			for len(picked) < k {
				j := n.rnd.IntN(len(n.items))
				if !picked[j] {
					picked[j] = true
					samples = append(samples, n.items[j].ih[:]...)
				}
			}
		}
		n.mu.Unlock()
		n.sampledOut.Add(uint64(k))
		// anacrolix's krpc.CompactInfohashes does not marshal (v2.23.0
		// panics converting [20]byte to a BinaryMarshaler), so the reply
		// is its own struct, still encoded by anacrolix's bencode.
		b, err := bencode.Marshal(sampleReply{T: q.T, Y: krpc.YResponse, V: clientVersion, R: sampleReturn{
			ID: n.id, Nodes: n.closest(q.A.Target), Interval: int64(n.nw.cfg.Interval / time.Second),
			Num: num, Samples: string(samples),
		}})
		if err != nil {
			return nil
		}
		return b
	default:
		return n.errorReply(q.T, krpc.ErrorCodeMethodUnknown, "method unknown")
	}
	b, err := bencode.Marshal(krpc.Msg{T: q.T, Y: krpc.YResponse, R: r, ClientId: clientVersion})
	if err != nil {
		return nil
	}
	return b
}

// clientVersion is the "v" the nodes send: "SM" (simulated) and a version.
const clientVersion = "SM\x00\x01"

// sampleReply is a BEP 51 reply.
type sampleReply struct {
	T string       `bencode:"t"`
	Y string       `bencode:"y"`
	R sampleReturn `bencode:"r"`
	V string       `bencode:"v,omitempty"`
}

type sampleReturn struct {
	ID       krpc.ID                  `bencode:"id"`
	Nodes    krpc.CompactIPv4NodeInfo `bencode:"nodes,omitempty"`
	Interval int64                    `bencode:"interval"`
	Num      int64                    `bencode:"num"`
	// Samples are the info-hashes, 20 bytes each, always present (BEP 51:
	// even when empty, so that samplers tell support from an error).
	Samples string `bencode:"samples"`
}

func (n *Node) errorReply(t string, code int, msg string) []byte {
	b, err := bencode.Marshal(krpc.Msg{T: t, Y: krpc.YError, E: &krpc.Error{Code: code, Msg: msg}, ClientId: clientVersion})
	if err != nil {
		return nil
	}
	return b
}

func commonPrefix(a, b ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			for j := 0; j < 8; j++ {
				if x&(0x80>>j) != 0 {
					return i*8 + j
				}
			}
		}
	}
	return 159 // equal ids share a bucket with the deepest
}

// cmpDist orders a and b by XOR distance to target.
func cmpDist(target, a, b ID) int {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// SetLoss makes every node drop the fraction query of the queries it
// receives (unanswered, uncounted) and the fraction reply of the replies
// it would send (the query is handled: an announce is stored, its reply
// lost). Each node draws from its own generator, seeded from Config.Seed;
// which datagrams are dropped also depends on their order of arrival.
// Both 0 (the default) turns loss off. It may be called while the
// network runs.
func (nw *Network) SetLoss(query, reply float64) error {
	if !(query >= 0 && query < 1 && reply >= 0 && reply < 1) {
		return fmt.Errorf("%w: loss %v/%v: want fractions in [0, 1)", ErrConfig, query, reply)
	}
	nw.queryDrop.Store(uint64(query * (1 << 32)))
	nw.replyDrop.Store(uint64(reply * (1 << 32)))
	return nil
}

// drop draws whether to drop one datagram at the fraction *frac.
func (n *Node) drop(frac *atomic.Uint64) bool {
	f := frac.Load()
	if f == 0 {
		return false
	}
	n.mu.Lock()
	x := n.rnd.Uint32()
	n.mu.Unlock()
	if uint64(x) < f {
		n.dropped.Add(1)
		return true
	}
	return false
}

// Churn is a schedule of nodes leaving and joining a running network.
type Churn struct {
	// Leave is the fraction of nodes that go silent, each at a seeded time
	// in [0, Over), forgetting what they stored (a client that quits).
	Leave float64
	// Join is the fraction of other nodes that are silent (and empty) from
	// the start and come up at a seeded time in [0, Over). The others'
	// routing tables already name them: a client that comes back with the
	// node id it had, as most do, and is answered once it is up.
	Join float64
	// Over is the span of the schedule.
	Over time.Duration
	// Seed draws the nodes and times.
	Seed uint64
}

// churnEvent is one node leaving or joining at a time after the start.
type churnEvent struct {
	at   time.Duration
	node int
	join bool
}

// plan draws the schedule for a network of n nodes, in time order.
func (c Churn) plan(n int) []churnEvent {
	r := mrand.New(mrand.NewPCG(c.Seed, 0xc4a2))
	perm := r.Perm(n)
	leave, join := int(c.Leave*float64(n)), int(c.Join*float64(n))
	var ev []churnEvent
	for i, j := range perm[:leave+join] {
		at := time.Duration(0)
		if c.Over > 0 {
			at = time.Duration(r.Int64N(int64(c.Over)))
		}
		ev = append(ev, churnEvent{at: at, node: j, join: i >= leave})
	}
	slices.SortStableFunc(ev, func(a, b churnEvent) int { return int(a.at - b.at) })
	return ev
}

// StartChurn applies c from now: the joining nodes go silent at once, then
// every node leaves or joins at its time. It returns at once; the
// schedule stops with ctx or Close. Nodes silent at any moment are still
// counted by Closest and Nodes (which are the network's ids, not who
// answers): tests that need the live set use Stats().Silent or ask.
func (nw *Network) StartChurn(ctx context.Context, c Churn) error {
	if !(c.Leave >= 0 && c.Join >= 0 && c.Leave+c.Join <= 1) || c.Over < 0 {
		return fmt.Errorf("%w: churn leave %v join %v over %v: want fractions summing to at most 1 and a span >= 0", ErrConfig, c.Leave, c.Join, c.Over)
	}
	ev := c.plan(len(nw.nodes))
	for _, e := range ev {
		if e.join {
			nw.nodes[e.node].leave()
		}
	}
	t0 := time.Now()
	nw.wg.Add(1)
	go func() {
		defer nw.wg.Done()
		for _, e := range ev {
			select {
			case <-time.After(time.Until(t0.Add(e.at))):
			case <-ctx.Done():
				return
			case <-nw.done:
				return
			}
			if e.join {
				nw.nodes[e.node].silent.Store(false)
				nw.joined.Add(1)
			} else {
				nw.nodes[e.node].leave()
				nw.left.Add(1)
			}
		}
		nw.log.Info("simulated DHT churn done", "left", nw.left.Load(), "joined", nw.joined.Load())
	}()
	return nil
}

// leave silences a node and empties its store.
func (n *Node) leave() {
	n.silent.Store(true)
	n.mu.Lock()
	n.items, n.store, n.announcedHashes = nil, map[ID]int32{}, 0
	n.mu.Unlock()
}
