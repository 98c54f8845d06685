//go:build linux

package ed2k

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

const amuleAcceptChildEnv = "VIGIL_AMULE_ACCEPT_CHILD"

// TestAMuleAcceptanceWithDefaultsAndHostileListings runs the sensor with
// its default settings (DefaultConfig: verification off, the default wire
// budget and timeouts) against two of Debian's aMule 2.3.3 daemons in a
// network namespace with no default route: one plain, one that requires
// protocol obfuscation. A hostile server names, as sources of the watched
// file: the plain aMule (true), its address with a port nobody listens
// on, the obfuscating aMule, a clone presenting the plain aMule's user
// hash from an address of its own, an address nobody holds, the sensor's
// own address with the port 0 its login gives, and a low id.
//
// What must hold: the probe of the plain aMule is aMule 2.3.3, complete
// (2 of 2 parts), not verified, with the user hash it logged in with, at
// the port it listens on; the obfuscating aMule does not answer the
// sensor's plain hello (docs/evidence.md, "Known limits": a client that
// requires obfuscation does not answer), so only the servers' claims of it
// are recorded; no probe is recorded where no client listens; every
// server's claim is announced and third_party; nothing is recorded at the
// sensor's own address.
func TestAMuleAcceptanceWithDefaultsAndHostileListings(t *testing.T) {
	if os.Getenv(amuleAcceptChildEnv) == "1" {
		amuleAcceptChild(t)
		return
	}
	if testing.Short() {
		t.Skip("-short: the aMule test takes minutes")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root to create a network namespace (unshare -n)")
	}
	for _, bin := range []string{"amuled", "unshare", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			skipOrFail(t, bin+" not found (apt-get install amule-daemon iproute2 util-linux)")
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		skipOrFail(t, "cannot create a network namespace: "+err.Error())
	}
	// The child stops a minute before this test would, so that its own
	// timeout's goroutine dump reaches this log rather than being lost
	// with it.
	timeout := "6m"
	if d, ok := t.Deadline(); ok {
		timeout = max(time.Until(d)-time.Minute, time.Minute).Round(time.Second).String()
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^TestAMuleAcceptanceWithDefaultsAndHostileListings$", "-test.v", "-test.timeout", timeout)
	cmd.Env = append(os.Environ(), amuleAcceptChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		t.Log(line)
	}
	if err != nil {
		t.Fatalf("the test in the namespace failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		skipOrFail(t, "skipped in the namespace")
	}
}

func amuleAcceptChild(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(t, "ip", "link", "set", "lo", "up")
	if out, _ := exec.Command("ip", "route", "show", "default").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("the namespace has a default route: %s", out)
	}
	var (
		serverIP  = netip.MustParseAddr("100.64.0.1")
		liarIP    = netip.MustParseAddr("100.64.0.2")
		plainIP   = netip.MustParseAddr("100.64.5.1")
		obfuIP    = netip.MustParseAddr("100.64.6.1")
		cloneIP   = netip.MustParseAddr("100.64.7.1")
		nobodyIP  = netip.MustParseAddr("100.64.8.1")
		sensorIP  = netip.MustParseAddr("100.64.9.1")
		plainAddr = netip.AddrPortFrom(plainIP, 4662)
		obfuAddr  = netip.AddrPortFrom(obfuIP, 4662)
		cloneAddr = netip.AddrPortFrom(cloneIP, 4662)
	)
	for _, a := range []netip.Addr{serverIP, liarIP, plainIP, obfuIP, cloneIP, nobodyIP, sensorIP} {
		run(t, "ip", "addr", "add", a.String()+"/32", "dev", "lo")
	}
	file := labed2k.NewFile(0x0acce, wire.PartSize+1_000_000) // two parts
	srv, err := labed2k.StartServer(netip.AddrPortFrom(serverIP, 4661))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, am := range []struct {
		name string
		ip   netip.Addr
		obfu bool
	}{{"plain", plainIP, false}, {"obfuscating", obfuIP, true}} {
		a, err := labed2k.StartAMule(ctx, labed2k.AMuleSetup{Dir: filepath.Join(t.TempDir(), am.name), Addr: am.ip,
			Servers: []netip.AddrPort{srv.Addr()}, Files: []*labed2k.File{file}, ECPassword: "vigil-lab", RequireObfuscation: am.obfu})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			a.Close()
			if t.Failed() || os.Getenv("VIGIL_AMULE_LOG") == "1" {
				t.Logf("%s amuled output:\n%s\n%s aMule's logfile:\n%s", am.name, tail(a.Log(), 40), am.name, tail(a.Logfile(), 40))
			}
		}()
	}
	wait(t, 90*time.Second, "the plain aMule to offer the file to the lab server", func() bool {
		_, ok := srv.UserHash(file.Hash, plainAddr)
		return ok
	})
	loginHash, _ := srv.UserHash(file.Hash, plainAddr)
	wait(t, 90*time.Second, "the obfuscating aMule to listen", func() bool {
		c, err := net.DialTimeout("tcp", obfuAddr.String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	clone, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: loginHash, Software: labed2k.AMule233,
		Addr: cloneAddr, Shares: []labed2k.Share{{File: file}}})
	if err != nil {
		t.Fatal(err)
	}
	defer clone.Close()
	src := func(a netip.AddrPort) wire.Source { return wire.Source{ID: wire.AddrToID(a.Addr()), Port: a.Port()} }
	liar := startListing(t, netip.AddrPortFrom(liarIP, 4661), []wire.Source{src(plainAddr),
		src(netip.AddrPortFrom(plainIP, 4663)), src(obfuAddr), src(cloneAddr), src(netip.AddrPortFrom(nobodyIP, 4662)),
		src(netip.AddrPortFrom(sensorIP, 0)), {ID: 4242, Port: 4662}})

	g, err := scope.New(scope.Config{Mode: scope.ModeLab, Allow: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/16")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = sensorIP
	cfg.Servers = []netip.AddrPort{srv.Addr(), liar}
	col := &collector{}
	s, err := New(cfg, g, col, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, file.Hash[:]), Size: file.Size}); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	probed := func(a netip.AddrPort) *observe.Observation {
		for _, o := range col.all() {
			if o.Method == observe.MethodPeerProbe && netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == a {
				return &o
			}
		}
		return nil
	}
	// Both servers answer, then 7 probes: the plain aMule, the clone, and
	// five that fail (the wrong port, the obfuscating aMule, nobody).
	wait(t, 90*time.Second, "the probes of the plain aMule and the clone, and the others to fail", func() bool {
		st := s.Stats()
		return probed(plainAddr) != nil && probed(cloneAddr) != nil && st.Probes >= 5 && st.ProbeFailures+st.Dropped["not_acknowledged"] >= 3
	})
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the sensor's Run did not return a minute after its context was cancelled")
	}
	st := s.Stats()
	t.Logf("sensor stats: %+v", st)

	p := probed(plainAddr)
	t.Logf("probe of the plain aMule: %q %q, %s %d/%d, marks %v", p.Client.Name, p.Client.Version, p.Possession.Level,
		p.Possession.PiecesHave, p.Possession.PiecesTotal, p.Marks)
	if p.Client.Name != "aMule" || p.Client.Version != "2.3.3" || !bytes.Equal(p.Client.UserHash, loginHash[:]) ||
		p.Possession.Level != observe.Complete || p.Possession.PiecesHave != 2 || p.Possession.PiecesTotal != 2 ||
		p.Endpoint.Local.Addr() != sensorIP || len(p.Marks) != 0 {
		t.Errorf("probe of the plain aMule: %+v", *p)
	}
	if c := probed(cloneAddr); !bytes.Equal(c.Client.UserHash, loginHash[:]) {
		t.Errorf("the clone's probe: user hash %x, its hello said %x", c.Client.UserHash, loginHash)
	}
	claimed := map[netip.AddrPort]bool{}
	for _, o := range col.all() {
		ep := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)
		if ep.Addr() == sensorIP {
			t.Errorf("an observation of the sensor's own address: %s %v", o.Method, ep)
		}
		if o.Method == observe.MethodPeerProbe {
			if ep != plainAddr && ep != cloneAddr {
				t.Errorf("a probe recorded at %v, where no client that answers plainly listens (%s)", ep, o.Possession.Level)
			}
			continue
		}
		claimed[ep] = true
		if o.Possession.Level != observe.Announced || !o.HasMark(observe.MarkThirdParty) || len(o.Client.UserHash) != 0 {
			t.Errorf("a server's claim of %v: %s marks %v user hash %x", ep, o.Possession.Level, o.Marks, o.Client.UserHash)
		}
	}
	if !claimed[obfuAddr] || !claimed[plainAddr] {
		t.Errorf("servers' claims recorded at %v; want the obfuscating and the plain aMule among them", claimed)
	}
}

// startListing is a hostile eD2K server: it logs anyone in and answers
// every OP_GETSOURCES with srcs.
func startListing(t *testing.T, addr netip.AddrPort, srcs []wire.Source) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := &labed2k.ScriptedServer{Handle: labed2k.ListSources(srcs)}
	go srv.Serve(context.Background(), ln)
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
