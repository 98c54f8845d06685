package ed2k

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A server's source list that names fellow sensors of the deployment
// (--own-addresses: a host on every port, a socket on one) records and
// probes none of them, and says how many it left out; the other sources
// are recorded and queued for a probe as before.
func TestServerSourcesNamingFellowSensorsAreNotRecorded(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LabConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	if cfg.Own, err = own.Parse("own.txt", []byte("127.0.0.3\n127.0.0.5:4662\n")); err != nil {
		t.Fatal(err)
	}
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	found := server.Found{Kept: true, At: time.Now()}
	for i := range 6 { // 127.0.0.1 to 127.0.0.6, port 4662
		found.Sources = append(found.Sources, wire.Source{ID: uint32(127) | uint32(i+1)<<24, Port: 4662})
	}
	found.Sources = append(found.Sources, wire.Source{ID: uint32(127) | 5<<24, Port: 4663}) // another port of a shared host
	s.recordServer(context.Background(), nil, w, found)
	fellow := func(ap netip.AddrPort) bool {
		return ap.Addr() == netip.MustParseAddr("127.0.0.3") || ap == netip.MustParseAddrPort("127.0.0.5:4662")
	}
	for _, o := range pub.all() {
		if ap := netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port); fellow(ap) {
			t.Errorf("recorded the fellow sensor %v", ap)
		}
	}
	for k := range s.probed {
		if fellow(k.addr) {
			t.Errorf("queued a probe of the fellow sensor %v", k.addr)
		}
	}
	st := s.Stats()
	if got, want := st.Emitted[observe.MethodED2KServerSources], uint64(5); got != want {
		t.Errorf("%d sources recorded, want %d", got, want)
	}
	if got := st.Dropped["deployment_address"]; got != 2 {
		t.Errorf("dropped %v, want 2 deployment_address", st.Dropped)
	}
}
