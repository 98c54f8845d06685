// Package kad is the sensor's Kad (Kademlia 2) node: it joins through
// bootstrap nodes, keeps a routing table, answers other nodes as a correct
// node does (bootstrap, hello, KADEMLIA2_REQ, ping), and searches the
// sources of watched files at the nodes closest to them. It returns what
// those nodes said, with the datagrams that said it; the sensor records
// them as third-party claims.
//
// It must never publish anything (no source, keyword or note, for any
// file), store or return sources for others, send a datagram except
// through the scope guard, or accept a reply from an address it did not
// ask: a response is taken only from the address a request went to, for
// the target it asked about, while the request is open; everything else
// is dropped and counted. Kad's packet obfuscation is not implemented:
// obfuscated datagrams are dropped and counted.
package kad

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-oss/vigil/internal/netlimit"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
)

// Config is the node's configuration.
type Config struct {
	// Listen is the UDP address to listen on (port 0: any).
	Listen netip.AddrPort
	// ID is the node's id (random when zero).
	ID kadwire.ID
	// TCPPort is the TCP port the node names in hellos (0: none).
	TCPPort uint16
	// K is the bucket size and the number of closest nodes a search asks.
	K int
	// Alpha is the number of queries a lookup keeps in flight.
	Alpha int
	// QueryTimeout is how long a query waits for its answer.
	QueryTimeout time.Duration
	// SearchWait is how long a source search collects answers from the
	// nodes it asked.
	SearchWait time.Duration
	// MaxUnpacked bounds a packed datagram once inflated.
	MaxUnpacked int
	// MaxKeywordResults bounds the files one keyword search returns (the
	// nodes asked could name thousands; eMule stops a keyword search at
	// 300 too); the rest are counted, not kept.
	MaxKeywordResults int
	// AnswerBudget bounds the answers given to other nodes' queries per
	// source address (PerAddrPerSecond, PerAddrBurst, MaxAddrs): a
	// bootstrap answer is some 260 times its query, so without a bound a
	// forged flood would make the node an amplifier. Queries past it are
	// dropped and counted.
	AnswerBudget netlimit.Config
	// Clock is the time source (time.Now when nil).
	Clock func() time.Time
}

// DefaultConfig returns aMule-like settings (K 10, alpha 3).
func DefaultConfig() Config {
	return Config{K: 10, Alpha: 3, QueryTimeout: 3 * time.Second, SearchWait: 5 * time.Second,
		MaxUnpacked: kadwire.DefaultMaxUnpacked, MaxKeywordResults: 300,
		AnswerBudget: netlimit.Config{PerAddrPerSecond: 2, PerAddrBurst: 10, MaxAddrs: 100_000}}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case !c.Listen.Addr().IsValid():
		return errors.New("kad: no listen address")
	case c.K <= 0 || c.K > 255 || c.Alpha <= 0:
		return errors.New("kad: K must be 1-255 and alpha positive")
	case c.QueryTimeout <= 0 || c.SearchWait <= 0:
		return errors.New("kad: timeouts must be positive")
	case c.MaxUnpacked <= 0 || c.MaxKeywordResults <= 0:
		return errors.New("kad: MaxUnpacked and MaxKeywordResults must be positive")
	}
	return nil
}

// Stats are the node's counters.
type Stats struct {
	Sent, Received      uint64
	Unsolicited         uint64 // responses from an address not asked, or for another target
	Obfuscated          uint64 // datagrams that are not plain Kad (obfuscated, or not Kad)
	Malformed           uint64
	Refused             uint64 // sends the scope guard refused
	QueriesAnswered     uint64 // queries of other nodes answered
	AnswersLimited      uint64 // queries of other nodes dropped by AnswerBudget
	PublishesIgnored    uint64 // publish requests received and not stored (the node stores nothing)
	FirewallChecksNoted uint64 // firewall checks received and not answered
}

// Node is a running Kad node.
type Node struct {
	cfg   Config
	now   func() time.Time
	guard *scope.Guard
	alim  *netlimit.Limiter
	pc    *scope.PacketConn
	raw   net.PacketConn
	addr  netip.AddrPort
	table *Table

	mu      sync.Mutex
	pending map[pendKey]*pending

	sent, received, unsolicited, obfuscated, malformed, refused, answered, limited, publishes, fwchecks atomic.Uint64

	done chan struct{}
	wg   sync.WaitGroup
}

