package ed2k

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// syncBuffer is a log sink safe for the sensor's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestKeywordSearchesMakeSuspectsNotObservations: an analyst's keyword
// is searched on the lab server and in the lab's Kad; the unwatched
// files whose names hold its words come out as suspects, from both
// networks; the watched file is only counted; a file without every word
// is dropped; nothing unwatched becomes an observation or reaches the
// log.
func TestKeywordSearchesMakeSuspectsNotObservations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 21, Server: true, KadNodes: 30, Files: 4, Clients: 8,
		Names: []string{"lab-keyword-alpha 01.bin", "lab-keyword-alpha 02.bin", "lab-keyword-beta.bin", "Lab Keyword Alpha Gamma.bin"},
		Base:  netip.MustParseAddr("127.120.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	watched := lab.Files[0]
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	suspects := map[string]Suspect{} // network + hash
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.124.0.1")
	cfg.SearchEvery, cfg.KeywordEvery = 300*time.Millisecond, 300*time.Millisecond
	cfg.KadBootstrap, cfg.Servers = lab.Bootstrap(3), []netip.AddrPort{lab.Server.Addr()}
	cfg.Keywords = []string{"lab-keyword-alpha"}
	cfg.OnSuspect = func(sp Suspect) bool {
		mu.Lock()
		defer mu.Unlock()
		suspects[sp.Network+" "+sp.Hash.Hex()] = sp
		return true
	}
	logs := &syncBuffer{}
	col := &collector{}
	s, err := New(cfg, g, col, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, watched.Hash[:]), Size: watched.Size}); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	want := map[string]*labed2k.File{}
	for _, net := range []string{observe.NetED2K, observe.NetKad} {
		for _, f := range []*labed2k.File{lab.Files[1], lab.Files[3]} {
			want[net+" "+hex.EncodeToString(f.Hash[:])] = f
		}
	}
	waitFor(t, 60*time.Second, "suspects from the server and from Kad", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(suspects) >= len(want) && s.Stats().KeywordWatched > 0
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for k, sp := range suspects {
		f, ok := want[k]
		if !ok {
			t.Fatalf("suspect %s (%q) was not wanted", k, sp.Name)
		}
		if sp.Name != f.Name || sp.Size != f.Size || sp.Sources != 2 || sp.Keyword != "lab-keyword-alpha" || sp.Time.IsZero() {
			t.Errorf("suspect %s: %+v", k, sp)
		}
	}
	for _, o := range col.all() {
		if o.Item.Hash.Hex() != hex.EncodeToString(watched.Hash[:]) {
			t.Fatalf("an observation of an unwatched hash left the sensor: %+v", o)
		}
	}
	st := s.Stats()
	if st.KeywordSearches == 0 || st.Suspects == 0 || st.Dropped["keyword_result_unrelated"] == 0 {
		t.Fatalf("stats %+v", st)
	}
	out := logs.String()
	for _, f := range lab.Files[1:] {
		if strings.Contains(out, hex.EncodeToString(f.Hash[:])) || strings.Contains(strings.ToLower(out), strings.ToLower(f.Name)) {
			t.Fatalf("the log names an unwatched file: %s", out)
		}
	}
	if strings.Contains(out, "keyword-alpha") {
		t.Fatalf("the log names the keyword: %s", out)
	}
}

func TestKeywordsWithoutALeadSinkOrAWordAreRefused(t *testing.T) {
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4661")}
	cfg.Keywords = []string{"lab-keyword-alpha"}
	if err := cfg.Validate(); err == nil {
		t.Fatal("keywords without OnSuspect accepted")
	}
	cfg.OnSuspect = func(Suspect) bool { return true }
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Keywords = append(cfg.Keywords, "a b-c")
	if err := cfg.Validate(); err == nil || strings.Contains(err.Error(), "a b-c") {
		t.Fatalf("a keyword without a word of 3 bytes: %v", err)
	}
}

// TestKeywordResultWithAHugeNameIsDropped: a server or node names files
// as it likes (a tag string of up to 64 KiB); a suspect lead is kept in
// the analysis's memory for good, so a name longer than any file system
// allows is dropped and counted, never handed on.
func TestKeywordResultWithAHugeNameIsDropped(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4661")}
	cfg.Keywords = []string{"lab-keyword-alpha"}
	var got []Suspect
	cfg.OnSuspect = func(sp Suspect) bool { got = append(got, sp); return true }
	s, err := New(cfg, g, &collector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	huge := "lab-keyword-alpha " + strings.Repeat("x", 60<<10) + ".bin"
	s.results(cfg.Keywords[0], keywordWords(cfg.Keywords)[0], observe.NetED2K, time.Now(), []found{
		{hash: [16]byte{1}, name: huge, size: 10, sources: 1},
		{hash: [16]byte{2}, name: "lab-keyword-alpha 02.bin", size: 10, sources: 1},
	})
	if len(got) != 1 || got[0].Name != "lab-keyword-alpha 02.bin" {
		t.Fatalf("suspects %d (first name %d bytes); want only the one with a file name's length", len(got), len(got[0].Name))
	}
	if n := s.Stats().Dropped["keyword_result_name_too_long"]; n != 1 {
		t.Fatalf("dropped %v", s.Stats().Dropped)
	}
}

// TestAServerThatBreaksOnSearchesIsSearchedOncePerInterval: a server that
// drops the session whenever it is searched (a malformed answer, a
// close) must not make the sensor log in and search again at once, in a
// loop: keywords are searched on a server once every KeywordEvery,
// across sessions.
func TestAServerThatBreaksOnSearchesIsSearchedOncePerInterval(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.124.64.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var logins, asks, searches atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				pc := pconn.New(nc, nil, wire.DefaultLimits())
				for {
					p, _, err := pc.Next(ctx, 5*time.Second)
					if err != nil {
						return
					}
					switch p.Opcode {
					case wire.OpLoginRequest:
						logins.Add(1)
						pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: 0x0100007F, Fields: 1}.AppendTo(nil))
					case wire.OpGetSources:
						asks.Add(1)
						gs, _ := wire.DecodeGetSources(p.Payload)
						pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpFoundSources, wire.FoundSources{Hash: gs.Hash}.AppendTo(nil))
					case wire.OpSearchRequest:
						searches.Add(1)
						// A count past its bytes: the session ends.
						pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpSearchResult, []byte{0xFF, 0xFF, 0, 0})
						return
					}
				}
			}()
		}
	}()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.124.64.2")
	cfg.Servers = []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}
	cfg.SearchEvery, cfg.KeywordEvery = 50*time.Millisecond, time.Hour
	cfg.Keywords = []string{"lab-keyword-alpha"}
	cfg.OnSuspect = func(Suspect) bool { return true }
	s, err := New(cfg, g, &collector{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, bytes.Repeat([]byte{7}, 16)), Size: 1000}); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	waitFor(t, 20*time.Second, "ten source requests", func() bool { return asks.Load() >= 10 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := searches.Load(); n != 1 {
		t.Fatalf("%d searches in %d logins and %d source requests; want 1 (KeywordEvery is an hour)", n, logins.Load(), asks.Load())
	}
}
