package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
)

// ErrBadAnnounce: a tracker announce request the lab tracker cannot read.
var ErrBadAnnounce = errors.New("bad tracker announce")

// announce is one parsed BEP 3 HTTP announce.
type announce struct {
	infoHash [20]byte
	peerID   [20]byte
	port     uint16
	event    string
	numWant  int
	compact  bool
}

// parseAnnounce reads an announce query string. The peer's address is the
// connection's, never the "ip" parameter: the lab records where a peer
// really is.
func parseAnnounce(rawQuery string) (announce, error) {
	var a announce
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return a, fmt.Errorf("%w: query: %w", ErrBadAnnounce, err)
	}
	ih := q.Get("info_hash")
	if len(ih) != 20 {
		return a, fmt.Errorf("%w: info_hash is %d bytes, want 20", ErrBadAnnounce, len(ih))
	}
	copy(a.infoHash[:], ih)
	pid := q.Get("peer_id")
	if len(pid) != 20 {
		return a, fmt.Errorf("%w: peer_id is %d bytes, want 20", ErrBadAnnounce, len(pid))
	}
	copy(a.peerID[:], pid)
	port, err := strconv.ParseUint(q.Get("port"), 10, 16)
	if err != nil || port == 0 {
		return a, fmt.Errorf("%w: port %q", ErrBadAnnounce, q.Get("port"))
	}
	a.port = uint16(port)
	switch e := q.Get("event"); e {
	case "", "started", "stopped", "completed", "paused":
		a.event = e
	default:
		return a, fmt.Errorf("%w: event %q", ErrBadAnnounce, e)
	}
	a.numWant = 50
	if s := q.Get("numwant"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return a, fmt.Errorf("%w: numwant %q", ErrBadAnnounce, s)
		}
		a.numWant = min(n, 200)
	}
	a.compact = q.Get("compact") != "0"
	return a, nil
}

type trackerPeer struct {
	addr   netip.AddrPort
	peerID [20]byte
	seen   time.Time
}

// tracker is a minimal in-process HTTP tracker (BEP 3, BEP 23 compact
// replies, BEP 7 peers6). It listens on one address per family the lab
// runs on, with one set of swarms: a peer that announced over IPv4 and
// over IPv6 is listed at both addresses. The lab's peers announce to it;
// opentracker plays the real one in integration tests (Debian builds it
// for IPv4 only, so this one is the lab's IPv6 tracker).
type tracker struct {
	srv    *http.Server
	lns    []net.Listener
	urls   []string // one announce URL per listener, IPv4 first
	logger *slog.Logger
	done   chan struct{}

	mu     sync.Mutex
	swarms map[[20]byte]map[netip.AddrPort]trackerPeer
}

// startTracker serves on each of hosts (port 0: a free one each).
func startTracker(logger *slog.Logger, hosts []netip.Addr) (*tracker, error) {
	t := &tracker{
		logger: logger,
		done:   make(chan struct{}),
		swarms: map[[20]byte]map[netip.AddrPort]trackerPeer{},
	}
	for _, h := range hosts {
		network := "tcp4"
		if h.Is6() {
			network = "tcp6"
		}
		ln, err := net.Listen(network, netip.AddrPortFrom(h, 0).String())
		if err != nil {
			for _, l := range t.lns {
				l.Close()
			}
			return nil, fmt.Errorf("lab tracker on %s: %w", h, err)
		}
		t.lns = append(t.lns, ln)
		t.urls = append(t.urls, "http://"+ln.Addr().String()+"/announce")
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", t.handleAnnounce)
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	var wg sync.WaitGroup
	for _, ln := range t.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("lab tracker stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(t.done) }()
	return t, nil
}

func (t *tracker) close(ctx context.Context) error {
	err := t.srv.Shutdown(ctx)
	<-t.done
	return err
}

func (t *tracker) handleAnnounce(w http.ResponseWriter, r *http.Request) {
	fail := func(msg string) {
		b, _ := bencode.Marshal(map[string]any{"failure reason": msg})
		w.Write(b)
	}
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		fail("bad remote address")
		return
	}
	a, err := parseAnnounce(r.URL.RawQuery)
	if err != nil {
		fail(err.Error())
		return
	}
	peer := netip.AddrPortFrom(remote.Addr().Unmap(), a.port)
	t.mu.Lock()
	swarm := t.swarms[a.infoHash]
	if swarm == nil {
		swarm = map[netip.AddrPort]trackerPeer{}
		t.swarms[a.infoHash] = swarm
	}
	if a.event == "stopped" {
		delete(swarm, peer)
	} else {
		swarm[peer] = trackerPeer{addr: peer, peerID: a.peerID, seen: time.Now()}
	}
	// Peers of both families, whatever the family of the announce: IPv4
	// ones in "peers" (6 bytes each), IPv6 ones in "peers6" (18 bytes,
	// BEP 7) when compact; one list otherwise.
	var compact, compact6 []byte
	var list []any
	n := 0
	for p, tp := range swarm {
		if n >= a.numWant {
			break
		}
		if p == peer {
			continue
		}
		n++
		switch {
		case !a.compact:
			list = append(list, map[string]any{"ip": p.Addr().String(), "port": int64(p.Port()), "peer id": string(tp.peerID[:])})
		case p.Addr().Is4():
			ip := p.Addr().As4()
			compact = append(compact, ip[:]...)
			compact = binary.BigEndian.AppendUint16(compact, p.Port())
		default:
			ip := p.Addr().As16()
			compact6 = append(compact6, ip[:]...)
			compact6 = binary.BigEndian.AppendUint16(compact6, p.Port())
		}
	}
	t.mu.Unlock()
	resp := map[string]any{"interval": int64(60), "min interval": int64(10)}
	if a.compact {
		resp["peers"] = string(compact)
		if len(compact6) > 0 {
			resp["peers6"] = string(compact6)
		}
	} else {
		resp["peers"] = list
	}
	b, err := bencode.Marshal(resp)
	if err != nil {
		fail("internal error")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b)
}

// peers returns the addresses announced for an info-hash.
func (t *tracker) peers(ih [20]byte) []netip.AddrPort {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []netip.AddrPort
	for p := range t.swarms[ih] {
		out = append(out, p)
	}
	return out
}
