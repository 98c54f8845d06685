package bittorrent

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
)

// fakeTracker is a UDP tracker on loopback that answers every announce
// with interval and one listed peer, and keeps the started announces.
type fakeTracker struct {
	url     string
	mu      sync.Mutex
	started map[[20]byte]int
}

func startFakeTracker(t *testing.T, interval uint32, listed netip.AddrPort) *fakeTracker {
	t.Helper()
	pc := udpSocket(t, "127.0.0.1")
	ft := &fakeTracker{url: "udp://" + udpAddrOf(pc).String(), started: map[[20]byte]int{}}
	go serveUDPTracker(pc, 0, false, func(_ netip.AddrPort, a tracker.AnnounceRequest) tracker.AnnounceResponse {
		if a.Event == tracker.EventStarted {
			ft.mu.Lock()
			ft.started[a.InfoHash]++
			ft.mu.Unlock()
		}
		return tracker.AnnounceResponse{Interval: interval, Peers: []netip.AddrPort{listed}}
	})
	return ft
}

func (ft *fakeTracker) startedFor(ih [20]byte) int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.started[ih]
}

// Config.Trackers (vigil sensor bittorrent --tracker) are asked about
// every watched info-hash, those that name no tracker too, beside the
// trackers a watched item names; and each tracker's interval is kept: a
// tracker that asked for 1800 s between announces gets one started
// announce for an info-hash, however often the sensor looks it up, while
// one that gave no interval is asked at every lookup.
func TestConfigTrackersAskedForEveryWatchedHashAtTheirInterval(t *testing.T) {
	polite := startFakeTracker(t, 1800, netip.MustParseAddrPort("127.0.0.81:51413"))
	eager := startFakeTracker(t, 0, netip.MustParseAddrPort("127.0.0.82:51413"))
	named := startFakeTracker(t, 1800, netip.MustParseAddrPort("127.0.0.83:51413"))
	a := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}
	b := Watched{Hash: randomHash(t, hashkind.BTIH), Trackers: []string{named.url}, Matched: []observe.Match{{List: "lab"}}}
	pub := newCollector()
	startDualSensor(t, pub, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}, func(c *Config) {
		c.ListenAddrs = []netip.Addr{v4Loopback}
		c.LookupEvery = 300 * time.Millisecond
		c.Trackers = []string{polite.url, eager.url}
	}, a, b)
	ka, kb := [20]byte(Key(a.Hash)), [20]byte(Key(b.Hash))
	waitUntil(t, 10*time.Second, "the eager tracker asked four times for each item", func() bool { return eager.startedFor(ka) >= 4 && eager.startedFor(kb) >= 4 })
	for _, c := range []struct {
		name string
		ft   *fakeTracker
		ih   [20]byte
		want int
	}{
		{"--tracker, interval 1800 s, first item", polite, ka, 1},
		{"--tracker, interval 1800 s, second item", polite, kb, 1},
		{"the second item's own tracker", named, kb, 1},
		{"the second item's tracker, for the first", named, ka, 0},
	} {
		if got := c.ft.startedFor(c.ih); got != c.want {
			t.Errorf("%s: %d started announces, want %d", c.name, got, c.want)
		}
	}
	got := map[netip.Addr]bool{}
	for _, o := range pub.byMethod(observe.MethodTracker) {
		got[o.Endpoint.IP] = true
		if !o.HasMark(observe.MarkThirdParty) || o.FirstHand() || o.Possession.Level != observe.Announced {
			t.Errorf("tracker observation %v: marks %v level %s: want a third party's claim at announced", o.Endpoint.IP, o.Marks, o.Possession.Level)
		}
	}
	for _, ip := range []string{"127.0.0.81", "127.0.0.82", "127.0.0.83"} {
		if !got[netip.MustParseAddr(ip)] {
			t.Errorf("no tracker observation of %s (got %v)", ip, got)
		}
	}
}

// A configured tracker outside the scope is refused by New, naming it:
// the sensor does not start.
func TestConfigTrackerOutOfScopeRefusedAtNew(t *testing.T) {
	for _, url := range []string{"http://192.0.2.1:6969/announce", "udp://198.51.100.7:6969", "https://[2001:db8::1]/announce",
		"http://tracker.example:6969/announce", "ftp://127.0.0.1/x"} {
		cfg := LabConfig()
		cfg.Identities = 1
		cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
		cfg.Trackers = []string{"udp://127.0.0.1:6969", url}
		g, err := scope.New(scope.DefaultConfig(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err = New(cfg, g, newCollector(), nil); err == nil {
			t.Errorf("tracker %s: the sensor was built", url)
			continue
		}
		if !strings.Contains(err.Error(), url) {
			t.Errorf("tracker %s: error %q does not name it", url, err)
		}
	}
}
