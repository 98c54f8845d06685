package peerwire

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzDecoder decodes a stream of messages and re-encodes each one: the
// concatenation must equal the bytes the decoder consumed.
func FuzzDecoder(f *testing.F) {
	f.Add(frame(HaveAll))
	f.Add(append(frame(Extended, append([]byte{0}, "d1:md6:ut_pexi1eee"...)...), frame(Port, 0x1a, 0xe1)...))
	f.Add(append(frame(Bitfield, 0xff, 0xc0), frame(Have, 0, 0, 0, 1)...))
	f.Add(append([]byte{0, 0, 0, 0}, frame(Request, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0)...))
	f.Add(frame(Piece, append([]byte{0, 0, 0, 2, 0, 0, 0, 0}, "block"...)...))
	f.Add(frame(Hashes, make([]byte, 48+32)...))
	f.Add(frame(99, 1, 2, 3))
	f.Fuzz(func(t *testing.T, in []byte) {
		// A small read buffer so that messages straddle refills.
		d := NewDecoder(bufio.NewReaderSize(bytes.NewReader(in), 16), 1<<12)
		var out []byte
		var m Message
		for d.Decode(&m) == nil {
			out = m.AppendTo(out)
		}
		if !bytes.Equal(out, in[:len(out)]) {
			t.Fatalf("re-encoding %x gave %x", in[:len(out)], out)
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add((&Handshake{Reserved: transmissionReserved, InfoHash: testInfoHash, PeerID: trPeerID}).AppendTo(nil))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadHandshake(bytes.NewReader(in))
		if err != nil {
			return
		}
		if out := h.AppendTo(nil); !bytes.Equal(out, in[:HandshakeLen]) {
			t.Fatalf("re-encoding %x gave %x", in[:HandshakeLen], out)
		}
	})
}

// FuzzExtHandshake checks decode, encode, decode gives the same handshake.
func FuzzExtHandshake(f *testing.F) {
	f.Add([]byte("d1:ei0e1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei2345e1:pi51413e4:reqqi512e11:upload_onlyi1e1:v17:Transmission 3.006:yourip4:\x7f\x00\x00\x01e"))
	f.Add([]byte("d4:ipv44:\x7f\x00\x00\x014:ipv616:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01e"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ParseExtHandshake(in)
		if err != nil {
			return
		}
		out := h.AppendTo(nil)
		back, err := ParseExtHandshake(out)
		if err != nil {
			t.Fatalf("ParseExtHandshake(AppendTo(%q)) = %v (encoded %q)", in, err, out)
		}
		if diff := extHandshakeDiff(back, h); diff != "" {
			t.Fatalf("round trip of %q: %s", in, diff)
		}
	})
}

func FuzzPEX(f *testing.F) {
	f.Add([]byte("d5:added12:\x7f\x00\x00\x05\x1a\xe1\x7f\x00\x00\x06\xc8\xd57:added.f2:\x06\x117:dropped6:\x7f\x00\x00\x07\x1a\xe3e"))
	f.Add([]byte("d6:added618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe28:added6.f1:\x08e"))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := ParsePEX(in)
		if err != nil {
			return
		}
		out, err := x.AppendTo(nil)
		if err != nil {
			t.Fatalf("AppendTo after ParsePEX(%q): %v", in, err)
		}
		back, err := ParsePEX(out)
		if err != nil {
			t.Fatalf("ParsePEX(AppendTo(%q)) = %v", in, err)
		}
		if diff := pexDiff(back, x); diff != "" {
			t.Fatalf("round trip of %q: %s", in, diff)
		}
	})
}

func FuzzMetadata(f *testing.F) {
	f.Add([]byte("d8:msg_typei0e5:piecei0ee"))
	f.Add([]byte("d8:msg_typei1e5:piecei0e10:total_sizei3eeabc"))
	f.Add([]byte("d8:msg_typei2e5:piecei1ee"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMetadata(in)
		if err != nil {
			return
		}
		out := m.AppendTo(nil)
		back, err := ParseMetadata(out)
		if err != nil {
			t.Fatalf("ParseMetadata(AppendTo(%q)) = %v", in, err)
		}
		if back.Type != m.Type || back.Piece != m.Piece || back.TotalSize != m.TotalSize || !bytes.Equal(back.Data, m.Data) {
			t.Fatalf("round trip of %q: %+v, want %+v", in, back, m)
		}
	})
}
