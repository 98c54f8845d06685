package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/metainfo"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	btprobe "github.com/vigil-oss/vigil/internal/sensor/bittorrent/probe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/routing"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// diffPieces is the piece count of the torrent the differential tests
// probe for.
const diffPieces = 20

// hostileStream turns fuzz bytes into a peer's messages after its
// handshake: possession messages of every kind (in and out of range,
// bitfields of every length), padding of an id the sensor never gave,
// PEX and extension handshakes (whole or bloated), ut_metadata messages
// that do and do not parse, keep-alives, and a message the decoder
// refuses. The kinds a hostile peer uses to fill the bound and to make
// the probe and the verifier read differently.
func hostileStream(b []byte) []byte {
	var out []byte
	ext := func(id byte, p []byte) {
		out = (&peerwire.Message{ID: peerwire.Extended, ExtendedID: id, Payload: p}).AppendTo(out)
	}
	for i := 0; i+1 < len(b); i += 2 {
		op, arg := b[i], int(b[i+1])
		switch op % 14 {
		case 0, 1:
			bf := make([]byte, (arg%5)+1)
			for j := range bf {
				bf[j] = byte(arg * (j + 7))
			}
			out = (&peerwire.Message{ID: peerwire.Bitfield, Payload: bf}).AppendTo(out)
		case 2, 3:
			out = (&peerwire.Message{ID: peerwire.Have, Index: uint32(arg % 24)}).AppendTo(out)
		case 4:
			out = (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(out)
		case 5:
			out = (&peerwire.Message{ID: peerwire.HaveNone}).AppendTo(out)
		case 6:
			ext(99, bytes.Repeat([]byte{'x'}, arg*40)) // padding, withheld past 64 bytes
		case 7:
			ext(btprobe.ExtPEXID, bytes.Repeat([]byte{'p'}, arg*30)) // claim-bearing, kept whole up to 8 KiB
		case 8:
			eh := peerwire.ExtHandshake{Port: uint16(1000 + arg)}
			ext(peerwire.ExtHandshakeID, eh.AppendTo(nil))
		case 9:
			ext(btprobe.ExtMetadataID, []byte("d8:msg_typei9ee")) // does not parse
		case 10:
			ext(btprobe.ExtMetadataID, bytes.Repeat([]byte{'m'}, arg*80)) // does not parse, bloated
		case 11:
			out = append(out, 0, 0, 0, 0) // keep-alive
		case 12:
			out = (&peerwire.Message{ID: peerwire.Unchoke}).AppendTo(out)
		case 13:
			if arg == 0 {
				out = binary.BigEndian.AppendUint32(out, 6) // a have of 5 bytes: refused
				out = append(out, byte(peerwire.Have), 0, 0, 0, 1, 0)
			} else {
				ext(peerwire.ExtHandshakeID, []byte("d1:pi")) // an extension handshake that does not parse
			}
		}
	}
	return out
}

// diffPeer accepts one connection, answers the probe's handshake for ih
// (reserved bits res), writes stream in chunks of step bytes, half-closes
// and reads until the prober hangs up.
func diffPeer(t testing.TB, ih []byte, res peerwire.Reserved, stream []byte, step int) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, peerwire.HandshakeLen)); err != nil {
			return
		}
		go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(c) }()
		hs := peerwire.Handshake{Reserved: res, InfoHash: [20]byte(ih), PeerID: [20]byte(bytes.Repeat([]byte{'p'}, 20))}
		all := append(hs.AppendTo(nil), stream...)
		for i := 0; i < len(all); i += step {
			if _, err := c.Write(all[i:min(i+step, len(all))]); err != nil {
				return
			}
		}
		_ = c.(*net.TCPConn).CloseWrite()
		time.Sleep(3 * time.Second)
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

