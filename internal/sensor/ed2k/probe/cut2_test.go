package probe

import (
	"bytes"
	"context"
	"testing"

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
	hash := small.Hash
	pad := bytes.Repeat([]byte{'x'}, 100_000)
	out := helloAnswer()
	for range 6 {
		out = wire.Append(out, wire.ProtoEDonkey, wire.OpHelloAnswer, pad)
		out = wire.Append(out, wire.ProtoEDonkey, wire.OpHashSetAnswer, pad)
	}
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: "file"}.AppendTo(nil))
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: string(pad[:60_000])}.AppendTo(nil))
	out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash}.AppendTo(nil))
	cfg := testConfig(t)
	res, tr, err := Probe(context.Background(), cfg, Target{Addr: scriptedClient(t, out), Hash: hash, Size: small.Size})
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
