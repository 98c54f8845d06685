package bittorrent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/match"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// startDiscoverySensor runs a sensor with discovery on against bootstrap.
func startDiscoverySensor(t *testing.T, ctx context.Context, bootstrap []netip.AddrPort, m MatchFunc, pub *collector) *Sensor {
	t.Helper()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			defer logMu.Unlock()
			for _, line := range strings.Split(logs.String(), "\n") {
				if strings.Contains(line, "discover") && !strings.Contains(line, "127.250.") && !strings.Contains(line, "reset by peer") {
					t.Log(line)
				}
			}
		}
	})
	cfg := LabConfig()
	cfg.Identities = 2
	cfg.LookupEvery = 2 * time.Second
	cfg.Bootstrap = bootstrap
	cfg.Discover, cfg.Match = true, m
	cfg.DiscoverMinInterval = 200 * time.Millisecond
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, pub, log)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sensor: %v", err)
		}
	})
	<-s.Ready()
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestDiscoveryNeedsAMatcher(t *testing.T) {
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	cfg.Discover = true
	if err := cfg.Validate(); err == nil {
		t.Fatal("discovery without a matcher validated")
	}
}

// TestDiscoveryPeersAreRecordedAsALookupRecordsThem: the peers a node
// names to discovery for a watched key (package discover's
// TestSampledWatchedHashBypassesSeenSet) are observed as a lookup's are,
// at the peer, announced, a third party's claim; those of an unwatched
// key are not.
func TestDiscoveryPeersAreRecordedAsALookupRecordsThem(t *testing.T) {
	s, pub := hostileSensor(t)
	watched, unwatched := randomHash(t, hashkind.BTIH), randomHash(t, hashkind.BTIH)
	if err := s.Watch(Watched{Hash: watched, Matched: []observe.Match{{List: "test"}}}); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddrPort("127.250.0.7:6881")
	node := netip.MustParseAddrPort("127.250.0.9:6881")
	ev := (*discoverEvents)(s)
	if !ev.Watched(Key(watched)) || ev.Watched(Key(unwatched)) {
		t.Fatal("discovery's view of the watch set is not the watch set")
	}
	ev.Peers(t.Context(), Key(watched), map[netip.AddrPort]peerSource{peer: {Node: node}})
	ev.Peers(t.Context(), Key(unwatched), map[netip.AddrPort]peerSource{peer: {Node: node}})
	obs := pub.byMethod(observe.MethodDHTGetPeers)
	if len(obs) != 1 {
		t.Fatalf("%d dht_get_peers observations, want 1 (the watched key's)", len(obs))
	}
	o := obs[0]
	if o.Item.Hash != watched || o.Endpoint.IP != peer.Addr() || o.Endpoint.Port != peer.Port() || o.Possession.Level != observe.Announced {
		t.Fatalf("observation %+v, want the watched hash at %v, announced", o, peer)
	}
	if !o.HasMark(observe.MarkThirdParty) {
		t.Fatalf("marks %v: a node's claim is third_party", o.Marks)
	}
}

// preloadDiscoveryLab stores on the lab's simulated DHT 5,000 noise
// info-hashes whose only peer is a closed port, and every lab torrent's
// seeders on its 8 closest simulated nodes.
//
// The seeders announced their torrents to the lab DHT when they started,
// but whether an anacrolix announce traversal reaches the simulated nodes
// depends on timing (on a loaded machine some keys reach only the
// anacrolix nodes, which do not sample). Storing them as a completed
// announce would keeps the subject discovery.
func preloadDiscoveryLab(l *lab.Lab, m lab.Manifest) {
	noise := make([]simdht.ID, 5000)
	for i := range noise {
		rand.Read(noise[i][:])
	}
	l.SimDHT().Preload(noise, func(i int) []netip.AddrPort {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 250, byte(i >> 8), byte(i)}), 9)}
	}, 1)
	for _, tor := range m.Torrents {
		for _, hx := range tor.SwarmHashes() {
			var k simdht.ID
			hex.Decode(k[:], []byte(hx))
			var peers []netip.AddrPort
			for _, p := range m.Peers {
				if slices.Contains(p.Infohashes, tor.InfoHash) || slices.Contains(p.Infohashes, tor.InfoHashV2) {
					peers = append(peers, netip.MustParseAddrPort(p.Addr))
				}
			}
			l.SimDHT().Preload([]simdht.ID{k}, func(int) []netip.AddrPort { return peers }, 8)
		}
	}
}

// logDiscoveryState logs, for a failed discovery test, where each lab
// torrent's key is held and whether discovery saw it, and every probe.
func logDiscoveryState(t *testing.T, l *lab.Lab, s *Sensor, pub *collector) {
	t.Helper()
	for _, tor := range l.Manifest().Torrents {
		for _, hx := range tor.SwarmHashes() {
			var k simdht.ID
			hex.Decode(k[:], []byte(hx))
			t.Logf("lab torrent %s (%s) key %s: held by %d simulated nodes; seen %v; watched %v", tor.Name, tor.Version, hx,
				len(l.SimDHT().Holders(k)), s.disc.Seen(routing.ID(k)), s.watch.len())
		}
	}
	for _, o := range pub.byMethod(observe.MethodPeerProbe) {
		t.Logf("probe %v %s level %v", netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), o.Item.Hash.Hex(), o.Possession.Level)
	}
}

