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
// replies, IPv4 only). The lab's peers announce to it; opentracker plays
// the real one in integration tests.
type tracker struct {
	srv    *http.Server
	ln     net.Listener
	url    string
	logger *slog.Logger
	done   chan struct{}

	mu     sync.Mutex
	swarms map[[20]byte]map[netip.AddrPort]trackerPeer
}

func startTracker(logger *slog.Logger) (*tracker, error) {
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(trackerAddr, 0).String())
	if err != nil {
		return nil, fmt.Errorf("lab tracker on %s: %w", trackerAddr, err)
	}
	t := &tracker{
		ln:     ln,
		url:    "http://" + ln.Addr().String() + "/announce",
		logger: logger,
		done:   make(chan struct{}),
		swarms: map[[20]byte]map[netip.AddrPort]trackerPeer{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/announce", t.handleAnnounce)
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(t.done)
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("lab tracker stopped", "err", err)
		}
	}()
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
	var compact []byte
	var list []any
	n := 0
	for p, tp := range swarm {
		if n >= a.numWant {
			break
		}
		if p == peer || !p.Addr().Is4() {
			continue
		}
		n++
		if a.compact {
			ip := p.Addr().As4()
			compact = append(compact, ip[:]...)
			compact = binary.BigEndian.AppendUint16(compact, p.Port())
		} else {
			list = append(list, map[string]any{"ip": p.Addr().String(), "port": int64(p.Port()), "peer id": string(tp.peerID[:])})
		}
	}
	t.mu.Unlock()
	resp := map[string]any{"interval": int64(60), "min interval": int64(10)}
	if a.compact {
		resp["peers"] = string(compact)
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
