package ntpserver

import (
	"errors"
	"net/netip"
	"testing"
)

// The responder never listens outside loopback.
func TestStartRefusesNonLoopback(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", "192.0.2.1:123", "[::]:0", "[fd00::1]:123"} {
		if s, err := Start(Config{Addr: netip.MustParseAddrPort(a)}); !errors.Is(err, ErrNotLoopback) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Start(%s) = %v, want ErrNotLoopback", a, err)
		}
	}
}
