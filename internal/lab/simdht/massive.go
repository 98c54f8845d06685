package simdht

// A massive network: a million nodes and more on one machine, for
// lookups at internet scale. A socket per node (Network) stops at tens of
// thousands; here every node shares one UDP port on every loopback
// address, each node answering from its own address, and routing tables
// are implicit: node i's bucket b holds K nodes drawn by a seeded hash
// from the nodes sharing exactly b leading bits with it (all of them when
// there are K or fewer), found by binary search in the sorted ids. That
// is the table a node has after running a while on a stable network; it
// learns nothing new, so the nodes of a run (sensor, clients) are never
// handed out.
//
// One socket on every address needs a wildcard bind (0.0.0.0): to keep
// the package's rule (nothing outside 127.0.0.0/8), StartMassive refuses
// to run unless every network interface of the process's namespace is a
// loopback one (run it under `unshare -n`), and drops every datagram from
// outside 127.0.0.0/8.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/net/ipv4"
)

// MassiveConfig is a massive network's configuration.
type MassiveConfig struct {
	// Nodes is how many nodes to simulate (1 to 4,000,000).
	Nodes int
	// FirstAddr is node 0's address; node i is the i-th usable address
	// after it (host bytes .0 and .255 skipped), in 127.0.0.0/8.
	// Default 127.64.0.1.
	FirstAddr netip.Addr
	// Port is the UDP port every node listens on (default 6881).
	Port uint16
	// K is the bucket size and the nodes a reply names (8).
	K int
	// QueryLoss and ReplyLoss are the fractions of queries dropped on
	// arrival and of replies dropped before sending (SetLoss changes them).
	QueryLoss, ReplyLoss float64
	// Workers is how many goroutines read the socket (default 2).
	Workers int
	// Seed seeds the ids, the tables, loss and churn.
	Seed uint64
	// Logger receives start and stop records. Nil: discard.
	Logger *slog.Logger
}

// Massive is a running massive network.
type Massive struct {
	cfg  MassiveConfig
	ids  []ID // sorted; node i has ids[i] and address addr(i)
	conn *ipv4.PacketConn
	raw  *net.UDPConn
	base uint32 // FirstAddr as a number
	log  *slog.Logger
	wg   sync.WaitGroup

	secret [16]byte

	mu      sync.Mutex
	rnd     *mrand.Rand
	store   map[int32]map[ID][]netip.AddrPort
	churnAt []time.Time // per node: zero, or when it leaves or joins
	joins   []bool      // per node with churnAt set: a join (else a leave)

	queryDrop, replyDrop                                         atomic.Uint64 // fractions of 1<<32
	queries, answered, dropped, announces, badTokens, silentHits atomic.Uint64
}

// SetLoss changes the loss fractions while the network runs.
func (m *Massive) SetLoss(query, reply float64) error {
	if !(query >= 0 && query < 1 && reply >= 0 && reply < 1) {
		return fmt.Errorf("%w: loss %v/%v: want fractions in [0, 1)", ErrConfig, query, reply)
	}
	m.queryDrop.Store(uint64(query * (1 << 32)))
	m.replyDrop.Store(uint64(reply * (1 << 32)))
	return nil
}

// ErrNotIsolated is returned when the process's network namespace has an
// interface other than loopback: a wildcard bind could then be reached
// from, and answer, the outside.
var ErrNotIsolated = errors.New("simdht: massive network needs a namespace with loopback only (run under unshare -n)")

// LoopbackOnly reports whether every interface of this namespace is a
// loopback one and one of them is up.
func LoopbackOnly() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotIsolated, err)
	}
	up := false
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("%w: interface %s is not loopback", ErrNotIsolated, i.Name)
		}
		if i.Flags&net.FlagUp != 0 {
			up = true
		}
	}
	if !up {
		return fmt.Errorf("%w: loopback is down (ip link set lo up)", ErrNotIsolated)
	}
	return nil
}

