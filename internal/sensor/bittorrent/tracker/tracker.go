// Package tracker is a BitTorrent tracker client: it announces to and
// scrapes HTTP(S) trackers (BEP 3, BEP 23 compact peers, BEP 7 peers6,
// BEP 48 scrape) and UDP trackers (BEP 15), and hands back what the tracker
// said together with the raw bytes sent and received, for the evidence
// transcript.
//
// It knows nothing of observations, watch-lists or storage: turning a
// Response into observations is the sensor's job.
//
// It must never send anything that has not passed the network scope guard
// (every dial, listen and datagram goes through a *scope.Guard), never
// resolve a host name (only IP-literal trackers are reachable; a name is
// refused by the guard before any socket exists), never follow a redirect,
// and never read without a deadline or beyond the configured size limits.
package tracker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vigil-oss/vigil/internal/scope"
)

// Sentinel errors. Every error returned by this package wraps one of them,
// or scope.ErrOutOfScope, or the context's error.
var (
	// ErrBadURL means the tracker URL cannot be used: unknown scheme, no
	// port, a host that is not an IP literal, and so on.
	ErrBadURL = errors.New("tracker: unusable tracker URL")
	// ErrNoScrape means no scrape URL can be derived from an HTTP
	// announce URL (BEP 48: its last path component is not "announce...").
	ErrNoScrape = errors.New("tracker: no scrape URL for this announce URL")
	// ErrFailure is wrapped by *FailureError: the tracker answered with a
	// "failure reason" (HTTP) or an error action (UDP).
	ErrFailure = errors.New("tracker: tracker reported a failure")
	// ErrMalformed means the tracker's answer is not a well-formed response.
	ErrMalformed = errors.New("tracker: malformed tracker response")
	// ErrTooLarge means the answer exceeds the configured size limit.
	ErrTooLarge = errors.New("tracker: tracker response too large")
	// ErrHTTPStatus means an HTTP tracker answered with a status other than
	// 200 and no failure reason.
	ErrHTTPStatus = errors.New("tracker: unexpected HTTP status")
	// ErrTimeout means a UDP tracker did not answer after every retransmission.
	ErrTimeout = errors.New("tracker: no answer from tracker")
	// ErrConfig means a Config is invalid.
	ErrConfig = errors.New("tracker: invalid configuration")
	// ErrNoLocalAddr means Config.LocalAddrs has no address of the
	// tracker's family: nothing was sent.
	ErrNoLocalAddr = errors.New("tracker: no local address of the tracker's address family")
)

// FailureError is a tracker's refusal: an HTTP "failure reason" or a UDP
// error message. It wraps ErrFailure.
type FailureError struct {
	// Tracker is the tracker URL as the caller gave it (empty from the
	// pure parsers, which do not know it).
	Tracker string
	// Reason is the tracker's text, as sent.
	Reason string
}

func (e *FailureError) Error() string {
	if e.Tracker == "" {
		return fmt.Sprintf("tracker failure: %q", e.Reason)
	}
	return fmt.Sprintf("tracker %s: failure: %q", e.Tracker, e.Reason)
}

// Unwrap returns ErrFailure.
func (e *FailureError) Unwrap() error { return ErrFailure }

// Event is the announce event. The values are BEP 15's.
type Event int32

// Events.
const (
	EventNone      Event = 0
	EventCompleted Event = 1
	EventStarted   Event = 2
	EventStopped   Event = 3
)

// String returns the HTTP parameter value ("" for EventNone).
func (e Event) String() string {
	switch e {
	case EventCompleted:
		return "completed"
	case EventStarted:
		return "started"
	case EventStopped:
		return "stopped"
	case EventNone:
		return ""
	}
	return fmt.Sprintf("event(%d)", int32(e))
}

