package bittorrent

import (
	"context"
	"net/netip"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// K is the Kademlia bucket size and the number of closest nodes a lookup
// converges on (BEP 5).
const K = dhtnode.K

// peerSource is the node that first named a peer, and the exchange that
// named it (dhtnode.PeerSource).
type peerSource = dhtnode.PeerSource

// dhtEvents is the Sensor as the DHT part's Handler: what the identities
// hear about watched info-hashes becomes observations here, and the peers
// they learn of are probed. A conversion of the Sensor, not a pointer
// back to it.
type dhtEvents Sensor

func (e *dhtEvents) sensor() *Sensor { return (*Sensor)(e) }

// Watched implements dhtnode.Handler: the exact watch set.
func (e *dhtEvents) Watched(ih krpc.ID) bool {
	_, ok := e.watch.get(routing.ID(ih))
	return ok
}

// GetPeers implements dhtnode.Handler: someone looking for a watched
// item, says one datagram whose source address nothing authenticates: it
// could name anyone. The observation is marked spoofable_source.
func (e *dhtEvents) GetPeers(ctx context.Context, q dhtnode.Query) {
	s := e.sensor()
	w, ok := s.watch.get(routing.ID(q.Msg.A.InfoHash))
	if !ok {
		return
	}
	o := observe.Observation{
		Method: observe.MethodDHTGetPeers, Time: q.At.UTC(),
		Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
		Endpoint:   observe.Endpoint{IP: q.From.Addr(), Port: q.From.Port(), Transport: "udp", Local: q.Local},
		Client:     observe.Client{NodeID: append([]byte(nil), q.Msg.A.ID[:]...), Name: clientFromV(q.Msg.V)},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Transcript: oneDatagram(s.cfg.TranscriptLimit, q.At, q.From, q.Raw),
	}
	o.Mark(observe.MarkSpoofableSource)
	markNodeID(&o, q.From.Addr(), q.Msg.A.ID)
	s.emit(ctx, o)
}

// Announce implements dhtnode.Handler: an announce_peer with a valid
// token for a watched info-hash is recorded (dht_announce) and the
// announced endpoint probed.
//
// The endpoint is the datagram's real source, UDP, and the sensor's socket
// that received it: the token proves that this address and port received the
// sensor's answer, so the source was not forged, and this is the
// conversation an ISP can find in its logs. The port the peer says it
// listens on (the "port" argument, or the source port with implied_port)
// is Client.ListenPort, where the probe goes: a claim until the probe
// connects. The transcript is the get_peers that asked for the token, the
// sensor's answer that carried it, and the announce, so that anyone can
// check that the announce returned the token sent to that address; when
// that answer was not kept (the info-hash was not watched when it went
// out, or the bounded store dropped it) the transcript holds the announce
// alone and the DHT part counts it.
func (e *dhtEvents) Announce(ctx context.Context, a dhtnode.Announce) {
	s := e.sensor()
	q := a.Msg
	w, ok := s.watch.get(routing.ID(q.A.InfoHash))
	if !ok {
		return
	}
	tr := newTranscript(s.cfg.TranscriptLimit)
	if p := a.Proof; p != nil {
		tr.Received(p.QueryAt, p.To, p.Query)
		tr.Sent(p.ReplyAt, p.To, p.Reply)
	}
	tr.Received(a.At, a.From, a.Raw)
	o := observe.Observation{
		Method: observe.MethodDHTAnnounce, Time: a.At.UTC(),
		Item:     observe.Item{Hash: w.Hash, Matched: w.Matched},
		Endpoint: observe.Endpoint{IP: a.From.Addr(), Port: a.From.Port(), Transport: "udp", Local: a.Local},
		Client: observe.Client{NodeID: append([]byte(nil), q.A.ID[:]...), ListenPort: a.ListenPort,
			Name: clientFromV(q.V)},
		Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
		Transcript: final(tr),
	}
	markNodeID(&o, a.From.Addr(), q.A.ID)
	s.emit(ctx, o)
	if a.ListenPort != 0 {
		s.enqueueProbe(netip.AddrPortFrom(a.From.Addr(), a.ListenPort), w, "dht_announce")
	}
}

// RepollPeers implements dhtnode.Handler: peers a re-poll named first
// are recorded as a lookup records them.
func (e *dhtEvents) RepollPeers(ctx context.Context, key routing.ID, peers map[netip.AddrPort]dhtnode.PeerSource) {
	s := e.sensor()
	if w, ok := s.watch.get(key); ok {
		s.recordPeers(ctx, w, peers)
	}
}

// markNodeID marks o when id is not a BEP 42 id of ip (krpc.BEP42Valid):
// a self-declared id that anyone could have sent, on which no device link
// may rest.
func markNodeID(o *observe.Observation, ip netip.Addr, id krpc.ID) {
	if !krpc.BEP42Valid(ip, id) {
		o.Mark(observe.MarkNodeIDUnchecked)
	}
}