// StartMassive starts a massive network and serves until Close.
func StartMassive(ctx context.Context, cfg MassiveConfig) (*Massive, error) {
	if !cfg.FirstAddr.IsValid() {
		cfg.FirstAddr = netip.MustParseAddr("127.64.0.1")
	}
	if cfg.Port == 0 {
		cfg.Port = 6881
	}
	if cfg.K == 0 {
		cfg.K = 8
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	switch {
	case cfg.Nodes < 1 || cfg.Nodes > 4_000_000:
		return nil, fmt.Errorf("%w: Nodes %d: want 1 to 4,000,000", ErrConfig, cfg.Nodes)
	case !cfg.FirstAddr.Is4() || !cfg.FirstAddr.IsLoopback():
		return nil, fmt.Errorf("%w: FirstAddr %v: want IPv4 in 127.0.0.0/8", ErrConfig, cfg.FirstAddr)
	case cfg.K < 1 || cfg.K > 32:
		return nil, fmt.Errorf("%w: K %d: want 1 to 32", ErrConfig, cfg.K)
	}
	if _, err := nodeAddr(cfg.FirstAddr, cfg.Nodes-1); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if err := LoopbackOnly(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t0 := time.Now()
	r := mrand.New(mrand.NewPCG(cfg.Seed, 0x3a55))
	m := &Massive{cfg: cfg, log: log, rnd: mrand.New(mrand.NewPCG(cfg.Seed, 0x1055)),
		store: map[int32]map[ID][]netip.AddrPort{}}
	m.ids = make([]ID, cfg.Nodes)
	for i := range m.ids {
		for k := 0; k < 20; k += 8 {
			var b [8]byte
			binary.BigEndian.PutUint64(b[:], r.Uint64())
			copy(m.ids[i][k:], b[:])
		}
	}
	slices.SortFunc(m.ids, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	m.ids = slices.CompactFunc(m.ids, func(a, b ID) bool { return a == b })
	fb := cfg.FirstAddr.As4()
	m.base = binary.BigEndian.Uint32(fb[:])
	_, _ = rand.Read(m.secret[:])
	if err := m.SetLoss(cfg.QueryLoss, cfg.ReplyLoss); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero, Port: int(cfg.Port)})
	if err != nil {
		return nil, fmt.Errorf("simdht massive: listen on port %d: %w", cfg.Port, err)
	}
	_ = uc.SetReadBuffer(8 << 20)
	m.raw = uc
	m.conn = ipv4.NewPacketConn(uc)
	if err := m.conn.SetControlMessage(ipv4.FlagDst, true); err != nil {
		uc.Close()
		return nil, fmt.Errorf("simdht massive: IP_PKTINFO: %w", err)
	}
	for range cfg.Workers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.serve()
		}()
	}
	log.Info("massive simulated DHT up", "nodes", len(m.ids), "port", cfg.Port, "took", time.Since(t0).Round(time.Millisecond))
	return m, nil
}

// Len is the number of nodes.
func (m *Massive) Len() int { return len(m.ids) }

// Node returns node i's id and address.
func (m *Massive) Node(i int) NodeInfo {
	a, _ := nodeAddr(m.cfg.FirstAddr, i)
	return NodeInfo{ID: m.ids[i], Addr: netip.AddrPortFrom(a, m.cfg.Port)}
}

// index inverts nodeAddr: the node at a, or -1.
func (m *Massive) index(a netip.Addr) int {
	if !a.Is4() {
		return -1
	}
	b := a.As4()
	ab := binary.BigEndian.Uint32(b[:])
	if ab < m.base || ab&0xff == 0 || ab&0xff == 255 {
		return -1
	}
	n := int((ab>>8-m.base>>8)*254) + int(ab&0xff) - int(m.base&0xff)
	if n < 0 || n >= len(m.ids) {
		return -1
	}
	return n
}

// run is the sorted range of nodes whose ids share the first bits bits
// of x.
func (m *Massive) run(x ID, bits int) (int, int) {
	lo, hi := x, x
	for i := bits; i < 160; i++ {
		bit := byte(0x80) >> (i % 8)
		lo[i/8] &^= bit
		hi[i/8] |= bit
	}
	a, _ := slices.BinarySearchFunc(m.ids, lo, func(e, t ID) int { return bytes.Compare(e[:], t[:]) })
	b, found := slices.BinarySearchFunc(m.ids, hi, func(e, t ID) int { return bytes.Compare(e[:], t[:]) })
	if found {
		b++
	}
	return a, b
}

