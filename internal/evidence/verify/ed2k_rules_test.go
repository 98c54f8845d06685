package verify

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	ed2kprobe "github.com/vigil-oss/vigil/internal/sensor/ed2k/probe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// An eD2K probe transcript for the tests below: the records received
// from (or cut for) the client at 127.0.0.2:4662, one packet a record.
type ed2kTr struct{ recs []transcript.Record }

const ed2kPeer = "127.0.0.2:4662"

// ed2kItem is the file the eD2K tests watch: three parts (ed2kSize, in
// the differential tests), whose part hashes are ed2kParts, so that a
// client can send a hash set the probe accepts.
var (
	ed2kParts = [][16]byte{{0x5a, 1}, {0x5a, 2}, {0x5a, 3}}
	ed2kItem  = wire.FileHashOf(ed2kParts)
)

func (e *ed2kTr) packet(proto, op byte, payload []byte) *ed2kTr {
	return e.raw(wire.Append(nil, proto, op, payload))
}

func (e *ed2kTr) raw(b []byte) *ed2kTr {
	e.recs = append(e.recs, transcript.Record{Type: transcript.Received, Peer: ed2kPeer, Data: b})
	return e
}

func (e *ed2kTr) cut(n uint64) *ed2kTr {
	e.recs = append(e.recs, transcript.Record{Type: transcript.Cut, Peer: ed2kPeer, ReceivedLeft: n})
	return e
}

func (e *ed2kTr) hello() *ed2kTr {
	return e.packet(wire.ProtoEDonkey, wire.OpHelloAnswer, wire.Hello{Answer: true, Port: 4662}.AppendTo(nil))
}

func (e *ed2kTr) name(hash [16]byte) *ed2kTr { return e.raw(nameOf(hash)) }

func nameOf(hash [16]byte) []byte {
	return wire.Append(nil, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: hash, Name: "abc"}.AppendTo(nil))
}

func (e *ed2kTr) status(hash [16]byte) *ed2kTr {
	return e.packet(wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: hash}.AppendTo(nil))
}

func (e *ed2kTr) noFile() *ed2kTr {
	return e.packet(wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: ed2kItem}.AppendTo(nil))
}

func (e *ed2kTr) check(level string) string {
	var b []byte
	for _, r := range e.recs {
		b = r.AppendTo(b)
	}
	total := 3
	o := &obsLine{Network: "ed2k", Method: "peer_probe", IP: "127.0.0.2", Port: 4662, Item: hex.EncodeToString(ed2kItem[:]),
		Possession: level, PiecesTotal: &total, Transcript: b}
	if r := checkTranscript(o); r.outcome == transcriptFailed {
		return r.problem
	}
	return ""
}

