package bittorrent

import (
	"context"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/watchlist"
)

// TestSensorFindsEveryWatchedSeederInTheLab runs the sensor against a lab
// of real third-party DHT nodes and clients and checks its observations
// against the lab's ground truth: every seeder of every watched torrent is
// named by the DHT, probed, and found complete, with its client decoded.
func TestSensorFindsEveryWatchedSeederInTheLab(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	lcfg := lab.DefaultConfig()
	lcfg.DHTNodes, lcfg.Seeders, lcfg.Leechers, lcfg.Torrents, lcfg.Watched = 24, 5, 0, 8, 4
	lcfg.MovePeers = 0
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Manifest()

	f, err := os.Open(m.Watchlist)
	if err != nil {
		t.Fatal(err)
	}
	res, err := watchlist.Parse(f, watchlist.ParseOptions{File: m.Watchlist})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ws []Watched
	watchedByKey := map[[20]byte]hashkind.Hash{}
	for _, e := range res.Entries {
		ws = append(ws, Watched{Hash: e.Hash, Matched: []observe.Match{{List: "lab", Category: e.Category}}})
		watchedByKey[Key(e.Hash)] = e.Hash
	}
	// Ground truth: (seeder address, watched hash) pairs.
	type pair struct {
		addr netip.AddrPort
		h    hashkind.Hash
	}
	want := map[pair]bool{}
	for _, p := range m.Peers {
		if p.Role != "seeder" {
			continue
		}
		ap := netip.MustParseAddrPort(p.Addr)
		for _, ih := range p.Infohashes {
			kind := hashkind.BTIH
			if len(ih) == 64 {
				kind = hashkind.BTIH2
			}
			h, err := hashkind.Parse(ih, kind)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := watchedByKey[Key(h)]; ok {
				want[pair{ap, h}] = true
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the lab has no seeder of a watched torrent")
	}

	cfg := LabConfig()
	cfg.Identities = 4
	cfg.LookupEvery = 3 * time.Second
	cfg.Bootstrap = l.Bootstrap()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := newCollector()
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(ws...); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("sensor: %v", err)
		}
	}()

	missing := func(method string, check func(observe.Observation) bool) map[pair]bool {
		left := map[pair]bool{}
		for p := range want {
			left[p] = true
		}
		for _, o := range pub.byMethod(method) {
			p := pair{netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port), o.Item.Hash}
			if left[p] && check(o) {
				delete(left, p)
			}
		}
		return left
	}
	anyObs := func(observe.Observation) bool { return true }
	// Every seeder found under a v1 info-hash accepts the handshake and
	// advertises every piece, counted against the verified info
	// dictionary. Under a v2 info-hash's short form anacrolix v1.59.1
	// echoes the hash and resets the connection, which is also what it
	// does for a torrent it does not hold: the wire shows nothing, and the
	// sensor rightly records no probe (docs/traps.md).
	complete := func(o observe.Observation) bool {
		if o.Client.Name != "anacrolix/torrent" || o.Possession.Level < observe.Acknowledged {
			return false
		}
		return o.Possession.Level == observe.Complete &&
			o.Possession.PiecesTotal > 0 && o.Possession.PiecesHave == o.Possession.PiecesTotal
	}
	for {
		a, b := missing(observe.MethodDHTGetPeers, anyObs), missing(observe.MethodPeerProbe, complete)
		for p := range b {
			if p.h.Kind() == hashkind.BTIH2 {
				delete(b, p) // no probe to expect: see above
			}
		}
		if len(a) == 0 && len(b) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			for _, o := range pub.byMethod(observe.MethodPeerProbe) {
				t.Logf("probe %v:%d %s level %v pieces %d/%d client %q %q", o.Endpoint.IP, o.Endpoint.Port, o.Item.Hash.Kind(),
					o.Possession.Level, o.Possession.PiecesHave, o.Possession.PiecesTotal, o.Client.Name, o.Client.Version)
			}
			t.Fatalf("after 40 s: %d of %d watched (seeder, torrent) pairs not named by the DHT: %v; %d not probed complete: %v",
				len(a), len(want), a, len(b), b)
		case <-time.After(500 * time.Millisecond):
		}
	}
	// Nothing unwatched was observed.
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if _, ok := watchedByKey[Key(o.Item.Hash)]; !ok {
			t.Fatalf("observation of an unwatched item %s", o.Item.Hash.Hex())
		}
		if o.Possession.Level == observe.Complete && o.Method != observe.MethodPeerProbe {
			t.Fatalf("%s observation claims complete: only a probe can", o.Method)
		}
	}
}

// TestSensorVerifiesOnePieceWithoutKeepingIt turns on the optional
// verification: a probe fetches one piece from the peer alone, hashes it in
// memory and records `verified`; the transcript keeps a note, never the
// piece.
func TestSensorVerifiesOnePieceWithoutKeepingIt(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	lcfg := lab.DefaultConfig()
	lcfg.DHTNodes, lcfg.Seeders, lcfg.Leechers, lcfg.Torrents, lcfg.Watched, lcfg.MovePeers = 16, 3, 0, 3, 3, 0
	lcfg.Tracker = false
	l, err := lab.Start(ctx, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	m := l.Manifest()
	var ws []Watched
	for _, tor := range m.Torrents {
		if tor.Watched && tor.InfoHash != "" {
			h, err := hashkind.Parse(tor.InfoHash, hashkind.BTIH)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, Watched{Hash: h})
		}
	}
	if len(ws) == 0 {
		t.Fatal("the lab has no watched v1 torrent")
	}
	cfg := LabConfig()
	cfg.Identities, cfg.LookupEvery, cfg.Verify = 2, 3*time.Second, true
	cfg.Bootstrap = l.Bootstrap()
	g, _ := scope.New(scope.DefaultConfig(), nil)
	pub := newCollector()
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(ws...); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	defer func() { stop(); <-done }()
	for {
		for _, o := range pub.byMethod(observe.MethodPeerProbe) {
			if o.Possession.Level != observe.Verified {
				continue
			}
			tr := string(o.Transcript.Bytes)
			if !strings.Contains(tr, "hashed in memory and discarded; SHA-1 matches the info dictionary: true") {
				t.Fatalf("verified probe's transcript lacks the verification note")
			}
			// The fetched piece starts with the first bytes of one of the
			// seeders' files: none of them may be in the transcript.
			for _, p := range m.Peers {
				_ = filepath.WalkDir(p.DataDir, func(path string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return nil
					}
					b, err := os.ReadFile(path)
					if err != nil || len(b) < 64 {
						return nil
					}
					if strings.Contains(tr, string(b[:64])) {
						t.Fatalf("the transcript holds content of %s", path)
					}
					return nil
				})
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no probe reached `verified` in 40 s")
		case <-time.After(300 * time.Millisecond):
		}
	}
}
