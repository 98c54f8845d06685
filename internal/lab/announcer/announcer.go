// Package announcer simulates the DHT side of BitTorrent clients for the
// lab's benchmarks: a client looks up an info-hash with an iterative
// get_peers (BEP 5: α queries in flight, converging on the K closest
// nodes that answer) and announces itself with announce_peer, using each
// node's write token, to the K closest nodes that answered. That is what
// a real client does when it starts sharing a torrent, at a fraction of
// the cost of a full client: one UDP socket and one goroutine per client.
//
// Messages are encoded and decoded with anacrolix/dht's krpc package, a
// codec independent of the sensor's. Clients send read-only queries
// (BEP 43) and answer none, so nodes do not hand them out as DHT nodes.
//
// It must never send to anything outside 127.0.0.0/8: clients bind to
// loopback addresses and neither query nor announce to any other.
package announcer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Config is what every client of a set shares.
type Config struct {
	// Bootstrap are the DHT nodes a lookup starts from (loopback only).
	Bootstrap []netip.AddrPort
	// K is how many closest nodes a lookup converges on and announces to
	// (BEP 5: 8).
	K int
	// Alpha is how many queries a lookup keeps in flight (3).
	Alpha int
	// Timeout bounds the wait for one reply.
	Timeout time.Duration
	// MaxQueries bounds the get_peers one lookup sends.
	MaxQueries int
}

// DefaultConfig is K 8, α 3, a one-second timeout and at most 200
// queries a lookup.
func DefaultConfig() Config {
	return Config{K: 8, Alpha: 3, Timeout: time.Second, MaxQueries: 200}
}

// ErrConfig is a Config or address the package refuses.
var ErrConfig = errors.New("announcer: invalid config")

func (c *Config) validate() error {
	switch {
	case len(c.Bootstrap) == 0:
		return fmt.Errorf("%w: no bootstrap nodes", ErrConfig)
	case c.K < 1 || c.Alpha < 1 || c.Timeout <= 0 || c.MaxQueries < 1:
		return fmt.Errorf("%w: K, Alpha, Timeout and MaxQueries must be positive", ErrConfig)
	}
	for _, b := range c.Bootstrap {
		if !b.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("%w: bootstrap node %v is not on loopback", ErrConfig, b)
		}
	}
	return nil
}

// Client is one simulated client: a node id and a UDP socket.
type Client struct {
	cfg  Config
	id   krpc.ID
	addr netip.AddrPort
	conn *net.UDPConn

	mu      sync.Mutex
	pending map[uint32]chan reply
	nextT   uint32

	sent, received atomic.Uint64
	done           chan struct{}
}

type reply struct {
	m    krpc.Msg
	from netip.AddrPort
}

// Listen starts a client on addr (a loopback address; port 0 picks one).
// Close stops it.
func Listen(addr netip.AddrPort, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if !addr.Addr().Is4() || !addr.Addr().IsLoopback() {
		return nil, fmt.Errorf("%w: client address %v: want IPv4 loopback", ErrConfig, addr)
	}
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("announcer: listen %v: %w", addr, err)
	}
	c := &Client{cfg: cfg, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		pending: map[uint32]chan reply{}, done: make(chan struct{})}
	_, _ = rand.Read(c.id[:])
	go c.readLoop()
	return c, nil
}

// Addr is the client's UDP address.
func (c *Client) Addr() netip.AddrPort { return c.addr }

// Packets returns the datagrams the client sent and received.
func (c *Client) Packets() (sent, received uint64) { return c.sent.Load(), c.received.Load() }

// Close stops the client.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) readLoop() {
	defer close(c.done)
	buf := make([]byte, 4<<10)
	for {
		n, from, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c.received.Add(1)
		var m krpc.Msg
		if bencode.Unmarshal(buf[:n], &m) != nil || len(m.T) != 4 || (m.Y != krpc.YResponse && m.Y != krpc.YError) {
			continue // queries go unanswered: the client is read-only
		}
		t := binary.BigEndian.Uint32([]byte(m.T))
		c.mu.Lock()
		ch := c.pending[t]
		delete(c.pending, t)
		c.mu.Unlock()
		if ch != nil {
			ch <- reply{m: m, from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
		}
	}
}

