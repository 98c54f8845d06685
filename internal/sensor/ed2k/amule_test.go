//go:build linux

package ed2k

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
	"github.com/vigil-oss/vigil/internal/testenv"
)

const amuleChildEnv = "VIGIL_AMULE_CHILD"

// skipOrFail skips with why, or fails when VIGIL_REQUIRE_AMULE=1 (testenv).
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	testenv.Missing(t, "AMULE", why)
}

// TestAMuleIsFoundByServerAndKadAndProbed runs Debian's aMule daemon in a
// network namespace with no default route, sharing a synthetic file,
// connected to the lab's server and Kad nodes (on RFC 6598 addresses:
// aMule refuses loopback and private addresses for Kad). The sensor must
// find it through the server and through Kad, probe it, decode it as aMule
// 2.3.3, and see the user hash it logged in with. aMule publishes in Kad
// only after its self lookup (about 225 s after Kad starts), so the Kad
// half waits up to VIGIL_AMULE_KAD_WAIT (default 6m; "0" skips it).
//
// The test re-runs itself inside 'unshare -n' as root; it skips, naming
// what is missing, without root, unshare or amuled (apt-get install
// amule-daemon), unless VIGIL_REQUIRE_AMULE=1.
func TestAMuleIsFoundByServerAndKadAndProbed(t *testing.T) {
	if os.Getenv(amuleChildEnv) == "1" {
		amuleChild(t)
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
			skipOrFail(t, fmt.Sprintf("%s not found (apt-get install amule-daemon iproute2 util-linux)", bin))
		}
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		skipOrFail(t, "cannot create a network namespace: "+err.Error())
	}
	timeout := "12m"
	if d, ok := t.Deadline(); ok {
		timeout = time.Until(d).Round(time.Second).String()
	}
	cmd := exec.Command("unshare", "-n", os.Args[0], "-test.run", "^TestAMuleIsFoundByServerAndKadAndProbed$", "-test.v", "-test.timeout", timeout)
	cmd.Env = append(os.Environ(), amuleChildEnv+"=1")
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

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