// TestDiscoveryWatchesTorrentsWhoseFilesMatch runs discovery on a lab DHT
// of simulated nodes (with two anacrolix nodes) holding the announces of
// real anacrolix seeders and 5,000 synthetic info-hashes with dead peers.
// The watch-list names one file's v2 pieces root and another file's SHA-1
// (a single-piece v1 file), never an info-hash. The sensor must find both
// torrents, fetch and verify their metadata, watch them linked to the
// entries, and observe their seeders; and it must watch and observe nothing
// else.
func TestDiscoveryWatchesTorrentsWhoseFilesMatch(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lcfg := lab.DefaultConfig()
	lcfg.DHTNodes, lcfg.SimDHTNodes, lcfg.SimDHTInterval = 2, 60, time.Second
	lcfg.Seeders, lcfg.Leechers, lcfg.Torrents, lcfg.Watched, lcfg.MovePeers = 3, 0, 6, 0, 0
	lcfg.Tracker = false
	lcfg.FileSizes = lab.SizeRange{Min: 4 << 10, Max: 16 << 10} // one piece each: v1 files match by SHA-1
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Manifest()
	// Torrent 0 is v1 single-file, torrent 2 v2 single-file (lab layouts).
	v1t, v2t := m.Torrents[0], m.Torrents[2]
	if v1t.Version != "v1" || v2t.Version != "v2" || len(v1t.Files) != 1 || v2t.Files[0].PiecesRoot == "" {
		t.Fatalf("lab layouts changed: %s %s", v1t.Version, v2t.Version)
	}
	sha, err := hashkind.Parse(v1t.Files[0].SHA1, hashkind.SHA1)
	if err != nil {
		t.Fatal(err)
	}
	root, err := hashkind.Parse(v2t.Files[0].PiecesRoot, hashkind.BTV2)
	if err != nil {
		t.Fatal(err)
	}
	var b match.Builder
	b.Add(sha, match.Source{List: "list-sha1", Category: "synthetic-A"})
	b.Add(root, match.Source{List: "list-btv2", Category: "synthetic-B"})
	var live match.Live
	live.Store(b.Build())

	preloadDiscoveryLab(l, m)

	pub := newCollector()
	s := startDiscoverySensor(t, ctx, l.Bootstrap(), MatchLive(&live), pub)

	wantV1, _ := hashkind.Parse(v1t.InfoHash, hashkind.BTIH)
	wantV2, _ := hashkind.Parse(v2t.InfoHashV2, hashkind.BTIH2)
	seeders := map[hashkind.Hash]map[netip.AddrPort]bool{wantV1: {}, wantV2: {}}
	for _, p := range m.Peers {
		for _, ih := range p.Infohashes {
			for h := range seeders {
				if ih == h.Hex() {
					seeders[h][netip.MustParseAddrPort(p.Addr)] = true
				}
			}
		}
	}
	// Each matched torrent is then observed like any watched one: a seeder
	// named by the DHT and probed, acknowledging it or more. (Recall of
	// every seeder is TestSensorFindsEveryWatchedSeederInTheLab's job.)
	probed := func() bool {
		for h, want := range seeders {
			named, acked := false, false
			for _, o := range pub.byMethod(observe.MethodDHTGetPeers) {
				named = named || o.Item.Hash == h && want[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)]
			}
			for _, o := range pub.byMethod(observe.MethodPeerProbe) {
				acked = acked || o.Item.Hash == h && want[netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port)] &&
					o.Possession.Level >= observe.Acknowledged
			}
			if !named || !acked {
				return false
			}
		}
		return true
	}
	for !probed() {
		select {
		case <-ctx.Done():
			logDiscoveryState(t, l, s, pub)
			t.Logf("want seeders %v", seeders)
			t.Fatalf("after 60 s the discovered torrents' seeders are not all probed: discovered %+v; stats %+v; sim %+v",
				s.Discovered(), s.DiscoveryStats(), l.SimDHT().Stats())
		case <-time.After(300 * time.Millisecond):
		}
	}
	st := s.DiscoveryStats()
	t.Logf("discovery: %+v", st)
	if st.Matched != 2 {
		t.Fatalf("%d torrents matched, want 2", st.Matched)
	}
	if st.MetaFailed == 0 && st.NoPeers == 0 {
		t.Fatalf("no metadata failure counted, though 5,000 sampled info-hashes have only dead peers")
	}
	// Each discovery names the entry and the file that matched.
	for _, d := range s.Discovered() {
		if len(d.Files) != 1 {
			t.Fatalf("discovery of %s: %d files matched, want 1", d.Name, len(d.Files))
		}
		f := d.Files[0]
		switch {
		case f.Hash == sha && slices.Contains(d.Hashes, wantV1) && f.Matched[0].List == "list-sha1":
		case f.Hash == root && slices.Contains(d.Hashes, wantV2) && f.Matched[0].List == "list-btv2":
		default:
			t.Fatalf("discovery %+v does not link the right torrent to the right entry", d)
		}
	}
	// Only the two matched torrents are watched; every observation is of
	// one of them, carrying its entry.
	if got := s.Stats().Watched; got != 2 {
		t.Fatalf("%d info-hashes watched, want 2", got)
	}
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Item.Hash != wantV1 && o.Item.Hash != wantV2 {
			t.Fatalf("observation of an unmatched torrent %s (%s)", o.Item.Hash.Hex(), o.Method)
		}
		if len(o.Item.Matched) == 0 {
			t.Fatalf("observation of %s carries no list entry", o.Item.Hash.Hex())
		}
	}
}

