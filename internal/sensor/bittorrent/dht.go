package bittorrent

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// clientVersion is the "v" the sensor's nodes send: "VG" and a version.
var clientVersion = []byte("VG\x00\x01")

// node is one DHT identity: a node id, a UDP socket on one of the
// sensor's listen addresses, and a routing table of nodes of that address
// family only (BEP 32: the IPv4 and IPv6 DHTs are separate networks).
type node struct {
	s     *Sensor
	index int
	id    krpc.ID
	addr  netip.AddrPort
	v6    bool // addr is IPv6
	conn  *scope.PacketConn
	table *routing.Table

	rx, tx atomic.Uint64 // datagrams received and sent on this socket

	mu      sync.Mutex
	pending map[txID]pendingQuery

	tokMu      sync.Mutex
	secret     [2][16]byte
	secretTime time.Time

	replies tokenReplies // get_peers answers that carried a token, for announces

	// Replies to our queries that were not accepted, by reason.
	dropWrongSource, dropUnknownTx atomic.Uint64
	// Announces for watched info-hashes whose token-carrying answer was,
	// or was not, kept for the transcript.
	announceProven, announceUnproven atomic.Uint64
}

// txID is the transaction id of one of our queries: 8 bytes from
// crypto/rand, so that a node that did not see the query cannot guess it
// (a counter let anyone who knew roughly how many queries a node had sent
// answer in its place).
type txID [8]byte

// pendingQuery is a query waiting for its answer: only a datagram from
// the exact address and port it was sent to answers it.
type pendingQuery struct {
	to netip.AddrPort
	ch chan rawReply
}

// rawReply is a datagram that answers one of our queries, with the query
// it answers as it was sent. Its bytes are the node's own copy, decoded by
// the waiting goroutine.
type rawReply struct {
	b      []byte         // the answer, as received
	from   netip.AddrPort // who sent it: always the address queried
	at     time.Time      // when it was received
	sent   []byte         // the query, as sent
	sentAt time.Time      // when it was sent
}

// spreadIDs returns n node ids spread evenly over the key space (their top
// byte steps by 256/n), or, for a public address, BEP 42 ids.
func spreadIDs(ip netip.Addr, n int) []krpc.ID {
	out := make([]krpc.ID, n)
	for i := range out {
		var seed krpc.ID
		_, _ = rand.Read(seed[:])
		if krpc.Bep42Exempt(ip) {
			// Put identity i at the start of the i-th of n equal slices.
			span := uint64(1<<32) / uint64(n)
			top := uint64(i)*span + uint64(binary.BigEndian.Uint32(seed[:4]))%span
			binary.BigEndian.PutUint32(seed[:4], uint32(top))
			out[i] = seed
			continue
		}
		out[i] = krpc.SecureNodeID(ip, seed)
	}
	return out
}

// newNode opens identity i's socket on listen (one of the sensor's
// addresses, of one family: udp4 or udp6, never a socket of both).
func (s *Sensor) newNode(ctx context.Context, i int, id krpc.ID, listen netip.Addr) (*node, error) {
	network := "udp4"
	if listen.Is6() {
		network = "udp6"
	}
	addr := netip.AddrPortFrom(listen, 0).String()
	pc, err := s.guard.ListenPacket(ctx, nil, network, addr)
	if err != nil {
		return nil, fmt.Errorf("bittorrent sensor: identity %d: listen %s: %w", i, addr, err)
	}
	conn := pc.(*scope.PacketConn)
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	n := &node{s: s, index: i, id: id, addr: local, v6: local.Addr().Is6(), conn: conn,
		table: routing.New(routing.ID(id), 8), pending: map[txID]pendingQuery{}}
	_, _ = rand.Read(n.secret[0][:])
	n.secret[1] = n.secret[0]
	n.secretTime = s.cfg.Clock()
	return n, nil
}