type pendKey struct {
	addr   netip.AddrPort
	op     byte // the response opcode expected
	target kadwire.ID
}

type pending struct {
	ch chan Reply
}

// Reply is one datagram that answered a request of the node's.
type Reply struct {
	From    netip.AddrPort
	Packet  kadwire.Packet
	Raw     []byte // the datagram as received
	At      time.Time
	Sent    []byte // the request that it answers, as sent
	SentAt  time.Time
	Timeout bool // no answer came in time (Packet and Raw empty)
}

// Start listens and serves until Close.
func Start(ctx context.Context, cfg Config, g *scope.Guard) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, errors.New("kad: no scope guard")
	}
	if cfg.ID == (kadwire.ID{}) {
		rand.Read(cfg.ID[:])
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	pc, err := g.ListenPacket(ctx, nil, "udp4", cfg.Listen.String())
	if err != nil {
		return nil, fmt.Errorf("kad: %w", err)
	}
	spc := pc.(*scope.PacketConn)
	n := &Node{cfg: cfg, now: now, guard: g, alim: netlimit.New(cfg.AnswerBudget), pc: spc, raw: pc, table: NewTable(cfg.ID, cfg.K),
		pending: map[pendKey]*pending{}, done: make(chan struct{})}
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		n.addr = a.AddrPort()
	}
	n.wg.Add(1)
	go n.readLoop()
	return n, nil
}

// Addr is the node's UDP address; ID its id.
func (n *Node) Addr() netip.AddrPort { return n.addr }
func (n *Node) ID() kadwire.ID       { return n.cfg.ID }

// Table is the node's routing table.
func (n *Node) Table() *Table { return n.table }

// Close stops the node and waits for it.
func (n *Node) Close() error {
	close(n.done)
	err := n.raw.Close()
	n.wg.Wait()
	return err
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Received: n.received.Load(), Unsolicited: n.unsolicited.Load(),
		Obfuscated: n.obfuscated.Load(), Malformed: n.malformed.Load(), Refused: n.refused.Load(),
		QueriesAnswered: n.answered.Load(), AnswersLimited: n.limited.Load(), PublishesIgnored: n.publishes.Load(), FirewallChecksNoted: n.fwchecks.Load()}
}

func (n *Node) write(to netip.AddrPort, dg []byte) error {
	if _, err := n.pc.WriteToUDPAddrPort(dg, to); err != nil {
		if errors.Is(err, scope.ErrOutOfScope) {
			n.refused.Add(1)
		}
		return err
	}
	n.sent.Add(1)
	return nil
}

func (n *Node) readLoop() {
	defer n.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		k, from, err := n.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			select {
			case <-n.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		n.received.Add(1)
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		at := n.now()
		raw := append([]byte(nil), buf[:k]...)
		p, err := kadwire.Decode(raw, n.cfg.MaxUnpacked)
		switch {
		case errors.Is(err, kadwire.ErrObfuscated):
			n.obfuscated.Add(1)
			continue
		case err != nil:
			n.malformed.Add(1)
			continue
		}
		n.handle(from, p, raw, at)
	}
}

// responseTarget returns the target a response is about (zero for those
// without one) and whether its opcode is a response at all.
func responseTarget(p kadwire.Packet) (kadwire.ID, bool, error) {
	switch p.Opcode {
	case kadwire.OpBootstrapRes, kadwire.OpHelloRes, kadwire.OpPong:
		return kadwire.ID{}, true, nil
	case kadwire.OpRes:
		r, err := kadwire.DecodeRes(p.Payload)
		return r.Target, true, err
	case kadwire.OpSearchRes:
		r, err := kadwire.DecodeSearchRes(p.Payload)
		return r.Target, true, err
	case kadwire.OpPublishRes, kadwire.OpFirewalledRes, kadwire.OpHelloResAck, kadwire.OpFirewalledAck, kadwire.OpPublishResAck:
		return kadwire.ID{}, true, nil // never asked for: unsolicited
	}
	return kadwire.ID{}, false, nil
}

func (n *Node) handle(from netip.AddrPort, p kadwire.Packet, raw []byte, at time.Time) {
	target, isResponse, err := responseTarget(p)
	if err != nil {
		n.malformed.Add(1)
		return
	}
	if isResponse {
		n.mu.Lock()
		pd := n.pending[pendKey{from, p.Opcode, target}]
		n.mu.Unlock()
		if pd == nil {
			n.unsolicited.Add(1)
			return
		}
		select {
		case pd.ch <- Reply{From: from, Packet: p, Raw: raw, At: at}:
		default:
			n.unsolicited.Add(1) // more answers than the request waits for
		}
		return
	}
	n.serve(from, p)
}

