package announcer

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/simdht"
)

// TestAnnounceReachesTheKClosestNodes announces on a simulated DHT and
// checks, against the network's exact ground truth, that the announce was
// stored on the K nodes closest to the info-hash, and that a second
// client's lookup is given the first as a peer.
func TestAnnounceReachesTheKClosestNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.FirstAddr = 500, netip.MustParseAddr("127.66.0.1")
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	cfg := DefaultConfig()
	cfg.Bootstrap = []netip.AddrPort{nw.Nodes()[0].Addr, nw.Nodes()[250].Addr}

	a, err := Listen(netip.MustParseAddrPort("127.67.0.1:0"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(netip.MustParseAddrPort("127.67.0.2:0"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	for range 5 {
		var ih [20]byte
		rand.Read(ih[:])
		res, err := a.Announce(ctx, ih, 6881)
		if err != nil {
			t.Fatal(err)
		}
		if res.AnnouncedTo != cfg.K {
			t.Fatalf("announced to %d nodes, want %d (%d queried, %d answered)", res.AnnouncedTo, cfg.K, res.Queried, res.Answered)
		}
		want := map[netip.AddrPort]bool{}
		for _, n := range nw.Closest(ih, cfg.K) {
			want[n.Addr] = true
		}
		holders := nw.Holders(ih)
		if len(holders) != cfg.K {
			t.Fatalf("%d nodes hold the info-hash, want %d", len(holders), cfg.K)
		}
		for _, h := range holders {
			if !want[h.Addr] {
				t.Fatalf("node %v holds the announce but is not among the %d closest", h.Addr, cfg.K)
			}
		}
		if res.FirstAnnounce.IsZero() {
			t.Fatal("no announce time recorded")
		}
		res2, err := b.Announce(ctx, ih, 6882)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range res2.Peers {
			if p == netip.AddrPortFrom(a.Addr().Addr(), 6881) {
				found = true
			}
		}
		if !found {
			t.Fatalf("second lookup's peers %v lack the first client", res2.Peers)
		}
	}
	if sent, recv := a.Packets(); sent == 0 || recv == 0 || recv > sent {
		t.Fatalf("packets sent %d received %d", sent, recv)
	}
}

func TestListenRefusesAddressesOffLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	if _, err := Listen(netip.MustParseAddrPort("192.0.2.1:0"), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("client on 192.0.2.1: err %v, want ErrConfig", err)
	}
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:6881")}
	if _, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("bootstrap 192.0.2.1: err %v, want ErrConfig", err)
	}
}