// Hostile eD2K transcripts where the probe stops, drops the client or
// claims less than the verifier found: each claim must fail verify.
func TestED2KVerifyReadsAsTheProbe(t *testing.T) {
	other := [16]byte(bytes.Repeat([]byte{0x33}, 16))
	helloPkt := wire.Append(nil, wire.ProtoEDonkey, wire.OpHelloAnswer, wire.Hello{Answer: true, Port: 4662}.AppendTo(nil))
	statusPkt := wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: ed2kItem}.AppendTo(nil))
	junk := func(e *ed2kTr, n int) *ed2kTr {
		for range n {
			e.packet(wire.ProtoEMule, 0x01, []byte{1, 2, 3})
		}
		return e
	}
	cases := []struct {
		name  string
		tr    *ed2kTr
		level string
	}{
		{"a first hello answer that does not decode", (&ed2kTr{}).packet(wire.ProtoEDonkey, wire.OpHelloAnswer, []byte{1}).hello().status(ed2kItem), "complete"},
		{"a first hello answer cut", (&ed2kTr{}).raw(helloPkt[:20]).cut(uint64(len(helloPkt) - 20)).hello().status(ed2kItem), "complete"},
		{"a name answer for another file", (&ed2kTr{}).hello().name(other).status(ed2kItem), "complete"},
		{"a file status for another file", (&ed2kTr{}).hello().status(other).status(ed2kItem), "complete"},
		{"a name answer, then no such file", (&ed2kTr{}).hello().name(ed2kItem).noFile(), "acknowledged"},
		{"a file status cut, then a whole one", (&ed2kTr{}).hello().raw(statusPkt[:12]).cut(uint64(len(statusPkt) - 12)).status(ed2kItem), "complete"},
		{"a packet whose header does not parse", (&ed2kTr{}).hello().raw([]byte{0x01, 2, 0, 0, 0, 9, 9}).status(ed2kItem), "complete"},
		{"the status after the probe's 64 packets", junk((&ed2kTr{}).hello(), 63).status(ed2kItem), "complete"},
		{"a status of three parts with a bit set past them", (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus,
			wire.FileStatus{Hash: ed2kItem, Count: 3, Bits: []byte{0x0f}}.AppendTo(nil)), "complete"},
		{"a status of five parts for a file of three", (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus,
			wire.FileStatus{Hash: ed2kItem, Count: 5, Bits: []byte{0x1f}}.AppendTo(nil)), "complete"},
	}
	for _, c := range cases {
		if problem := c.tr.check(c.level); problem == "" {
			t.Errorf("%s: %s accepted", c.name, c.level)
		}
	}
	ok := []struct {
		name  string
		tr    *ed2kTr
		level string
	}{
		{"hello, name, status", (&ed2kTr{}).hello().name(ed2kItem).status(ed2kItem), "complete"},
		{"packets withheld before and after the hello", (&ed2kTr{}).cut(900).hello().cut(700).status(ed2kItem), "complete"},
		{"a second name answer (the probe no longer reads them)", (&ed2kTr{}).hello().name(ed2kItem).name(other).status(ed2kItem), "complete"},
		{"the status as the probe's 64th packet", junk((&ed2kTr{}).hello(), 62).status(ed2kItem), "complete"},
		{"a name answer cut short (it names nothing), a status", (&ed2kTr{}).hello().raw(nameOf(ed2kItem)[:10]).cut(uint64(len(nameOf(ed2kItem)) - 10)).
			status(ed2kItem), "complete"},
		{"a status of three parts, all set", (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus,
			wire.FileStatus{Hash: ed2kItem, Count: 3, Bits: []byte{0x07}}.AppendTo(nil)), "complete"},
		{"a status of four parts (a size of three whole parts), three set", (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus,
			wire.FileStatus{Hash: ed2kItem, Count: 4, Bits: []byte{0x07}}.AppendTo(nil)), "complete"},
		{"a packet of three bytes kept of 400, a status", (&ed2kTr{}).hello().raw([]byte{wire.ProtoEMule, 0x90, 1}).cut(397).status(ed2kItem), "complete"},
	}
	for _, c := range ok {
		if problem := c.tr.check(c.level); problem != "" {
			t.Errorf("%s: %s refused: %s", c.name, c.level, problem)
		}
	}
	if ed2kprobe.DefaultConfig().MaxPackets != ed2kMaxPackets || wire.DefaultLimits() != ed2kLimits {
		t.Errorf("the verifier's packet bounds are not the probe's defaults")
	}
}

// With --verify, a client whose part map said "the whole file" and that
// then, asked for the hash set or an upload slot, said it has no such
// file: the probe keeps the lower of the two statements (acknowledged).
// The code before this read the transcript only up to the status, and a
// bundle claiming complete, partial or verified over it verified. A
// no-file answer for another file, or cut short, withdraws nothing.
func TestED2KWithdrawalAfterTheStatusLowersTheClaim(t *testing.T) {
	other := [16]byte(bytes.Repeat([]byte{0x33}, 16))
	noFilePkt := wire.Append(nil, wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: ed2kItem}.AppendTo(nil))
	three := wire.FileStatus{Hash: ed2kItem, Count: 3, Bits: []byte{0x07}}.AppendTo(nil)
	withdrawn := func() *ed2kTr {
		return (&ed2kTr{}).hello().name(ed2kItem).packet(wire.ProtoEDonkey, wire.OpFileStatus, three).
			packet(wire.ProtoEMule, 0x01, []byte{1}).noFile()
	}
	for _, level := range []string{"partial", "complete", "verified"} {
		if problem := withdrawn().check(level); problem == "" {
			t.Errorf("%s accepted over a later no-file answer", level)
		}
	}
	if problem := withdrawn().check("acknowledged"); problem != "" {
		t.Errorf("acknowledged refused: %s", problem)
	}
	for name, tr := range map[string]*ed2kTr{
		"a no-file answer for another file": (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus, three).
			packet(wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: other}.AppendTo(nil)),
		"a no-file answer cut short": (&ed2kTr{}).hello().packet(wire.ProtoEDonkey, wire.OpFileStatus, three).
			raw(noFilePkt[:10]).cut(uint64(len(noFilePkt) - 10)),
	} {
		if problem := tr.check("complete"); problem != "" {
			t.Errorf("%s: complete refused: %s", name, problem)
		}
	}
}