// readLoop reads datagrams until the socket closes.
func (n *node) readLoop(ctx context.Context) error {
	buf := make([]byte, krpc.MaxMessageSize+1)
	out := make([]byte, 0, 2048)
	var msg krpc.Msg
	for {
		sz, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("bittorrent sensor: identity %d: read: %w", n.index, err)
		}
		n.s.packets.Add(1)
		n.rx.Add(1)
		if sz > krpc.MaxMessageSize {
			n.s.badPackets.Add(1)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		b := buf[:sz]
		msg.Reset()
		if err := msg.Decode(b); err != nil {
			n.s.badPackets.Add(1)
			continue
		}
		now := n.s.cfg.Clock()
		switch msg.Kind {
		case krpc.KindQuery:
			out = n.handleQuery(ctx, &msg, b, from, now, out[:0])
		case krpc.KindResponse, krpc.KindError:
			n.deliver(&msg, b, from, now)
		}
	}
}

// deliver hands a response or error to the query it answers. It is
// accepted only if its transaction id is pending and it comes from the
// exact address and port the query went to; anything else is dropped and
// counted, and a forged answer does not use up the query (the real one
// may still come).
func (n *node) deliver(msg *krpc.Msg, b []byte, from netip.AddrPort, now time.Time) {
	if len(msg.T) != len(txID{}) {
		n.dropUnknownTx.Add(1)
		return
	}
	t := txID(msg.T)
	n.mu.Lock()
	p, ok := n.pending[t]
	if ok && p.to == from {
		delete(n.pending, t)
	}
	n.mu.Unlock()
	switch {
	case !ok:
		n.dropUnknownTx.Add(1) // late, or unsolicited, or a guess
	case p.to != from:
		n.dropWrongSource.Add(1)
	default:
		p.ch <- rawReply{b: append([]byte(nil), b...), from: from, at: now}
	}
}

// Write tokens (BEP 5). The secret changes every tokenRotate and a token
// of the current or the previous secret is accepted, so a token is valid
// for at most tokenLifetime after it was handed out.
const (
	tokenRotate   = 5 * time.Minute
	tokenLifetime = 2 * tokenRotate
)

// token is the write token for ip and infohash: a keyed hash that the
// querier must return in announce_peer for that info-hash. A valid token
// proves the announcer received our answer at that address, so its source
// address was not spoofed. Binding it to the info-hash (BEP 5 leaves the
// token's form to the node) means an announce for a watched info-hash
// always follows our answer to a get_peers for that same info-hash, which
// the node keeps for the announce's transcript (tokenReplies).
func (n *node) token(ip netip.Addr, infohash krpc.ID, now time.Time, prev bool) []byte {
	n.tokMu.Lock()
	switch d := now.Sub(n.secretTime); {
	case d >= tokenLifetime:
		// Idle for two periods: no earlier token may stay valid.
		_, _ = rand.Read(n.secret[0][:])
		_, _ = rand.Read(n.secret[1][:])
		n.secretTime = now
	case d >= tokenRotate:
		n.secret[1] = n.secret[0]
		_, _ = rand.Read(n.secret[0][:])
		n.secretTime = n.secretTime.Add(tokenRotate)
	}
	sec := n.secret[0]
	if prev {
		sec = n.secret[1]
	}
	n.tokMu.Unlock()
	h := sha1.New()
	h.Write(sec[:])
	b := ip.Unmap().As16()
	h.Write(b[:])
	h.Write(infohash[:])
	return h.Sum(nil)[:8]
}

func (n *node) validToken(ip netip.Addr, infohash krpc.ID, tok []byte, now time.Time) bool {
	return string(tok) == string(n.token(ip, infohash, now, false)) || string(tok) == string(n.token(ip, infohash, now, true))
}

// markNodeID marks o when id is not a BEP 42 id of ip (krpc.BEP42Valid):
// a self-declared id that anyone could have sent, on which no device link
// may rest.
func markNodeID(o *observe.Observation, ip netip.Addr, id krpc.ID) {
	if !krpc.BEP42Valid(ip, id) {
		o.Mark(observe.MarkNodeIDUnchecked)
	}
}

