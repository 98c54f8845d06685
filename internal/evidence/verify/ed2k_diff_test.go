package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	ed2kprobe "github.com/vigil-oss/vigil/internal/sensor/ed2k/probe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// ed2kSize is the size of the file the eD2K differential tests probe for:
// three parts.
const ed2kSize = 2*wire.PartSize + 1000

// hostileED2K turns fuzz bytes into a client's packets: hello answers
// (whole, or that do not decode), name answers, file statuses and no-file
// answers for the item or another file, padding of every size (withheld
// past 512 bytes), eMule packets, packed packets that do and do not
// inflate, and a header that does not parse; from op 240 on (which no
// earlier seed uses), what follows the status with --verify: a hash set
// that hashes to the item or one that does not, an upload slot granted,
// a queue rank, part data.
func hostileED2K(b []byte) []byte {
	other := [16]byte(bytes.Repeat([]byte{0x33}, 16))
	var out []byte
	pk := func(proto, op byte, p []byte) { out = wire.Append(out, proto, op, p) }
	for i := 0; i+1 < len(b); i += 2 {
		op, arg := b[i], int(b[i+1])
		hash := ed2kItem
		if arg&1 == 1 {
			hash = other
		}
		if op >= 240 {
			switch op % 4 {
			case 0:
				hs := wire.HashSet{Hash: ed2kItem, Hashes: ed2kParts}
				if arg&1 == 1 {
					hs.Hashes = [][16]byte{ed2kParts[0], ed2kParts[1], {byte(arg)}}
				}
				pk(wire.ProtoEDonkey, wire.OpHashSetAnswer, hs.AppendTo(nil))
			case 1:
				pk(wire.ProtoEDonkey, wire.OpAcceptUploadReq, nil)
			case 2:
				pk(wire.ProtoEDonkey, wire.OpQueueRank, []byte{byte(arg), 0, 0, 0})
			case 3:
				pk(wire.ProtoEDonkey, wire.OpSendingPart, wire.SendingPart{Hash: ed2kItem, End: uint32(arg + 1), Data: make([]byte, arg+1)}.AppendTo(nil))
			}
			continue
		}
		switch op % 12 {
		case 0, 1:
			pk(wire.ProtoEDonkey, wire.OpHelloAnswer, wire.Hello{Answer: true, UserHash: [16]byte{byte(arg)}, Port: uint16(4000 + arg)}.AppendTo(nil))
		case 2:
			pk(wire.ProtoEDonkey, wire.OpHelloAnswer, bytes.Repeat([]byte{byte(arg)}, arg%40))
		case 3:
			pk(wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: "f"}.AppendTo(nil))
		case 4, 5:
			fs := wire.FileStatus{Hash: hash}
			if arg&2 == 2 {
				fs.Count, fs.Bits = 3, []byte{byte(arg >> 2)}
			}
			pk(wire.ProtoEDonkey, wire.OpFileStatus, fs.AppendTo(nil))
		case 6:
			pk(wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: hash}.AppendTo(nil))
		case 7:
			pk(wire.ProtoEDonkey, 0x99, bytes.Repeat([]byte{'x'}, arg*8))
		case 8:
			pk(wire.ProtoEMule, 0x01, bytes.Repeat([]byte{'e'}, arg*4))
		case 9:
			pk(wire.ProtoPacked, 0x40, bytes.Repeat([]byte{'z'}, arg*4)) // does not inflate
		case 10:
			pk(wire.ProtoPacked, 0x40, wire.Deflate(bytes.Repeat([]byte{'y'}, arg*30)))
		case 11:
			if arg == 0 {
				out = append(out, 0x01, 2, 0, 0, 0, 9, 9) // no protocol of eD2K's
			} else {
				pk(wire.ProtoEDonkey, wire.OpReqFileNameAns, []byte{1, 2}) // does not decode
			}
		}
	}
	return out
}

