// Package opentracker runs Debian's opentracker, a real BitTorrent tracker,
// on loopback for Vigil's integration tests. It listens on 127.0.0.1 only.
//
// Debian builds opentracker for IPv4 only (it is an IPv4 or an IPv6
// tracker at compile time, and the package picks IPv4): given an IPv6
// address to bind it exits at once with "V4 Tracker is V4 only!" (exit
// status 111). The lab's own tracker (internal/lab) is its IPv6 tracker.
//
// It must never be pointed at anything but loopback: it is a lab part.
package opentracker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Bin is where Debian installs opentracker.
const Bin = "/usr/bin/opentracker"

// ErrMissing means opentracker is not installed (Debian package opentracker).
var ErrMissing = errors.New("opentracker not installed (Debian package opentracker)")

// Tracker is a running opentracker.
type Tracker struct {
	// Addr is its address: TCP (HTTP) and UDP on the same port.
	Addr   netip.AddrPort
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
	once   sync.Once
	// refusal is why the last readiness check failed (Start's error).
	refusal string
}

// HTTP and UDP are its announce URLs.
func (t *Tracker) HTTP() string { return "http://" + t.Addr.String() + "/announce" }
func (t *Tracker) UDP() string  { return "udp://" + t.Addr.String() }

// Output is what opentracker printed.
func (t *Tracker) Output() string { return t.out.String() }

// Start runs opentracker in dir (which must exist and be private to this
// run) with an access list of hashes: Debian builds it in whitelist mode.
// As root it drops to nobody, which it insists on.
func Start(dir string, hashes [][20]byte) (*Tracker, error) {
	if _, err := os.Stat(Bin); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMissing, err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // nobody must read the list
		return nil, err
	}
	return start(dir, hashes)
}

func start(dir string, hashes [][20]byte) (*Tracker, error) {
	var list bytes.Buffer
	for _, h := range hashes {
		fmt.Fprintf(&list, "%s\n", hex.EncodeToString(h[:]))
	}
	if err := os.WriteFile(filepath.Join(dir, "whitelist"), list.Bytes(), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-P", strconv.Itoa(port), "-d", dir, "-w", "whitelist"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	t := &Tracker{out: &bytes.Buffer{}, exited: make(chan struct{}),
		Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))}
	t.cmd = exec.Command(Bin, args...)
	t.cmd.Dir = dir
	t.cmd.Stdout, t.cmd.Stderr = t.out, t.out
	if err := t.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting opentracker: %w", err)
	}
	go func() { _ = t.cmd.Wait(); close(t.exited) }()
	// Generous: on a loaded machine (CI compiling beside it) the access
	// list thread has been seen to take over 5 s; a ready tracker returns
	// at once.
	const wait = 30 * time.Second
	listening := false
	for deadline := time.Now().Add(wait); ; {
		select {
		case <-t.exited:
			return nil, fmt.Errorf("opentracker %v exited at start: %s", args, t.out.String())
		default:
		}
		// A loopback dial to see that it listens.
		if c, err := net.DialTimeout("tcp", t.Addr.String(), 100*time.Millisecond); err == nil {
			c.Close()
			listening = true
			// Listening is not ready: opentracker loads its access list in
			// another thread, and until then refuses every torrent.
			if len(hashes) == 0 || t.allows(hashes[0]) {
				return t, nil
			}
		}
		if time.Now().After(deadline) {
			t.Close()
			if listening {
				return nil, fmt.Errorf("opentracker on %v listens but refuses its whitelisted torrent %x after %v (last: %s): %s", t.Addr,
					hashes[0], wait, t.refusal, t.out.String())
			}
			return nil, fmt.Errorf("opentracker not listening on %v after %v: %s", t.Addr, wait, t.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// allows asks the tracker whether it accepts h yet. It checks its list on
// announces, but not on 'stopped' ones: so it announces (port 1, wanting
// no peers) and, accepted, withdraws at once with 'stopped', leaving no
// peer behind.
func (t *Tracker) allows(h [20]byte) bool {
	ask := func(event string) ([]byte, error) {
		// Every byte of the hash percent-encoded, as clients send it:
		// url.Values writes a 0x20 byte as '+', which opentracker takes
		// for 0x2B, so one hash in thirteen (those holding a 0x20) was
		// refused as not whitelisted.
		q := "info_hash=" + percentEncode(h[:]) + "&peer_id=-VG0000-readinesschk&port=1&left=0&numwant=0"
		if event != "" {
			q += "&event=" + event
		}
		// A fresh connection each time: opentracker closes its side after
		// an answer, and a kept one can fail on reuse.
		c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}
		resp, err := c.Get(t.HTTP() + "?" + q)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		return b, err
	}
	b, err := ask("")
	if err == nil && bytes.Contains(b, []byte("failure reason")) {
		err = fmt.Errorf("answered %q", b)
	}
	if err == nil {
		_, err = ask("stopped")
	}
	if err != nil {
		t.refusal = err.Error()
		return false
	}
	return true
}

// percentEncode writes every byte as %XX.
func percentEncode(b []byte) string {
	const hexDigits = "0123456789ABCDEF"
	out := make([]byte, 0, 3*len(b))
	for _, c := range b {
		out = append(out, '%', hexDigits[c>>4], hexDigits[c&15])
	}
	return string(out)
}

// Close stops it and waits for it to exit.
func (t *Tracker) Close() {
	t.once.Do(func() {
		_ = t.cmd.Process.Kill()
		<-t.exited
	})
}

// freePort finds a loopback port free for both TCP and UDP.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no loopback port free for both TCP and UDP")
}
