package dhtnode

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

	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// clientVersion is the "v" the sensor's nodes send: "VG" and a version.
var clientVersion = []byte("VG\x00\x01")

// ClientVersion returns (a copy of) the "v" the sensor's nodes send, so
// that a reader of a DHT message can tell Vigil's exact bytes from
// another client's: "VG" alone is also Vagaa's client code.
func ClientVersion() []byte { return append([]byte(nil), clientVersion...) }

// Node is one DHT identity: a node id, a UDP socket on one of the
// sensor's listen addresses, and a routing table of nodes of that address
// family only (BEP 32: the IPv4 and IPv6 DHTs are separate networks).
type Node struct {
	d     *DHT
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

// ID is the identity's node id.
func (n *Node) ID() krpc.ID { return n.id }

// Addr is the identity's UDP socket address.
func (n *Node) Addr() netip.AddrPort { return n.addr }

// Is6 reports whether the identity is of the IPv6 DHT.
func (n *Node) Is6() bool { return n.v6 }

// Closest returns up to k good nodes of the identity's routing table,
// closest to target first.
func (n *Node) Closest(target routing.ID, k int, now time.Time) []routing.Node {
	return n.table.Closest(target, k, now)
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
	ch chan Reply
}

// Reply is a datagram that answers one of our queries, with the query it
// answers as it was sent: both go into a transcript. Its bytes are the
// node's own copy.
type Reply struct {
	B      []byte         // the answer, as received
	From   netip.AddrPort // who sent it: always the address queried
	At     time.Time      // when it was received
	Sent   []byte         // the query, as sent
	SentAt time.Time      // when it was sent
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
func (d *DHT) newNode(ctx context.Context, i int, id krpc.ID, listen netip.Addr) (*Node, error) {
	network := "udp4"
	if listen.Is6() {
		network = "udp6"
	}
	addr := netip.AddrPortFrom(listen, 0).String()
	pc, err := d.guard.ListenPacket(ctx, nil, network, addr)
	if err != nil {
		return nil, fmt.Errorf("bittorrent sensor: identity %d: listen %s: %w", i, addr, err)
	}
	conn := pc.(*scope.PacketConn)
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	n := &Node{d: d, index: i, id: id, addr: local, v6: local.Addr().Is6(), conn: conn,
		table: routing.New(routing.ID(id), 8), pending: map[txID]pendingQuery{}}
	_, _ = rand.Read(n.secret[0][:])
	n.secret[1] = n.secret[0]
	n.secretTime = d.cfg.Clock()
	return n, nil
}

// readLoop reads datagrams until the socket closes.
func (n *Node) readLoop(ctx context.Context) error {
	d := n.d
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
		d.packets.Add(1)
		n.rx.Add(1)
		if sz > krpc.MaxMessageSize {
			d.badPackets.Add(1)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		b := buf[:sz]
		msg.Reset()
		if err := msg.Decode(b); err != nil {
			d.badPackets.Add(1)
			continue
		}
		now := d.cfg.Clock()
		switch msg.Kind {
		case krpc.KindQuery:
			out = n.handleQuery(ctx, Query{Msg: &msg, Raw: b, From: from, Local: n.addr, At: now}, out[:0])
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
func (n *Node) deliver(msg *krpc.Msg, b []byte, from netip.AddrPort, now time.Time) {
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
		p.ch <- Reply{B: append([]byte(nil), b...), From: from, At: now}
	}
}

// Write tokens (BEP 5). The secret changes every tokenRotate and a token
// of the current or the previous secret is accepted, so a token is valid
// for at most tokenLifetime after it was handed out.
const (
	tokenRotate   = 5 * time.Minute
	tokenLifetime = 2 * tokenRotate
)

// token is the write token for the querier's address and port and
// infohash: a keyed hash that the querier must return in announce_peer
// for that info-hash. A valid token proves the announcer received our
// answer at that address and port, so neither was spoofed. BEP 5 binds a
// token to the address; the port too matters here, because behind
// carrier-grade NAT one address is many subscribers told apart by port:
// a token bound to the address alone let one of them, able to forge
// source addresses elsewhere, announce from another's port with its own
// token. Clients announce from the socket they asked from, so the port
// costs them nothing. Binding it to the info-hash (BEP 5 leaves the
// token's form to the node) means an announce for a watched info-hash
// always follows our answer to a get_peers for that same info-hash, which
// the node keeps for the announce's transcript (tokenReplies).
func (n *Node) token(ap netip.AddrPort, infohash krpc.ID, now time.Time, prev bool) []byte {
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
	b := ap.Addr().Unmap().As16()
	h.Write(b[:])
	h.Write([]byte{byte(ap.Port() >> 8), byte(ap.Port())})
	h.Write(infohash[:])
	return h.Sum(nil)[:8]
}

func (n *Node) validToken(ap netip.AddrPort, infohash krpc.ID, tok []byte, now time.Time) bool {
	return string(tok) == string(n.token(ap, infohash, now, false)) || string(tok) == string(n.token(ap, infohash, now, true))
}

// sameFamily reports whether a is of the identity's address family (an
// IPv4-mapped address counts as IPv4).
func (n *Node) sameFamily(a netip.Addr) bool { return a.IsValid() && a.Unmap().Is6() == n.v6 }