// bucket appends node i's entries of bucket b (the nodes sharing exactly
// b leading bits with it) to out: all of them if K or fewer, else K drawn
// by a hash of (seed, i, b). It reports whether deeper buckets can hold
// anyone.
func (m *Massive) bucket(i, b int, out []int) ([]int, bool) {
	self := m.ids[i]
	if a, c := m.run(self, b); c-a <= 1 {
		return out, false
	}
	flipped := self
	flipped[b/8] ^= 0x80 >> (b % 8)
	a, c := m.run(flipped, b+1)
	n := c - a
	if n <= m.cfg.K {
		for j := a; j < c; j++ {
			out = append(out, j)
		}
		return out, true
	}
	h := mrand.New(mrand.NewPCG(m.cfg.Seed^uint64(i)*0x9e3779b97f4a7c15, uint64(b)))
	start := len(out)
	for len(out)-start < m.cfg.K {
		j := a + h.IntN(n)
		if !slices.Contains(out[start:], j) {
			out = append(out, j)
		}
	}
	return out, true
}

// closest returns the K nodes of node i's implicit table closest to
// target, nearest first.
func (m *Massive) closest(i int, target ID, now time.Time) krpc.CompactIPv4NodeInfo {
	self := m.ids[i]
	bs := commonPrefix(self, target)
	if self == target {
		bs = 159
	}
	var cand []int
	// The bucket that holds target's side, then the deeper ones (nearer
	// self, all at the same distance class from target), then shallower
	// ones only if still short.
	cand, more := m.bucket(i, bs, cand)
	for b := bs + 1; more && b < 160; b++ {
		cand, more = m.bucket(i, b, cand)
	}
	for b := bs - 1; b >= 0 && len(cand) < m.cfg.K; b-- {
		cand, _ = m.bucket(i, b, cand)
	}
	cand = slices.DeleteFunc(cand, func(j int) bool { return j == i || m.notYetJoined(j, now) })
	slices.SortFunc(cand, func(a, b int) int { return cmpDist(target, m.ids[a], m.ids[b]) })
	cand = slices.Compact(cand)
	out := make(krpc.CompactIPv4NodeInfo, 0, m.cfg.K)
	for _, j := range cand[:min(len(cand), m.cfg.K)] {
		ni := m.Node(j)
		out = append(out, krpc.NodeInfo{ID: ni.ID, Addr: krpc.NodeAddr{IP: ni.Addr.Addr().AsSlice(), Port: int(ni.Addr.Port())}})
	}
	return out
}

// StartChurn applies c from now, as Network.StartChurn does: the joining
// nodes are silent (and named by no one) until their time, the leaving
// ones silent from theirs, forgetting what they stored.
func (m *Massive) StartChurn(c Churn) error {
	if !(c.Leave >= 0 && c.Join >= 0 && c.Leave+c.Join <= 1) || c.Over < 0 {
		return fmt.Errorf("%w: churn leave %v join %v over %v", ErrConfig, c.Leave, c.Join, c.Over)
	}
	ev := c.plan(len(m.ids))
	t0 := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.churnAt = make([]time.Time, len(m.ids))
	m.joins = make([]bool, len(m.ids))
	for _, e := range ev {
		m.churnAt[e.node] = t0.Add(e.at)
		m.joins[e.node] = e.join
	}
	return nil
}

// silent reports whether node i answers nothing at now; a node that has
// left forgets its store.
func (m *Massive) silentLocked(i int, now time.Time) bool {
	if m.churnAt == nil || m.churnAt[i].IsZero() {
		return false
	}
	if m.joins[i] {
		return now.Before(m.churnAt[i])
	}
	if !now.Before(m.churnAt[i]) {
		delete(m.store, int32(i))
		return true
	}
	return false
}

func (m *Massive) notYetJoined(i int, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.churnAt != nil && m.joins[i] && now.Before(m.churnAt[i])
}

// draw reports whether to drop a datagram at the fraction *f of 1<<32.
func (m *Massive) draw(f *atomic.Uint64) bool {
	v := f.Load()
	if v == 0 {
		return false
	}
	m.mu.Lock()
	x := m.rnd.Uint32()
	m.mu.Unlock()
	return uint64(x) < v
}

