package dhtnode

import (
	"context"
	"net/netip"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
)

// testConfig is the sensor's default DHT configuration (bittorrent's
// DefaultConfig) on one listen address, with no bootstrap node yet.
func testConfig(listen netip.Addr) Config {
	return Config{
		Listen: []netip.Addr{listen}, Identities: 8, Alpha: 3, QueryTimeout: 3 * time.Second,
		RefreshEvery: 10 * time.Minute, LookupConcurrency: 4, LookupEvery: 15 * time.Minute,
		Repolls: 2, RepollNodes: 3, Clock: time.Now,
	}
}

// quietHandler watches nothing.
type quietHandler struct{}

func (quietHandler) Watched(krpc.ID) bool                                                   { return false }
func (quietHandler) GetPeers(context.Context, Query)                                        {}
func (quietHandler) Announce(context.Context, Announce)                                     {}
func (quietHandler) RepollPeers(context.Context, routing.ID, map[netip.AddrPort]PeerSource) {}
