package bittorrent

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/lab/ntpserver"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/timesync"
)

// keepingBus keeps what is published.
type keepingBus struct{ got []observe.Observation }

func (k *keepingBus) Publish(_ context.Context, o observe.Observation) error {
	k.got = append(k.got, o)
	return nil
}

// Every observation carries the sensor's build and configuration hash, and
// its clock as measured: unknown ("none", never 0) with no NTP server, the
// server's offset with one.
func TestObservationsCarryTheClockAndBuild(t *testing.T) {
	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ntpserver.Start(ntpserver.Config{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Shift: -3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc := timesync.DefaultConfig()
	nc.Servers = []netip.AddrPort{srv.Addr()}
	mon, err := timesync.New(nc, guard, nil)
	if err != nil {
		t.Fatal(err)
	}
	mon.Measure(context.Background())
	for _, tt := range []struct {
		name string
		ts   *timesync.Monitor
	}{{"no-server", nil}, {"ntp", mon}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := LabConfig()
			cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
			cfg.Version, cfg.Commit, cfg.Modified = "1.2.3", "abc123", true
			cfg.ConfigSHA256, cfg.TimeSync = strings.Repeat("0f", 32), tt.ts
			bus := &keepingBus{}
			s, err := New(cfg, guard, bus, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.emit(context.Background(), observe.Observation{Method: observe.MethodPeerProbe,
				Item:       observe.Item{Hash: randomHash(t, hashkind.BTIH)},
				Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("127.0.0.9"), Port: 6881, Transport: "tcp"},
				Possession: observe.Possession{Level: observe.Acknowledged, PiecesHave: -1, PiecesTotal: -1}})
			if len(bus.got) != 1 {
				t.Fatalf("published %d observations, want 1", len(bus.got))
			}
			o := bus.got[0]
			if o.Sensor.Version != "1.2.3" || o.Sensor.Commit != "abc123" || !o.Sensor.Modified || o.Sensor.Config != cfg.ConfigSHA256 {
				t.Fatalf("sensor %+v", o.Sensor)
			}
			if tt.ts == nil {
				if o.ClockKnown || o.ClockOffset != 0 || o.ClockSource != "none" {
					t.Fatalf("clock known=%v %v %q, want unknown from none", o.ClockKnown, o.ClockOffset, o.ClockSource)
				}
				return
			}
			if !o.ClockKnown || o.ClockOffset < 2900*time.Millisecond || o.ClockOffset > 3100*time.Millisecond ||
				o.ClockSource != "ntp:"+srv.Addr().String()+" (single source, not cross-checked: uncertainty doubled)" {
				t.Fatalf("clock known=%v %v ± %v %q, want about +3s from the lab server", o.ClockKnown, o.ClockOffset,
					o.ClockUncertainty, o.ClockSource)
			}
		})
	}
}
