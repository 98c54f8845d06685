package verify

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// FuzzTranscriptClaims: any transcript, any claim, of either network: the
// comparison ends, gives one answer, and never accepts a level above
// acknowledged from a transcript whose stream holds no byte after the
// handshake (BitTorrent) or no packet (eD2K).
func FuzzTranscriptClaims(f *testing.F) {
	ih := bytes.Repeat([]byte{0x5a}, 20)
	hs := (&peerwire.Handshake{InfoHash: [20]byte(ih)}).AppendTo(nil)
	rec := func(typ byte, data []byte, recv uint64) []byte {
		return transcript.Record{Type: typ, Peer: "127.0.0.2:6881", Data: data, ReceivedLeft: recv}.AppendTo(nil)
	}
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xe0, 0}}).AppendTo(nil)
	f.Add(append(rec('<', append(hs, 0, 0, 0, 9, 20, 99), 0), append(rec('-', nil, 1000), rec('<', bf, 0)...)...), "partial", false)
	f.Add(rec('<', hs, 0), "acknowledged", false)
	f.Add(append(rec('<', hs, 0), rec('#', []byte(transcript.HeldNote), 0)...), "acknowledged", false)
	ping := []byte("d1:ad2:id20:ssssssssssssssssssssse1:q4:ping1:t2:aa1:y1:qe")
	f.Add(append(append(rec('<', append(hs, 0, 0, 0, 60, 5), 0), rec('>', ping, 0)...), rec('<', ping, 0)...), "partial", false)
	f.Add(append(append(rec('<', hs, 0), rec('-', nil, ^uint64(0))...), rec('<', []byte{0xaa, 0, 0, 0, 1, 14}, 0)...), "complete", false)
	st := wire.Append(nil, wire.ProtoEDonkey, wire.OpFileStatus, wire.FileStatus{Hash: [16]byte(ih[:16]), Count: 3, Bits: []byte{7}}.AppendTo(nil))
	f.Add(rec('<', st, 0), "complete", true)
	f.Fuzz(func(t *testing.T, tr []byte, level string, ed2k bool) {
		total, have := 10, 3
		o := &obsLine{Network: "bittorrent", Method: "peer_probe", IP: "127.0.0.2", Port: 6881, Item: hex.EncodeToString(ih),
			Possession: level, PiecesTotal: &total, PiecesHave: &have, Transcript: tr, ListenPort: 51413}
		if ed2k {
			o.Network, o.Item = "ed2k", hex.EncodeToString(ih[:16])
		}
		r1, r2 := checkTranscript(o), checkTranscript(o)
		if r1 != r2 {
			t.Fatalf("two answers: %+v, %+v", r1, r2)
		}
		recs, err := transcript.Decode(tr)
		if err != nil || r1.outcome != transcriptCompared || ed2k {
			return
		}
		s := streamOf(recs, o.endpoint())
		hs, _ := s.bytes(0, uint64(peerwire.HandshakeLen))
		var res peerwire.Reserved
		copy(res[:], hs[20:28])
		if !read(s, res).spoke && !hasNote(recs, o.endpoint(), transcript.HeldNote) {
			t.Fatalf("accepted %q with nothing after the handshake", level)
		}
	})
}
