package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

var scriptedPeerID = func() (id [20]byte) { copy(id[:], "-TR3000-fastpeer0001"); return id }()

// scriptedPeer is one seeder that answers a probe's handshake with a
// handshake (the DHT bit if dht), an extension handshake offering ut_pex
// if pex, and have-all; then, after later, PORT (if dht && sendPort) and
// PEX naming two peers (if pex && sendPEX); then it stays connected and
// quiet until the prober hangs up.
type scriptedPeer struct {
	dht, pex, sendPort, sendPEX bool
	later                       time.Duration
}

func (sp scriptedPeer) start(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		dec := peerwire.NewDecoder(bufio.NewReader(c), 0)
		theirs, err := dec.ReadHandshake()
		if err != nil {
			return
		}
		var rsv peerwire.Reserved
		rsv.SetExtended(true)
		rsv.SetFast(true)
		rsv.SetDHT(sp.dht)
		hs := peerwire.Handshake{Reserved: rsv, InfoHash: theirs.InfoHash, PeerID: scriptedPeerID}
		out := hs.AppendTo(nil)
		eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: "Transmission 3.00", Port: 51413}
		if sp.pex {
			eh.M["ut_pex"] = 1
		}
		m := peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}
		out = m.AppendTo(out)
		all := peerwire.Message{ID: peerwire.HaveAll}
		out = all.AppendTo(out)
		if _, err := c.Write(out); err != nil {
			return
		}
		time.Sleep(sp.later)
		out = out[:0]
		if sp.dht && sp.sendPort {
			pm := peerwire.Message{ID: peerwire.Port, Port: 6881}
			out = pm.AppendTo(out)
		}
		if sp.pex && sp.sendPEX {
			x := peerwire.PEX{Added: []peerwire.PEXPeer{
				{Addr: netip.MustParseAddrPort("127.13.0.1:6881")}, {Addr: netip.MustParseAddrPort("127.13.0.2:6881")}}}
			b, err := x.AppendTo(nil)
			if err != nil {
				return
			}
			// The sensor asked for PEX under its own extension id.
			xm := peerwire.Message{ID: peerwire.Extended, ExtendedID: ExtPEXID, Payload: b}
			out = xm.AppendTo(out)
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
		}
		var msg peerwire.Message
		for dec.Decode(&msg) == nil { // quiet until the prober hangs up
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// lingerProber is a prober with long waits for PORT and PEX.
func lingerProber(t *testing.T, wait time.Duration) *Prober {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Listen: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, PortWait: wait, PEXWait: wait,
		TranscriptLimit: 1 << 16}, g)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lingerTimeout is the probe's timeout: longer than every wait.
const lingerTimeout = 60 * time.Second

// probeOnce runs one exchange with peer and says how long it took.
func probeOnce(t *testing.T, p *Prober, peer netip.AddrPort) (*Result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lingerTimeout)
	defer cancel()
	var ih [20]byte
	if _, err := rand.Read(ih[:]); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	res, _, err := p.Probe(ctx, Peer{Addr: peer, Transport: TransportTCP}, hashkind.MustNew(hashkind.BTIH, ih[:]))
	if err != nil || res == nil {
		t.Fatalf("exchange: %v", err)
	}
	if !res.HaveAll {
		t.Fatal("the peer's have-all was not read")
	}
	return res, time.Since(t0)
}

// TestProbeCapturesPromptPortAndPEX: a peer that sends PORT and PEX
// 300 ms after its have-all has both recorded, and the probe ends when
// both have come, not when the 20 s waits end.
func TestProbeCapturesPromptPortAndPEX(t *testing.T) {
	p := lingerProber(t, 20*time.Second)
	peer := scriptedPeer{dht: true, pex: true, sendPort: true, sendPEX: true, later: 300 * time.Millisecond}.start(t)
	res, took := probeOnce(t, p, peer)
	if res.DHTPort != 6881 {
		t.Errorf("DHT port %d, want 6881", res.DHTPort)
	}
	if len(res.PEX) != 2 {
		t.Errorf("%d PEX peers, want 2", len(res.PEX))
	}
	if took > 10*time.Second {
		t.Errorf("probe took %v: it waited past the messages it was waiting for", took)
	}
}

// TestProbeWaitsOnlyForWhatThePeerCanSend: a quiet peer that offers
// neither PORT (no DHT bit) nor PEX is left at once; one that offers both
// and sends only PORT is waited for until the PEX wait ends, which is
// before the probe's timeout; the PORT it sent is recorded.
func TestProbeWaitsOnlyForWhatThePeerCanSend(t *testing.T) {
	p := lingerProber(t, 20*time.Second)
	peer := scriptedPeer{}.start(t)
	if _, took := probeOnce(t, p, peer); took > 10*time.Second {
		t.Errorf("probe of a peer that can send neither PORT nor PEX took %v", took)
	}

	p = lingerProber(t, 1500*time.Millisecond)
	peer = scriptedPeer{dht: true, pex: true, sendPort: true, later: 100 * time.Millisecond}.start(t)
	res, took := probeOnce(t, p, peer)
	if res.DHTPort != 6881 || len(res.PEX) != 0 {
		t.Errorf("DHT port %d and %d PEX peers, want 6881 and none", res.DHTPort, len(res.PEX))
	}
	if took < 1500*time.Millisecond {
		t.Errorf("probe took %v: it did not wait for the PEX the peer offered", took)
	}
	if took > 30*time.Second {
		t.Errorf("probe took %v: a quiet peer held it past its waits", took)
	}
}
