package bittorrent

import (
	"bytes"
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/dhtnode"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// lookupLoop looks up the peers of every watched info-hash every
// LookupEvery, LookupConcurrency at a time.
func (s *Sensor) lookupLoop(ctx context.Context) error {
	sem := make(chan struct{}, s.cfg.LookupConcurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	tickC := s.lookupTick
	if tickC == nil {
		tick := time.NewTicker(min(s.cfg.LookupEvery/4, time.Second))
		defer tick.Stop()
		tickC = tick.C
	}
	batch := s.cfg.LookupConcurrency * 4
	for {
		// Start every lookup that is due, as fast as the semaphore lets
		// them run: the concurrency bounds the rate, not the tick (a fixed
		// number a tick left 100,000 watched info-hashes looked up every
		// two hours instead of every LookupEvery).
		for {
			now := s.cfg.Clock()
			due := s.watch.due(now, s.cfg.LookupEvery, batch)
			for _, key := range due {
				// A new generation of the key's re-polls, timed from now.
				s.dht.LookupStarted(key, now)
			}
			for _, key := range due {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
				wg.Add(1)
				go func(key routing.ID) {
					defer wg.Done()
					defer func() { <-sem }()
					s.lookupPeers(ctx, key)
				}(key)
			}
			if len(due) < batch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tickC:
		}
	}
}

// lookupPeers runs one get_peers lookup for a watched key and records each
// peer the network names for it, once per lookup.
func (s *Sensor) lookupPeers(ctx context.Context, key routing.ID) {
	w, ok := s.watch.get(key)
	if !ok {
		return
	}
	// The item's trackers are asked while the DHT lookup runs, not
	// before it: a slow tracker must not delay the DHT's answer.
	trackersDone := make(chan struct{})
	go func() {
		defer close(trackersDone)
		s.askTrackers(ctx, w)
	}()
	res := s.dht.LookupPeers(ctx, key)
	<-trackersDone
	s.lookups.Add(1)
	s.dht.LookupDone(key, res)
	s.recordPeers(ctx, w, res.Peers)
}

// recordPeers records each peer a node named for a watched key (by a
// lookup, a re-poll or discovery's sampler) and queues its probe.
//
// Such a record is a third party's claim carried by one UDP datagram: the
// node that answered may lie, and nothing authenticates the answer beyond
// its source address and an unguessable transaction id. It is marked
// third_party and spoofable_source, has no sensor address (the endpoint
// never talked to the sensor), and its transcript is our get_peers and the
// answer that named the peer, both with the node's address. Its transport
// is "tcp": the peer's listen port as a BitTorrent peer, where the probe
// goes first (uTP listens on the same port number); nothing was seen on it.
func (s *Sensor) recordPeers(ctx context.Context, w Watched, peers map[netip.AddrPort]peerSource) {
	perNode := map[netip.AddrPort]int{}
	for peer, src := range peers {
		if s.droppedSelf(peer) {
			continue
		}
		if perNode[src.Node]++; perNode[src.Node] > maxValuesPerNode {
			s.countDrop(dropValuesExcess)
			continue
		}
		if err := s.guard.Check(peer); err != nil {
			// Out of scope: not probed, but still seen. The record is what
			// the node said, which is all a third-party claim is.
			s.scopeRefused.Add(1)
		}
		tr := newTranscript(s.cfg.TranscriptLimit)
		if len(src.Reply.Sent) > 0 {
			tr.Sent(src.Reply.SentAt, src.Node, src.Reply.Sent)
		}
		tr.Received(src.Reply.At, src.Node, src.Reply.B)
		o := observe.Observation{
			Method: observe.MethodDHTGetPeers, Time: src.Reply.At.UTC(),
			Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
			Endpoint:   observe.Endpoint{IP: peer.Addr(), Port: peer.Port(), Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
			Transcript: final(tr),
		}
		o.Mark(observe.MarkThirdParty)
		o.Mark(observe.MarkSpoofableSource)
		s.emit(ctx, o)
		s.enqueueProbe(peer, w, "dht_get_peers")
	}
}

// maxValuesPerNode bounds the peers of one node's get_peers answers that
// one lookup (or re-poll, or sample) records and probes. Clients answer
// with at most 100 values (libtorrent's dht_max_peers_reply); a reply
// may carry up to krpc.MaxListLen. A node that names more is counted
// past the bound (values_excess): each record carries the node's answer
// as its transcript, and one node must not flood the sensor's output.
const maxValuesPerNode = 100

// clientFromV decodes a DHT "v" field (two letters and two version bytes)
// for display; unknown values are shown as printable text or hex. "VG"
// is Vagaa's client code as well as Vigil's: only the exact bytes Vigil's
// nodes send (dhtnode.ClientVersion) read as Vigil, any other "VG" as
// "VG (Vagaa or other)", so that no third party is named Vigil by a
// version Vigil never sent (one sending Vigil's bytes is named what it
// claims, as every name here is the node's own word).
func clientFromV(v []byte) string {
	if len(v) == 0 {
		return ""
	}
	names := map[string]string{"LT": "libtorrent", "UT": "uTorrent", "TR": "Transmission", "GR": "GetRight",
		"MP": "MooPolice", "UM": "uTorrent Mac", "VG": "VG (Vagaa or other)", "lt": "libtorrent", "AZ": "Vuze", "KT": "KTorrent",
		"DE": "Deluge", "qB": "qBittorrent", "BC": "BitComet", "GT": "anacrolix/torrent", "AG": "Ares",
	}
	if bytes.Equal(v, dhtnode.ClientVersion()) {
		return "Vigil"
	}
	if len(v) == 4 {
		if n, ok := names[string(v[:2])]; ok {
			return n
		}
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "v=" + hexString(v)
		}
	}
	return string(v)
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