// serve answers another node's query as a correct node does, from the
// routing table; it stores and returns no sources.
func (n *Node) serve(from netip.AddrPort, p kadwire.Packet) {
	switch p.Opcode {
	case kadwire.OpBootstrapReq, kadwire.OpHelloReq, kadwire.OpReq, kadwire.OpPing:
		if !n.alim.AllowAddr(from.Addr(), n.now()) {
			n.limited.Add(1)
			return
		}
	}
	switch p.Opcode {
	case kadwire.OpBootstrapReq:
		n.answered.Add(1)
		cs := n.table.Closest(kadwire.ID{}, 20)
		n.write(from, kadwire.Encode(kadwire.OpBootstrapRes, kadwire.BootstrapRes{ID: n.cfg.ID, TCPPort: n.cfg.TCPPort, Version: kadwire.Version, Contacts: cs}.AppendTo(nil)))
	case kadwire.OpHelloReq:
		h, err := kadwire.DecodeHello(p.Payload)
		if err != nil {
			n.malformed.Add(1)
			return
		}
		n.answered.Add(1)
		n.write(from, kadwire.Encode(kadwire.OpHelloRes, n.myHello().AppendTo(nil)))
		if !h.UDPFirewalled() && h.Version >= 2 {
			port := from.Port()
			if u := h.UDPPort(); u != 0 {
				port = u
			}
			n.learn(kadwire.Contact{ID: h.ID, Addr: netip.AddrPortFrom(from.Addr(), port), TCPPort: h.TCPPort, Version: h.Version}, false)
		}
	case kadwire.OpReq:
		r, err := kadwire.DecodeReq(p.Payload)
		if err != nil {
			n.malformed.Add(1)
			return
		}
		if r.Receiver != n.cfg.ID {
			return // aMule too answers only requests meant for it
		}
		n.answered.Add(1)
		n.write(from, kadwire.Encode(kadwire.OpRes, kadwire.Res{Target: r.Target, Contacts: n.table.Closest(r.Target, int(r.Type&0x1F))}.AppendTo(nil)))
	case kadwire.OpPing:
		n.answered.Add(1)
		n.write(from, kadwire.Encode(kadwire.OpPong, kadwire.Pong{Port: from.Port()}.AppendTo(nil)))
	case kadwire.OpPublishSrcReq, kadwire.OpPublishKeyReq, kadwire.OpPublishNotesReq:
		n.publishes.Add(1) // stored nowhere, answered never
	case kadwire.OpFirewalledReq, kadwire.OpFirewalled2Req:
		n.fwchecks.Add(1)
	case kadwire.OpSearchSourceReq, kadwire.OpSearchKeyReq, kadwire.OpSearchNotesReq:
		// A node that stores nothing answers nothing, as aMule does for a
		// key it does not hold.
	}
}

func (n *Node) myHello() kadwire.Hello {
	return kadwire.Hello{ID: n.cfg.ID, TCPPort: n.cfg.TCPPort, Version: kadwire.Version,
		Tags: []kadwire.Tag{kadwire.IntTag(kadwire.TagSourceUPort, uint64(n.addr.Port()))}}
}

// learn adds a contact others named, if it is one the node may send to.
func (n *Node) learn(c kadwire.Contact, answered bool) bool {
	if c.ID == n.cfg.ID || !c.Addr.Addr().Is4() || c.Addr.Port() == 0 || c.Version < 2 || c.Addr == n.addr {
		return false
	}
	if err := n.guard.Check(c.Addr); err != nil {
		n.refused.Add(1)
		return false
	}
	n.table.Add(c, answered, n.now())
	return true
}

