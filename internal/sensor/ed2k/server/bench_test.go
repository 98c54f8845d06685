package server

import (
	"context"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
)

// BenchmarkSourcesAnswered: one request for the sources of a file the
// lab server knows, answered at once, on loopback: what the drain before
// each request (drainPeek) costs where answers are fastest.
//
//	go test ./internal/sensor/ed2k/server -run '^$' -bench SourcesAnswered -benchtime 2000x -count 3
func BenchmarkSourcesAnswered(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 5, Server: true, Files: 8, Clients: 4, Base: netip.MustParseAddr("127.91.140.0")})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	s, err := Login(ctx, testConfig(b), n.Server.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var known []*labed2k.File // the files some client shares
	for _, f := range n.Files {
		if found, err := s.Sources(ctx, f.Hash, f.Size); err == nil && len(found.Sources) > 0 {
			known = append(known, f)
		}
	}
	if len(known) == 0 {
		b.Fatal("the lab server knows no file")
	}
	b.ResetTimer()
	for i := range b.N {
		f := known[i%len(known)]
		found, err := s.Sources(ctx, f.Hash, f.Size)
		if err != nil || len(found.Sources) == 0 {
			b.Fatalf("request %d: %v %v", i, found.Sources, err)
		}
	}
}
