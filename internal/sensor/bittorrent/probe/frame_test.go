package probe

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// FuzzFramer: whatever a peer sends and however it is split into reads,
// the transcript stays within its bound, every received byte is either
// kept at its place in the stream or counted in a cut record, and the
// writer's Kept says exactly which.
func FuzzFramer(f *testing.F) {
	hs := make([]byte, peerwire.HandshakeLen)
	pad := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 5000)}).AppendTo(nil)
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xe0, 0}}).AppendTo(nil)
	f.Add(append(append(append([]byte{}, hs...), pad...), bf...), uint16(100), uint16(2048))
	f.Add(append(append([]byte{}, hs...), 0, 0, 0, 0, 0, 0, 0, 2, 20, 0), uint16(7), uint16(16<<10))
	f.Add(append(append([]byte{}, hs...), 0, 0, 0x40, 0, 20, 1, 'a'), uint16(3), uint16(400))
	f.Fuzz(func(t *testing.T, stream []byte, split, limit uint16) {
		tr := transcript.NewWriter(int(limit))
		fr := newFramer()
		peer := netip.MustParseAddrPort("127.0.0.2:6881")
		at := time.Unix(0, 0)
		step := max(int(split), 1)
		for i := 0; i < len(stream); i += step {
			fr.record(tr, at, peer, stream[i:min(i+step, len(stream))])
		}
		out := tr.Bytes()
		if len(out) > int(limit) {
			t.Fatalf("transcript of %d bytes, bound %d", len(out), limit)
		}
		if limit == 0 {
			return
		}
		recs, err := transcript.Decode(out)
		if err != nil {
			t.Fatal(err)
		}
		var pos uint64
		for _, r := range recs {
			switch {
			case r.Gap():
				if r.ReceivedLeft > 0 && tr.Kept(pos, pos+r.ReceivedLeft) {
					t.Fatalf("bytes %d-%d cut, but Kept says kept", pos, pos+r.ReceivedLeft)
				}
				pos += r.ReceivedLeft
			case r.Type == transcript.Received:
				if !bytes.Equal(r.Data, stream[pos:pos+uint64(len(r.Data))]) {
					t.Fatalf("bytes kept at %d are not the stream's", pos)
				}
				if !tr.Kept(pos, pos+uint64(len(r.Data))) {
					t.Fatalf("bytes %d-%d kept, but Kept says not", pos, pos+uint64(len(r.Data)))
				}
				pos += uint64(len(r.Data))
			}
		}
		if pos != uint64(len(stream)) {
			t.Fatalf("kept and cut account for %d bytes, %d received", pos, len(stream))
		}
	})
}

// A peer's padding is withheld, what shows is kept, in one read.
func TestFramerWithholdsPaddingKeepsTheBitfield(t *testing.T) {
	hs := make([]byte, peerwire.HandshakeLen)
	pad := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: 99, Payload: bytes.Repeat([]byte{'x'}, 40<<10)}).AppendTo(nil)
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: []byte{0xe0, 0}}).AppendTo(nil)
	tr := transcript.NewWriter(16 << 10)
	fr := newFramer()
	fr.record(tr, time.Unix(0, 0), netip.MustParseAddrPort("127.0.0.2:6881"), bytes.Join([][]byte{hs, pad, bf}, nil))
	out := tr.Bytes()
	if !bytes.Contains(out, bf) || !bytes.Contains(out, pad[:6]) || bytes.Contains(out, pad[6:100]) {
		t.Fatalf("transcript %q: want the bitfield and the padding's header, not its body", out)
	}
	bfAt := uint64(len(hs) + len(pad))
	if !tr.Kept(bfAt, bfAt+uint64(len(bf))) || tr.Kept(uint64(len(hs)), bfAt) {
		t.Fatal("Kept does not say the bitfield kept and the padding not")
	}
}