// Request is one announce.
type Request struct {
	InfoHash   [20]byte
	PeerID     [20]byte
	Port       uint16 // the port we claim to listen on
	Uploaded   int64
	Downloaded int64
	Left       int64
	Event      Event
	// NumWant is how many peers to ask for; 0 leaves it to the tracker
	// (HTTP: parameter omitted; UDP: -1).
	NumWant int
	// Key identifies this client across address changes; 0 is not sent
	// over HTTP (UDP always carries the field).
	Key uint32
	// Compact asks an HTTP tracker for compact peer lists (BEP 23). UDP is
	// always compact.
	Compact bool
	// TrackerID is sent back to an HTTP tracker that gave one ("trackerid").
	TrackerID string
}

// Response is what a tracker answered to an announce.
type Response struct {
	Interval    time.Duration
	MinInterval time.Duration // 0 when the tracker gave none
	Complete    int           // seeders
	Incomplete  int           // leechers
	// Peers are the endpoints the tracker listed, in its order: compact
	// IPv4 ("peers", 6 bytes each), compact IPv6 ("peers6", 18 bytes each)
	// and the dictionary list form, IPv4-mapped addresses unmapped.
	Peers []netip.AddrPort
	// PeerIDs holds the peer ids the dictionary list form gave, by
	// endpoint; nil when the tracker sent compact lists.
	PeerIDs map[netip.AddrPort][]byte
	// PeersSkipped counts listed peers that are not in Peers: beyond
	// Config.MaxPeers, port 0, or a host name instead of an IP literal.
	PeersSkipped int
	TrackerID    string
	Warning      string
	// Raw holds the bytes received: for HTTP the whole response as read
	// from the connection (status line, headers, body; plaintext inside
	// TLS); for UDP the accepted datagrams, concatenated (a connect
	// response is 16 bytes, then the announce response).
	Raw []byte
	// Sent holds the bytes sent: for HTTP the request line and headers;
	// for UDP every datagram, retransmissions included, concatenated (a
	// connect request is 16 bytes, an announce request 98).
	Sent []byte
	// Records are the same bytes in the order they went over the wire,
	// each with its own time: for UDP one record per datagram sent or
	// accepted; for HTTP the request, then each read of the response as
	// it arrived. Their Bytes alias Sent and Raw.
	Records []Record
}

// Record is one datagram, or one chunk of a stream, of a tracker exchange.
type Record struct {
	// Sent is true for bytes the client sent, false for bytes received.
	Sent bool
	// At is when they were sent (just before the write) or received (just
	// after the read), by Config.Clock.
	At time.Time
	// Bytes are the raw bytes.
	Bytes []byte
}

// wireLog notes the order and times of an exchange's writes and reads;
// records turns it into Records once the buffers are final.
type wireLog []wireEvent

type wireEvent struct {
	sent       bool
	at         time.Time
	start, end int // in the sent or received buffer
}

func (l *wireLog) add(sent bool, at time.Time, start, end int) {
	if end > start {
		*l = append(*l, wireEvent{sent: sent, at: at, start: start, end: end})
	}
}

func (l wireLog) records(sent, raw []byte) []Record {
	out := make([]Record, 0, len(l))
	for _, e := range l {
		buf := raw
		if e.sent {
			buf = sent
		}
		if e.end > len(buf) {
			continue
		}
		out = append(out, Record{Sent: e.sent, At: e.at, Bytes: buf[e.start:e.end:e.end]})
	}
	return out
}

// ScrapeStats is one torrent's counts from a scrape.
type ScrapeStats struct {
	Complete   int // seeders
	Incomplete int // leechers
	Downloaded int // completed downloads ever ("downloaded", UDP "completed")
}

// DefaultUserAgent is the User-Agent when the caller names no version.
const DefaultUserAgent = "Vigil/dev"