// handleQuery answers a query as a correct node would, except that it never
// returns peers, and records queries for watched info-hashes.
func (n *node) handleQuery(ctx context.Context, q *krpc.Msg, raw []byte, from netip.AddrPort, now time.Time, out []byte) []byte {
	s := n.s
	if !q.RO && n.sameFamily(from.Addr()) {
		n.table.Seen(routing.ID(q.A.ID), from, now)
	}
	var r krpc.Msg
	r.T = q.T
	r.Kind = krpc.KindResponse
	r.V = clientVersion
	r.R.ID = n.id
	closest := func(target krpc.ID, v4 bool) []krpc.NodeInfo {
		ns := n.closestAll(routing.ID(target), 8, now, v4)
		infos := make([]krpc.NodeInfo, 0, len(ns))
		for _, nd := range ns {
			infos = append(infos, krpc.NodeInfo{ID: krpc.ID(nd.ID), Addr: nd.Addr})
		}
		return infos
	}
	// BEP 32: the families the querier wants ("n4", "n6"), or without a
	// want its own; a family the sensor does not run has no nodes to give.
	want := q.A.Want
	if want == 0 {
		want = krpc.WantN4
		if from.Addr().Is6() {
			want = krpc.WantN6
		}
	}
	setNodes := func(target krpc.ID) {
		if want&krpc.WantN4 != 0 {
			r.R.Nodes = closest(target, true)
		}
		if want&krpc.WantN6 != 0 {
			r.R.Nodes6 = closest(target, false)
		}
	}
	method := q.Method.String()
	watchedGetPeers := false
	switch q.Method {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		setNodes(q.A.Target)
	case krpc.MethodGetPeers:
		// Nodes and a token, never values: the sensor helps no one find peers.
		setNodes(q.A.InfoHash)
		r.R.Token = n.token(from.Addr(), q.A.InfoHash, now, false)
		if w, ok := s.watch.get(routing.ID(q.A.InfoHash)); ok {
			watchedGetPeers = true
			// Someone looking for the item, says one datagram whose source
			// address nothing authenticates: it could name anyone.
			o := observe.Observation{
				Method: observe.MethodDHTGetPeers, Time: now.UTC(),
				Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
				Endpoint:   observe.Endpoint{IP: from.Addr(), Port: from.Port(), Transport: "udp", Local: n.addr},
				Client:     observe.Client{NodeID: append([]byte(nil), q.A.ID[:]...), Name: clientFromV(q.V)},
				Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
				Transcript: oneDatagram(s.cfg.TranscriptLimit, now, from, raw),
			}
			o.Mark(observe.MarkSpoofableSource)
			markNodeID(&o, from.Addr(), q.A.ID)
			s.emit(ctx, o)
		}
	case krpc.MethodAnnouncePeer:
		if !n.validToken(from.Addr(), q.A.InfoHash, q.A.Token, now) {
			s.countQuery("announce_peer_bad_token")
			return n.sendError(q.T, krpc.ErrorProtocol, "bad token", from, out)
		}
		if w, ok := s.watch.get(routing.ID(q.A.InfoHash)); ok {
			n.recordAnnounce(ctx, w, q, raw, from, now)
		}
	case krpc.MethodSampleInfohashes:
		// BEP 51: we store no info-hashes, so we sample none.
		setNodes(q.A.Target)
		r.R.Interval, r.R.HasInterval = 21600, true
		r.R.Num, r.R.HasNum = 0, true
		r.R.Samples = []krpc.ID{}
	default:
		s.countQuery("unknown")
		return n.sendError(q.T, krpc.ErrorMethodUnknown, "method unknown", from, out)
	}
	s.countQuery(method)
	out, err := r.AppendTo(out)
	if err != nil {
		return out
	}
	if n.send(out, from) && watchedGetPeers {
		n.replies.keep(tokenReply{
			to: from, infohash: q.A.InfoHash, token: string(r.R.Token),
			query: append([]byte(nil), raw...), queryAt: now,
			reply: append([]byte(nil), out...), replyAt: s.cfg.Clock(),
		})
	}
	return out
}

