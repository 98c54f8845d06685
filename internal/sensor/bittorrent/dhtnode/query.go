package dhtnode

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// ErrTimeout is a query that got no reply in time.
var ErrTimeout = errors.New("dht query timed out")

// ErrWrongFamily is a query to a node of the other address family than
// the identity's socket: nothing was sent (use the identity of the
// node's family, DHT.IdentityFor).
var ErrWrongFamily = errors.New("dht node of the other address family than the identity")

// errAddrBudget is a query not sent because the per-address budget of its
// destination was spent: the node was not asked, so it has not failed.
var errAddrBudget = errors.New("per-address budget spent")

// Query sends q from the identity to a node and waits for the answer: a
// datagram from that exact address and port with the query's transaction
// id (8 random bytes; deliver drops any other). It fills in q's
// transaction id, kind, version and node id, and, where both families are
// up, asks for nodes of both (BEP 32). The answer's bytes and the query's
// are returned with it, for the transcript. An error answer is returned
// with an error.
func (n *Node) Query(ctx context.Context, to netip.AddrPort, q *krpc.Msg) (*krpc.Msg, Reply, error) {
	d := n.d
	if !n.sameFamily(to.Addr()) {
		return nil, Reply{}, fmt.Errorf("%w: %v from %v", ErrWrongFamily, to, n.addr)
	}
	if err := d.guard.Check(to); err != nil {
		d.scopeRefused.Add(1)
		return nil, Reply{}, err
	}
	if err := d.lim.Wait(ctx); err != nil {
		return nil, Reply{}, err
	}
	if !d.lim.AllowAddr(to.Addr(), d.cfg.Clock()) {
		return nil, Reply{}, fmt.Errorf("%w: %v", errAddrBudget, to.Addr())
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port()) // as readLoop sees senders
	ch := make(chan Reply, 1)
	t := n.pend(to, ch)
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
		// other family's go to its own identities (heard).
		if d.dualStack() {
			q.A.Want = krpc.WantN4 | krpc.WantN6
		}
	}
	b, err := q.AppendTo(nil)
	if err != nil {
		return nil, Reply{}, err
	}
	sentAt := d.cfg.Clock()
	if !n.send(b, to) {
		return nil, Reply{}, fmt.Errorf("sending %s to %v failed", q.Method, to)
	}
	return n.await(ctx, to, ch, b, sentAt)
}

// pend registers a query to to under a fresh transaction id.
func (n *Node) pend(to netip.AddrPort, ch chan Reply) txID {
	var t txID
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		_, _ = rand.Read(t[:])
		if _, dup := n.pending[t]; !dup {
			break
		}
	}
	n.pending[t] = pendingQuery{to: to, ch: ch}
	return t
}

// await waits for the answer to the query sent (b, at sentAt) to to.
func (n *Node) await(ctx context.Context, to netip.AddrPort, ch chan Reply, b []byte, sentAt time.Time) (*krpc.Msg, Reply, error) {
	timer := time.NewTimer(n.d.cfg.QueryTimeout)
	defer timer.Stop()
	select {
	case rr := <-ch:
		rr.Sent, rr.SentAt = b, sentAt
		var m krpc.Msg
		if err := m.Decode(rr.B); err != nil {
			return nil, rr, err
		}
		if m.Kind == krpc.KindError {
			return &m, rr, fmt.Errorf("dht error %d from %v: %s", m.E.Code, to, m.E.Msg)
		}
		if !m.RO && n.sameFamily(rr.From.Addr()) {
			n.table.Seen(routing.ID(m.R.ID), rr.From, rr.At)
		}
		return &m, rr, nil
	case <-timer.C:
		n.d.timeouts.Add(1)
		return nil, Reply{}, ErrTimeout
	case <-ctx.Done():
		return nil, Reply{}, ctx.Err()
	}
}
