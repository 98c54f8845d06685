package evidence_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	btprobe "github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	ed2kprobe "github.com/vigil-oss/vigil/internal/sensor/ed2k/probe"
)

// TestProbesThroughPaddingVerify: what the sensors' own probes claim, of
// peers that pad the conversation or say nothing after their handshake,
// is what vigil verify finds in their transcripts (the default bound):
// the probes never claim more than the kept bytes show, and the
// verifier refuses none of their claims.
func TestProbesThroughPaddingVerify(t *testing.T) {
	guard, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 13))
	ih := bytes.Repeat([]byte{0x5a}, 20)
	bf := make([]byte, peerwire.BitfieldLen(10))
	for p := range 3 {
		peerwire.SetPiece(bf, p)
	}
	bitfield := (&peerwire.Message{ID: peerwire.Bitfield, Payload: bf}).AppendTo(nil)
	pad := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 40<<10)}).AppendTo(nil)
	small := bytes.Repeat((&peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'y'}, 94)}).AppendTo(nil), 400)
	eh := peerwire.ExtHandshake{M: map[string]uint8{}, Client: "Transmission 3.00", Port: 51413}
	ext := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh.AppendTo(nil)}).AppendTo(nil)
	var obs []observe.Observation
	for i, script := range [][][]byte{
		{ext, pad, bitfield},                  // padding before the bitfield, one write
		{ext, small, nil, {0, 0, 0, 1, 0x0e}}, // small padding, then have_all in its own write
		{},                                    // the handshake, then silence
	} {
		peer := scriptedPeer(t, ih, script)
		p, err := btprobe.New(btprobe.Config{PeerID: [20]byte(bytes.Repeat([]byte{'v'}, 20)), Listen: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			TranscriptLimit: 16 << 10, Info: func(routing.ID) (*metainfo.Info, bool) { return &metainfo.Info{Pieces: 10}, true }}, guard)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		res, tr, err := p.Probe(ctx, btprobe.Peer{Addr: peer}, hashkind.MustNew(hashkind.BTIH, ih))
		cancel()
		if res == nil || !res.Spoke {
			t.Fatalf("script %d: result %+v, err %v", i, res, err)
		}
		v := res.Claims.Judge(10)
		pos := observe.Possession{Level: observe.Acknowledged, PiecesHave: v.Have, PiecesTotal: 10}
		switch {
		case v.All || v.Have == 10:
			pos.Level, pos.PiecesHave = observe.Complete, 10
		case v.Have > 0:
			pos.Level = observe.Partial
		}
		o := probe(r, 40+i, 0, 10)
		o.Item.Hash = hashkind.MustNew(hashkind.BTIH, ih)
		o.Endpoint = observe.Endpoint{IP: peer.Addr(), Port: peer.Port(), Transport: "tcp", Local: res.Local}
		o.Client = observe.Client{PeerID: res.Handshake.PeerID[:]}
		if res.Ext != nil && res.ExtKept {
			o.Client.ListenPort = res.Ext.Port
		}
		o.Possession, o.Transcript = pos, observe.Transcript{Bytes: tr.Bytes()}
		obs = append(obs, o)
	}
	if obs[0].Possession.Level != observe.Partial || obs[0].Client.ListenPort != 51413 {
		t.Fatalf("padding before the bitfield: %+v listen port %d, want partial and 51413 (the evidence kept)", obs[0].Possession, obs[0].Client.ListenPort)
	}

	// eD2K: a lab client (aMule's wire) that shares the file.
	f := labed2k.NewFile(11, 300_000)
	c, err := labed2k.StartClient(labed2k.ClientConfig{UserHash: [16]byte{1, 2, 3}, Software: labed2k.AMule233,
		Shares: []labed2k.Share{{File: f}}, Addr: netip.MustParseAddrPort("127.91.0.2:0")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := ed2kprobe.DefaultConfig()
	cfg.Dial, cfg.UserHash, cfg.Timeout = (&net.Dialer{}).DialContext, ed2kprobe.NewUserHash(), 5*time.Second
	res, tr, err := ed2kprobe.Probe(context.Background(), cfg, ed2kprobe.Target{Addr: c.Addr(), Hash: f.Hash, Size: f.Size})
	if err != nil || res == nil {
		t.Fatalf("eD2K probe: %+v %v", res, err)
	}
	pos, _ := res.Possession()
	o := probe(r, 50, 0, 10)
	o.Network, o.Item.Hash = observe.NetED2K, hashkind.MustNew(hashkind.ED2K, f.Hash[:])
	o.Endpoint = observe.Endpoint{IP: c.Addr().Addr(), Port: c.Addr().Port(), Transport: "tcp", Local: res.Local}
	o.Client = observe.Client{Name: res.Client.Name, Version: res.Client.Version, ListenPort: res.Client.ListenPort,
		UserHash: res.Hello.UserHash[:]}
	o.Possession, o.Transcript = pos, tr
	if pos.Level != observe.Complete {
		t.Fatalf("eD2K probe of a client sharing the file: %+v", pos)
	}
	obs = append(obs, o)

	fx := newFixture(t, obs)
	fx.checkpoint(t)
	if rep := check(t, fx.bundle(t, fx.ids)); !rep.OK() {
		t.Fatalf("the probes' own observations do not verify: %v", rep.Problems)
	}
}

// scriptedPeer accepts one connection, reads the handshake, answers for
// ih and writes each part of script in its own write (a nil part: a
// pause, so that what follows comes in a read of its own), then holds
// the connection until the prober hangs up.
func scriptedPeer(t *testing.T, ih []byte, script [][]byte) netip.AddrPort {
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
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, peerwire.HandshakeLen)
		if _, err := c.Read(buf); err != nil {
			return
		}
		var rsv peerwire.Reserved
		rsv.SetExtended(true)
		rsv.SetFast(true)
		hs := peerwire.Handshake{Reserved: rsv, InfoHash: [20]byte(ih), PeerID: [20]byte(append([]byte("-TR3000-"), bytes.Repeat([]byte{'p'}, 12)...))}
		out := hs.AppendTo(nil)
		for _, part := range script {
			if part == nil {
				if _, err := c.Write(out); err != nil {
					return
				}
				out = nil
				time.Sleep(300 * time.Millisecond)
				continue
			}
			out = append(out, part...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		_, _ = c.Read(make([]byte, 1<<20))
		for {
			if _, err := c.Read(make([]byte, 1<<16)); err != nil {
				return
			}
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}