// ed2kClient accepts one probe, reads the sensor's hello, writes out in
// chunks of step bytes, half-closes and reads until the sensor hangs up.
func ed2kClient(t testing.TB, out []byte, step int) netip.AddrPort {
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
		var in []byte
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			in = append(in, buf[:n]...)
			if _, m, _ := wire.Decode(in, wire.DefaultLimits()); m > 0 {
				break
			}
		}
		go func() { _, _ = bytes.NewBuffer(nil).ReadFrom(c) }()
		for i := 0; i < len(out); i += step {
			if _, err := c.Write(out[i:min(i+step, len(out))]); err != nil {
				return
			}
		}
		_ = c.(*net.TCPConn).CloseWrite()
		time.Sleep(3 * time.Second)
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// ed2kProbeAndVerify probes a client that sends out with the sensor's own
// eD2K probe (with --verify when verify is set: it reads on past the
// status, where a client may withdraw it) and checks the verifier against
// it: the probe's own claim verifies, and a claim one step above it does
// not (when the probe claims nothing, not even acknowledged).
func ed2kProbeAndVerify(t testing.TB, guard *scope.Guard, out []byte, limit, step int, verify bool) {
	addr := ed2kClient(t, out, step)
	cfg := ed2kprobe.DefaultConfig()
	cfg.Dial, cfg.UserHash, cfg.Timeout, cfg.TranscriptLimit = guard.Dialer(&net.Dialer{}).DialContext, ed2kprobe.NewUserHash(), 2*time.Second, limit
	cfg.Verify, cfg.VerifyTimeout = verify, 2*time.Second
	res, tr, err := ed2kprobe.Probe(context.Background(), cfg, ed2kprobe.Target{Addr: addr, Hash: ed2kItem, Size: ed2kSize})
	claim := func(pos observe.Possession, client ed2kClaimed) string {
		o := &obsLine{Network: "ed2k", Method: "peer_probe", IP: addr.Addr().String(), Port: addr.Port(), Item: hex.EncodeToString(ed2kItem[:]),
			Possession: pos.Level.String(), Transcript: tr.Bytes, UserHash: client.userHash, ListenPort: client.port}
		if pos.PiecesTotal >= 0 {
			o.PiecesTotal = &pos.PiecesTotal
		}
		if pos.PiecesHave >= 0 {
			o.PiecesHave = &pos.PiecesHave
		}
		if r := checkTranscript(o); r.outcome == transcriptFailed {
			return r.problem
		}
		return ""
	}
	if res == nil || errors.Is(err, ed2kprobe.ErrWrongFile) || !res.Acknowledged() {
		if res != nil && (res.NoFile || errors.Is(err, ed2kprobe.ErrWrongFile)) && lastPacketCut(t, tr.Bytes) {
			// The client said it has no such file, or answered for another,
			// in a packet cut from the transcript (the bound): the probe
			// drops it, the verifier cannot see why. The same transcript
			// comes of a client whose status was cut there, which the probe
			// records acknowledged.
			return
		}
		// No claim: a forged acknowledged, from the same transcript, fails.
		if claim(observe.Possession{Level: observe.Acknowledged, PiecesHave: -1, PiecesTotal: -1}, ed2kClaimed{}) == "" {
			t.Fatalf("the probe claims nothing (result %+v, %v), verify accepts acknowledged", res, err)
		}
		return
	}
	pos, _ := res.Possession()
	cl := ed2kClaimed{userHash: hex.EncodeToString(res.Hello.UserHash[:]), port: res.Client.ListenPort}
	if problem := claim(pos, cl); problem != "" {
		t.Fatalf("the probe's own claim %+v fails verify: %s", pos, problem)
	}
	above := pos
	switch pos.Level {
	case observe.Acknowledged:
		above = observe.Possession{Level: observe.Partial, PiecesHave: 1, PiecesTotal: 3}
	case observe.Partial:
		above = observe.Possession{Level: observe.Complete, PiecesHave: 3, PiecesTotal: 3}
	default:
		return
	}
	if claim(above, cl) == "" {
		t.Fatalf("the probe claims %+v, verify accepts %+v", pos, above)
	}
}

type ed2kClaimed struct {
	userHash string
	port     uint16
}

