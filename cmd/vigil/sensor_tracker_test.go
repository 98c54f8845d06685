package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/opentracker"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// `vigil sensor bittorrent --tracker URL`, otherwise with its default
// flags, asks a real tracker (Debian's opentracker on loopback) about the
// watched info-hash: the peer a lab peer's announce put there is recorded
// as the tracker's claim (tracker, announced, third_party: never an ISP
// row), then probed first-hand, and only the probe is an ISP row. The
// watch-list is a magnet list, which names no tracker: the flag alone
// makes the sensor ask.
func TestSensorTrackerFlagAsksOpentracker(t *testing.T) {
	var ih [20]byte
	rand.Read(ih[:])
	ot, err := opentracker.Start(t.TempDir(), [][20]byte{ih})
	if errors.Is(err, opentracker.ErrMissing) {
		testenv.Missing(t, "OPENTRACKER", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ot.Close()

	// The lab peer: it holds the torrent (have_all) on 127.0.0.6 and
	// announces it to the tracker over UDP from that address.
	peer := startScriptedPeer(t, "127.0.0.6:0", ih, func(net.Conn) []byte {
		out := append([]byte{19}, "BitTorrent protocol"...)
		out = append(out, 0, 0, 0, 0, 0, 0, 0, 0x04) // fast extension
		out = append(out, ih[:]...)
		out = append(out, "-TR3000-labpeer00001"...)
		return append(out, 0, 0, 0, 1, 0x0e) // have_all
	})
	g, _ := scope.New(scope.DefaultConfig(), nil)
	tc := tracker.DefaultConfig()
	tc.UDPLocalAddr = peer.Addr()
	client, err := tracker.New(tc, g)
	if err != nil {
		t.Fatal(err)
	}
	var pid [20]byte
	copy(pid[:], "-TR3000-labpeer00001")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Announce(ctx, ot.UDP(), tracker.Request{InfoHash: ih, PeerID: pid, Port: peer.Port(),
		Event: tracker.EventStarted, NumWant: 50, Compact: true}); err != nil {
		t.Fatalf("the lab peer's announce: %v\n%s", err, ot.Output())
	}

	dir := t.TempDir()
	env := map[string]string{"VIGIL_DB": filepath.Join(dir, "v.db"), "VIGIL_KEY_DIR": filepath.Join(dir, "keys")}
	list := writeFile(t, dir, "w.magnet", "magnet:?xt=urn:btih:"+hex.EncodeToString(ih[:])+"\n")
	if code, _, errOut := vigilRun(t, env, "", "watchlist", "import", "--list", "accept", list); code != exitOK {
		t.Fatalf("import: %s", errOut)
	}
	// A bootstrap node nobody listens on (discard port): only the
	// tracker can name the peer.
	code, summary, errOut := vigilRun(t, env, "", "sensor", "bittorrent", "--bootstrap", "127.0.0.1:9",
		"--tracker", ot.HTTP(), "--duration", "12s")
	if code != exitOK {
		t.Fatalf("sensor: exit %d\n%s%s", code, summary, errOut)
	}
	t.Logf("sensor summary:\n%s", summary)
	_, exported, _ := vigilRun(t, env, "", "observations", "export", "--case", "2026/0042", "--format", "jsonl")
	var listed, probed int
	for _, o := range decodeJSONL(t, exported) {
		t.Logf("observation %s %v:%d %s marks %v", o.Method, o.Endpoint.IP, o.Endpoint.Port, o.Possession.Level, o.Marks)
		if o.Endpoint.IP != peer.Addr() || o.Endpoint.Port != peer.Port() {
			continue
		}
		switch o.Method {
		case observe.MethodTracker:
			listed++
			if o.Possession.Level != observe.Announced || !o.HasMark(observe.MarkThirdParty) || o.FirstHand() {
				t.Errorf("tracker observation: level %s marks %v first-hand %v: want a third party's claim at announced", o.Possession.Level, o.Marks, o.FirstHand())
			}
		case observe.MethodPeerProbe:
			probed++
			if !o.FirstHand() || o.Possession.Level < observe.Acknowledged {
				t.Errorf("probe observation: level %s marks %v first-hand %v: want first-hand, acknowledged or more", o.Possession.Level, o.Marks, o.FirstHand())
			}
		}
	}
	if listed == 0 || probed == 0 {
		t.Fatalf("the lab peer %v: %d tracker and %d probe observations, want both\n%s", peer, listed, probed, summary)
	}

	code, out, errOut := vigilRun(t, env, "", "targets", "--json", "--limit", "1000")
	if code != exitOK {
		t.Fatalf("targets: exit %d %s", code, errOut)
	}
	var targets []targetJSON
	if err := json.Unmarshal([]byte(out), &targets); err != nil {
		t.Fatal(err)
	}
	// The tracker's listing is in the annex as a third party's claim,
	// never a row; a row, if any, is the probe's. (Whether the probe is a
	// row depends on a second instant of the address within the window:
	// the listing's, which may fall in the probe's own millisecond.)
	var annexed int
	for _, tg := range targets {
		code, out, errOut := vigilRun(t, env, "", "isp-request", "--target", tg.ID, "--format", "json", "--case", "2026/0042")
		if code != exitOK {
			t.Fatalf("isp-request %s: exit %d %s", tg.ID, code, errOut)
		}
		var req struct {
			Groups []struct {
				Rows []ispRowAccept `json:"rows"`
			} `json:"groups"`
			Annex []struct {
				IP     string `json:"ip"`
				Method string `json:"method"`
				Reason string `json:"reason"`
			} `json:"annex"`
		}
		if err := json.Unmarshal([]byte(out), &req); err != nil {
			t.Fatal(err)
		}
		for _, g := range req.Groups {
			for _, r := range g.Rows {
				if r.Method != "peer_probe" || r.IP != peer.Addr().String() || r.SourcePort != peer.Port() {
					t.Errorf("ISP row %+v: want the probe of %v only (a tracker's listing is never a row)", r, peer)
				}
			}
		}
		for _, a := range req.Annex {
			if a.Method == observe.MethodTracker {
				annexed++
				if a.IP != peer.Addr().String() || a.Reason != "third_party" {
					t.Errorf("annex entry %+v: want the lab peer's listing as third_party", a)
				}
			}
		}
	}
	if annexed == 0 {
		t.Errorf("the tracker's listing of %v is in no ISP request's annex", peer)
	}
}

// A --tracker outside the scope stops the sensor at start with an error
// naming it, before any socket: nothing reaches the bootstrap node or
// the bus, and the store is not even opened.
func TestSensorTrackerOutOfScopeRefusedBeforeAnySocket(t *testing.T) {
	boot, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	var datagrams atomic.Int32
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := boot.ReadFrom(buf); err != nil {
				return
			}
			datagrams.Add(1)
		}
	}()
	bus, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	var dials atomic.Int32
	go func() {
		for {
			c, err := bus.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	for _, url := range []string{"http://192.0.2.1:6969/announce", "udp://[2001:db8::1]:6969", "http://tracker.example/announce"} {
		dir := t.TempDir()
		db := filepath.Join(dir, "v.db")
		env := map[string]string{"VIGIL_DB": db, "VIGIL_KEY_DIR": filepath.Join(dir, "keys")}
		code, out, errOut := vigilRun(t, env, "", "sensor", "bittorrent", "--bootstrap", boot.LocalAddr().String(),
			"--tracker", "udp://127.0.0.1:6969", "--tracker", url, "--bus", "nats://"+bus.Addr().String(), "--duration", "3s")
		if code == exitOK || !strings.Contains(errOut, url) {
			t.Errorf("--tracker %s: exit %d, stderr %q: want a refusal naming it\n%s", url, code, errOut, out)
		}
		if _, err := os.Stat(db); err == nil {
			t.Errorf("--tracker %s: the store was opened", url)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := datagrams.Load(); n != 0 {
		t.Errorf("%d datagrams reached the bootstrap node", n)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("%d connections reached the bus", n)
	}
	// A scheme the client does not speak is a usage error.
	if code, _, errOut := vigilRun(t, nil, "", "sensor", "bittorrent", "--bootstrap", "127.0.0.1:9", "--tracker", "ftp://127.0.0.1/x"); code != exitUsage || !strings.Contains(errOut, "ftp://127.0.0.1/x") {
		t.Errorf("--tracker ftp://: exit %d %q, want a usage error naming it", code, errOut)
	}
}

// FuzzTrackerFlag: --tracker never panics, and a tracker that passes the
// start-time check in lab scope names a loopback IP address.
func FuzzTrackerFlag(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969", "https://[::1]/a?passkey=x",
		"http://192.0.2.1/", "udp://tracker.example:80", "ftp://127.0.0.1/", "http://[::ffff:127.0.0.1]:1/", "http://127.0.0.1:99999/", "::", ""} {
		f.Add(s)
	}
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var l trackerList
		if l.Set(s) != nil {
			return
		}
		if len(l) != 1 || l[0] != s {
			t.Fatalf("Set(%q) kept %q", s, l)
		}
		if bittorrent.CheckTrackers(l, g) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("%q passed the check but does not parse: %v", s, err)
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if err != nil || !ip.Unmap().IsLoopback() {
			t.Fatalf("%q passed the lab-scope check: host %q is not a loopback address", s, u.Hostname())
		}
	})
}
