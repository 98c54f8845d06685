package probe

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/peerwire"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
)

// A peer that bloats a message that shows something (an extension
// handshake of 31 KB: a dictionary with a long key nobody reads) filled
// the bound with it, kept whole because of its type, and the bitfield
// that followed was withheld: the level fell to acknowledged. An
// extension handshake or PEX message longer than any client sends is
// withheld like padding (its listen port, its peers, not taken).
func TestFramerWithholdsABloatedExtensionHandshake(t *testing.T) {
	hs := make([]byte, peerwire.HandshakeLen)
	eh := append([]byte("d1:xi1e5:zzzzz31800:"), bytes.Repeat([]byte{'z'}, 31800)...)
	eh = append(eh, 'e')
	ext := (&peerwire.Message{ID: peerwire.Extended, ExtendedID: peerwire.ExtHandshakeID, Payload: eh}).AppendTo(nil)
	bf := (&peerwire.Message{ID: peerwire.Bitfield, Payload: bytes.Repeat([]byte{0xff}, 1000)}).AppendTo(nil)
	tr := transcript.NewWriter(32 << 10)
	fr := newFramer()
	fr.record(tr, time.Unix(0, 0), netip.MustParseAddrPort("127.0.0.2:6881"), bytes.Join([][]byte{hs, ext, bf}, nil))
	bfAt := uint64(len(hs) + len(ext))
	if !tr.Kept(bfAt, bfAt+uint64(len(bf))) {
		t.Fatal("the bitfield is not kept: the bloated extension handshake took its room")
	}
	if len(tr.Bytes()) > 32<<10 {
		t.Fatal("over the bound")
	}
}