// recordAnnounce records an announce_peer with a valid token for a watched
// info-hash (dht_announce) and queues a probe of the announced endpoint.
//
// The endpoint is the datagram's real source, UDP, and the sensor's socket
// that received it: the token proves that this address received the
// sensor's answer, so the source was not forged, and this is the
// conversation an ISP can find in its logs. The port the peer says it
// listens on (the "port" argument, or the source port with implied_port)
// is Client.ListenPort, where the probe goes: a claim until the probe
// connects. The transcript is the get_peers that asked for the token, the
// sensor's answer that carried it, and the announce, so that anyone can
// check that the announce returned the token sent to that address; when
// that answer was not kept (the info-hash was not watched when it went
// out, or the bounded store dropped it) the transcript holds the announce
// alone and the node counts it.
func (n *node) recordAnnounce(ctx context.Context, w Watched, q *krpc.Msg, raw []byte, from netip.AddrPort, now time.Time) {
	s := n.s
	listen := q.A.Port
	if q.A.ImpliedPort {
		listen = from.Port()
	}
	tr := newTranscript(s.cfg.TranscriptLimit)
	if tk, ok := n.replies.find(from, q.A.InfoHash, string(q.A.Token), now); ok {
		n.announceProven.Add(1)
		tr.Received(tk.queryAt, tk.to, tk.query)
		tr.Sent(tk.replyAt, tk.to, tk.reply)
	} else {
		n.announceUnproven.Add(1)
	}
	tr.Received(now, from, raw)
	o := observe.Observation{
		Method: observe.MethodDHTAnnounce, Time: now.UTC(),
		Item:     observe.Item{Hash: w.Hash, Matched: w.Matched},
		Endpoint: observe.Endpoint{IP: from.Addr(), Port: from.Port(), Transport: "udp", Local: n.addr},
		Client: observe.Client{NodeID: append([]byte(nil), q.A.ID[:]...), ListenPort: listen,
			Name: clientFromV(q.V)},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Transcript: final(tr),
	}
	markNodeID(&o, from.Addr(), q.A.ID)
	s.emit(ctx, o)
	if listen != 0 {
		s.enqueueProbe(netip.AddrPortFrom(from.Addr(), listen), w, "dht_announce")
	}
}

func (n *node) sendError(t []byte, code int, text string, to netip.AddrPort, out []byte) []byte {
	e := krpc.Msg{T: t, Kind: krpc.KindError, V: clientVersion, E: krpc.Error{Code: code, Msg: []byte(text)}}
	out, err := e.AppendTo(out[:0])
	if err == nil {
		n.send(out, to)
	}
	return out
}

// send writes one datagram through the scope guard; refusals are counted.
// A destination of the other address family is never written (the
// socket is of one family; query refuses it first).
func (n *node) send(b []byte, to netip.AddrPort) bool {
	if !n.sameFamily(to.Addr()) {
		return false
	}
	if _, err := n.conn.WriteToUDPAddrPort(b, to); err != nil {
		if errors.Is(err, scope.ErrOutOfScope) {
			n.s.scopeRefused.Add(1)
		}
		return false
	}
	n.s.sent.Add(1)
	n.tx.Add(1)
	return true
}

// sameFamily reports whether a is of the identity's address family (an
// IPv4-mapped address counts as IPv4).
func (n *node) sameFamily(a netip.Addr) bool { return a.IsValid() && a.Unmap().Is6() == n.v6 }

// closestAll returns the n closest good nodes to target known to any of the
// sensor's identities, of the querier's address family.
func (n *node) closestAll(target routing.ID, k int, now time.Time, v4 bool) []routing.Node {
	var all []routing.Node
	seen := map[routing.ID]bool{}
	for _, m := range n.s.nodes {
		for _, nd := range m.table.Closest(target, k, now) {
			if seen[nd.ID] || nd.Addr.Addr().Is4() != v4 {
				continue
			}
			seen[nd.ID] = true
			all = append(all, nd)
		}
	}
	sortByDistance(all, target)
	if len(all) > k {
		all = all[:k]
	}
	return all
}

