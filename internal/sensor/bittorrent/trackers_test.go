package bittorrent

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
)

// A peer a tracker lists is the tracker's claim: marked third_party, with
// the exchange as transcript, one record per datagram, each with its own
// time (at 8846f19 the request and the response were two blobs with one
// time, and the record had no mark). The test also pins down what the
// sensor sends a tracker, as trackers.go and docs/evidence.md say: a
// started announce (left=1, numwant=200, the first DHT identity's port),
// then a stopped one.
func TestTrackerPeersAreThirdPartyWithTimedRecords(t *testing.T) {
	const delay = 30 * time.Millisecond
	pc := udpSocket(t, "127.0.0.1")
	listed := netip.MustParseAddrPort("127.0.0.80:51413")
	var mu sync.Mutex
	var announces []tracker.AnnounceRequest
	go serveUDPTracker(pc, delay, false, func(_ netip.AddrPort, a tracker.AnnounceRequest) tracker.AnnounceResponse {
		mu.Lock()
		announces = append(announces, a)
		mu.Unlock()
		return tracker.AnnounceResponse{Interval: 1800, Peers: []netip.AddrPort{listed}}
	})
	pub := newCollector()
	url := "udp://" + udpAddrOf(pc).String()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{url}, Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	o := pub.waitFor(t, observe.MethodTracker, 1)[0]
	if o.Endpoint.IP != listed.Addr() || o.Endpoint.Port != listed.Port() {
		t.Fatalf("endpoint %+v, want %v", o.Endpoint, listed)
	}
	if !o.HasMark(observe.MarkThirdParty) || o.FirstHand() || o.Endpoint.Local.IsValid() {
		t.Fatalf("marks %v, sensor address %v: a tracker's list is a third-party claim", o.Marks, o.Endpoint.Local)
	}
	recs := dhtRecords(t, o.Transcript.Bytes)
	if len(recs) != 4 {
		t.Fatalf("%d transcript records, want connect, answer, announce, answer", len(recs))
	}
	for i, want := range []byte{'>', '<', '>', '<'} {
		if recs[i].dir != want || recs[i].peer != udpAddrOf(pc).String() {
			t.Fatalf("record %d: %c with %s, want %c with the tracker", i, recs[i].dir, recs[i].peer, want)
		}
		if i > 0 && recs[i].dir == '<' && recs[i].off-recs[i-1].off < delay {
			t.Fatalf("record %d received %v after its request, the tracker took %v: not its own time", i, recs[i].off-recs[i-1].off, delay)
		}
	}
	if len(recs[0].b) != 16 || len(recs[2].b) != 98 {
		t.Fatalf("records of %d and %d bytes, want a connect and an announce", len(recs[0].b), len(recs[2].b))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(announces)
		mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(announces) < 2 {
		t.Fatalf("%d announces; want started then stopped", len(announces))
	}
	a, b := announces[0], announces[1]
	if a.Event != tracker.EventStarted || b.Event != tracker.EventStopped {
		t.Fatalf("events %v then %v, want started then stopped", a.Event, b.Event)
	}
	if a.Left != 1 || a.Downloaded != 0 || a.Uploaded != 0 || a.NumWant != 200 || a.Port != s.Addrs()[0].Port() || a.Key != 0 {
		t.Fatalf("announce %+v: not what trackers.go documents", a)
	}
}

// A UDP tracker that never answers used to hold the item's lookup for the
// whole BEP 15 back-off (15 s doubling eight times: about two hours),
// since the DHT lookup waits for the item's trackers. Each announce is
// now bounded by Config.TrackerTimeout.
func TestSilentTrackerDoesNotHoldTheLookup(t *testing.T) {
	pc := udpSocket(t, "127.0.0.1") // reads nothing, answers nothing
	cfg := LabConfig()
	cfg.Identities = 1
	cfg.QueryTimeout = DefaultConfig().QueryTimeout // the tracker client's default back-off, not the lab's
	cfg.TrackerTimeout = 300 * time.Millisecond
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, newCollector(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{"udp://" + udpAddrOf(pc).String()}}
	for deadline := time.Now().Add(5 * time.Second); len(s.Addrs()) == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	returned := make(chan struct{})
	go func() { s.askTrackers(ctx, w); close(returned) }()
	select {
	case <-returned:
	case <-time.After(20 * time.Second): // the first BEP 15 retry alone is 15 s
		t.Fatal("askTrackers still waiting on a silent tracker after 20 s (TrackerTimeout 300 ms)")
	}
	if s.trackerErrors.Load() == 0 {
		t.Fatal("the silent tracker's announce was not counted as an error")
	}
}

// A tracker lists the sensor's own announce back to it (its address and
// the port it announced). The entry is never recorded, and the drop is
// counted as docs/evidence.md says (at the review, the tracker's and the
// lookup's own checks skipped it uncounted).
func TestTrackerListingTheSensorIsDroppedAndCounted(t *testing.T) {
	pc := udpSocket(t, "127.0.0.1")
	listed := netip.MustParseAddrPort("127.0.0.81:51413")
	go serveUDPTracker(pc, 0, false, func(from netip.AddrPort, a tracker.AnnounceRequest) tracker.AnnounceResponse {
		self := netip.AddrPortFrom(from.Addr(), a.Port)
		return tracker.AnnounceResponse{Interval: 1800, Peers: []netip.AddrPort{self, listed}}
	})
	pub := newCollector()
	url := "udp://" + udpAddrOf(pc).String()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{url}, Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	o := pub.waitFor(t, observe.MethodTracker, 1)[0]
	if o.Endpoint.IP != listed.Addr() || o.Endpoint.Port != listed.Port() {
		t.Fatalf("recorded %v: the sensor itself", o.Endpoint)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Dropped()[dropSelfListen] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if d := s.Dropped(); d[dropSelfListen] == 0 {
		t.Fatalf("drops %v: the sensor's own listing is not counted", d)
	}
}

// trackerEndpoint reads the tracker's address (and so its family) from a
// URL of a torrent or a watch-list: IPv4 and [IPv6] hosts, default ports,
// a query after the host, never a name.
func TestTrackerEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"udp://127.0.0.1:6969":                    "127.0.0.1:6969",
		"udp://[::1]:6969/announce?x=1":           "[::1]:6969",
		"udp://[::1]:6969?passkey=synthetic":      "[::1]:6969",
		"http://[fd00:0:0:1::2]/announce":         "[fd00:0:0:1::2]:80",
		"https://127.0.0.2/announce":              "127.0.0.2:443",
		"http://[::ffff:127.0.0.3]:8080/a":        "127.0.0.3:8080",
		"http://tracker.example.invalid/announce": "invalid AddrPort",
		"udp://[::1]":                             "invalid AddrPort",
		"ftp://127.0.0.1:21/":                     "invalid AddrPort",
	} {
		if got := trackerEndpoint(in).String(); got != want {
			t.Errorf("trackerEndpoint(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzTrackerEndpoint: any URL string, from a torrent file or a list, is
// either refused (the zero address) or gives an unmapped address with a
// port that the URL names.
func FuzzTrackerEndpoint(f *testing.F) {
	for _, s := range []string{"udp://[::1]:6969/announce", "http://127.0.0.1/announce", "https://[fd00::2]:443/a?b=c", "http://[::ffff:127.0.0.3]:80/", "udp://[fe80::1%25eth0]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap := trackerEndpoint(s)
		if !ap.IsValid() {
			return
		}
		if ap.Addr().Is4In6() || (ap.Port() == 0 && !strings.Contains(s, ":0")) {
			t.Fatalf("trackerEndpoint(%q) = %v", s, ap)
		}
	})
}

// A tracker asked for 200 peers answers with 1,000, one of them listed
// eleven times. The code before this recorded 1,010 tracker observations
// of one answer, each carrying the whole exchange as its transcript, and
// queued a probe of each. Now each peer of an answer is recorded once,
// at most the trackerNumWant the sensor asked for; the rest are counted
// (tracker_excess).
func TestTrackerFloodIsBounded(t *testing.T) {
	pc := udpSocket(t, "127.0.0.1")
	var listed []netip.AddrPort
	for i := range 1000 {
		listed = append(listed, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 40, byte(i >> 8), byte(i)}), 51413))
	}
	for range 10 { // among the first listed, within the tracker client's bound
		listed = slices.Insert(listed, 1, listed[0])
	}
	go serveUDPTracker(pc, 0, false, func(netip.AddrPort, tracker.AnnounceRequest) tracker.AnnounceResponse {
		return tracker.AnnounceResponse{Interval: 1800, Peers: listed}
	})
	pub := newCollector()
	url := "udp://" + udpAddrOf(pc).String()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{url}, Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	pub.waitFor(t, observe.MethodTracker, 1)
	deadline := time.Now().Add(5 * time.Second)
	for s.Dropped()[dropTrackerExcess] == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // the round's last records
	// One answer's records share its time (its last byte's); a later
	// round's, if one came, are left out.
	pub.mu.Lock()
	var first time.Time
	seen := map[netip.AddrPort]int{}
	for _, o := range pub.obs {
		if o.Method != observe.MethodTracker {
			continue
		}
		if first.IsZero() {
			first = o.Time
		}
		if o.Time.Equal(first) {
			seen[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)]++
		}
	}
	pub.mu.Unlock()
	total := 0
	for ap, n := range seen {
		total += n
		if n > 1 {
			t.Errorf("%v recorded %d times from one answer", ap, n)
		}
	}
	if total == 0 || total > trackerNumWant {
		t.Fatalf("%d tracker observations from one answer, want 1 to %d", total, trackerNumWant)
	}
	if got := s.Dropped()[dropTrackerExcess]; got < uint64(990-total) { // the client keeps 1,000 entries, 990 distinct
		t.Fatalf("tracker_excess %d, want %d", got, 1000-total)
	}
}

