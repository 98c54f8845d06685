package ed2k

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
)

func TestNetPublishesToServerAndKadAndMoves(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := StartNet(ctx, NetConfig{Seed: 1, Server: true, KadNodes: 12, Files: 2, Clients: 4, Movers: 1, Hostile: []Behaviour{LiarSpareBits}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, f := range n.Files {
		want := 0
		for _, tr := range n.Truth() {
			if tr.File == f.Hash {
				want++
			}
		}
		if got := len(n.Server.Sources(f.Hash)); got != want {
			t.Fatalf("server has %d sources of %x, want %d", got, f.Hash, want)
		}
		stored := 0
		for _, k := range n.Kad {
			stored += k.SourcesOf(kadwire.FileID(f.Hash))
		}
		if stored < want {
			t.Fatalf("Kad stores %d sources of %x, want at least %d", stored, f.Hash, want)
		}
	}
	old := n.Clients[0].Addr()
	if err := n.MoveAll(ctx); err != nil {
		t.Fatal(err)
	}
	if now := n.Clients[0].Addr(); now == old || n.Truth()[0].Addrs[1] != now {
		t.Fatalf("mover at %v (was %v), truth %v", now, old, n.Truth()[0].Addrs)
	}
	if !n.serverHas(n.Clients[0].Shares()[0].File.Hash, n.Clients[0].Addr()) {
		t.Fatal("the server does not know the mover's new address")
	}
}