// errTimeout is a query that got no reply in time.
var errTimeout = errors.New("dht query timed out")

// errWrongFamily is a query to a node of the other address family than
// the identity's socket: nothing was sent (use the identity of the
// node's family, identityFor).
var errWrongFamily = errors.New("dht node of the other address family than the identity")

// errAddrBudget is a query not sent because the per-address budget of its
// destination was spent: the node was not asked, so it has not failed.
var errAddrBudget = errors.New("per-address budget spent")

// query sends q to addr and waits for the answer. The answer's bytes are
// returned with it for the transcript.
func (n *node) query(ctx context.Context, to netip.AddrPort, q *krpc.Msg) (*krpc.Msg, rawReply, error) {
	s := n.s
	if !n.sameFamily(to.Addr()) {
		return nil, rawReply{}, fmt.Errorf("%w: %v from %v", errWrongFamily, to, n.addr)
	}
	if err := s.guard.Check(to); err != nil {
		s.scopeRefused.Add(1)
		return nil, rawReply{}, err
	}
	if err := s.lim.Wait(ctx); err != nil {
		return nil, rawReply{}, err
	}
	if !s.lim.AllowAddr(to.Addr(), s.cfg.Clock()) {
		return nil, rawReply{}, fmt.Errorf("%w: %v", errAddrBudget, to.Addr())
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port()) // as readLoop sees senders
	ch := make(chan rawReply, 1)
	var t txID
	n.mu.Lock()
	for {
		_, _ = rand.Read(t[:])
		if _, dup := n.pending[t]; !dup {
			break
		}
	}
	n.pending[t] = pendingQuery{to: to, ch: ch}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.pending, t)
		n.mu.Unlock()
	}()
	q.T = t[:]
	q.Kind = krpc.KindQuery
	q.V = clientVersion
	q.A.ID = n.id
	switch q.Method {
	case krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodSampleInfohashes:
		// BEP 32: where both families are up, ask for nodes of both; the
		// other family's go to its own identities (hear).
		if s.dualStack() {
			q.A.Want = krpc.WantN4 | krpc.WantN6
		}
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		return nil, rawReply{}, err
	}
	sentAt := s.cfg.Clock()
	if !n.send(b, to) {
		return nil, rawReply{}, fmt.Errorf("sending %s to %v failed", q.Method, to)
	}
	timer := time.NewTimer(s.cfg.QueryTimeout)
	defer timer.Stop()
	select {
	case rr := <-ch:
		rr.sent, rr.sentAt = b, sentAt
		var m krpc.Msg
		if err := m.Decode(rr.b); err != nil {
			return nil, rr, err
		}
		if m.Kind == krpc.KindError {
			return &m, rr, fmt.Errorf("dht error %d from %v: %s", m.E.Code, to, m.E.Msg)
		}
		if !m.RO && n.sameFamily(rr.from.Addr()) {
			n.table.Seen(routing.ID(m.R.ID), rr.from, rr.at)
		}
		return &m, rr, nil
	case <-timer.C:
		s.timeouts.Add(1)
		return nil, rawReply{}, errTimeout
	case <-ctx.Done():
		return nil, rawReply{}, ctx.Err()
	}
}

// Bootstrap bounds: a round adds less than 1/bootstrapStable of the
// routing entries (the tables are stable), bootstrapMaxRounds rounds, or
// bootstrapTimeouts query timeouts in all, whichever comes first.
const (
	bootstrapMaxRounds = 6
	bootstrapStable    = 20
	bootstrapTimeouts  = 20
	// bootstrapSpread is how many targets spread over the key space each
	// round after the first looks up (fewer while the tables hold fewer
	// than bootstrapSpread·K nodes), so that the identities' tables
	// together know nodes near any key, not only near their own ids.
	bootstrapSpread = 32
)

