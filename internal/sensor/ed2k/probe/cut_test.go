package probe

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/record"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A client that answers the hello and then pads the conversation with
// ten 100 KB packets of an opcode the probe ignores before it names the
// file and gives its status: each padding packet kept half the room left
// in the 64 KiB transcript, so that the file name answer and the status
// that followed were cut, and the client that shares the whole file was
// not recorded at all. The padding's bytes are withheld (counted in cut
// records) and what the level rests on kept whole: complete, marked
// transcript_cut.
func TestProbeHostilePaddingDoesNotPushTheStatusOut(t *testing.T) {
	hash := small.Hash
	out := helloAnswer()
	for range 10 {
		out = wire.Append(out, wire.ProtoEDonkey, 0x99, bytes.Repeat([]byte{'x'}, 100_000))
	}
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: "file"}.AppendTo(nil))
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash}.AppendTo(nil))
	cfg := testConfig(t)
	res, tr, err := Probe(context.Background(), cfg, Target{Addr: scriptedClient(t, out), Hash: hash, Size: small.Size})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	pos, _ := res.Possession()
	if pos.Level != observe.Complete {
		t.Fatalf("possession %+v (err %v): the padding pushed what the client said out of the transcript", pos, err)
	}
	if len(tr.Bytes) > cfg.TranscriptLimit {
		t.Fatalf("transcript of %d bytes, bound %d", len(tr.Bytes), cfg.TranscriptLimit)
	}
	marked := false
	for _, m := range record.Marks(tr.Bytes) {
		marked = marked || m == observe.MarkTranscriptCut
	}
	if !marked {
		t.Fatal("the padding withheld, but the transcript is not marked cut")
	}
}

// helloAnswer is a client's hello answer, as the padding tests' client
// sends it first.
func helloAnswer() []byte {
	return wire.Append(nil, wire.ProtoEDonkey, wire.OpHelloAnswer,
		wire.Hello{Answer: true, UserHash: [16]byte{9, 9, 9, 9, 9, 14, 9, 9, 9, 9, 9, 9, 9, 9, 111, 9}, Port: 4662}.AppendTo(nil))
}

// scriptedClient listens on loopback for one probe: it reads the sensor's
// hello, writes out whole, and holds the connection a second after the
// sensor's next packet.
func scriptedClient(t *testing.T, out []byte) netip.AddrPort {
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
		var in []byte
		buf := make([]byte, 4096)
		for { // the sensor's hello
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			in = append(in, buf[:n]...)
			if _, m, _ := wire.Decode(in, wire.DefaultLimits()); m > 0 {
				break
			}
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		_, _ = c.Read(buf)
		time.Sleep(time.Second)
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}
