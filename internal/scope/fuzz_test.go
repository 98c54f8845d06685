package scope

import (
	"errors"
	"net/netip"
	"testing"
)

// FuzzCheckString checks the guard's promise on any string: in lab mode
// with no allow list, nothing but a literal loopback address with a port
// is ever let through, and a refusal always wraps ErrOutOfScope.
func FuzzCheckString(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6881", "[::1]:6881", "[::ffff:127.0.0.1]:1", "203.0.113.1:6881", "localhost:80", "[fe80::1%lo]:1", ":6881", "0.0.0.0:0", "router.example.invalid:6881", "[fd00:0:0:1::2]:6881", "[64:ff9b::7f00:1]:6881", "[2002:7f00:1::1]:6881", "[::7f00:1]:6881", "[fec0::1]:1"} {
		f.Add(s)
	}
	g, err := New(DefaultConfig(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := g.CheckString(s)
		if err != nil {
			if !errors.Is(err, ErrOutOfScope) {
				t.Fatalf("CheckString(%q) = %v, not ErrOutOfScope", s, err)
			}
		} else {
			if parsed, perr := netip.ParseAddrPort(s); perr != nil || parsed != ap || !ap.Addr().Unmap().IsLoopback() || ap.Port() == 0 {
				t.Fatalf("CheckString(%q) let %v through", s, ap)
			}
		}
		if lap, err := g.CheckListenString(s); err == nil && !lap.Addr().Unmap().IsLoopback() {
			t.Fatalf("CheckListenString(%q) let %v through", s, lap)
		} else if err != nil && !errors.Is(err, ErrOutOfScope) {
			t.Fatalf("CheckListenString(%q) = %v, not ErrOutOfScope", s, err)
		}
	})
}