// bootstrap fills the identities' routing tables before the first lookup
// round: a lookup round started on empty tables asks only the bootstrap
// nodes and misses peers for a whole LookupEvery. In round one every
// identity looks up its own id; in each later round its own id again
// (now from closer nodes) and up to bootstrapSpread targets spread evenly
// over the key space, each from the identity closest to it. It logs when it
// ends and how full the tables are (counts only).
func (s *Sensor) bootstrap(ctx context.Context) {
	t0 := time.Now()
	bctx, cancel := context.WithTimeout(ctx, bootstrapTimeouts*s.cfg.QueryTimeout)
	defer cancel()
	queries0 := s.sent.Load()
	rounds, prev, stable := 0, 0, false
	var off [4]byte
	for rounds < bootstrapMaxRounds && bctx.Err() == nil {
		type job struct {
			n      *node
			target routing.ID
		}
		var jobs []job
		for _, n := range s.nodes {
			jobs = append(jobs, job{n, routing.ID(n.id)})
		}
		if rounds > 0 {
			_, _ = rand.Read(off[:])
			// No more targets than the tables hold buckets' worth of
			// nodes: on a network this small, more would only ask the
			// same few nodes again (through the per-address budget).
			spread := uint64(min(bootstrapSpread, max(1, prev/K)))
			for i := range spread {
				var t routing.ID
				_, _ = rand.Read(t[:])
				span := uint64(1<<32) / spread
				top := uint32(i*span + uint64(binary.BigEndian.Uint32(off[:]))%span)
				binary.BigEndian.PutUint32(t[:4], top)
				// Each family's DHT is its own network: the same
				// targets in each, from its identity closest to them.
				for _, v6 := range s.families() {
					jobs = append(jobs, job{s.closestIdentityOf(t, v6), t})
				}
			}
		}
		sem := make(chan struct{}, max(len(s.nodes), s.cfg.LookupConcurrency))
		var wg sync.WaitGroup
		for _, j := range jobs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				s.findNode(bctx, j.n, j.target)
			}()
		}
		wg.Wait()
		rounds++
		total := s.routingNodes()
		// A family whose tables are empty while nodes of it were heard
		// through the other family (BEP 32 want) joins in the next
		// round: the tables are not stable yet.
		if (total == 0 || (total-prev)*bootstrapStable < total) && !s.familyWaiting() {
			stable = bctx.Err() == nil
			prev = total
			break
		}
		prev = total
	}
	least, most := -1, 0
	for _, n := range s.nodes {
		l := n.table.Len()
		if least < 0 || l < least {
			least = l
		}
		most = max(most, l)
	}
	s.bootstrapTook.Store(int64(time.Since(t0)))
	attrs := []any{"identities", len(s.nodes), "rounds", rounds, "stable", stable, "routing_nodes", prev,
		"least_per_identity", least, "most_per_identity", most, "datagrams_sent", s.sent.Load() - queries0,
		"took", time.Since(t0).Round(time.Millisecond)}
	var empty []string
	if s.dualStack() {
		for _, v6 := range s.families() {
			fam := familyName(v6)
			n := s.routingNodesOf(v6)
			attrs = append(attrs, "routing_nodes_"+fam, n)
			if n == 0 {
				empty = append(empty, fam)
			}
		}
	}
	switch {
	case prev == 0:
		s.log.Warn("DHT bootstrap ended with empty routing tables: the bootstrap nodes did not answer", attrs...)
		return
	case len(empty) > 0:
		s.log.Warn("DHT bootstrap left an address family with empty routing tables: no bootstrap node of it answered, and none was heard through the other", append(attrs, "empty", empty)...)
		return
	}
	s.log.Info("DHT identities bootstrapped", attrs...)
}

// routingNodes is the number of nodes in all the identities' tables.
func (s *Sensor) routingNodes() int {
	n := 0
	for _, m := range s.nodes {
		n += m.table.Len()
	}
	return n
}

// routingNodesOf is the number of nodes in the tables of one family's
// identities.
func (s *Sensor) routingNodesOf(v6 bool) int {
	n := 0
	for _, m := range s.nodes {
		if m.v6 == v6 {
			n += m.table.Len()
		}
	}
	return n
}

