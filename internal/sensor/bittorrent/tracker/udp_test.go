package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// fakeUDPTracker is a BEP 15 tracker on loopback with knobs for loss,
// errors and stray packets. It checks connection ids as a real one does.
type fakeUDPTracker struct {
	pc    *net.UDPConn
	stray *net.UDPConn // a second socket, for packets from the wrong source
	addr  netip.AddrPort
	done  chan struct{}

	mu        sync.Mutex
	drop      int    // datagrams still to drop on arrival
	errorMsg  string // when set, announces get an error action
	strayWrap bool   // send wrong-transaction and wrong-source answers first
	peers     []netip.AddrPort
	listSrc   bool // list each announcer's own source address and port, as a hostile tracker may
	scrape    map[[20]byte]ScrapeStats
	connIDs   map[uint64]bool
	received  int
	connects  int
	announces []AnnounceRequest
	scrapes   int
}

func newFakeUDPTracker(t *testing.T, network, addr string) *fakeUDPTracker {
	t.Helper()
	la, err := net.ResolveUDPAddr(network, addr) // a literal: nothing is looked up
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP(network, la)
	if err != nil && network == "udp6" {
		testenv.Missingf(t, "IPV6", "no %s loopback: %v", network, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	stray, err := net.ListenUDP(network, la)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUDPTracker{pc: pc, stray: stray, addr: pc.LocalAddr().(*net.UDPAddr).AddrPort(), done: make(chan struct{}),
		connIDs: map[uint64]bool{}, scrape: map[[20]byte]ScrapeStats{}}
	go f.serve()
	t.Cleanup(func() {
		pc.Close()
		stray.Close()
		<-f.done
	})
	return f
}

// configure changes the knobs under the lock the serving goroutine reads
// them under.
func (f *fakeUDPTracker) configure(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
}

func (f *fakeUDPTracker) url() string { return "udp://" + f.addr.String() }

func (f *fakeUDPTracker) serve() {
	defer close(f.done)
	buf := make([]byte, 2048)
	for {
		n, from, err := f.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		f.mu.Lock()
		f.received++
		if f.drop > 0 {
			f.drop--
			f.mu.Unlock()
			continue
		}
		var out [][]byte
		var tx uint32
		if len(pkt) >= 16 {
			tx = binary.BigEndian.Uint32(pkt[12:])
		}
		switch {
		case len(pkt) < 16:
		case binary.BigEndian.Uint32(pkt[8:]) == uint32(ActionConnect):
			if _, err := ParseConnectRequest(pkt); err != nil {
				break
			}
			id := mrand.Uint64()
			f.connIDs[id] = true
			f.connects++
			out = append(out, AppendConnectResponse(nil, ConnectResponse{TransactionID: tx, ConnectionID: id}))
		case binary.BigEndian.Uint32(pkt[8:]) == uint32(ActionAnnounce):
			a, err := ParseAnnounceRequest(pkt)
			switch {
			case err != nil:
			case !f.connIDs[a.ConnectionID]:
				out = append(out, AppendErrorResponse(nil, ErrorResponse{TransactionID: tx, Message: "unknown connection id"}))
			case f.errorMsg != "":
				f.announces = append(f.announces, a)
				out = append(out, AppendErrorResponse(nil, ErrorResponse{TransactionID: tx, Message: f.errorMsg}))
			default:
				f.announces = append(f.announces, a)
				peers := f.peers
				if f.listSrc {
					peers = append(slices.Clone(peers), from)
				}
				resp, err := AppendAnnounceResponse(nil, AnnounceResponse{TransactionID: tx, Interval: 1800, Leechers: 2, Seeders: 1, Peers: peers}, f.addr.Addr().Is6())
				if err != nil {
					panic(err)
				}
				out = append(out, resp)
			}
		case binary.BigEndian.Uint32(pkt[8:]) == uint32(ActionScrape):
			s, err := ParseScrapeRequest(pkt)
			if err != nil || !f.connIDs[s.ConnectionID] {
				break
			}
			f.scrapes++
			sr := ScrapeResponse{TransactionID: tx}
			for _, h := range s.InfoHashes {
				sr.Stats = append(sr.Stats, f.scrape[h])
			}
			resp, err := AppendScrapeResponse(nil, sr)
			if err != nil {
				panic(err)
			}
			out = append(out, resp)
		}
		strayWrap := f.strayWrap
		f.mu.Unlock()
		for _, o := range out {
			if strayWrap {
				// The right transaction from the wrong port, then the
				// wrong transaction from the right port.
				f.stray.WriteToUDPAddrPort(o, from)
				wrong := append([]byte(nil), o...)
				binary.BigEndian.PutUint32(wrong[4:], tx+1)
				f.pc.WriteToUDPAddrPort(wrong, from)
			}
			f.pc.WriteToUDPAddrPort(o, from)
		}
	}
}

func (f *fakeUDPTracker) stats() (received, connects int, announces []AnnounceRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.received, f.connects, slices.Clone(f.announces)
}

func TestAnnounceUDPConnectsThenAnnounces(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.peers = aps("127.0.0.2:6881", "127.0.0.3:51413") })
	c, _ := newTestClient(t, nil)
	req := syntheticRequest(t)
	req.Uploaded, req.Downloaded = 11, 22

	r, err := c.Announce(context.Background(), f.url(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, f.peers) {
		t.Fatalf("Peers = %v, want %v", r.Peers, f.peers)
	}
	if r.Interval != 1800*time.Second || r.Complete != 1 || r.Incomplete != 2 {
		t.Fatalf("Interval, Complete, Incomplete = %v, %d, %d", r.Interval, r.Complete, r.Incomplete)
	}
	_, connects, announces := f.stats()
	if connects != 1 || len(announces) != 1 {
		t.Fatalf("tracker saw %d connects, %d announces; want 1, 1", connects, len(announces))
	}
	a := announces[0]
	if a.InfoHash != req.InfoHash || a.PeerID != req.PeerID || a.Port != req.Port || a.Event != EventStarted ||
		a.Left != req.Left || a.Uploaded != 11 || a.Downloaded != 22 || a.Key != req.Key || a.NumWant != -1 {
		t.Fatalf("tracker got %+v for request %+v", a, req)
	}
	if got, want := len(r.Sent), 16+98; got != want {
		t.Fatalf("Sent is %d bytes, want %d (connect + announce)", got, want)
	}
	if got, want := len(r.Raw), 16+20+6*2; got != want {
		t.Fatalf("Raw is %d bytes, want %d (connect + announce responses)", got, want)
	}
}

func TestAnnounceUDPReusesConnectionIDForAMinute(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	c, _ := newTestClient(t, nil)
	now := time.Unix(1_800_000_000, 0)
	c.now = func() time.Time { return now }
	announce := func() {
		t.Helper()
		if _, err := c.Announce(context.Background(), f.url(), syntheticRequest(t)); err != nil {
			t.Fatal(err)
		}
	}
	announce()
	now = now.Add(59 * time.Second)
	announce()
	if _, connects, _ := f.stats(); connects != 1 {
		t.Fatalf("%d connects for two announces within a minute, want 1", connects)
	}
	now = now.Add(2 * time.Second) // 61 s after the connect
	announce()
	if _, connects, _ := f.stats(); connects != 2 {
		t.Fatalf("%d connects after the id expired, want 2", connects)
	}
}

func TestAnnounceUDPRetransmitsAfterLostDatagrams(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.drop = 2 }) // the first connect and its first resend
	c, _ := newTestClient(t, func(c *Config) { c.UDPRetryBase = 20 * time.Millisecond; c.UDPMaxRetries = 3 })
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(r.Sent), 3*16+98; got != want {
		t.Fatalf("Sent is %d bytes, want %d (three connects, one announce)", got, want)
	}
}

