package server

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/scope"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

func testConfig(t testing.TB) Config {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dial = g.Dialer(&net.Dialer{}).DialContext
	cfg.UserHash = [16]byte{9, 9, 9, 9, 9, 14, 9, 9, 9, 9, 9, 9, 9, 9, 111, 9}
	cfg.AnswerWait = 300 * time.Millisecond
	return cfg
}

func TestSessionFindsTheSourcesTheServerKnows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 3, Server: true, Files: 2, Clients: 3, Base: netip.MustParseAddr("127.91.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s, err := Login(ctx, testConfig(t), n.Server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ID == 0 || len(s.Messages) == 0 {
		t.Fatalf("id %d messages %v", s.ID, s.Messages)
	}
	f0 := n.Files[0]
	found, err := s.Sources(ctx, f0.Hash, f0.Size)
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.AddrPort]bool{}
	for _, tr := range n.Truth() {
		if tr.File == f0.Hash {
			want[tr.Addrs[0]] = true
		}
	}
	if len(found.Sources) != len(want) || !found.Kept {
		t.Fatalf("found %v (kept %v), want %v", found.Sources, found.Kept, want)
	}
	for _, src := range found.Sources {
		if a, ok := src.Addr(); !ok || !want[a] {
			t.Fatalf("source %v not in the truth", a)
		}
	}
	recs, err := tscript.Decode(found.Transcript.Bytes)
	last := len(recs) - 1
	if err != nil || len(recs) < 2 || recs[0].Type != tscript.Sent || recs[last].Type != tscript.Received || recs[last].Peer != n.Server.Addr().String() || recs[last].Data[5] != wire.OpFoundSources {
		t.Fatalf("transcript %+v %v", recs, err)
	}
	// A file nobody offers: no answer, no error, and the session goes on.
	var unknown [16]byte
	unknown[0] = 0x42
	none, err := s.Sources(ctx, unknown, 1000)
	if err != nil || len(none.Sources) != 0 {
		t.Fatalf("unknown file: %v %v", none.Sources, err)
	}
	if again, err := s.Sources(ctx, n.Files[1].Hash, n.Files[1].Size); err != nil || len(again.Sources) == 0 {
		t.Fatalf("after a silent answer: %v %v", again.Sources, err)
	}
}

func TestLoginRefusesOutOfScope(t *testing.T) {
	_, err := Login(context.Background(), testConfig(t), netip.MustParseAddrPort("198.51.100.7:4661"))
	if !errors.Is(err, scope.ErrOutOfScope) {
		t.Fatalf("err %v", err)
	}
}