// A hostile UDP tracker lists the sensor at the source address and port
// of the socket the sensor asked it from (not the port it announced).
// The code before this did not know that socket as its own, and in lab
// scope (the default) recorded the sensor itself as a tracker's peer and
// queued a probe of it. Now the tracker client's sockets and connections
// are registered as the sensor's own, as the probes' are.
func TestTrackerListingTheSensorsRequestSocketIsDropped(t *testing.T) {
	pc := udpSocket(t, "127.0.0.1")
	listed := netip.MustParseAddrPort("127.0.0.82:51413")
	asked := make(chan netip.AddrPort, 8)
	go serveUDPTracker(pc, 0, false, func(from netip.AddrPort, _ tracker.AnnounceRequest) tracker.AnnounceResponse {
		select {
		case asked <- from:
		default:
		}
		return tracker.AnnounceResponse{Interval: 1800, Peers: []netip.AddrPort{from, listed}}
	})
	pub := newCollector()
	url := "udp://" + udpAddrOf(pc).String()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{url}, Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	pub.waitFor(t, observe.MethodTracker, 1)
	me := <-asked
	time.Sleep(200 * time.Millisecond) // the answer's other records
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Method == observe.MethodTracker && o.Endpoint.IP == me.Addr() && o.Endpoint.Port == me.Port() {
			t.Fatalf("the sensor's own tracker socket %v recorded as a peer", me)
		}
	}
	if d := s.Dropped(); d[dropSelfConnection] == 0 {
		t.Fatalf("drops %v: the sensor's own socket not counted as self_connection", d)
	}
}
