package probe

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/utp"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// The same hostile peers over uTP, with the default 16 KiB bound: a peer
// that pads before its bitfield in one write (the bitfield was cut with
// the padding: acknowledged), and one that answers the handshake and
// holds the connection, silent (acknowledged with nothing in the
// transcript to show it).
func TestProbeHostileOverUTP(t *testing.T) {
	ih := bytes.Repeat([]byte{0x33}, 20)
	bf := make([]byte, peerwire.BitfieldLen(10))
	for p := range 3 {
		peerwire.SetPiece(bf, p)
	}
	bitfield := (&peerwire.Message{ID: peerwire.Bitfield, Payload: bf}).AppendTo(nil)
	pad := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 40<<10)}).AppendTo(nil)
	for _, tc := range []struct {
		name  string
		after []byte
		check func(t *testing.T, res *Result, out []byte)
	}{
		{"padding then bitfield", append(append([]byte{}, pad...), bitfield...), func(t *testing.T, res *Result, out []byte) {
			if v := res.Claims.Judge(10); v.Have != 3 || !bytes.Contains(out, bitfield) {
				t.Fatalf("pieces %d (want 3), bitfield in the transcript %v", v.Have, bytes.Contains(out, bitfield))
			}
		}},
		{"handshake then silence", nil, func(t *testing.T, res *Result, out []byte) {
			if !res.Spoke || !bytes.Contains(out, []byte(transcript.HeldNote)) {
				t.Fatalf("spoke %v; the transcript holds no note of the held connection", res.Spoke)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock, err := utp.NewSocket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sock.CloseNow() })
			go func() {
				c, err := sock.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, make([]byte, peerwire.HandshakeLen)); err != nil {
					return
				}
				var rsv peerwire.Reserved
				rsv.SetExtended(true)
				rsv.SetFast(true)
				hs := peerwire.Handshake{Reserved: rsv, InfoHash: [20]byte(ih), PeerID: [20]byte(bytes.Repeat([]byte{'u'}, 20))}
				if _, err := c.Write(append(hs.AppendTo(nil), tc.after...)); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, c)
			}()
			guard, err := scope.New(scope.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(Config{PeerID: [20]byte(bytes.Repeat([]byte{'v'}, 20)), Listen: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
				TranscriptLimit: 16 << 10, Info: func(routing.ID) (*metainfo.Info, bool) { return &metainfo.Info{Pieces: 10}, true }}, guard)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			peer := netip.MustParseAddrPort(sock.Addr().String())
			res, tr, err := p.Probe(ctx, Peer{Addr: peer, Transport: TransportUTP}, hashkind.MustNew(hashkind.BTIH, ih))
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if res.Transport != TransportUTP {
				t.Fatalf("transport %q, want utp", res.Transport)
			}
			tc.check(t, res, tr.Bytes())
		})
	}
}