// request sends dg to addr and returns a channel on which the answers
// with opcode op about target arrive (up to limit of them), closed when
// wait has passed; the request is open until then.
func (n *Node) request(ctx context.Context, addr netip.AddrPort, dg []byte, op byte, target kadwire.ID, limit int, wait time.Duration) (<-chan Reply, error) {
	key := pendKey{addr, op, target}
	pd := &pending{ch: make(chan Reply, limit)}
	n.mu.Lock()
	if n.pending[key] != nil {
		n.mu.Unlock()
		return nil, fmt.Errorf("kad: a request to %s is already open", addr)
	}
	n.pending[key] = pd
	n.mu.Unlock()
	sentAt := n.now()
	if err := n.write(addr, dg); err != nil {
		n.mu.Lock()
		delete(n.pending, key)
		n.mu.Unlock()
		return nil, err
	}
	out := make(chan Reply, limit)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(out)
		defer func() {
			n.mu.Lock()
			delete(n.pending, key)
			n.mu.Unlock()
		}()
		t := time.NewTimer(wait)
		defer t.Stop()
		got := 0
		for got < limit {
			select {
			case r := <-pd.ch:
				r.Sent, r.SentAt = dg, sentAt
				out <- r
				got++
			case <-t.C:
				return
			case <-ctx.Done():
				return
			case <-n.done:
				return
			}
		}
	}()
	return out, nil
}

// ask sends one request and waits for its one answer.
func (n *Node) ask(ctx context.Context, addr netip.AddrPort, op byte, payload []byte, resp byte, target kadwire.ID) (Reply, error) {
	ch, err := n.request(ctx, addr, kadwire.Encode(op, payload), resp, target, 1, n.cfg.QueryTimeout)
	if err != nil {
		return Reply{}, err
	}
	r, ok := <-ch
	if !ok {
		return Reply{Timeout: true}, fmt.Errorf("kad: no answer from %s", addr)
	}
	return r, nil
}

// Bootstrap asks each address for contacts (KADEMLIA2_BOOTSTRAP_REQ),
// then looks up the node's own id to fill its table. It fails only when
// no bootstrap node answered.
func (n *Node) Bootstrap(ctx context.Context, addrs []netip.AddrPort) error {
	var wg sync.WaitGroup
	var ok atomic.Int32
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := n.ask(ctx, a, kadwire.OpBootstrapReq, nil, kadwire.OpBootstrapRes, kadwire.ID{})
			if err != nil {
				return
			}
			br, err := kadwire.DecodeBootstrapRes(r.Packet.Payload)
			if err != nil {
				n.malformed.Add(1)
				return
			}
			ok.Add(1)
			n.learn(kadwire.Contact{ID: br.ID, Addr: a, TCPPort: br.TCPPort, Version: br.Version}, true)
			for _, c := range br.Contacts {
				n.learn(c, false)
			}
		}()
	}
	wg.Wait()
	if ok.Load() == 0 {
		return fmt.Errorf("kad: none of %d bootstrap nodes answered", len(addrs))
	}
	n.Lookup(ctx, n.cfg.ID)
	return nil
}

// Lookup finds the K nodes closest to target that answer, iteratively:
// it keeps Alpha KADEMLIA2_REQs in flight to the closest candidates not
// yet asked, and stops when the K closest candidates have all been asked.
// It returns them closest first.
func (n *Node) Lookup(ctx context.Context, target kadwire.ID) []kadwire.Contact {
	type cand struct {
		c     kadwire.Contact
		state int // 0 new, 1 asked, 2 answered, 3 failed
	}
	var cands []*cand
	seen := map[kadwire.ID]bool{n.cfg.ID: true}
	add := func(c kadwire.Contact) {
		if !seen[c.ID] {
			seen[c.ID] = true
			cands = append(cands, &cand{c: c})
		}
	}
	for _, c := range n.table.Closest(target, n.cfg.K*2) {
		add(c)
	}
	type result struct {
		from *cand
		res  kadwire.Res
		err  error
	}
	results := make(chan result, n.cfg.Alpha)
	inflight := 0
	for {
		slices.SortFunc(cands, func(a, b *cand) int { return a.c.ID.Xor(target).Cmp(b.c.ID.Xor(target)) })
		// The K closest that have not failed.
		var top []*cand
		for _, c := range cands {
			if c.state != 3 {
				top = append(top, c)
				if len(top) == n.cfg.K {
					break
				}
			}
		}
		for _, c := range top {
			if inflight >= n.cfg.Alpha {
				break
			}
			if c.state != 0 {
				continue
			}
			c.state = 1
			inflight++
			go func(c *cand) {
				req := kadwire.Req{Type: kadwire.FindNode, Target: target, Receiver: c.c.ID}
				r, err := n.ask(ctx, c.c.Addr, kadwire.OpReq, req.AppendTo(nil), kadwire.OpRes, target)
				var res kadwire.Res
				if err == nil {
					res, err = kadwire.DecodeRes(r.Packet.Payload)
				}
				results <- result{c, res, err}
			}(c)
		}
		if inflight == 0 {
			var out []kadwire.Contact
			for _, c := range top {
				if c.state == 2 {
					out = append(out, c.c)
				}
			}
			return out
		}
		r := <-results
		inflight--
		if r.err != nil {
			r.from.state = 3
			n.table.Failed(r.from.c.ID)
			continue
		}
		r.from.state = 2
		n.table.Add(r.from.c, true, n.now())
		for _, c := range r.res.Contacts {
			if n.learn(c, false) {
				add(c)
			}
		}
		if ctx.Err() != nil {
			// Drain what is in flight, then stop.
			for ; inflight > 0; inflight-- {
				<-results
			}
			return nil
		}
	}
}

