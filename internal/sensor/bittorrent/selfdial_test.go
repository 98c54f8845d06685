package bittorrent

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

// A hostile peer that lets the sensor's uTP dial fail still saw the
// source address and port of its SYN: it drops the SYN, answers the TCP
// fallback, and names that address:port in PEX. It is the sensor's own
// (docs/evidence.md: the local address and port of every outgoing
// connection, TCP and uTP probes, registered before a byte is
// exchanged): never recorded, never probed. In lab scope, the default,
// only the remembered source ports tell the sensor's own endpoints from
// a lab peer's on a shared address. Before the fix the port of a uTP
// dial was registered only when the dial succeeded, and the sensor
// recorded a pex observation of itself.
func TestProbeHostilePEXOfAFailedUTPDialsSourceIsTheSensor(t *testing.T) {
	s, pub := hostileSensorWith(t, func(c *Config) { c.ProbePEXWait = time.Second })
	w := watchedTorrent(t, s, 10)

	// The peer's TCP listener and, on the same port, a UDP socket that
	// reads the sensor's uTP SYN and never answers it.
	syn := make(chan netip.AddrPort, 1)
	var udp net.PacketConn
	peer := hostilePeer(t, func(c net.Conn, h peerwire.Handshake) []byte {
		var from netip.AddrPort
		select {
		case from = <-syn:
		case <-time.After(5 * time.Second):
			return nil
		}
		x := peerwire.PEX{Added: []peerwire.PEXPeer{{Addr: from}}}
		b, err := x.AppendTo(nil)
		if err != nil {
			panic(err)
		}
		return bytes.Join([][]byte{handshakeFor(h.InfoHash, false), extHandshake(true),
			msg(peerwire.Message{ID: peerwire.HaveAll}),
			msg(peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b})}, nil)
	})
	udp, err := net.ListenPacket("udp4", peer.String())
	if err != nil {
		t.Skipf("no UDP socket on the peer's TCP port %s: %v", peer, err)
	}
	t.Cleanup(func() { udp.Close() })
	go func() {
		buf := make([]byte, 2048)
		_, a, err := udp.ReadFrom(buf)
		if err != nil {
			return
		}
		ap := a.(*net.UDPAddr).AddrPort()
		syn <- netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		for {
			if _, _, err := udp.ReadFrom(buf); err != nil {
				return
			}
		}
	}()

	s.probe(t.Context(), probeJob{peer: peer, w: w, via: "test", transport: transportUTP})
	pub.mu.Lock()
	obs := append([]observe.Observation(nil), pub.obs...)
	pub.mu.Unlock()
	probes := 0
	for _, o := range obs {
		switch o.Method {
		case observe.MethodPeerProbe:
			probes++
			if o.Endpoint.Transport != transportTCP {
				t.Errorf("peer_probe over %s, want the TCP fallback", o.Endpoint.Transport)
			}
		case observe.MethodPEX:
			t.Errorf("pex observation of %s:%d: the source of the sensor's own uTP SYN", o.Endpoint.IP, o.Endpoint.Port)
		}
	}
	if probes != 1 {
		t.Fatalf("%d peer_probe observations, want 1 (observations %+v)", probes, obs)
	}
	// Counted twice: the pex observation not made, and the probe of it
	// not queued.
	if got := s.Dropped()[dropSelfConnection]; got != 2 {
		t.Errorf("dropped %v, want two %s", s.Dropped(), dropSelfConnection)
	}
}
