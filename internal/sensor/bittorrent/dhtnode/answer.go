package dhtnode

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// handleQuery answers a query as a correct node would, except that it never
// returns peers, and tells the Handler of queries for watched info-hashes.
func (n *Node) handleQuery(ctx context.Context, q Query, out []byte) []byte {
	d := n.d
	m, from, now := q.Msg, q.From, q.At
	if !m.RO && n.sameFamily(from.Addr()) {
		n.table.Seen(routing.ID(m.A.ID), from, now)
	}
	var r krpc.Msg
	r.T = m.T
	r.Kind = krpc.KindResponse
	r.V = clientVersion
	r.R.ID = n.id
	watchedGetPeers := false
	switch m.Method {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		n.setNodes(&r, q, m.A.Target)
	case krpc.MethodGetPeers:
		// Nodes and a token, never values: the sensor helps no one find peers.
		n.setNodes(&r, q, m.A.InfoHash)
		r.R.Token = n.token(from, m.A.InfoHash, now, false)
		if d.h.Watched(m.A.InfoHash) {
			watchedGetPeers = true
			d.h.GetPeers(ctx, q)
		}
	case krpc.MethodAnnouncePeer:
		if !n.validToken(from, m.A.InfoHash, m.A.Token, now) {
			d.queries.badToken.Add(1)
			return n.sendError(m.T, krpc.ErrorProtocol, "bad token", from, out)
		}
		if d.h.Watched(m.A.InfoHash) {
			n.tellAnnounce(ctx, q)
		}
	case krpc.MethodSampleInfohashes:
		// BEP 51: we store no info-hashes, so we sample none.
		n.setNodes(&r, q, m.A.Target)
		r.R.Interval, r.R.HasInterval = 21600, true
		r.R.Num, r.R.HasNum = 0, true
		r.R.Samples = []krpc.ID{}
	default:
		d.queries.unknown.Add(1)
		return n.sendError(m.T, krpc.ErrorMethodUnknown, "method unknown", from, out)
	}
	d.queries.counter(m.Method).Add(1)
	out, err := r.AppendTo(out)
	if err != nil {
		return out
	}
	if n.send(out, from) && watchedGetPeers {
		n.replies.keep(tokenReply{
			to: from, infohash: m.A.InfoHash, token: string(r.R.Token),
			query: append([]byte(nil), q.Raw...), queryAt: now,
			reply: append([]byte(nil), out...), replyAt: d.cfg.Clock(),
		})
	}
	return out
}

// setNodes puts into r the closest nodes to target of the families the
// querier wants (BEP 32: "n4", "n6"), or without a want of its own
// family; a family the sensor does not run has no nodes to give.
func (n *Node) setNodes(r *krpc.Msg, q Query, target krpc.ID) {
	want := q.Msg.A.Want
	if want == 0 {
		want = krpc.WantN4
		if q.From.Addr().Is6() {
			want = krpc.WantN6
		}
	}
	if want&krpc.WantN4 != 0 {
		r.R.Nodes = n.closestInfos(target, q.At, true)
	}
	if want&krpc.WantN6 != 0 {
		r.R.Nodes6 = n.closestInfos(target, q.At, false)
	}
}

// closestInfos is closestAll as the node infos of an answer.
func (n *Node) closestInfos(target krpc.ID, now time.Time, v4 bool) []krpc.NodeInfo {
	ns := n.d.closestAll(routing.ID(target), 8, now, v4)
	infos := make([]krpc.NodeInfo, 0, len(ns))
	for _, nd := range ns {
		infos = append(infos, krpc.NodeInfo{ID: krpc.ID(nd.ID), Addr: nd.Addr})
	}
	return infos
}

// tellAnnounce tells the Handler of an announce_peer with a valid token
// for a watched info-hash, with the kept get_peers and answer that carried
// the token when there are (counted either way).
func (n *Node) tellAnnounce(ctx context.Context, q Query) {
	m, from := q.Msg, q.From
	a := Announce{Query: q, ListenPort: m.A.Port}
	if m.A.ImpliedPort {
		a.ListenPort = from.Port()
	}
	if tk, ok := n.replies.find(from, m.A.InfoHash, string(m.A.Token), q.At); ok {
		n.announceProven.Add(1)
		a.Proof = &TokenAnswer{To: tk.to, Query: tk.query, QueryAt: tk.queryAt, Reply: tk.reply, ReplyAt: tk.replyAt}
	} else {
		n.announceUnproven.Add(1)
	}
	n.d.h.Announce(ctx, a)
}

func (n *Node) sendError(t []byte, code int, text string, to netip.AddrPort, out []byte) []byte {
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
func (n *Node) send(b []byte, to netip.AddrPort) bool {
	if !n.sameFamily(to.Addr()) {
		return false
	}
	if _, err := n.conn.WriteToUDPAddrPort(b, to); err != nil {
		if errors.Is(err, scope.ErrOutOfScope) {
			n.d.scopeRefused.Add(1)
		}
		return false
	}
	n.d.sent.Add(1)
	n.tx.Add(1)
	return true
}

// closestAll returns the k closest good nodes to target known to any of
// the sensor's identities, of one address family (IPv4 if v4).
func (d *DHT) closestAll(target routing.ID, k int, now time.Time, v4 bool) []routing.Node {
	var all []routing.Node
	seen := map[routing.ID]bool{}
	for _, m := range d.nodes {
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

func sortByDistance(ns []routing.Node, target routing.ID) {
	slices.SortFunc(ns, func(a, b routing.Node) int {
		da, db := routing.Distance(a.ID, target), routing.Distance(b.ID, target)
		return bytes.Compare(da[:], db[:])
	})
}
