package bittorrent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/simdht"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// ipPattern finds an IPv4 address, or an IPv6 one in brackets or with a
// zone-free "::" form, in a text log line.
var ipPattern = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b|\[[0-9a-fA-F:]+\]|\b[0-9a-fA-F]{0,4}::[0-9a-fA-F:]*\b`)

// Minimisation (issue 10, item 8): run discovery over a DHT whose nodes
// hold only unwatched info-hashes, each with a (dead) peer, with every
// log record kept at debug level, and fail if any record holds an
// unwatched info-hash, above all beside an address. At 8846f19 every
// failed metadata fetch wrote "peer=... infohash=..." at debug level.
func TestNoLogLinePairsAnAddressWithAnUnwatchedItem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scfg := simdht.DefaultConfig()
	scfg.Nodes, scfg.Interval = 8, time.Second
	nw, err := simdht.Start(ctx, scfg)
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	noise := make([]simdht.ID, 200)
	for i := range noise {
		rand.Read(noise[i][:])
	}
	nw.Preload(noise, func(i int) []netip.AddrPort {
		return []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 251, byte(i >> 8), byte(i)}), 9)}
	}, 2)

	var mu sync.Mutex
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := LabConfig()
	cfg.Identities = 2
	cfg.Bootstrap = []netip.AddrPort{nw.Nodes()[0].Addr}
	cfg.Discover, cfg.Match = true, func(hashkind.Hash) []observe.Match { return nil }
	cfg.DiscoverMinInterval = 200 * time.Millisecond
	cfg.ProbeTimeout = time.Second
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, newCollector(), log)
	if err != nil {
		t.Fatal(err)
	}
	// A watched item too, so that lines about watched items are written
	// and the check below is seen to let them through.
	if err := s.Watch(Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}); err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	for {
		st := s.DiscoveryStats()
		if st.MetaFailed+st.NoPeers >= 20 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("discovery did not try 20 unwatched info-hashes in 30 s: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("only %d log lines: the capture is not working", len(lines))
	}
	unwatched := make([]string, len(noise))
	for i, k := range noise {
		unwatched[i] = hex.EncodeToString(k[:])
	}
	for _, line := range lines {
		low := strings.ToLower(line)
		for _, h := range unwatched {
			if !strings.Contains(low, h) {
				continue
			}
			if ipPattern.MatchString(line) {
				t.Fatalf("a log line pairs an address with an unwatched info-hash: %s", line)
			}
			t.Fatalf("a log line names an unwatched info-hash: %s", line)
		}
	}
	t.Logf("%d log lines checked; discovery %+v", len(lines), s.DiscoveryStats())
}
