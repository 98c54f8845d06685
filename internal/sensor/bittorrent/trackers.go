package bittorrent

import (
	"cmp"
	"context"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
)

// askTrackers asks each tracker a watched torrent names (Watched.Trackers)
// and each of Config.Trackers for its peers, and records each peer
// listed. A tracker is asked about an info-hash again only once the
// interval its last good answer gave has passed (trackerAnswered).
//
// Trackers hand out peers only in answer to an announce, and every
// announce but event=stopped lists the announcer as a peer: the protocol
// (BEP 3, BEP 15) has no way to ask without announcing. So the sensor
// announces, and withdraws at once. Exactly what it sends, for each
// tracker: an announce with the info-hash, the sensor's peer id
// ("-VG0001-" and 12 random bytes, one per run), port = the UDP port of
// its first DHT identity of the tracker's address family (no BitTorrent
// peer listens there: a peer that tries it reaches a DHT socket that
// drops what it does not decode), from its listen address of that family
// (a tracker of a family the sensor has no address of is not asked),
// uploaded=0, downloaded=0, left=1 (a positive number, so that the
// tracker counts a downloader, not a seed), event=started, numwant=200,
// compact=1, no key; over HTTP with the User-Agent "Vigil/<version>".
// When a good answer is in, the same announce with event=stopped, whose
// answer is not read for peers; when the first announce fails (no answer,
// a failure reason, an answer that does not parse) nothing more is sent
// to that tracker this round. Between the two the tracker may list the
// sensor's address to other peers of the torrent; the sensor serves
// nothing to anyone who connects.
//
// Each record is a tracker's claim (third_party): the listed peer said
// nothing to the sensor. Its transcript is the started announce as it
// went over the wire, each datagram (UDP: connect, its answer, announce,
// its answer, retransmissions included) or each read of the HTTP response
// with its own time, and the observation's time is when the answer's last
// byte arrived.
func (s *Sensor) askTrackers(ctx context.Context, w Watched) {
	urls := mergeStrings(slices.Clone(w.Trackers), s.cfg.Trackers)
	if s.trackers == nil || len(urls) == 0 {
		return
	}
	key := Key(w.Hash)
	for _, turl := range urls {
		ask := trackerAsk{url: turl, key: key}
		if !s.trackerDue(ask) {
			continue // the tracker's interval has not passed
		}
		trackerAddr := trackerEndpoint(turl)
		// The tracker lists the sensor at the address it was reached
		// from and the port announced: both of one family, so that
		// the listing names one of the sensor's identities (self.go).
		id := s.dht.Nodes()[0]
		if trackerAddr.IsValid() {
			if id = s.dht.IdentityFor(trackerAddr.Addr(), 0); id == nil {
				s.trackerErrors.Add(1)
				s.log.Debug("tracker not asked: no listen address of its family", "tracker", turl, "infohash", w.Hash.Hex())
				continue
			}
		}
		req := tracker.Request{
			InfoHash: key, PeerID: s.peerID, Port: id.Addr().Port(),
			Left: 1, Event: tracker.EventStarted, NumWant: trackerNumWant, Compact: true,
		}
		resp, err := s.announceBounded(ctx, turl, req)
		if err != nil {
			s.trackerErrors.Add(1)
			s.log.Debug("tracker announce failed", "tracker", turl, "infohash", w.Hash.Hex(), "err", err)
			continue
		}
		at := s.cfg.Clock()
		for _, r := range resp.Records {
			if !r.Sent {
				at = r.At // the answer's last read
			}
		}
		s.trackerAnswered(ask, at, resp)
		req.Event = tracker.EventStopped
		if _, err := s.announceBounded(ctx, turl, req); err != nil {
			s.trackerErrors.Add(1)
		}
		listed := map[netip.AddrPort]bool{}
		for _, p := range resp.Peers {
			if s.droppedSelf(p) {
				continue // a tracker may list the sensor's own announce
			}
			ap := netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
			switch {
			case listed[ap]:
				continue // listed twice in one answer: one claim
			case len(listed) >= trackerNumWant:
				// More than asked for: a tracker that floods; each record
				// would carry the whole exchange.
				s.countDrop(dropTrackerExcess)
				continue
			}
			listed[ap] = true
			tr := newTranscript(s.cfg.TranscriptLimit)
			for _, r := range resp.Records {
				if r.Sent {
					tr.Sent(r.At, trackerAddr, r.Bytes)
				} else {
					tr.Received(r.At, trackerAddr, r.Bytes)
				}
			}
			o := observe.Observation{
				Method: observe.MethodTracker, Time: at.UTC(),
				Item: observe.Item{Hash: w.Hash, Matched: w.Matched},
				// The peer's listen port as the tracker listed it; "tcp"
				// is where the probe goes first, not something seen.
				Endpoint:   observe.Endpoint{IP: p.Addr().Unmap(), Port: p.Port(), Transport: "tcp"},
				Possession: observe.Possession{Level: observe.Announced, PiecesHave: -1, PiecesTotal: -1},
				Transcript: final(tr),
			}
			o.Mark(observe.MarkThirdParty)
			if id := resp.PeerIDs[p]; len(id) == 20 && string(id) != string(s.peerID[:]) {
				// The tracker's word for it, like the address (never
				// the sensor's own peer id, whatever address it lists).
				o.Client.PeerID = append([]byte(nil), id...)
			}
			s.emit(ctx, o)
			s.enqueueProbe(netip.AddrPortFrom(p.Addr().Unmap(), p.Port()), w, "tracker")
		}
	}
}

