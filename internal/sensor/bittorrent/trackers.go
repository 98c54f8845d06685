package bittorrent

import (
	"context"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
)

// askTrackers announces a watched torrent to each tracker it names, records
// the peers each lists, and withdraws at once (event=stopped), so that the
// sensor does not stay listed as a peer of anything.
func (s *Sensor) askTrackers(ctx context.Context, w Watched) {
	if s.trackers == nil || len(w.Trackers) == 0 {
		return
	}
	key := Key(w.Hash)
	for _, url := range w.Trackers {
		req := tracker.Request{
			InfoHash: key, PeerID: s.peerID, Port: s.nodes[0].addr.Port(),
			Left: 1, Event: tracker.EventStarted, NumWant: 200, Compact: true,
		}
		resp, err := s.trackers.Announce(ctx, url, req)
		if err != nil {
			s.trackerErrors.Add(1)
			s.log.Debug("tracker announce failed", "tracker", url, "infohash", w.Hash.Hex(), "err", err)
			continue
		}
		at := s.cfg.Clock()
		req.Event = tracker.EventStopped
		if _, err := s.trackers.Announce(ctx, url, req); err != nil {
			s.trackerErrors.Add(1)
		}
		trackerAddr := trackerEndpoint(url)
		for _, p := range resp.Peers {
			if s.isSelf(p) {
				continue // a tracker may list the sensor's own announce
			}
			tr := newTranscript(s.cfg.TranscriptLimit)
			tr.sent(at, trackerAddr, resp.Sent)
			tr.received(at, trackerAddr, resp.Raw)
			o := observe.Observation{
				Method: observe.MethodTracker, Time: at.UTC(),
				Item:       observe.Item{Hash: w.Hash, Matched: w.Matched},
				Endpoint:   observe.Endpoint{IP: p.Addr().Unmap(), Port: p.Port(), Transport: "tcp"},
				Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
				Transcript: tr.final(),
			}
			if id := resp.PeerIDs[p]; len(id) == 20 {
				o.Client.PeerID = append([]byte(nil), id...)
			}
			s.emit(ctx, o)
			s.enqueueProbe(netip.AddrPortFrom(p.Addr().Unmap(), p.Port()), w, "tracker")
		}
	}
}

// trackerEndpoint is the tracker's address for the transcript, or the
// zero address when the URL names none that parses.
func trackerEndpoint(url string) netip.AddrPort {
	for _, prefix := range []string{"http://", "https://", "udp://"} {
		if len(url) > len(prefix) && url[:len(prefix)] == prefix {
			rest := url[len(prefix):]
			for i := 0; i < len(rest); i++ {
				if rest[i] == '/' {
					rest = rest[:i]
					break
				}
			}
			ap, _ := netip.ParseAddrPort(rest)
			return ap
		}
	}
	return netip.AddrPort{}
}

// trackerTimeouts returns a tracker client config fit for the sensor's
// timings.
func trackerConfig(cfg Config) tracker.Config {
	tc := tracker.DefaultConfig()
	tc.UserAgent = tracker.UserAgent(cfg.Version)
	tc.UDPLocalAddr = cfg.Listen
	if cfg.QueryTimeout < time.Second*3 {
		// Lab timings: retry UDP quickly.
		tc.UDPRetryBase = cfg.QueryTimeout
		tc.UDPMaxRetries = 2
		tc.HTTPTimeout = 5 * cfg.QueryTimeout
	}
	return tc
}

// isSelf reports whether p is one of the sensor's own addresses.
func (s *Sensor) isSelf(p netip.AddrPort) bool {
	if p.Addr().Unmap() != s.cfg.Listen {
		return false
	}
	for _, n := range s.nodes {
		if n.addr.Port() == p.Port() {
			return true
		}
	}
	return false
}