func (m *Massive) serve() {
	buf := make([]byte, 4<<10)
	for {
		sz, cm, src, err := m.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok || cm == nil {
			continue
		}
		from := ua.AddrPort()
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		dst, ok := netip.AddrFromSlice(cm.Dst)
		if !ok || !from.Addr().IsLoopback() {
			continue
		}
		dst = dst.Unmap()
		i := m.index(dst)
		if i < 0 {
			continue
		}
		m.queries.Add(1)
		now := time.Now()
		m.mu.Lock()
		silent := m.silentLocked(i, now)
		m.mu.Unlock()
		if silent {
			m.silentHits.Add(1)
			continue
		}
		if m.draw(&m.queryDrop) {
			m.dropped.Add(1)
			continue
		}
		var q krpc.Msg
		if err := bencode.Unmarshal(buf[:sz], &q); err != nil || q.Y != krpc.YQuery || q.A == nil {
			continue
		}
		out := m.handle(i, &q, from, now)
		if out == nil {
			continue
		}
		if m.draw(&m.replyDrop) {
			m.dropped.Add(1)
			continue
		}
		if _, err := m.conn.WriteTo(out, &ipv4.ControlMessage{Src: dst.AsSlice()}, net.UDPAddrFromAddrPort(from)); err == nil {
			m.answered.Add(1)
		}
	}
}

func (m *Massive) token(i int, ip netip.Addr) string {
	h := sha1.New()
	h.Write(m.secret[:])
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(i))
	h.Write(b[:])
	a := ip.Unmap().As16()
	h.Write(a[:])
	return string(h.Sum(nil)[:8])
}

func (m *Massive) handle(i int, q *krpc.Msg, from netip.AddrPort, now time.Time) []byte {
	r := &krpc.Return{ID: m.ids[i]}
	switch q.Q {
	case "ping":
	case "find_node":
		r.Nodes = m.closest(i, q.A.Target, now)
	case "get_peers":
		tok := m.token(i, from.Addr())
		r.Token = &tok
		m.mu.Lock()
		for _, p := range m.store[int32(i)][q.A.InfoHash] {
			r.Values = append(r.Values, krpc.NodeAddr{IP: p.Addr().AsSlice(), Port: int(p.Port())})
		}
		m.mu.Unlock()
		r.Nodes = m.closest(i, q.A.InfoHash, now)
	case "announce_peer":
		if q.A.Token != m.token(i, from.Addr()) {
			m.badTokens.Add(1)
			return nil
		}
		port := from.Port()
		if !q.A.ImpliedPort {
			if q.A.Port == nil || *q.A.Port <= 0 || *q.A.Port > 65535 {
				return nil
			}
			port = uint16(*q.A.Port)
		}
		p := netip.AddrPortFrom(from.Addr(), port)
		m.mu.Lock()
		s := m.store[int32(i)]
		if s == nil {
			s = map[ID][]netip.AddrPort{}
			m.store[int32(i)] = s
		}
		if !slices.Contains(s[q.A.InfoHash], p) && len(s[q.A.InfoHash]) < 100 {
			s[q.A.InfoHash] = append(s[q.A.InfoHash], p)
		}
		m.mu.Unlock()
		m.announces.Add(1)
	default:
		return nil
	}
	b, err := bencode.Marshal(krpc.Msg{T: q.T, Y: krpc.YResponse, R: r, ClientId: clientVersion})
	if err != nil {
		return nil
	}
	return b
}

// MassiveStats are a massive network's counters.
type MassiveStats struct {
	Queries, Answered, Dropped, Announces, BadTokens, SilentHits uint64
	Holding                                                      int // nodes holding announced peers
}

// Stats returns the counters.
func (m *Massive) Stats() MassiveStats {
	m.mu.Lock()
	h := len(m.store)
	m.mu.Unlock()
	return MassiveStats{Queries: m.queries.Load(), Answered: m.answered.Load(), Dropped: m.dropped.Load(),
		Announces: m.announces.Load(), BadTokens: m.badTokens.Load(), SilentHits: m.silentHits.Load(), Holding: h}
}

// Close stops the network.
func (m *Massive) Close() error {
	err := m.raw.Close()
	m.wg.Wait()
	return err
}