// familyWaiting reports whether a family the sensor runs has empty tables
// while nodes of it were heard through the other family.
func (s *Sensor) familyWaiting() bool {
	for _, v6 := range s.families() {
		if s.routingNodesOf(v6) == 0 && s.heard.len(v6) > 0 {
			return true
		}
	}
	return false
}

// maintain refreshes each identity's routing table every RefreshEvery
// (a lookup of its own id, through the bootstrap nodes if the tables have
// emptied) and pings stale nodes. The first fill is bootstrap's.
func (s *Sensor) maintain(ctx context.Context) error {
	join := func() {
		var wg sync.WaitGroup
		for _, n := range s.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.findNode(ctx, n, routing.ID(n.id))
			}()
		}
		wg.Wait()
	}
	tick := time.NewTicker(s.cfg.RefreshEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if s.Stats().RoutingNodes == 0 {
				s.log.Warn("routing tables are empty; joining again through the bootstrap nodes", "bootstrap", s.cfg.Bootstrap)
			}
			join()
			now := s.cfg.Clock()
			for _, n := range s.nodes {
				for _, nd := range n.table.Stale(s.cfg.RefreshEvery, now) {
					if _, _, err := n.query(ctx, nd.Addr, &krpc.Msg{Method: krpc.MethodPing}); err != nil {
						n.table.Failed(nd.ID)
					}
				}
			}
		}
	}
}

// The DHT's anti-spoofing and token counters, exported by Collector.
var (
	descRepliesDropped = prometheus.NewDesc("vigil_bittorrent_dht_replies_dropped_total",
		"Responses to the sensor's queries that were dropped, by reason: wrong_source (not from the address:port queried), unknown_transaction (late, unsolicited or guessed transaction id).",
		[]string{"reason"}, nil)
	descAnnounceProof = prometheus.NewDesc("vigil_bittorrent_dht_announce_token_answers_total",
		"Announces with a valid token for a watched info-hash, by whether the answer that carried the token was kept for the transcript (kept) or not (missing).",
		[]string{"result"}, nil)
	descTokenEvicted = prometheus.NewDesc("vigil_bittorrent_dht_token_answers_evicted_total",
		"Kept token-carrying answers dropped before their token expired, for want of room.", nil, nil)
	descTokenKept = prometheus.NewDesc("vigil_bittorrent_dht_token_answers_kept",
		"Token-carrying answers kept for watched info-hashes.", nil, nil)
	dhtDescs = []*prometheus.Desc{descRepliesDropped, descAnnounceProof, descTokenEvicted, descTokenKept}
)

// dhtCounters are the counters above, summed over the identities.
type dhtCounters struct {
	WrongSource, UnknownTx uint64
	AnnounceProven         uint64
	AnnounceUnproven       uint64
	TokenEvicted           uint64
	TokenKept              int
}

func (s *Sensor) dhtCounters() dhtCounters {
	var c dhtCounters
	if !s.isReady() {
		return c
	}
	for _, n := range s.nodes {
		c.WrongSource += n.dropWrongSource.Load()
		c.UnknownTx += n.dropUnknownTx.Load()
		c.AnnounceProven += n.announceProven.Load()
		c.AnnounceUnproven += n.announceUnproven.Load()
		live, ev := n.replies.stats()
		c.TokenKept += live
		c.TokenEvicted += ev
	}
	return c
}

// collectDHT sends the DHT counters to a Prometheus collection.
func (s *Sensor) collectDHT(ch chan<- prometheus.Metric) {
	c := s.dhtCounters()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descRepliesDropped, c.WrongSource, "wrong_source")
	counter(descRepliesDropped, c.UnknownTx, "unknown_transaction")
	counter(descAnnounceProof, c.AnnounceProven, "kept")
	counter(descAnnounceProof, c.AnnounceUnproven, "missing")
	counter(descTokenEvicted, c.TokenEvicted)
	ch <- prometheus.MustNewConstMetric(descTokenKept, prometheus.GaugeValue, float64(c.TokenKept))
}