func amuleChild(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The namespace: lo up, the lab's addresses on it, and no route out.
	run(t, "ip", "link", "set", "lo", "up")
	if out, _ := exec.Command("ip", "route", "show", "default").CombinedOutput(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("the namespace has a default route: %s", out)
	}
	var (
		serverIP = netip.MustParseAddr("100.64.0.1")
		amuleIP  = netip.MustParseAddr("100.64.5.1")
		sensorIP = netip.MustParseAddr("100.64.9.1")
	)
	addrs := []netip.Addr{serverIP, amuleIP, sensorIP}
	const kadNodes = 8
	for i := 0; i < kadNodes; i++ {
		addrs = append(addrs, netip.AddrFrom4([4]byte{100, 64, byte(10 + i), 1})) // one /24 a node
	}
	for _, a := range addrs {
		run(t, "ip", "addr", "add", a.String()+"/32", "dev", "lo")
	}

	file := labed2k.NewFile(0x0a11e, wire.PartSize+1_000_000) // two parts: a hash set, a part map
	file.Name = "lab-keyword-alpha amule 01.bin"
	// A second file aMule shares, not watched: an analyst's keyword
	// search finds it in the server's index of aMule's own offer.
	other := labed2k.NewFile(0x0a11f, 300_000)
	other.Name = "lab-keyword-alpha amule 02.bin"
	srv, err := labed2k.StartServer(netip.AddrPortFrom(serverIP, 4661))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Kad nodes whose ids are near the file's, so that aMule publishes
	// its source to them (SEARCHTOLERANCE), and that connect back to
	// firewall checks, so that aMule learns it is reachable.
	fileID := kadwire.FileID(file.Hash)
	var nodes []*labed2k.KadNode
	var contacts []kadwire.Contact
	for i := 0; i < kadNodes; i++ {
		id := fileID
		id[4], id[15] = byte(i+1), byte(0x80+i)
		kn, err := labed2k.StartKadNode(netip.AddrPortFrom(addrs[3+i], 4672), id, labed2k.KadConfig{Tolerance: true, ConnectBack: true, TCPPort: 4662})
		if err != nil {
			t.Fatal(err)
		}
		defer kn.Close()
		nodes = append(nodes, kn)
		contacts = append(contacts, kn.Contact())
	}
	for _, kn := range nodes {
		kn.AddContacts(contacts...)
	}

	am, err := labed2k.StartAMule(ctx, labed2k.AMuleSetup{Dir: filepath.Join(t.TempDir(), "amule"), Addr: amuleIP,
		Servers: []netip.AddrPort{srv.Addr()}, Nodes: contacts, Files: []*labed2k.File{file, other}, ECPassword: "vigil-lab"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		am.Close()
		if t.Failed() || os.Getenv("VIGIL_AMULE_LOG") == "1" {
			t.Logf("amuled output:\n%s\naMule's logfile:\n%s", tail(am.Log(), 80), tail(am.Logfile(), 80))
		}
	}()
	amuleAddr := netip.AddrPortFrom(amuleIP, 4662)
	wait(t, 90*time.Second, "aMule to offer the file to the lab server", func() bool {
		_, ok := srv.UserHash(file.Hash, amuleAddr)
		return ok
	})
	loginHash, _ := srv.UserHash(file.Hash, amuleAddr)
	t.Logf("aMule logged in to the lab server with user hash %x and offered %x", loginHash, file.Hash)

	// The sensor, in scope of the namespace's addresses only.
	g, err := scope.New(scope.Config{Mode: scope.ModeLab, Allow: []netip.Prefix{netip.MustParsePrefix("100.64.0.0/16")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen, cfg.SearchEvery = sensorIP, 5*time.Second
	cfg.ReprobeAfter = time.Minute
	cfg.Servers = []netip.AddrPort{srv.Addr()}
	cfg.KadBootstrap = []netip.AddrPort{contacts[0].Addr, contacts[1].Addr}
	cfg.Verify = true
	cfg.ProbeTimeout = 20 * time.Second
	cfg.Keywords, cfg.KeywordEvery = []string{"lab-keyword-alpha"}, 5*time.Second
	var smu sync.Mutex
	var suspects []Suspect
	cfg.OnSuspect = func(sp Suspect) bool {
		smu.Lock()
		defer smu.Unlock()
		suspects = append(suspects, sp)
		return true
	}
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
	defer func() { stop(); <-done }()

	find := func(method string) *observe.Observation {
		for _, o := range col.all() {
			if o.Method == method && netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == amuleAddr {
				return &o
			}
		}
		return nil
	}
	wait(t, 90*time.Second, "the sensor to find aMule by the server and probe it", func() bool {
		return find(observe.MethodED2KServerSources) != nil && find(observe.MethodPeerProbe) != nil
	})
	p := find(observe.MethodPeerProbe)
	t.Logf("probe of aMule: client %q %q, level %s %d/%d, marks %v, user hash %x", p.Client.Name, p.Client.Version,
		p.Possession.Level, p.Possession.PiecesHave, p.Possession.PiecesTotal, p.Marks, p.Client.UserHash)
	if p.Client.Name != "aMule" || p.Client.Version != "2.3.3" {
		t.Fatalf("aMule decoded as %q %q", p.Client.Name, p.Client.Version)
	}
	if string(p.Client.UserHash) != string(loginHash[:]) {
		t.Fatalf("probe user hash %x, server login %x", p.Client.UserHash, loginHash)
	}
	if p.Possession.Level < observe.Complete || p.Possession.PiecesTotal != 2 {
		t.Fatalf("aMule shares the whole file; recorded %s %d/%d", p.Possession.Level, p.Possession.PiecesHave, p.Possession.PiecesTotal)
	}
	if p.Possession.Level != observe.Verified {
		sum, _ := tscript.Summarize(p.Transcript.Bytes)
		t.Logf("not verified: %s (%+v)", noteOf(p.Transcript.Bytes), sum)
	}
	// The keyword search: the server indexed aMule's offer by its names;
	// the watched file is only counted, the other is a suspect, and no
	// observation names it.
	wait(t, 30*time.Second, "the keyword search to return aMule's two files from the server", func() bool {
		smu.Lock()
		defer smu.Unlock()
		return len(suspects) > 0 && s.Stats().KeywordWatched > 0
	})
	smu.Lock()
	sp := suspects[0]
	smu.Unlock()
	if [16]byte(sp.Hash.Bytes()) != other.Hash || sp.Name != other.Name || sp.Size != other.Size || sp.Network != observe.NetED2K {
		t.Fatalf("suspect %+v, want aMule's unwatched file from the server", sp)
	}
	for _, o := range col.all() {
		if [16]byte(o.Item.Hash.Bytes()) != file.Hash {
			t.Fatalf("an observation of an unwatched file: %+v", o)
		}
	}
	if dir := os.Getenv("VIGIL_AMULE_CAPTURE"); dir != "" {
		capture(t, dir, p.Transcript.Bytes)
	}

	kadWait := 6 * time.Minute
	if v := os.Getenv("VIGIL_AMULE_KAD_WAIT"); v != "" {
		if kadWait, err = time.ParseDuration(v); err != nil {
			t.Fatalf("VIGIL_AMULE_KAD_WAIT: %v", err)
		}
	}
	if kadWait == 0 {
		t.Log("VIGIL_AMULE_KAD_WAIT=0: the Kad half is not run")
		return
	}
	wait(t, kadWait, "aMule's source published in Kad and found by the sensor", func() bool {
		return find(observe.MethodKadSources) != nil
	})
	k := find(observe.MethodKadSources)
	t.Logf("Kad source of aMule: %v marks %v", netip.AddrPortFrom(k.Endpoint.IP, k.Endpoint.Port), k.Marks)
	// The Kad entry names aMule by the user hash it logged in with and
	// sent in its hello: the node's word, kept in the transcript only.
	if len(k.Client.UserHash) != 0 {
		t.Fatalf("a Kad source carries a user hash in its record: %x", k.Client.UserHash)
	}
	if id, ok := kadSourceID(k.Transcript.Bytes, amuleAddr); !ok || id != kadwire.ID(loginHash) {
		t.Fatalf("Kad entry id %x (found %v), aMule's user hash %x", id, ok, loginHash)
	}
	st := s.Stats()
	t.Logf("sensor stats: %+v", st)
}

// kadSourceID returns the id of the source entry for addr in a
// kad_sources transcript (the node's answer).
func kadSourceID(tr []byte, addr netip.AddrPort) (kadwire.ID, bool) {
	recs, _ := tscript.Decode(tr)
	for _, r := range recs {
		if r.Type != tscript.Received {
			continue
		}
		p, err := kadwire.Decode(r.Data, kadwire.DefaultMaxUnpacked)
		if err != nil || p.Opcode != kadwire.OpSearchRes {
			continue
		}
		sr, err := kadwire.DecodeSearchRes(p.Payload)
		if err != nil {
			continue
		}
		for _, res := range sr.Results {
			if src, ok := res.Source(); ok && src.Addr == addr {
				return res.ID, true
			}
		}
	}
	return kadwire.ID{}, false
}

func wait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func noteOf(tr []byte) string {
	recs, _ := tscript.Decode(tr)
	for _, r := range recs {
		if r.Type == tscript.Note {
			return string(r.Data)
		}
	}
	return ""
}

// capture writes the packets aMule sent in the probe, one file each, for
// the wire package's tests on real packets.
func capture(t *testing.T, dir string, tr []byte) {
	recs, err := tscript.Decode(tr)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(dir, 0o755)
	for i, r := range recs {
		if r.Type != tscript.Received || len(r.Data) < wire.HeaderLen {
			continue
		}
		name := filepath.Join(dir, fmt.Sprintf("%02d-%02x-%02x", i, r.Data[0], r.Data[5]))
		w, _ := os.Create(name)
		bw := bufio.NewWriter(w)
		bw.Write(r.Data)
		bw.Flush()
		w.Close()
	}
}
