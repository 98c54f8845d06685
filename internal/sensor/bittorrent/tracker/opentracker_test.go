package tracker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

const opentrackerBin = "/usr/bin/opentracker"

// startOpentracker runs the real opentracker on 127.0.0.1, TCP and UDP on
// one free port, in its own directory, serving only the given info-hashes:
// Debian builds it in whitelist ("private") mode, so every hash announced
// must be listed in the access list file. It is killed when the test ends.
func startOpentracker(t *testing.T, hashes ...[20]byte) netip.AddrPort {
	t.Helper()
	if _, err := os.Stat(opentrackerBin); err != nil {
		t.Skipf("opentracker not installed (Debian package opentracker): %v", err)
	}
	dir := t.TempDir()
	// As root, opentracker chroots into dir and drops to nobody, who must
	// be able to read the access list there.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var list bytes.Buffer
	for _, h := range hashes {
		fmt.Fprintf(&list, "%s\n", hex.EncodeToString(h[:]))
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeTCPAndUDPPort(t)
	args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-P", strconv.Itoa(port), "-d", dir, "-w", "whitelist"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // it refuses to keep root
	}
	var out bytes.Buffer
	cmd := exec.Command(opentrackerBin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting opentracker: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("opentracker %v output:\n%s", args, out.String())
		}
	})
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		select {
		case <-exited:
			t.Fatalf("opentracker %v exited at start:\n%s", args, out.String())
		default:
		}
		// Test harness only: a loopback dial to see that it listens.
		if c, err := net.DialTimeout("tcp", addr.String(), 100*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker not listening on %v after 5 s:\n%s", addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeTCPAndUDPPort finds a loopback port free for both TCP and UDP.
func freeTCPAndUDPPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no loopback port free for both TCP and UDP")
	return 0
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
