package probe

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// With --verify, a client gives a part map that says "the whole file"
// and then, asked for an upload slot (a file of one part: no hash set is
// asked) or for the hash set (a file of two parts), says it has no such
// file (OP_FILEREQANSNOFIL for the file). The code before this recorded
// it complete, the withdrawal only a note in the transcript. As for a
// BitTorrent peer's have_none after its have_all, of the two statements
// the lower is kept: acknowledged, 0 parts, marked malformed_have. A
// no-file answer for another file withdraws nothing.
func TestNoFileAfterTheStatusWithdrawsIt(t *testing.T) {
	other := [16]byte(bytes.Repeat([]byte{0x33}, 16))
	for _, c := range []struct {
		name      string
		size      int64
		hash      [16]byte
		noFileFor [16]byte
		want      observe.Level
	}{
		{"asked for an upload slot", small.Size, small.Hash, small.Hash, observe.Acknowledged},
		{"asked for the hash set", two.Size, two.Hash, two.Hash, observe.Acknowledged},
		{"a no-file answer for another file", small.Size, small.Hash, other, observe.Complete},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := helloAnswer()
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: c.hash, Name: "file"}.AppendTo(nil))
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: c.hash}.AppendTo(nil))
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: c.noFileFor}.AppendTo(nil))
			cfg := testConfig(t)
			cfg.Verify = true
			res, _, err := Probe(context.Background(), cfg, Target{Addr: scriptedClient(t, out), Hash: c.hash, Size: c.size})
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			pos, marks := res.Possession()
			if pos.Level != c.want || res.Verified {
				t.Fatalf("possession %+v marks %v (note %q); want %s", pos, marks, res.VerifyNote, c.want)
			}
			if c.want == observe.Acknowledged && (pos.PiecesHave != 0 || !slices.Contains(marks, observe.MarkMalformedHave) || !res.Withdrawn) {
				t.Fatalf("possession %+v marks %v withdrawn %v; want 0 parts, marked %s", pos, marks, res.Withdrawn, observe.MarkMalformedHave)
			}
		})
	}
}

// With the default settings (no --verify) the probe asks for the file's
// name and its status in one go. A client that answers the status first
// ("the whole file") and then says it has no such file, both already
// received when the probe has the status, has made two statements: the
// lower is kept, as with --verify. The code before this stopped at the
// status and recorded it complete, the no-file answer unread. A name
// answer after the status withdraws nothing; a no-file answer after the
// name answer, or after a status that followed the name answer (the
// order aMule answers in), does.
func TestNoFileRightAfterTheStatusWithdrawsIt(t *testing.T) {
	noFile := wire.Append(nil, wire.ProtoEDonkey, wire.OpFileReqAnsNoFile, wire.HashMsg{Hash: small.Hash}.AppendTo(nil))
	name := wire.Append(nil, wire.ProtoEDonkey, wire.OpReqFileNameAns, wire.FileName{Hash: small.Hash, Name: "file"}.AppendTo(nil))
	for _, c := range []struct {
		name   string
		before []byte   // sent before the status
		after  [][]byte // packets, each found whole in the transcript
		want   observe.Level
	}{
		{"no file", nil, [][]byte{noFile}, observe.Acknowledged},
		{"its name", nil, [][]byte{name}, observe.Complete},
		// The name answer, then the no-file answer, both already sent:
		// the withdrawal one packet after the name answer is the
		// client's second statement all the same. The probe stopped
		// reading at the name answer before: complete 1/1.
		{"its name then no file", nil, [][]byte{name, noFile}, observe.Acknowledged},
		// The name answer first, as aMule sends it, then the status,
		// then no such file: the probe read nothing after the status
		// when the name had come first (complete 1/1).
		{"name, status, no file", name, [][]byte{noFile}, observe.Acknowledged},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := append(helloAnswer(), c.before...)
			out = wire.Append(out, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: small.Hash}.AppendTo(nil))
			out = append(out, bytes.Join(c.after, nil)...)
			cfg := testConfig(t)
			res, tr, err := Probe(context.Background(), cfg, Target{Addr: scriptedClient(t, out), Hash: small.Hash, Size: small.Size})
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			pos, marks := res.Possession()
			if pos.Level != c.want {
				t.Fatalf("possession %+v marks %v; want %s", pos, marks, c.want)
			}
			if c.want == observe.Acknowledged && (pos.PiecesHave != 0 || !slices.Contains(marks, observe.MarkMalformedHave) || !res.Withdrawn) {
				t.Fatalf("possession %+v marks %v withdrawn %v; want 0 parts, marked %s", pos, marks, res.Withdrawn, observe.MarkMalformedHave)
			}
			// What lowered the level is in the transcript, where a
			// reader finds it.
			for i, pk := range c.after {
				if !bytes.Contains(tr.Bytes, pk) {
					t.Fatalf("packet %d after the status is not in the transcript", i)
				}
			}
		})
	}
}