// Found is one source a node named in answer to a source search.
type Found struct {
	Node   kadwire.Contact // the node asked, that answered
	Result kadwire.Result
	Source kadwire.Source
	// Reply is the datagram that named the source, with the request it
	// answered.
	Reply Reply
}

// SearchSources looks up the nodes closest to a file's id and asks each
// for its sources (KADEMLIA2_SEARCH_SOURCE_REQ with the file's size, 0
// when unknown), collecting answers for SearchWait. An answer counts only
// from a node asked, about the file asked, naming itself as the node
// asked.
func (n *Node) SearchSources(ctx context.Context, ed2k [16]byte, size int64) []Found {
	file := kadwire.FileID(ed2k)
	closest := n.Lookup(ctx, file)
	req := kadwire.SearchSourceReq{Target: file, Size: uint64(max(size, 0))}
	dg := kadwire.Encode(kadwire.OpSearchSourceReq, req.AppendTo(nil))
	var mu sync.Mutex
	var out []Found
	var wg sync.WaitGroup
	for _, c := range closest {
		ch, err := n.request(ctx, c.Addr, dg, kadwire.OpSearchRes, file, 16, n.cfg.SearchWait)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func(c kadwire.Contact) {
			defer wg.Done()
			for r := range ch {
				sr, err := kadwire.DecodeSearchRes(r.Packet.Payload)
				if err != nil || sr.Sender != c.ID {
					n.unsolicited.Add(1) // another node's id in the answer: not the node asked
					continue
				}
				for _, res := range sr.Results {
					src, ok := res.Source()
					if !ok {
						continue
					}
					mu.Lock()
					out = append(out, Found{Node: c, Result: res, Source: src, Reply: r})
					mu.Unlock()
				}
			}
		}(c)
	}
	wg.Wait()
	return out
}

// KeywordFound is one file a node named in answer to a keyword search:
// its index entry, which says nothing of who holds the file.
type KeywordFound struct {
	Node kadwire.Contact // the node asked, that answered
	File kadwire.File
	At   time.Time
}

// SearchKeyword looks up the nodes closest to a keyword's id
// (kadwire.KeywordID of word, which must be a word as publishers index
// it: wire.Words) and asks each for the files stored under it
// (KADEMLIA2_SEARCH_KEY_REQ, no search expression), collecting answers
// for SearchWait. An answer counts only from a node asked, about the
// keyword asked, naming itself as the node asked; entries without a file
// name are skipped. At most MaxKeywordResults files are returned; over
// is the number left out.
func (n *Node) SearchKeyword(ctx context.Context, word string) (found []KeywordFound, over int) {
	key := kadwire.KeywordID(word)
	closest := n.Lookup(ctx, key)
	dg := kadwire.Encode(kadwire.OpSearchKeyReq, kadwire.SearchKeyReq{Target: key}.AppendTo(nil))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range closest {
		ch, err := n.request(ctx, c.Addr, dg, kadwire.OpSearchRes, key, 16, n.cfg.SearchWait)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func(c kadwire.Contact) {
			defer wg.Done()
			for r := range ch {
				sr, err := kadwire.DecodeSearchRes(r.Packet.Payload)
				if err != nil || sr.Sender != c.ID {
					n.unsolicited.Add(1) // another node's id in the answer: not the node asked
					continue
				}
				mu.Lock()
				for _, res := range sr.Results {
					f, ok := res.File()
					switch {
					case !ok:
					case len(found) >= n.cfg.MaxKeywordResults:
						over++
					default:
						found = append(found, KeywordFound{Node: c, File: f, At: r.At})
					}
				}
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	return found, over
}