// query sends one query and waits for its reply.
func (c *Client) query(ctx context.Context, to netip.AddrPort, q string, a *krpc.MsgArgs) (*krpc.Msg, error) {
	if !to.Addr().Unmap().IsLoopback() {
		return nil, fmt.Errorf("announcer: %v is not on loopback", to)
	}
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.nextT++
	t := c.nextT
	c.pending[t] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, t)
		c.mu.Unlock()
	}()
	var tb [4]byte
	binary.BigEndian.PutUint32(tb[:], t)
	a.ID = c.id
	b, err := bencode.Marshal(krpc.Msg{T: string(tb[:]), Y: krpc.YQuery, Q: q, A: a, ReadOnly: true, ClientId: "LB\x00\x01"})
	if err != nil {
		return nil, err
	}
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		return nil, fmt.Errorf("announcer: %s to %v: %w", q, to, err)
	}
	c.sent.Add(1)
	timer := time.NewTimer(c.cfg.Timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.m.Y == krpc.YError || r.m.R == nil {
			return nil, fmt.Errorf("announcer: %s to %v: error reply", q, to)
		}
		return &r.m, nil
	case <-timer.C:
		return nil, fmt.Errorf("announcer: %s to %v: timed out", q, to)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Result is what one Announce did.
type Result struct {
	// Queried and Answered count the get_peers sent and answered.
	Queried, Answered int
	// AnnouncedTo counts the nodes that accepted announce_peer.
	AnnouncedTo int
	// Peers are the peers the lookup was given (the swarm so far).
	Peers []netip.AddrPort
	// FirstAnnounce is when the first announce_peer was sent: before it,
	// no node can name the client as a peer of the info-hash.
	FirstAnnounce time.Time
}

type candidate struct {
	id    krpc.ID
	addr  netip.AddrPort
	known bool   // id known (bootstrap nodes have none until they answer)
	state int    // 0 new, 1 in flight, 2 answered, 3 failed
	token string // write token from its get_peers reply
}

// Announce looks up infohash and announces the client as a peer on port
// (TCP) to the K closest nodes that answered with a token.
func (c *Client) Announce(ctx context.Context, infohash [20]byte, port uint16) (Result, error) {
	var res Result
	l := &lookup{c: c, target: krpc.ID(infohash), res: &res,
		cands: map[netip.AddrPort]*candidate{}, peers: map[netip.AddrPort]bool{}, wake: make(chan struct{}, 1)}
	for _, b := range c.cfg.Bootstrap {
		l.add(krpc.ID{}, b, false)
	}
	l.run(ctx)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	to := l.announceTo()
	if len(to) == 0 {
		return res, fmt.Errorf("announcer: lookup of %x found no node to announce to (%d queried, %d answered)", infohash, res.Queried, res.Answered)
	}
	res.FirstAnnounce = time.Now()
	res.AnnouncedTo = l.announce(ctx, to, port)
	for p := range l.peers {
		res.Peers = append(res.Peers, p)
	}
	if res.AnnouncedTo == 0 {
		return res, fmt.Errorf("announcer: no node accepted the announce of %x", infohash)
	}
	return res, nil
}

// lookup is one Announce's iterative get_peers lookup. mu guards the
// candidates, the peers, inflight and the counts in res, which the
// query goroutines update as replies come.
type lookup struct {
	c        *Client
	target   krpc.ID
	res      *Result
	mu       sync.Mutex
	cands    map[netip.AddrPort]*candidate
	peers    map[netip.AddrPort]bool
	inflight int
	wake     chan struct{} // a query ended: pick again
	wg       sync.WaitGroup
}

// add records a node to ask, if it is on loopback and not the client
// itself; a node met again only gains the id it lacked. Called with
// l.mu held (or before the lookup starts).
func (l *lookup) add(id krpc.ID, a netip.AddrPort, known bool) {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	if !a.IsValid() || a.Port() == 0 || !a.Addr().IsLoopback() || a == l.c.addr {
		return
	}
	if x, ok := l.cands[a]; ok {
		if known && !x.known {
			x.id, x.known = id, true
		}
		return
	}
	l.cands[a] = &candidate{id: id, addr: a, known: known}
}

// closest is the candidates not failed, bootstrap first, then by
// distance; the lookup is over when the K closest known have answered.
func (l *lookup) closest() []*candidate {
	out := make([]*candidate, 0, len(l.cands))
	for _, x := range l.cands {
		if x.state != 3 {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b *candidate) int {
		if a.known != b.known {
			if !a.known {
				return -1
			}
			return 1
		}
		da, db := xor(a.id, l.target), xor(b.id, l.target)
		return bytes.Compare(da[:], db[:])
	})
	return out
}

// run queries, Alpha at a time, the new candidates among the K closest
// known (and any bootstrap node), until none is new or in flight, the
// query budget is spent, or ctx ends. It returns once every query has.
func (l *lookup) run(ctx context.Context) {
	for ctx.Err() == nil {
		pick, busy := l.pick()
		if len(pick) == 0 && busy == 0 {
			break
		}
		for _, x := range pick {
			l.wg.Add(1)
			go l.getPeers(ctx, x)
		}
		if len(pick) == 0 {
			select {
			case <-l.wake:
			case <-ctx.Done():
			}
		}
	}
	l.wg.Wait()
}

// pick chooses the candidates to query now and marks them in flight; busy
// counts those of the K closest already in flight.
func (l *lookup) pick() (pick []*candidate, busy int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cfg := &l.c.cfg
	seen := 0
	for _, x := range l.closest() {
		if x.known {
			if seen == cfg.K {
				break
			}
			seen++
		}
		switch x.state {
		case 0:
			if l.inflight+len(pick) < cfg.Alpha && l.res.Queried+len(pick) < cfg.MaxQueries {
				pick = append(pick, x)
			}
		case 1:
			busy++
		}
	}
	for _, x := range pick {
		x.state = 1
	}
	l.inflight += len(pick)
	l.res.Queried += len(pick)
	return pick, busy
}

// getPeers asks x for the target, records its answer (its id, write
// token, the nodes and peers it names) or its failure, and wakes run.
func (l *lookup) getPeers(ctx context.Context, x *candidate) {
	defer l.wg.Done()
	r, err := l.c.query(ctx, x.addr, "get_peers", &krpc.MsgArgs{InfoHash: l.target, Want: []krpc.Want{krpc.WantNodes}})
	l.mu.Lock()
	l.inflight--
	if err != nil {
		x.state = 3
	} else {
		x.state = 2
		l.res.Answered++
		if !x.known {
			x.id, x.known = r.R.ID, true
		}
		if r.R.Token != nil {
			x.token = *r.R.Token
		}
		for _, n := range r.R.Nodes {
			if ap, ok := netip.AddrFromSlice(n.Addr.IP); ok {
				l.add(n.ID, netip.AddrPortFrom(ap, uint16(n.Addr.Port)), true)
			}
		}
		for _, p := range r.R.Values {
			if ap, ok := netip.AddrFromSlice(p.IP); ok {
				l.peers[netip.AddrPortFrom(ap.Unmap(), uint16(p.Port))] = true
			}
		}
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// announceTo is the K closest that answered with a token. Called after
// run, when no query is left.
func (l *lookup) announceTo() []*candidate {
	var to []*candidate
	for _, x := range l.closest() {
		if x.state == 2 && x.token != "" && x.known {
			to = append(to, x)
			if len(to) == l.c.cfg.K {
				break
			}
		}
	}
	return to
}

// announce sends announce_peer for port to each of to at once and
// returns how many accepted it.
func (l *lookup) announce(ctx context.Context, to []*candidate, port uint16) int {
	var ok atomic.Int64
	for _, x := range to {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			p := int(port)
			if _, err := l.c.query(ctx, x.addr, "announce_peer", &krpc.MsgArgs{InfoHash: l.target, Token: x.token, Port: &p}); err == nil {
				ok.Add(1)
			}
		}()
	}
	l.wg.Wait()
	return int(ok.Load())
}

func xor(a, b krpc.ID) (d [20]byte) {
	for i := range d {
		d[i] = a[i] ^ b[i]
	}
	return d
}