func TestAnnounceUDPGivesUpAfterMaxRetries(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.drop = 1 << 30 })
	c, _ := newTestClient(t, func(c *Config) { c.UDPRetryBase = 5 * time.Millisecond; c.UDPMaxRetries = 2 })
	_, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
	// The last wait may still be running on the tracker's side: poll.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if received, _, _ := f.stats(); received == 3 {
			return
		}
	}
	received, _, _ := f.stats()
	t.Fatalf("tracker received %d datagrams, want 3 (one send, two resends)", received)
}

func TestAnnounceUDPErrorActionNamesTrackerAndDropsConnectionID(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.errorMsg = "synthetic refusal" })
	c, _ := newTestClient(t, nil)
	for i := 0; i < 2; i++ {
		_, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
		var fe *FailureError
		if !errors.As(err, &fe) || fe.Tracker != f.url() || fe.Reason != "synthetic refusal" {
			t.Fatalf("error = %v, want a *FailureError naming %s and the reason", err, f.url())
		}
		if !strings.Contains(err.Error(), f.url()) {
			t.Fatalf("error %q does not name the tracker", err)
		}
	}
	if _, connects, _ := f.stats(); connects != 2 {
		t.Fatalf("%d connects, want 2: an id that drew an error must not be reused", connects)
	}
}