// CheckTrackers checks each tracker URL as the sensor's tracker client
// will before it sends anything (tracker.Client.Check): a scheme it
// speaks, an IP address, in guard's scope. It opens no socket; the error
// names the first tracker refused.
func CheckTrackers(urls []string, guard *scope.Guard) error {
	c, err := tracker.New(tracker.DefaultConfig(), guard)
	if err != nil {
		return err
	}
	for _, u := range urls {
		if err := c.Check(u); err != nil {
			return err
		}
	}
	return nil
}

// trackerAsk is one tracker asked about one info-hash.
type trackerAsk struct {
	url string
	key routing.ID
}

// trackerDue reports whether the tracker may be asked about the
// info-hash now: never asked, or the interval its last good answer gave
// has passed.
func (s *Sensor) trackerDue(a trackerAsk) bool {
	s.trackerMu.Lock()
	defer s.trackerMu.Unlock()
	next, ok := s.trackerNext[a]
	return !ok || !s.cfg.Clock().Before(next)
}

// trackerAnswered keeps when the tracker may next be asked about the
// info-hash: at, the answer's time, plus the interval it gave (or its
// min interval, when longer). A tracker that gave none (0) may be asked
// at the next lookup.
func (s *Sensor) trackerAnswered(a trackerAsk, at time.Time, resp tracker.Response) {
	wait := max(resp.Interval, resp.MinInterval)
	s.trackerMu.Lock()
	defer s.trackerMu.Unlock()
	if s.trackerNext == nil {
		s.trackerNext = map[trackerAsk]time.Time{}
	}
	s.trackerNext[a] = at.Add(wait)
}

// trackerNumWant is the peers the sensor asks a tracker for (numwant).
const trackerNumWant = 200

// trackerEndpoint is the tracker's address for the transcript and its
// address family, or the zero address when the URL names none that
// parses (a host name, which the tracker client refuses).
func trackerEndpoint(raw string) netip.AddrPort {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.AddrPort{}
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return netip.AddrPort{}
	}
	port := u.Port()
	switch strings.ToLower(u.Scheme) {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		port = cmp.Or(port, "443")
	case "udp":
	default:
		return netip.AddrPort{} // no tracker the client speaks to
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p))
}

// trackerTimeouts returns a tracker client config fit for the sensor's
// timings.
func trackerConfig(cfg Config) tracker.Config {
	tc := tracker.DefaultConfig()
	tc.UserAgent = tracker.UserAgent(cfg.Version)
	tc.UDPLocalAddr = cfg.Listen
	tc.LocalAddrs = cfg.ListenAddrs
	tc.Clock = cfg.Clock
	if cfg.QueryTimeout < time.Second*3 {
		// Lab timings: retry UDP quickly.
		tc.UDPRetryBase = cfg.QueryTimeout
		tc.UDPMaxRetries = 2
		tc.HTTPTimeout = 5 * cfg.QueryTimeout
	}
	return tc
}

// droppedSelf reports whether p is the sensor itself (selfReason), and
// counts the drop: a tracker's or a DHT node's list naming the sensor is
// never recorded, and docs/evidence.md promises the count.
func (s *Sensor) droppedSelf(p netip.AddrPort) bool {
	r := s.selfReason(p, s.cfg.Clock())
	if r == "" && s.isSelf(p) {
		r = dropSelfListen
	}
	if r != "" {
		s.countDrop(r)
		return true
	}
	return false
}

// isSelf reports whether p is one of the sensor's own addresses: one of
// its listen addresses with the port of any of its identities (a tracker
// lists the sensor at the address that reached it with the port it
// announced).
func (s *Sensor) isSelf(p netip.AddrPort) bool {
	return s.isListenAddr(p.Addr()) && s.dht.HasPort(p.Port())
}

// announceBounded is one announce within Config.TrackerTimeout: a dead
// UDP tracker's retries (BEP 15: 15 s doubling eight times) would
// otherwise hold the item's DHT lookup for hours.
func (s *Sensor) announceBounded(ctx context.Context, url string, req tracker.Request) (tracker.Response, error) {
	if s.cfg.TrackerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.TrackerTimeout)
		defer cancel()
	}
	return s.trackers.Announce(ctx, url, req)
}
