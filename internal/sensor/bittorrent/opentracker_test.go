package bittorrent

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/opentracker"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/tracker"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// TestSensorRecordsPeersFromOpentracker announces two synthetic peers of a
// watched torrent to the real opentracker, over HTTP and UDP, and checks that
// the sensor, asking the tracker the torrent names, records both as
// `tracker` observations with the exchange as transcript.
func TestSensorRecordsPeersFromOpentracker(t *testing.T) {
	h := randomHash(t, hashkind.BTIH)
	key := [20]byte(Key(h))
	ot, err := opentracker.Start(t.TempDir(), [][20]byte{key})
	if errors.Is(err, opentracker.ErrMissing) {
		testenv.Missing(t, "OPENTRACKER", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ot.Close()

	g, _ := scope.New(scope.DefaultConfig(), nil)
	client, err := tracker.New(tracker.DefaultConfig(), g)
	if err != nil {
		t.Fatal(err)
	}
	peers := map[netip.AddrPort]bool{}
	for i, url := range []string{ot.HTTP(), ot.UDP()} {
		var pid [20]byte
		copy(pid[:], "-TR3000-synthetic-0")
		pid[19] = byte('0' + i)
		port := uint16(40000 + i)
		_, err := client.Announce(context.Background(), url, tracker.Request{InfoHash: key, PeerID: pid, Port: port,
			Left: 0, Event: tracker.EventStarted, NumWant: 50, Compact: true})
		if err != nil {
			t.Fatalf("announcing peer %d to %s: %v", i, url, err)
		}
		peers[netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)] = true
	}

	pub := newCollector()
	startSensor(t, pub, Watched{Hash: h, Trackers: []string{ot.HTTP(), ot.UDP()},
		Matched: []observe.Match{{List: "lab", Category: "1"}}})
	got := pub.waitFor(t, observe.MethodTracker, 2)
	seen := map[netip.AddrPort]bool{}
	for _, o := range got {
		ep := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
		if !peers[ep] {
			t.Fatalf("tracker observation of %v, which no synthetic peer announced", ep)
		}
		if o.Possession.Level != observe.Announced || o.Item.Hash != h || len(o.Transcript.Bytes) == 0 {
			t.Fatalf("tracker observation %+v", o)
		}
		seen[ep] = true
	}
	if len(seen) != len(peers) {
		t.Fatalf("observed %v, want both announced peers %v", seen, peers)
	}
}
