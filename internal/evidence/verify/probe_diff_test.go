package verify

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
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
// PEX and extension handshakes (whole or bloated, with listen ports that
// differ), ut_metadata messages
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
		switch op % 15 {
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
		case 14:
			eh := peerwire.ExtHandshake{Port: uint16(2000 + arg), Client: strings.Repeat("v", arg*40)}
			ext(peerwire.ExtHandshakeID, eh.AppendTo(nil)) // parses, withheld past 8 KiB
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
	// A bound for a probe that hangs, not a measure: a peer that writes a
	// few bytes at a time on a loaded machine (CI runs the packages side
	// by side) took more than 2 s, and the probe returned no result.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, tr, err := p.Probe(ctx, btprobe.Peer{Addr: peer}, hashkind.MustNew(hashkind.BTIH, ih))
	if r == nil {
		t.Logf("the probe gave no result: %v", err)
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

// probePort is the listen port the sensor records from a probe's result
// (bittorrent.probeClient): that of the extension handshake it keeps,
// if the transcript keeps it whole; 0 if none.
func probePort(r *btprobe.Result) uint16 {
	if r.Ext != nil && r.ExtKept {
		return r.Ext.Port
	}
	return 0
}

// checkAgree: the verifier's reading of the probe's transcript is the
// probe's own: the same verdict from the same possession messages, the
// same answer to whether the peer spoke, the same listen port; and a
// claim one step above the probe's, or of another listen port, fails
// verify while the probe's own passes.
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
	port, vport := probePort(r), uint16(0)
	if sh.ext {
		vport = sh.port
	}
	if port != vport {
		t.Fatalf("the probe records listen port %d, the verifier reads %d", port, vport)
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
	claimPort := func(level string, have int, listen uint16) string {
		total := diffPieces
		o := &obsLine{Network: "bittorrent", Method: "peer_probe", IP: "127.0.0.1", Port: 0, Item: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
			Possession: level, PiecesTotal: &total, PiecesHave: &have, Transcript: tr, ListenPort: listen}
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
	claim := func(level string, have int) string { return claimPort(level, have, port) }
	if problem := claim(level, have); problem != "" {
		t.Fatalf("the probe's own claim (%s, %d pieces, listen port %d) fails verify: %s", level, have, port, problem)
	}
	for _, other := range []uint16{port - 1, port + 1} {
		if other != 0 && claimPort(level, have, other) == "" {
			t.Fatalf("listen port %d accepted where the probe records %d", other, port)
		}
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

// A peer that sends a second extension handshake with another listen
// port: the probe recorded the last one it read (if kept), the verifier
// accepted the port of any kept whole. Both now take the first kept
// whole: a reader cannot tell which one the probe read last (it may stop
// at a write that fails with more in the transcript), always which one
// first. Also with the first one cut (bloated past what the transcript
// keeps) and with a message the verifier stops at between them.
func TestProbeAndVerifierAgreeOnTheListenPort(t *testing.T) {
	guard := diffGuard(t)
	eh := func(port uint16, pad int) []byte {
		h := peerwire.ExtHandshake{Port: port, Client: strings.Repeat("v", pad)}
		return (&peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: h.AppendTo(nil)}).AppendTo(nil)
	}
	haveAll := (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(nil)
	cases := []struct {
		name   string
		stream []byte
		want   uint16
	}{
		{"two kept whole", bytes.Join([][]byte{eh(1001, 0), eh(1002, 0), haveAll}, nil), 1001},
		{"the first cut", bytes.Join([][]byte{eh(1001, 9000), eh(1002, 0), eh(1003, 0), haveAll}, nil), 1002},
		{"the second cut", bytes.Join([][]byte{eh(1001, 0), eh(1002, 9000), haveAll}, nil), 1001},
	}
	for _, c := range cases {
		for _, step := range []int{1 << 20, 7} {
			r, sh, tr := probeAndVerify(t, guard, c.stream, 16<<10, step, reserved(true, true))
			if r == nil {
				t.Fatalf("%s: no result", c.name)
			}
			if got := probePort(r); got != c.want {
				t.Errorf("%s, reads of %d bytes: the probe records listen port %d, want %d", c.name, step, got, c.want)
			}
			checkAgree(t, r, sh, tr)
		}
	}
}

// The transcript's bound cuts a message after its length prefix, before
// its type byte: the probe said the peer had not spoken if it was the
// first after the handshake (no message a reader finds), the probe that
// wrote older bundles said it had, and verify failed those. Both now say
// it spoke and count nothing from the message or after it. The peer
// sends its handshake and small messages in one write, read in one
// chunk, which the bound cuts at half the room left: a bound for each
// cut position in a range.
func TestTypeByteCutAtTheBoundAgrees(t *testing.T) {
	guard := diffGuard(t)
	unchoke := (&peerwire.Message{ID: peerwire.Unchoke}).AppendTo(nil)
	haveAll := (&peerwire.Message{ID: peerwire.HaveAll}).AppendTo(nil)
	stream := append(bytes.Repeat(unchoke, 60), haveAll...)
	hits, first := 0, false
	for limit := 570; limit < 640; limit++ {
		r, sh, tr := probeAndVerify(t, guard, stream, limit, 1<<20, reserved(true, true))
		if r == nil {
			continue
		}
		recs, _ := transcript.Decode(tr)
		kept := 0
		for _, rec := range recs {
			if rec.Type == transcript.Received {
				kept += len(rec.Data)
			}
		}
		if k := kept - peerwire.HandshakeLen - 4; k >= 0 && k%len(unchoke) == 0 && k < len(stream)-4 {
			hits++
			first = first || k == 0
			if !r.Spoke || !sh.spoke {
				t.Errorf("bound %d, cut at the type byte of message %d: the probe says the peer spoke: %v, the verifier: %v", limit, k/len(unchoke), r.Spoke, sh.spoke)
			}
			if v := r.Claims.Judge(diffPieces); v.All || v.Have > 0 {
				t.Errorf("bound %d: the probe counted %+v past a cut type byte", limit, v)
			}
		}
		checkAgree(t, r, sh, tr)
	}
	if hits == 0 {
		t.Fatal("no bound in the range cut a message at its type byte")
	}
	t.Logf("%d bounds cut at a type byte (the first message's: %v)", hits, first)
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
	f.Add([]byte{14, 250, 8, 1, 8, 2, 4, 0}, uint16(16000), uint16(500), true, true)
	f.Add([]byte{8, 3, 7, 200, 14, 5, 8, 4, 4, 0}, uint16(2000), uint16(9000), true, true)
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