func TestAnnounceUDPIgnoresStrayDatagrams(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.strayWrap, f.peers = true, aps("127.0.0.4:4444") })
	c, _ := newTestClient(t, nil)
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, f.peers) {
		t.Fatalf("Peers = %v, want %v", r.Peers, f.peers)
	}
	if got, want := len(r.Raw), 16+20+6; got != want {
		t.Fatalf("Raw is %d bytes, want %d: stray datagrams were kept", got, want)
	}
}

func TestAnnounceUDPStopsOnCancel(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	f.configure(func() { f.drop = 1 << 30 })
	c, _ := newTestClient(t, func(c *Config) { c.UDPRetryBase = time.Minute })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Announce(ctx, f.url(), syntheticRequest(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestAnnounceUDPOverIPv6ReadsEighteenBytePeers(t *testing.T) {
	f := newFakeUDPTracker(t, "udp6", "[::1]:0")
	f.configure(func() { f.peers = aps("[::1]:6881", "127.0.0.5:5555") })
	c, _ := newTestClient(t, nil)
	r, err := c.Announce(context.Background(), f.url(), syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, f.peers) {
		t.Fatalf("Peers = %v, want %v", r.Peers, f.peers)
	}
}

func TestScrapeUDPMapsCountsToHashesInBatches(t *testing.T) {
	f := newFakeUDPTracker(t, "udp4", "127.0.0.1:0")
	hashes := make([][20]byte, 3)
	for i := range hashes {
		rand.Read(hashes[i][:])
		f.configure(func() { f.scrape[hashes[i]] = ScrapeStats{Complete: i, Incomplete: 10 + i, Downloaded: 100 + i} })
	}
	c, _ := newTestClient(t, func(c *Config) { c.MaxScrapeBatch = 2 })
	got, err := c.Scrape(context.Background(), f.url(), hashes)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hashes {
		if want := (ScrapeStats{Complete: i, Incomplete: 10 + i, Downloaded: 100 + i}); got[h] != want {
			t.Fatalf("stats of hash %d = %+v, want %+v", i, got[h], want)
		}
	}
	f.mu.Lock()
	scrapes, connects := f.scrapes, f.connects
	f.mu.Unlock()
	if scrapes != 2 || connects != 1 {
		t.Fatalf("tracker saw %d scrapes and %d connects, want 2 and 1", scrapes, connects)
	}
}

// With LocalAddrs, requests leave from the address of the tracker's
// family: a UDP socket and an HTTP connection are bound to it. A tracker
// of a family none of them has is refused before anything is sent.
func TestLocalAddrsPickTheTrackersFamily(t *testing.T) {
	local4 := netip.MustParseAddr("127.0.0.2")
	c, _ := newTestClient(t, func(c *Config) { c.LocalAddrs = []netip.Addr{local4} })

	f6 := newFakeUDPTracker(t, "udp6", "[::1]:0")
	if _, err := c.Announce(context.Background(), f6.url(), syntheticRequest(t)); !errors.Is(err, ErrNoLocalAddr) {
		t.Fatalf("IPv6 tracker without an IPv6 local address: %v, want ErrNoLocalAddr", err)
	}
	f6.mu.Lock()
	connects := f6.connects
	f6.mu.Unlock()
	if connects != 0 {
		t.Fatalf("the IPv6 tracker got %d connects", connects)
	}
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := c.Announce(context.Background(), "http://"+ln.Addr().String()+"/announce", syntheticRequest(t)); !errors.Is(err, ErrNoLocalAddr) {
		t.Fatalf("IPv6 HTTP tracker without an IPv6 local address: %v, want ErrNoLocalAddr", err)
	}

	// An HTTP tracker on 127.0.0.1 sees the connection from 127.0.0.2.
	var from netip.Addr
	var mu sync.Mutex
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		mu.Lock()
		from = netip.MustParseAddrPort(r.RemoteAddr).Addr()
		mu.Unlock()
		return []byte("d8:intervali60e5:peers0:e")
	})
	if _, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if from != local4 {
		t.Errorf("HTTP announce from %v, want %v", from, local4)
	}
	mu.Unlock()

	// Both families: the IPv6 tracker is asked from ::1.
	c2, _ := newTestClient(t, func(c *Config) { c.LocalAddrs = []netip.Addr{local4, netip.IPv6Loopback()} })
	f6.configure(func() { f6.peers = aps("[::1]:6881") })
	if r, err := c2.Announce(context.Background(), f6.url(), syntheticRequest(t)); err != nil || len(r.Peers) != 1 {
		t.Fatalf("IPv6 tracker with an IPv6 local address: %v, %v", r.Peers, err)
	}

	for _, bad := range [][]netip.Addr{
		{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")},
		{netip.IPv6Unspecified()},
		{netip.MustParseAddr("fe80::1%lo")},
	} {
		cfg := DefaultConfig()
		cfg.LocalAddrs = bad
		if err := cfg.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("LocalAddrs %v: Validate() = %v, want ErrConfig", bad, err)
		}
	}
}

// A UDP socket bound to an unspecified address (UDPLocalAddr 0.0.0.0 or
// ::) has no address of its own until it sends: the tracker sees the
// address the system picked for its route. Config.Dialled must be told
// that address, not 0.0.0.0, or a hostile tracker listing the caller's
// own socket is not recognised as the caller (the sensor would record
// itself). The tracker here lists the announce's source address and port.
func TestAnnounceUDPUnspecifiedTellsTheAddressTheTrackerSaw(t *testing.T) {
	for _, c := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			f := newFakeUDPTracker(t, c.network, c.addr)
			f.configure(func() { f.listSrc = true })
			any := netip.IPv4Unspecified()
			if c.network == "udp6" {
				any = netip.IPv6Unspecified()
			}
			var mu sync.Mutex
			var told []netip.AddrPort
			// Internet scope: the lab guard refuses an unspecified
			// listen address. Only the loopback tracker is sent to.
			g, err := scope.New(scope.Config{Mode: scope.ModeInternet,
				Deployment: &scope.Deployment{LegalAuthority: "test authority", Operator: "test operator", Retention: time.Hour}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.UDPRetryBase, cfg.UDPMaxRetries = 200*time.Millisecond, 3
			cfg.UDPLocalAddr = any
			cfg.Dialled = func(l netip.AddrPort) { mu.Lock(); told = append(told, l); mu.Unlock() }
			cl, err := New(cfg, g)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cl.Announce(context.Background(), f.url(), syntheticRequest(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Peers) != 1 {
				t.Fatalf("peers %v, want the announcer's own source", resp.Peers)
			}
			self := resp.Peers[0]
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(told, self) {
				t.Fatalf("Dialled told %v; the tracker listed the client's own socket %v, which Dialled never named", told, self)
			}
			for _, l := range told {
				if l.Addr().IsUnspecified() {
					t.Errorf("Dialled told %v: an unspecified address names no socket a tracker sees", l)
				}
			}
		})
	}
}
