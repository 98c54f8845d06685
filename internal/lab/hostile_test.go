package lab

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/vigil-oss/vigil/internal/observe"
)

func hostileLab(t *testing.T, seed uint64) (*Lab, *Hostile) {
	t.Helper()
	c := DefaultConfig()
	c.DHTNodes, c.Seeders, c.Leechers, c.Torrents, c.Watched, c.MovePeers, c.Tracker = 4, 2, 0, 4, 4, 0, false
	c.FileSizes = SizeRange{Min: 256 << 10, Max: 1 << 20}
	c.Seed = seed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	h, err := StartHostile(ctx, l, HostileConfig{Seed: seed, SensorAddr: netip.MustParseAddr("127.0.0.1"), Predict: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return l, h
}

// wireSays is what a device's messages after the handshake say about
// pieces, read as a strict reader would.
type wireSays struct {
	echoed      [20]byte
	peerID      [20]byte
	bitfield    []byte
	haves       []uint32
	haveAll     bool
	haveNone    bool
	haveAllLate bool // have_all after a bitfield
	port        uint16
}

func talk(t *testing.T, addr netip.AddrPort, ih [20]byte) (*wireSays, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	hs := append([]byte("\x13BitTorrent protocol"), 0, 0, 0, 0, 0, 0x10, 0, 0x05)
	hs = append(hs, ih[:]...)
	hs = append(hs, []byte("-XX0001-000000000000")...)
	if _, err := c.Write(hs); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	var reply [68]byte
	if _, err := io.ReadFull(br, reply[:]); err != nil {
		return nil, err
	}
	w := &wireSays{}
	copy(w.echoed[:], reply[28:48])
	copy(w.peerID[:], reply[48:68])
	for {
		var lb [4]byte
		if _, err := io.ReadFull(br, lb[:]); err != nil {
			return w, nil // the device closed, or went quiet
		}
		body := make([]byte, binary.BigEndian.Uint32(lb[:]))
		if _, err := io.ReadFull(br, body); err != nil || len(body) == 0 {
			return w, nil
		}
		switch body[0] {
		case 5:
			w.bitfield = body[1:]
		case 4:
			w.haves = append(w.haves, binary.BigEndian.Uint32(body[1:]))
		case 0x0e:
			w.haveAll = true
			w.haveAllLate = w.bitfield != nil
		case 0x0f:
			w.haveNone = true
		case 9:
			w.port = binary.BigEndian.Uint16(body[1:])
		}
	}
}

// strictCount is what a strict reader (BEP 3, 6) may count from what was
// said: in-range pieces of a bitfield of the right length, or of its
// right-length prefix; haves in range; have_all only in place of a
// bitfield.
func (w *wireSays) strictCount(n int) (observe.Level, int) {
	if w.haveAll && !w.haveAllLate {
		return observe.Complete, n
	}
	have := map[int]bool{}
	for i := 0; i < n && i/8 < len(w.bitfield); i++ {
		if w.bitfield[i/8]&(0x80>>(i%8)) != 0 {
			have[i] = true
		}
	}
	for _, h := range w.haves {
		if int(h) < n {
			have[int(h)] = true
		}
	}
	switch {
	case len(have) == n:
		return observe.Complete, n
	case len(have) > 0:
		return observe.Partial, len(have)
	}
	return observe.Acknowledged, 0
}

// TestHostileDevicesSayWhatTheTruthSays talks to every hostile device as a
// strict peer would and checks that the truth's "shown" is what a strict
// reader gets from its messages, and that each lie is on the wire.
func TestHostileDevicesSayWhatTheTruthSays(t *testing.T) {
	l, h := hostileLab(t, 7)
	truth := h.Truth()
	byName := map[string]*hostileDevice{}
	for _, d := range h.devices {
		byName[d.name] = d
	}
	checked := 0
	for _, d := range truth.Devices {
		hd := byName[d.Name]
		if hd == nil {
			continue
		}
		it := d.Items[0]
		tor := l.torrents[it.Torrent]
		n := tor.built.NumPieces
		if it.Pieces != n || n < 4 {
			t.Fatalf("%s: truth says %d pieces, torrent has %d", d.Name, it.Pieces, n)
		}
		w, err := talk(t, d.Stints[0].Addr, tor.built.InfoHashV1)
		if d.Kind == KindAnnouncedOnly {
			if err == nil {
				t.Errorf("%s: something listens at %v", d.Name, d.Stints[0].Addr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s at %v: %v", d.Name, d.Stints[0].Addr, err)
		}
		checked++
		if d.Kind == KindLiarWrongHash {
			if w.echoed == tor.built.InfoHashV1 || it.Shown != observe.Announced {
				t.Errorf("%s: echoed the asked hash, or truth shows %v", d.Name, it.Shown)
			}
			continue
		}
		if w.echoed != tor.built.InfoHashV1 {
			t.Errorf("%s: echoed %x", d.Name, w.echoed)
		}
		lv, pieces := w.strictCount(n)
		if lv != it.Shown || pieces != it.ShownPieces {
			t.Errorf("%s: a strict reader gets %v %d pieces, the truth shows %v %d", d.Name, lv, pieces, it.Shown, it.ShownPieces)
		}
		nb := (n + 7) / 8
		switch d.Kind {
		case KindLiarSpareBits:
			if len(w.bitfield) != nb || (n%8 != 0 && w.bitfield[nb-1]&(0xff>>(n%8)) == 0) {
				t.Errorf("%s: bitfield %x for %d pieces has no spare bit set", d.Name, w.bitfield, n)
			}
		case KindLiarExtraBytes:
			if len(w.bitfield) <= nb {
				t.Errorf("%s: bitfield %x for %d pieces is not too long", d.Name, w.bitfield, n)
			}
		case KindLiarHavePastEnd:
			if len(w.haves) == 0 || int(w.haves[0]) < n {
				t.Errorf("%s: haves %v for %d pieces", d.Name, w.haves, n)
			}
		case KindLiarHaveAllAfterBitfield:
			if !w.haveAllLate {
				t.Errorf("%s: no have_all after its bitfield", d.Name)
			}
		case KindLiarHaveAllNothing:
			if !w.haveAll || it.HeldPieces != 0 {
				t.Errorf("%s: have_all %v, held %d", d.Name, w.haveAll, it.HeldPieces)
			}
		case KindReplayer:
			if hex.EncodeToString(w.peerID[:]) != d.Presents || d.Presents == d.PeerID {
				t.Errorf("%s: presents %x, truth says %s (own %s)", d.Name, w.peerID, d.Presents, d.PeerID)
			}
		case KindNodeIDForger, KindNodeIDSpoofer:
			if w.port == 0 {
				t.Fatalf("%s: no PORT message", d.Name)
			}
			id, from := pingFrom(t, netip.AddrPortFrom(d.Stints[0].Addr.Addr(), w.port))
			if hex.EncodeToString(id[:]) != d.Presents || d.Presents == d.NodeID {
				t.Errorf("%s: its DHT port answers id %x, truth says %s", d.Name, id, d.Presents)
			}
			if spoofed := from.Addr() != d.Stints[0].Addr.Addr(); spoofed != (d.Kind == KindNodeIDSpoofer) {
				t.Errorf("%s: the answer came from %v", d.Name, from)
			}
		}
	}
	if checked < 12 {
		t.Errorf("talked to %d devices", checked)
	}
}

func pingFrom(t *testing.T, to netip.AddrPort) ([20]byte, netip.AddrPort) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	q, _ := bencode.Marshal(krpc.Msg{T: "ab", Y: "q", Q: "ping", A: &krpc.MsgArgs{ID: krpc.ID{1}}})
	if _, err := c.WriteToUDPAddrPort(q, to); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("ping %v: %v", to, err)
	}
	var r krpc.Msg
	if err := bencode.Unmarshal(buf[:n], &r); err != nil || r.R == nil || r.T != "ab" {
		t.Fatalf("ping %v: reply %q: %v", to, buf[:n], err)
	}
	return [20]byte(r.R.ID), from
}

// TestHostileTruthFollowsTheSeed: the same seed gives the same devices,
// identities and addresses (ports aside).
func TestHostileTruthFollowsTheSeed(t *testing.T) {
	sig := func(seed uint64) []string {
		_, h := hostileLab(t, seed)
		var out []string
		for _, d := range h.Truth().Devices {
			out = append(out, d.Name+" "+d.PeerID+" "+d.NodeID+" "+d.Presents+" "+d.Stints[0].Addr.Addr().String())
		}
		return out
	}
	a, b := sig(3), sig(3)
	if len(a) != len(b) {
		t.Fatalf("%d devices, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("device %d: %s, then %s", i, a[i], b[i])
		}
	}
}
