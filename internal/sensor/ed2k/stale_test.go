package ed2k

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A hostile server sends, with its answers, answers nobody asked for
// now: sources of an unwatched file before its answer about A (read
// while A's is awaited), a search result after its answer about B
// (there before the keyword search is sent), and, after its first search
// result, a hundred answers about A (there before A is asked again, more
// than the drain reads). The code before this took the search result for
// the search's (a suspect lead from a search it did not answer) and an
// answer about A of the flood for the next round's (an observation of
// an address the server named a round before, with this round's time).
// Now none is taken, and each is counted by reason, in Stats and in the
// metrics: server_answer_unasked, server_late_answer, and
// server_not_quiet for the request left unsent (the session ends; the
// next one asks again).
func TestStaleServerAnswersAreCountedNotTaken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.125.67.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := [16]byte(bytes.Repeat([]byte{0xa7}, 16))
	b := [16]byte(bytes.Repeat([]byte{0xb7}, 16))
	other := [16]byte(bytes.Repeat([]byte{0xc7}, 16))
	srcA, srcB := netip.MustParseAddrPort("127.125.67.10:4662"), netip.MustParseAddrPort("127.125.67.11:4662")
	stale := netip.MustParseAddrPort("127.125.67.66:4662")
	real, staleLead := [16]byte{0xd7, 1}, [16]byte{0xd7, 2}
	found := func(h [16]byte, src netip.AddrPort) []byte {
		fs := wire.FoundSources{Hash: h, Sources: []wire.Source{{ID: ed2kID(src.Addr()), Port: src.Port()}}}
		return wire.Append(nil, wire.ProtoEDonkey, fs.Opcode(), fs.AppendTo(nil))
	}
	result := func(h [16]byte, name string) []byte {
		sr := wire.SearchResult{Files: []wire.OfferedFile{{Hash: h, Tags: []wire.Tag{wire.StrTag(wire.FTFileName, name)}}}}
		return wire.Append(nil, wire.ProtoEDonkey, wire.OpSearchResult, sr.AppendTo(nil))
	}
	var flooded atomic.Bool
	var asksA, asks atomic.Int32
	// Each answer and what the server sends with it go in one write: they
	// are in the connection together.
	srv := &labed2k.ScriptedServer{ID: 0x0100007F, Idle: 20 * time.Second, Handle: func(ctx context.Context, pc *pconn.Conn, p wire.Packet) bool {
		var out []byte
		switch p.Opcode {
		case wire.OpGetSources:
			asks.Add(1)
			gs, err := wire.DecodeGetSources(p.Payload)
			if err != nil {
				return false
			}
			switch gs.Hash {
			case a:
				asksA.Add(1)
				out = append(found(other, stale), found(a, srcA)...)
			case b:
				out = append(found(b, srcB), result(staleLead, "lab-alpha stale.bin")...)
			}
		case wire.OpSearchRequest:
			// A zlib bomb first: dropped and counted, the wait goes on.
			out = append(wire.AppendPacked(nil, wire.OpSearchResult, make([]byte, 4<<20)), result(real, "lab-alpha real.bin")...)
			if !flooded.Swap(true) {
				for range 100 {
					out = append(out, found(a, stale)...)
				}
			}
		}
		if out != nil {
			pc.SendRaw(ctx, time.Second, out)
		}
		return true
	}}
	go srv.Serve(ctx, ln)
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	leads := map[[16]byte]bool{}
	cfg := LabConfig()
	cfg.Listen = netip.MustParseAddr("127.125.67.2")
	cfg.Servers = []netip.AddrPort{ln.Addr().(*net.TCPAddr).AddrPort()}
	cfg.SearchEvery, cfg.KeywordEvery, cfg.Probe = time.Second, time.Second, false
	cfg.Keywords = []string{"lab-alpha"}
	cfg.OnSuspect = func(sp Suspect) bool {
		mu.Lock()
		defer mu.Unlock()
		leads[[16]byte(sp.Hash.Bytes())] = true
		return true
	}
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range [][16]byte{a, b} {
		if err := s.Watch(Watched{Hash: hashkind.MustNew(hashkind.ED2K, h[:]), Size: 1000, Matched: []observe.Match{{List: "lab"}}}); err != nil {
			t.Fatal(err)
		}
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	// A asked twice: in the first session and, after the flood (the
	// request left unsent, the session ended), in the second.
	waitFor(t, 15*time.Second, "A asked again after the flood", func() bool { return asksA.Load() >= 2 })
	time.Sleep(300 * time.Millisecond) // its answer read and recorded
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, o := range pub.all() {
		if netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) == stale {
			t.Fatalf("a stale answer was recorded: %s of %s at %v", o.Method, o.Item.Hash.Hex(), o.Time)
		}
	}
	mu.Lock()
	gotStale, gotReal := leads[staleLead], leads[real]
	mu.Unlock()
	if gotStale || !gotReal {
		t.Fatalf("leads: stale %v, the search's own %v; want only the search's own", gotStale, gotReal)
	}
	st := s.Stats()
	time.Sleep(100 * time.Millisecond) // the last request sent is read
	if st.ServerAsks != uint64(asks.Load()) || srv.Logins.Load() != 2 {
		t.Fatalf("%d requests counted, %d received, %d logins; want those sent counted (not the one left unsent), two sessions",
			st.ServerAsks, asks.Load(), srv.Logins.Load())
	}
	// At least: the other file's sources (once a session, two sessions),
	// the search result there before the search and the drain's bound of
	// the flood, one request unsent, the bomb before the search's answer.
	if st.Dropped["server_answer_unasked"] < 2 || st.Dropped["server_late_answer"] < 1+64 || st.Dropped["server_not_quiet"] != 1 ||
		st.Dropped["server_packet_not_unpacked"] < 1 {
		t.Fatalf("dropped %v; want server_answer_unasked >= 2, server_late_answer >= 65, server_not_quiet 1, server_packet_not_unpacked >= 1", st.Dropped)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "vigil_ed2k_dropped_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					exported[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	for _, r := range []string{"server_answer_unasked", "server_late_answer", "server_not_quiet", "server_packet_not_unpacked"} {
		if exported[r] != float64(st.Dropped[r]) {
			t.Fatalf("vigil_ed2k_dropped_total{reason=%q} = %v, Stats %d", r, exported[r], st.Dropped[r])
		}
	}
}
