package tracker

import (
	"context"
	"crypto/rand"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/lab/opentracker"
	"github.com/vigil-oss/vigil/internal/testenv"
)

// startOpentracker runs the real opentracker on 127.0.0.1, TCP and UDP on
// one free port, in its own directory, serving only the given info-hashes:
// Debian builds it in whitelist ("private") mode, so every hash announced
// must be listed in the access list file. It is killed when the test ends.
func startOpentracker(t *testing.T, hashes ...[20]byte) netip.AddrPort {
	t.Helper()
	ot, err := opentracker.Start(t.TempDir(), hashes)
	if errors.Is(err, opentracker.ErrMissing) {
		testenv.Missing(t, "OPENTRACKER", err.Error())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ot.Close()
		if t.Failed() {
			t.Logf("opentracker output:\n%s", ot.Output())
		}
	})
	return ot.Addr
}

func TestOpentrackerListsAnnouncedPeersAndCountsThem(t *testing.T) {
	var httpHash, udpHash [20]byte
	rand.Read(httpHash[:])
	rand.Read(udpHash[:])
	addr := startOpentracker(t, httpHash, udpHash)

	for _, tt := range []struct {
		name, tracker string
		hash          [20]byte
	}{
		{"http", "http://" + addr.String() + "/announce", httpHash},
		{"udp", "udp://" + addr.String(), udpHash},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestClient(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			announce := func(port uint16, left int64) Response {
				t.Helper()
				req := syntheticRequest(t)
				req.InfoHash, req.Port, req.Left, req.Event = tt.hash, port, left, EventStarted
				r, err := c.Announce(ctx, tt.tracker, req)
				if err != nil {
					t.Fatalf("announce of port %d: %v", port, err)
				}
				return r
			}
			// A seeder and a leecher, then a second leecher that asks.
			seeder := netip.AddrPortFrom(addr.Addr(), 40001)
			leecher := netip.AddrPortFrom(addr.Addr(), 40002)
			announce(seeder.Port(), 0)
			announce(leecher.Port(), 1000)
			r := announce(40003, 1000)

			for _, want := range []netip.AddrPort{seeder, leecher} {
				if !slices.Contains(r.Peers, want) {
					t.Fatalf("third announce lists %v, missing %v", r.Peers, want)
				}
			}
			if r.Complete != 1 || r.Incomplete != 2 {
				t.Fatalf("third announce counts complete %d, incomplete %d; want 1, 2", r.Complete, r.Incomplete)
			}
			t.Logf("third announce: peers %v, complete %d, incomplete %d, interval %v; sent %d bytes, received %d", r.Peers, r.Complete, r.Incomplete, r.Interval, len(r.Sent), len(r.Raw))
			if r.Interval <= 0 {
				t.Fatalf("interval %v, want positive", r.Interval)
			}
			got, err := c.Scrape(ctx, tt.tracker, [][20]byte{tt.hash})
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := got[tt.hash]; !ok || s.Complete != r.Complete || s.Incomplete != r.Incomplete {
				t.Fatalf("scrape = %+v (present %v), want complete %d, incomplete %d", s, ok, r.Complete, r.Incomplete)
			}
		})
	}
}

func TestOpentrackerRefusesUnlistedHashWithFailureReason(t *testing.T) {
	var listed, unlisted [20]byte
	rand.Read(listed[:])
	rand.Read(unlisted[:])
	addr := startOpentracker(t, listed)
	c, _ := newTestClient(t, nil)
	req := syntheticRequest(t)
	req.InfoHash = unlisted
	tracker := "http://" + addr.String() + "/announce"
	r, err := c.Announce(context.Background(), tracker, req)
	var fe *FailureError
	if !errors.As(err, &fe) || fe.Tracker != tracker || fe.Reason == "" {
		t.Fatalf("error = %v, want a *FailureError from %s", err, tracker)
	}
	if len(r.Raw) == 0 {
		t.Fatal("no transcript of the refusal")
	}
	t.Logf("refusal: %v", err)
}
