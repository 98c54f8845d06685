package bittorrent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
)

// refusingBus fails every publish, as a closed or unreachable bus does.
type refusingBus struct{ err error }

func (r refusingBus) Publish(context.Context, observe.Observation) error { return r.err }

// An observation the bus refused is counted, never silently dropped, and
// not counted as published.
func TestFailedPublishIsCounted(t *testing.T) {
	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	s, err := New(cfg, guard, refusingBus{errors.New("bus closed")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.emit(context.Background(), observe.Observation{Method: observe.MethodPeerProbe,
			Item:       observe.Item{Hash: randomHash(t, hashkind.BTIH)},
			Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("127.0.0.9"), Port: 6881, Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Acknowledged, PiecesHave: -1, PiecesTotal: -1}})
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", "publish_failed"); got != 3 {
		t.Fatalf(`vigil_bittorrent_dropped_total{reason="publish_failed"} = %v, want 3`, got)
	}
	if n := s.Stats().Observations[observe.MethodPeerProbe]; n != 0 {
		t.Fatalf("%d observations counted as published, want 0", n)
	}
}

// A bus (or a full sensor queue) that refuses every publish is logged
// sampled, not once per observation: the 1st, 2nd, 4th, 8th... failure.
func TestFailedPublishesAreLoggedSampled(t *testing.T) {
	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}
	var logged bytes.Buffer
	s, err := New(cfg, guard, refusingBus{errors.New("sensor queue full")}, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		s.emit(context.Background(), observe.Observation{Method: observe.MethodPeerProbe,
			Item:       observe.Item{Hash: randomHash(t, hashkind.BTIH)},
			Endpoint:   observe.Endpoint{IP: netip.MustParseAddr("127.0.0.9"), Port: 6881, Transport: "tcp"},
			Possession: observe.Possession{Level: observe.Acknowledged, PiecesHave: -1, PiecesTotal: -1}})
	}
	if got := metricValue(t, s, "vigil_bittorrent_dropped_total", "publish_failed"); got != 100 {
		t.Fatalf(`vigil_bittorrent_dropped_total{reason="publish_failed"} = %v, want 100`, got)
	}
	if n := strings.Count(logged.String(), "publishing observation"); n != 7 { // 1, 2, 4, ..., 64
		t.Fatalf("%d log lines for 100 failed publishes, want 7:\n%s", n, logged.String())
	}
}