// BenchmarkDiscoverySampling measures BEP 51 discovery against a
// simulated DHT of 10,000 nodes holding 1,000,000 info-hashes in all (100
// each, every one with a synthetic dead peer), reporting distinct
// info-hashes sampled per hour, extrapolated from a fixed window
// (VIGIL_DISC_WINDOW, default 60 s), beside the target of one million.
// The nodes report a BEP 51 interval of 60 s, which the sensor respects.
// Every new info-hash also goes through the metadata stage (get_peers to
// the node that sampled it, a dial refused at once), sharing the CPU.
//
//	go test -run '^$' -bench DiscoverySampling -benchtime 1x ./internal/sensor/bittorrent/
func BenchmarkDiscoverySampling(b *testing.B) {
	if testing.Short() {
		b.Skip("10,000-node benchmark skipped in -short mode")
	}
	nodes, perNode := envInt("VIGIL_DISC_NODES", 10_000), envInt("VIGIL_DISC_PER_NODE", 100)
	window := 60 * time.Second
	if v := os.Getenv("VIGIL_DISC_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		window = d
	}
	ctx := context.Background()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.Interval = nodes, time.Duration(envInt("VIGIL_DISC_INTERVAL", 60))*time.Second
	t0 := time.Now()
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		b.Fatal(err)
	}
	defer nw.Close()
	up := time.Since(t0)
	hashes := make([]simdht.ID, nodes*perNode)
	for i := range hashes {
		rand.Read(hashes[i][:])
	}
	t0 = time.Now()
	nw.Preload(hashes, func(i int) []netip.AddrPort {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 250, byte(i >> 8), byte(i)}), 9)}
	}, 1)
	preload := time.Since(t0)
	hashes = nil
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.Logf("simulated DHT: %d nodes up in %v, %d info-hashes preloaded in %v; heap in use %d MB",
		nodes, up.Round(time.Millisecond), nodes*perNode, preload.Round(time.Millisecond), ms.HeapInuse>>20)

	pub := newCollector()
	cfg := LabConfig()
	cfg.Identities = 8
	cfg.Bootstrap = []netip.AddrPort{nw.Nodes()[0].Addr, nw.Nodes()[nodes/2].Addr}
	cfg.Discover = true
	cfg.Match = func(hashkind.Hash) []observe.Match { return nil }
	cfg.DiscoverMinInterval = time.Second
	cfg.DiscoverQueue = nodes * perNode
	cfg.SeenCapacity = nodes * perNode
	g, _ := scope.New(scope.DefaultConfig(), nil)
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	sctx, stop := context.WithTimeout(ctx, window)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.Run(sctx) }()
	<-sctx.Done()
	st := s.DiscoveryStats()
	elapsed := time.Since(start)
	stop()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	perHour := float64(st.New+st.Deferred) / elapsed.Hours()
	b.Logf("window %v: %d queries, %d sampled, %d distinct new (%d deferred), %d nodes known, %d metadata attempts failed, queue %d; sim answered %d sample_infohashes",
		elapsed.Round(time.Millisecond), st.Queries, st.Sampled, st.New, st.Deferred, st.Nodes, st.MetaFailed+st.NoPeers, st.QueueDepth,
		nw.Stats().Queries["sample_infohashes"])
	b.Logf("coverage: %.1f%% of the %d info-hashes held sampled in the window", 100*float64(st.New+st.Deferred)/float64(nodes*perNode), nodes*perNode)
	b.ReportMetric(perHour, "distinct/hour")
	b.ReportMetric(1e6, "target/hour")
	b.ReportMetric(float64(st.Sampled)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(float64(st.MetaFailed+st.NoPeers+st.MetaFetched)/elapsed.Seconds(), "metadata-attempts/s")
	if len(pub.obs) != 0 {
		b.Fatalf("%d observations with nothing watched", len(pub.obs))
	}
}

func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		var n int
		if _, err := fmt.Sscan(v, &n); err == nil && n > 0 {
			return n
		}
	}
	return def
}