// Clients the probe reads to less than the verifier found (each failed
// before the verifier and the probe followed one rule): a packed packet
// that does not inflate, withheld, before the status (the probe stopped
// there, unseen); a second name answer for another file (the probe
// dropped the client at it); with --verify, a status withdrawn by a
// no-file answer to the hash set request or to the upload request (the
// probe kept complete, the verifier did not read past the status).
func TestED2KProbeAndVerifierAgree(t *testing.T) {
	guard := diffGuard(t)
	for _, c := range []struct {
		name   string
		ops    []byte
		verify bool
	}{
		{"a packed packet that does not inflate, withheld", []byte{0, 0, 3, 0, 9, 200, 4, 0}, false},
		{"a second name answer for another file", []byte{0, 0, 3, 0, 3, 1, 4, 0}, false},
		{"a name answer, then a status for another file", []byte{0, 0, 3, 0, 4, 1, 4, 0}, false},
		{"a status of all parts, no such file at the hash set request", []byte{0, 0, 3, 0, 4, 0, 6, 0}, true},
		{"a status of all parts, no such file at the upload request", []byte{0, 0, 3, 0, 4, 0, 240, 0, 6, 0}, true},
		{"a status of all parts, a queue rank, no such file", []byte{0, 0, 3, 0, 4, 0, 240, 0, 242, 3, 6, 0}, true},
		{"a status of all parts, a slot, part data, no such file", []byte{0, 0, 3, 0, 4, 0, 240, 0, 241, 0, 243, 9, 6, 0}, true},
	} {
		t.Run(c.name, func(t *testing.T) { ed2kProbeAndVerify(t, guard, hostileED2K(c.ops), 64<<10, 1<<20, c.verify) })
	}
}

// FuzzED2KProbeAndVerifierAgree: random and hostile packet streams
// through the sensor's own eD2K probe and through the verifier's reading
// of its transcript: the verifier accepts the probe's claim and nothing
// above it. An odd transcript bound runs the probe with --verify (the
// seeds of before keep their reading: a bound's parity changed nothing).
func FuzzED2KProbeAndVerifierAgree(f *testing.F) {
	f.Add([]byte{0, 0, 3, 0, 9, 200, 4, 0}, uint16(0), uint16(0))
	f.Add([]byte{7, 255, 0, 0, 7, 200, 3, 0, 7, 255, 4, 2}, uint16(3000), uint16(100))
	f.Add([]byte{2, 5, 0, 0, 5, 6, 6, 0}, uint16(60000), uint16(7))
	f.Add([]byte{0, 1, 8, 3, 10, 100, 3, 1, 4, 0}, uint16(900), uint16(1))
	f.Add([]byte{0, 0, 3, 0, 4, 0, 6, 0}, uint16(1), uint16(0))
	f.Add([]byte{0, 0, 4, 2, 240, 0, 6, 1, 6, 0}, uint16(3001), uint16(30))
	f.Add([]byte{0, 0, 4, 0, 240, 1, 240, 0, 241, 0, 6, 0, 243, 5}, uint16(65535), uint16(2))
	guard := diffGuard(f)
	f.Fuzz(func(t *testing.T, ops []byte, limit, step uint16) {
		if len(ops) > 300 {
			return
		}
		l := 64 << 10
		if limit > 0 {
			l = int(limit)
		}
		ed2kProbeAndVerify(t, guard, hostileED2K(ops), l, max(int(step), 1)+int(step)*40, limit%2 == 1)
	})
}

// lastPacketCut reports whether the last packet received in the
// transcript, the one the probe stopped at, is not kept whole.
func lastPacketCut(t testing.TB, tr []byte) bool {
	recs, err := transcript.Decode(tr)
	if err != nil {
		t.Fatal(err)
	}
	cut := false
	for _, r := range recs {
		switch {
		case r.Gap() && r.ReceivedLeft > 0:
			cut = true
		case r.Type == transcript.Received:
			_, n, err := wire.Decode(r.Data, wire.DefaultLimits())
			cut = err != nil || n != len(r.Data)
		}
	}
	return cut
}