// Config are the client's limits and timeouts.
type Config struct {
	// HTTPTimeout bounds one HTTP exchange, from dial to the last byte;
	// every read and write runs under it.
	HTTPTimeout time.Duration
	// UDPRetryBase is the first UDP wait; attempt n waits
	// UDPRetryBase·2^n (BEP 15: 15 s). Labs use a much shorter base.
	UDPRetryBase time.Duration
	// UDPMaxRetries is how many times a UDP request is sent again after a
	// wait ran out (BEP 15: 8).
	UDPMaxRetries int
	// ConnectionIDLifetime is how long a UDP connection id is reused (BEP
	// 15: one minute).
	ConnectionIDLifetime time.Duration
	// MaxHTTPResponse bounds an HTTP response body, in bytes.
	MaxHTTPResponse int64
	// MaxUDPDatagram bounds one received UDP datagram, in bytes; longer
	// ones are dropped.
	MaxUDPDatagram int
	// MaxPeers bounds the peers parsed from one response; the rest are
	// counted in Response.PeersSkipped.
	MaxPeers int
	// MaxScrapeBatch is how many info-hashes go in one scrape request
	// (BEP 15: about 74 fit a UDP datagram); more are split into batches.
	MaxScrapeBatch int
	// UserAgent is the HTTP User-Agent, "Vigil/<version>".
	UserAgent string
	// UDPLocalAddr is the address UDP requests are sent from. The zero
	// value means loopback for a loopback tracker and the unspecified
	// address otherwise (which the guard refuses in lab mode: name the
	// namespace's own address here to reach a tracker in an allowed prefix).
	UDPLocalAddr netip.Addr
	// LocalAddrs are the addresses requests leave from, at most one of
	// each family (a sensor's listen addresses). When set, they take
	// the place of UDPLocalAddr: a UDP socket, and an HTTP(S)
	// connection, to a tracker is bound to the one of the tracker's
	// family, so that the tracker sees the address the caller knows as
	// its own, and a tracker of a family none of them has is refused
	// (ErrNoLocalAddr) before any socket exists. Empty: UDPLocalAddr as
	// above, and HTTP connections leave from the address the system
	// picks.
	LocalAddrs []netip.Addr
	// TLS configures https trackers (nil: system roots). ServerName
	// defaults to the tracker's IP, which the certificate must name.
	TLS *tls.Config
	// Dialled is told the local address and port of every HTTP(S)
	// connection and UDP socket the client opens, before any byte
	// crosses it: a tracker sees them and may list them as a peer, and
	// the caller must know them as its own. A UDP socket bound to an
	// unspecified address is told with the address the route to the
	// tracker leaves from (what the tracker sees), not 0.0.0.0 or ::.
	// May be nil.
	Dialled func(local netip.AddrPort)
	// Clock returns the time of each Record and ages connection ids
	// (nil: time.Now). The sensor passes its own, so that a transcript's
	// times agree with the observation's.
	Clock func() time.Time
}