// probeAndVerify runs the sensor's own probe against a peer that sends
// stream, and returns what the probe counted and what the verifier
// counts in the probe's transcript.
func probeAndVerify(t testing.TB, guard *scope.Guard, stream []byte, limit, step int, res peerwire.Reserved) (*btprobe.Result, *shown, []byte) {
	ih := bytes.Repeat([]byte{0x5a}, 20)
	peer := diffPeer(t, ih, res, stream, step)
	p, err := btprobe.New(btprobe.Config{PeerID: [20]byte(bytes.Repeat([]byte{'v'}, 20)), Listen: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		TranscriptLimit: limit, Info: func(routing.ID) (*metainfo.Info, bool) { return &metainfo.Info{Pieces: diffPieces}, true }}, guard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, tr, _ := p.Probe(ctx, btprobe.Peer{Addr: peer}, hashkind.MustNew(hashkind.BTIH, ih))
	if r == nil {
		return nil, nil, nil
	}
	b := tr.Bytes()
	recs, err := transcript.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	s := streamOf(recs, peer)
	return r, read(s, res), b
}

// checkAgree: the verifier's reading of the probe's transcript is the
// probe's own: the same verdict from the same possession messages, the
// same answer to whether the peer spoke; and a claim one step above the
// probe's fails verify while the probe's own passes.
func checkAgree(t testing.TB, r *btprobe.Result, sh *shown, tr []byte) {
	if r == nil {
		return
	}
	pv, vv := r.Claims.Judge(diffPieces), sh.claims.Judge(diffPieces)
	if pv != vv {
		t.Fatalf("the probe judged %+v, the verifier %+v", pv, vv)
	}
	if r.Spoke != sh.spoke {
		t.Fatalf("the probe says the peer spoke: %v, the verifier: %v", r.Spoke, sh.spoke)
	}
	if !r.Spoke {
		return
	}
	level, have := "acknowledged", pv.Have
	switch {
	case pv.All || pv.Have >= diffPieces:
		level, have = "complete", diffPieces
	case pv.Have > 0:
		level = "partial"
	}
	claim := func(level string, have int) string {
		total := diffPieces
		o := &obsLine{Network: "bittorrent", Method: "peer_probe", IP: "127.0.0.1", Port: 0, Item: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
			Possession: level, PiecesTotal: &total, PiecesHave: &have, Transcript: tr}
		recs, _ := transcript.Decode(tr)
		for _, rec := range recs {
			if rec.Type == transcript.Received {
				ap := netip.MustParseAddrPort(rec.Peer)
				o.Port = ap.Port()
				break
			}
		}
		return checkTranscript(o).problem
	}
	if problem := claim(level, have); problem != "" {
		t.Fatalf("the probe's own claim (%s, %d pieces) fails verify: %s", level, have, problem)
	}
	switch level {
	case "acknowledged":
		if claim("partial", 1) == "" {
			t.Fatalf("partial accepted where the probe counted %+v", pv)
		}
	case "partial":
		if claim("partial", have+1) == "" || claim("complete", diffPieces) == "" {
			t.Fatalf("more than the probe's %d pieces accepted", have)
		}
	}
}

func diffGuard(t testing.TB) *scope.Guard {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func reserved(fast, ext bool) peerwire.Reserved {
	var res peerwire.Reserved
	res.SetFast(fast)
	res.SetExtended(ext)
	return res
}

// Streams where the probe and the verifier read differently (each failed
// before the probe and the verifier followed one rule): possession
// messages past a hole over a length prefix (the probe counted them as
// unknown, past eight of them nothing, where no reader can find them), a
// message whose type byte is cut (the probe's decoder may refuse it), a
// cut ut_metadata message that does not parse (the probe stopped there,
// though no reader can see that it does not parse).
func TestProbeAndVerifierAgree(t *testing.T) {
	guard := diffGuard(t)
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xff, 0xff, 0xf0}}).AppendTo(nil)
	pad := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: btprobe.ExtPEXID, Payload: bytes.Repeat([]byte{'p'}, 3000)}).AppendTo(nil)
	var haveNones []byte
	for range 9 {
		haveNones = (&peerwire.Message{ID: peerwire.HaveNone}).AppendTo(haveNones)
	}
	badMeta := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: btprobe.ExtMetadataID, Payload: bytes.Repeat([]byte{'m'}, 20000)}).AppendTo(nil)
	haveAll := (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(nil)
	cases := []struct {
		name   string
		stream []byte
		limit  int
		step   int
	}{
		{"nine have_none past the bound, in small reads", bytes.Join([][]byte{bf, pad, haveNones}, nil), 600, 5},
		{"a bloated ut_metadata that does not parse, then have_all", bytes.Join([][]byte{badMeta, haveAll}, nil), 16 << 10, 1 << 20},
		{"PEX filling the bound in small reads, then the bitfield", bytes.Join([][]byte{pad, pad, pad, pad, pad, bf, haveAll}, nil), 12 << 10, 700},
	}
	for _, c := range cases {
		r, sh, tr := probeAndVerify(t, guard, c.stream, c.limit, c.step, reserved(true, true))
		if r == nil {
			t.Fatalf("%s: no result", c.name)
		}
		t.Run(c.name, func(t *testing.T) { checkAgree(t, r, sh, tr) })
	}
}

