package bittorrent

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
)

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
		hs := peerwire.Handshake{Reserved: rsv, InfoHash: theirs.InfoHash, PeerID: fastPeerID}
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
			xm := peerwire.Message{ID: peerwire.Extended, ExtendedID: extPEXID, Payload: b}
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

// lingerSensor is a sensor (not running: exchange needs none of its
// loops) with long waits for PORT and PEX and a longer probe timeout.
func lingerSensor(t *testing.T, wait time.Duration) *Sensor {
	t.Helper()
	cfg := LabConfig()
	cfg.Bootstrap = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}
	cfg.ProbePortWait, cfg.ProbePEXWait, cfg.ProbeTimeout = wait, wait, 60*time.Second
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, g, newCollector(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// probeOnce runs one exchange with peer and says how long it took.
func probeOnce(t *testing.T, s *Sensor, peer netip.AddrPort) (*probeResult, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ProbeTimeout)
	defer cancel()
	w := Watched{Hash: randomHash(t, hashkind.BTIH)}
	t0 := time.Now()
	res, err := s.exchange(ctx, probeJob{peer: peer, w: w, transport: transportTCP}, newTranscript(1<<16))
	if err != nil || res == nil {
		t.Fatalf("exchange: %v", err)
	}
	if !res.haveAll {
		t.Fatal("the peer's have-all was not read")
	}
	return res, time.Since(t0)
}

// TestProbeCapturesPromptPortAndPEX: a peer that sends PORT and PEX
// 300 ms after its have-all has both recorded, and the probe ends when
// both have come, not when the 20 s waits end.
func TestProbeCapturesPromptPortAndPEX(t *testing.T) {
	s := lingerSensor(t, 20*time.Second)
	peer := scriptedPeer{dht: true, pex: true, sendPort: true, sendPEX: true, later: 300 * time.Millisecond}.start(t)
	res, took := probeOnce(t, s, peer)
	if res.dhtPort != 6881 {
		t.Errorf("DHT port %d, want 6881", res.dhtPort)
	}
	if len(res.pex) != 2 {
		t.Errorf("%d PEX peers, want 2", len(res.pex))
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
	s := lingerSensor(t, 20*time.Second)
	peer := scriptedPeer{}.start(t)
	if _, took := probeOnce(t, s, peer); took > 10*time.Second {
		t.Errorf("probe of a peer that can send neither PORT nor PEX took %v", took)
	}

	s = lingerSensor(t, 1500*time.Millisecond)
	peer = scriptedPeer{dht: true, pex: true, sendPort: true, later: 100 * time.Millisecond}.start(t)
	res, took := probeOnce(t, s, peer)
	if res.dhtPort != 6881 || len(res.pex) != 0 {
		t.Errorf("DHT port %d and %d PEX peers, want 6881 and none", res.dhtPort, len(res.pex))
	}
	if took < 1500*time.Millisecond {
		t.Errorf("probe took %v: it did not wait for the PEX the peer offered", took)
	}
	if took > 30*time.Second {
		t.Errorf("probe took %v: a quiet peer held it past its waits", took)
	}
}