// dialled tells Config.Dialled the local end of a socket the client
// opened.
func (c *Config) dialled(local net.Addr) {
	if c.Dialled == nil || local == nil {
		return
	}
	if ap, err := netip.ParseAddrPort(local.String()); err == nil {
		c.Dialled(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
}

// DefaultConfig follows the specifications' timings and keeps responses
// small.
func DefaultConfig() Config {
	return Config{
		HTTPTimeout:          15 * time.Second,
		UDPRetryBase:         15 * time.Second,
		UDPMaxRetries:        8,
		ConnectionIDLifetime: time.Minute,
		MaxHTTPResponse:      1 << 20,
		MaxUDPDatagram:       64 << 10,
		MaxPeers:             1000,
		MaxScrapeBatch:       74,
		UserAgent:            DefaultUserAgent,
	}
}

// UserAgent returns the User-Agent for a Vigil version.
func UserAgent(version string) string { return "Vigil/" + version }

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.HTTPTimeout <= 0:
		return fmt.Errorf("tracker: HTTPTimeout %v is not positive: %w", c.HTTPTimeout, ErrConfig)
	case c.UDPRetryBase <= 0:
		return fmt.Errorf("tracker: UDPRetryBase %v is not positive: %w", c.UDPRetryBase, ErrConfig)
	case c.UDPMaxRetries < 0 || c.UDPMaxRetries > 16:
		return fmt.Errorf("tracker: UDPMaxRetries %d is outside 0..16: %w", c.UDPMaxRetries, ErrConfig)
	case c.ConnectionIDLifetime < 0 || c.ConnectionIDLifetime > 2*time.Minute:
		// Trackers accept an id for two minutes at most (BEP 15).
		return fmt.Errorf("tracker: ConnectionIDLifetime %v is outside 0..2m: %w", c.ConnectionIDLifetime, ErrConfig)
	case c.MaxHTTPResponse <= 0:
		return fmt.Errorf("tracker: MaxHTTPResponse %d is not positive: %w", c.MaxHTTPResponse, ErrConfig)
	case c.MaxUDPDatagram < udpMinDatagram || c.MaxUDPDatagram > 65536:
		return fmt.Errorf("tracker: MaxUDPDatagram %d is outside %d..65536: %w", c.MaxUDPDatagram, udpMinDatagram, ErrConfig)
	case c.MaxPeers < 0:
		return fmt.Errorf("tracker: MaxPeers %d is negative: %w", c.MaxPeers, ErrConfig)
	case c.MaxScrapeBatch < 1 || c.MaxScrapeBatch > udpMaxScrapeHashes:
		return fmt.Errorf("tracker: MaxScrapeBatch %d is outside 1..%d: %w", c.MaxScrapeBatch, udpMaxScrapeHashes, ErrConfig)
	case c.UserAgent == "":
		return fmt.Errorf("tracker: empty UserAgent: %w", ErrConfig)
	}
	var fam [2]bool
	for _, a := range c.LocalAddrs {
		if !a.IsValid() || a.IsUnspecified() || a.Zone() != "" {
			return fmt.Errorf("tracker: local address %v: want one address without a zone: %w", a, ErrConfig)
		}
		i := 0
		if a.Unmap().Is6() {
			i = 1
		}
		if fam[i] {
			return fmt.Errorf("tracker: local address %v: two of one family: %w", a, ErrConfig)
		}
		fam[i] = true
	}
	return nil
}

// localFor returns the configured local address of to's family: from
// LocalAddrs (ok false if none is of that family), or, without them,
// UDPLocalAddr or the zero address (the defaults), ok true.
func (c Config) localFor(to netip.Addr) (netip.Addr, bool) {
	if len(c.LocalAddrs) == 0 {
		if a := c.UDPLocalAddr.Unmap(); a.IsValid() && a.Is6() == to.Unmap().Is6() {
			return a, true
		}
		return netip.Addr{}, true
	}
	for _, a := range c.LocalAddrs {
		if a.Unmap().Is6() == to.Unmap().Is6() {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Client announces to and scrapes trackers through a scope guard. It keeps
// the UDP connection ids it was given, so reuse one Client. It is safe for
// concurrent use.
type Client struct {
	cfg   Config
	guard *scope.Guard
	now   func() time.Time // injected by tests

	mu      sync.Mutex
	connIDs map[netip.AddrPort]connID
}

type connID struct {
	id uint64
	at time.Time
}

// maxConnIDs bounds the connection id cache; expired ids are swept when it
// is full, and if it is still full the new id is simply not kept.
const maxConnIDs = 4096

// New returns a client. The guard is required: without it the client would
// fail open.
func New(cfg Config, guard *scope.Guard) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if guard == nil {
		return nil, fmt.Errorf("tracker: no scope guard: %w", ErrConfig)
	}
	now := cfg.Clock
	if now == nil {
		now = time.Now
	}
	return &Client{cfg: cfg, guard: guard, now: now, connIDs: make(map[netip.AddrPort]connID)}, nil
}
