package probe

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// The padding of TestProbeHostilePaddingDoesNotPushTheStatusOut, under
// the opcodes of packets that can show something: a second hello answer
// (the probe takes the first), a hash set answer nobody asked for, a
// second file name answer. Each was kept because of its opcode, half the
// room left each time, and the status that followed was cut: the client
// sharing the whole file was not recorded. Only a packet the probe can
// still take is kept whole.
func TestProbeHostilePaddingUnderClaimOpcodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	hash := small.Hash
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
		pad := bytes.Repeat([]byte{'x'}, 100_000)
		out := wire.Append(nil, wire.ProtoEDonkey, wire.OpHelloAnswer,
			wire.Hello{Answer: true, UserHash: [16]byte{9, 9, 9, 9, 9, 14, 9, 9, 9, 9, 9, 9, 9, 9, 111, 9}, Port: 4662}.AppendTo(nil))
		for range 6 {
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpHelloAnswer, pad)
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpHashSetAnswer, pad)
		}
		out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: "file"}.AppendTo(nil))
		out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: string(pad[:60_000])}.AppendTo(nil))
		out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash}.AppendTo(nil))
		if _, err := c.Write(out); err != nil {
			return
		}
		_, _ = c.Read(buf)
		time.Sleep(time.Second)
	}()
	cfg := testConfig(t)
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	res, tr, err := Probe(context.Background(), cfg, Target{Addr: addr, Hash: hash, Size: small.Size})
	if res == nil {
		t.Fatalf("no result: %v", err)
	}
	if pos, _ := res.Possession(); pos.Level != observe.Complete {
		t.Fatalf("possession %+v (err %v): packets of claim opcodes the probe does not take pushed the status out", pos, err)
	}
	if len(tr.Bytes) > cfg.TranscriptLimit {
		t.Fatalf("transcript of %d bytes, bound %d", len(tr.Bytes), cfg.TranscriptLimit)
	}
}