// FuzzProbeAndVerifierAgree: random and hostile streams through the
// sensor's own probe (its framer, its bound, its decoder, its accounting)
// and through the verifier's reading of the transcript the probe kept:
// they judge the peer's possession alike, and the verifier accepts
// nothing above the probe's claim.
func FuzzProbeAndVerifierAgree(f *testing.F) {
	f.Add([]byte{0, 255, 6, 200, 7, 250, 7, 250, 4, 0, 2, 3}, uint16(3000), uint16(700), true, true)
	f.Add([]byte{7, 255, 7, 255, 7, 255, 7, 255, 0, 255, 5, 0, 5, 0}, uint16(9000), uint16(100), true, true)
	f.Add([]byte{10, 255, 4, 0, 9, 0, 2, 2}, uint16(20000), uint16(9000), true, true)
	f.Add([]byte{13, 0, 4, 0, 13, 1, 2, 5, 8, 1}, uint16(16000), uint16(3), false, true)
	f.Add([]byte{2, 1, 2, 2, 2, 3, 4, 0, 0, 255, 11, 0, 5, 0}, uint16(200), uint16(1), true, false)
	guard := diffGuard(f)
	f.Fuzz(func(t *testing.T, ops []byte, limit, step uint16, fast, ext bool) {
		if len(ops) > 400 {
			return
		}
		r, sh, tr := probeAndVerify(t, guard, hostileStream(ops), int(limit), max(int(step), 1), reserved(fast, ext))
		checkAgree(t, r, sh, tr)
	})
}

// A peer that sends many claim-bearing messages, each under the size
// kept whole (PEX of 1 KB), fills the transcript's bound with them, so
// that its bitfield and have_all behind them are cut. Whatever the reads'
// sizes, the probe's level does not rest on them (nothing counted: the
// peer hid its own claim, acknowledged), and the verifier reads the same.
func TestFloodPushesTheClaimOutNeverIn(t *testing.T) {
	guard := diffGuard(t)
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xff, 0xff, 0xf0}}).AppendTo(nil)
	pex := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: btprobe.ExtPEXID, Payload: bytes.Repeat([]byte{'p'}, 1000)}).AppendTo(nil)
	haveAll := (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(nil)
	for _, step := range []int{1, 700, 1 << 20} {
		r, sh, tr := probeAndVerify(t, guard, append(bytes.Repeat(pex, 40), append(bf, haveAll...)...), 16<<10, step, reserved(true, true))
		if r == nil {
			t.Fatal("no result")
		}
		if v := r.Claims.Judge(diffPieces); v.All || v.Have >= 0 {
			t.Fatalf("reads of %d bytes: the probe counted %+v from possession messages cut from its transcript", step, v)
		}
		checkAgree(t, r, sh, tr)
	}
}

// A peer that sends more padding messages than the transcript writer
// remembers holes for (1,024) under a large bound: the writer counted
// the rest of the stream as not kept, so the probe counted nothing after
// it, yet went on keeping bytes, and the verifier counted the have_all it
// kept. The writer now keeps nothing more once it cannot say what it
// kept: the probe and the verifier read the same.
func TestMoreHolesThanTheWriterRemembers(t *testing.T) {
	pad := (&peerwire.Message{ID: 99, Payload: bytes.Repeat([]byte{'x'}, 100)}).AppendTo(nil)
	haveAll := (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(nil)
	r, sh, tr := probeAndVerify(t, diffGuard(t), append(bytes.Repeat(pad, 1100), haveAll...), 1<<20, 1<<20, reserved(true, true))
	checkAgree(t, r, sh, tr)
}
