package peerwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
)

var (
	testInfoHash = [20]byte([]byte("synthetic-infohash-1"))
	trPeerID     = [20]byte([]byte("-TR3000-abcdefghijkl"))
)

// transmissionReserved are the reserved bytes transmission-daemon 3.00
// sends: extension protocol, fast extension and DHT.
var transmissionReserved = Reserved{0, 0, 0, 0, 0, 0x10, 0, 0x05}

func frame(id MsgID, payload ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(payload)))
	b = append(b, byte(id))
	return append(b, payload...)
}

func TestHandshakeRoundTripAndReservedBits(t *testing.T) {
	h := Handshake{Reserved: transmissionReserved, InfoHash: testInfoHash, PeerID: trPeerID}
	b := h.AppendTo(nil)
	if got, want := len(b), HandshakeLen; got != want {
		t.Fatalf("handshake is %d bytes, want %d", got, want)
	}
	if got, want := string(b[:20]), "\x13BitTorrent protocol"; got != want {
		t.Fatalf("header = %q, want %q", got, want)
	}
	back, err := ReadHandshake(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if back != h {
		t.Fatalf("ReadHandshake = %+v, want %+v", back, h)
	}
	if !back.Reserved.Extended() || !back.Reserved.Fast() || !back.Reserved.DHT() || back.Reserved.V2() {
		t.Fatalf("reserved bits of transmission: extended=%v fast=%v dht=%v v2=%v", back.Reserved.Extended(), back.Reserved.Fast(), back.Reserved.DHT(), back.Reserved.V2())
	}
	var r Reserved
	r.SetExtended(true)
	r.SetFast(true)
	r.SetDHT(true)
	if r != transmissionReserved {
		t.Fatalf("setters give %x, want %x", r, transmissionReserved)
	}
	r.SetV2(true)
	r.SetFast(false)
	if !r.V2() || r.Fast() || r[7] != 0x11 {
		t.Fatalf("after SetV2/SetFast(false): %x", r)
	}
}

func TestReadHandshakeRejectsOtherProtocols(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"http", "GET /announce?info_hash=x HTTP/1.1\r\n\r\n" + strings.Repeat("x", 40), ErrBadHandshake},
		{"wrong-length-byte", "\x12BitTorrent protocol" + strings.Repeat("\x00", 48), ErrBadHandshake},
		{"empty", "", io.EOF},
		{"cut-after-header", "\x13BitTorrent protocol\x00\x00", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadHandshake(strings.NewReader(tt.in)); !errors.Is(err, tt.want) {
				t.Fatalf("ReadHandshake = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := ParseHandshake(make([]byte, 67)); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("ParseHandshake(67 bytes) = %v", err)
	}
}

// A session as transmission-daemon 3.00 opens it (NOTES.md): handshake,
// extension handshake, have-all, then its DHT port.
func TestDecoderReadsTransmissionOpening(t *testing.T) {
	var stream []byte
	stream = (&Handshake{Reserved: transmissionReserved, InfoHash: testInfoHash, PeerID: trPeerID}).AppendTo(stream)
	ext := "d1:ei0e1:md11:ut_metadatai3e6:ut_pexi1ee13:metadata_sizei2345e1:pi51413e4:reqqi512e11:upload_onlyi1e1:v17:Transmission 3.006:yourip4:\x7f\x00\x00\x01e"
	stream = append(stream, frame(Extended, append([]byte{0}, ext...)...)...)
	stream = append(stream, frame(HaveAll)...)
	stream = append(stream, frame(Port, 0x1a, 0xe1)...)
	stream = append(stream, 0, 0, 0, 0) // keep-alive

	d := NewDecoder(bufio.NewReader(bytes.NewReader(stream)), 0)
	h, err := d.ReadHandshake()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(h.PeerID[:8]), "-TR3000-"; got != want {
		t.Fatalf("peer id prefix = %q, want %q", got, want)
	}
	var m Message
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.ID != Extended || m.ExtendedID != ExtHandshakeID {
		t.Fatalf("first message = %v/%d, want extended handshake", m.ID, m.ExtendedID)
	}
	eh, err := ParseExtHandshake(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if eh.Client != "Transmission 3.00" || eh.Port != 51413 || eh.MetadataSize != 2345 || eh.ReqQ != 512 || !eh.UploadOnly {
		t.Fatalf("extension handshake = %+v", eh)
	}
	if eh.M[ExtPEX] != 1 || eh.M[ExtMetadata] != 3 || len(eh.M) != 2 {
		t.Fatalf("m = %v", eh.M)
	}
	if got, want := eh.YourIP, netip.MustParseAddr("127.0.0.1"); got != want {
		t.Fatalf("yourip = %v, want %v", got, want)
	}
	if err := d.Decode(&m); err != nil || m.ID != HaveAll {
		t.Fatalf("second message = %v, %v; want have_all", m.ID, err)
	}
	if err := d.Decode(&m); err != nil || m.ID != Port || m.Port != 6881 {
		t.Fatalf("third message = %+v, %v; want port 6881", m, err)
	}
	if err := d.Decode(&m); err != nil || !m.Keepalive {
		t.Fatalf("fourth message = %+v, %v; want keep-alive", m, err)
	}
	if err := d.Decode(&m); err != io.EOF {
		t.Fatalf("after the stream: %v, want io.EOF", err)
	}
}

func TestDecoderRejectsOversizedMessageWithoutAllocatingIt(t *testing.T) {
	var stream []byte
	stream = binary.BigEndian.AppendUint32(stream, 1<<30)
	stream = append(stream, byte(Piece))
	d := NewDecoder(bufio.NewReader(bytes.NewReader(stream)), 1<<14)
	var m Message
	if err := d.Decode(&m); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode = %v, want ErrTooLarge", err)
	}
	if cap(d.buf) > 1<<14 {
		t.Fatalf("decoder grew its buffer to %d bytes", cap(d.buf))
	}
}

func TestDecoderRejectsLengthsThatDoNotFitTheType(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"choke-with-payload", frame(Choke, 1)},
		{"have-short", frame(Have, 0, 0, 1)},
		{"have-long", frame(Have, 0, 0, 0, 1, 2)},
		{"request-short", frame(Request, make([]byte, 11)...)},
		{"cancel-long", frame(Cancel, make([]byte, 13)...)},
		{"reject-short", frame(Reject, make([]byte, 8)...)},
		{"piece-short", frame(Piece, make([]byte, 7)...)},
		{"port-long", frame(Port, 1, 2, 3)},
		{"have-all-with-payload", frame(HaveAll, 0)},
		{"extended-empty", frame(Extended)},
		{"hash-request-short", frame(HashRequest, make([]byte, 47)...)},
		{"hashes-partial-hash", frame(Hashes, make([]byte, 48+31)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDecoder(bufio.NewReader(bytes.NewReader(tt.msg)), 0)
			var m Message
			if err := d.Decode(&m); !errors.Is(err, ErrBadLength) {
				t.Fatalf("Decode = %v, want ErrBadLength", err)
			}
		})
	}
}

func TestDecoderReportsTruncation(t *testing.T) {
	full := frame(Have, 0, 0, 0, 7)
	for cut := 1; cut < len(full); cut++ {
		d := NewDecoder(bufio.NewReader(bytes.NewReader(full[:cut])), 0)
		var m Message
		if err := d.Decode(&m); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: Decode = %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	root := [32]byte([]byte("synthetic-pieces-root-0123456789"))
	tests := []struct {
		name string
		m    Message
		wire []byte
	}{
		{"keepalive", Message{Keepalive: true}, []byte{0, 0, 0, 0}},
		{"choke", Message{ID: Choke}, frame(Choke)},
		{"unchoke", Message{ID: Unchoke}, frame(Unchoke)},
		{"interested", Message{ID: Interested}, frame(Interested)},
		{"not-interested", Message{ID: NotInterested}, frame(NotInterested)},
		{"have", Message{ID: Have, Index: 258}, frame(Have, 0, 0, 1, 2)},
		{"bitfield", Message{ID: Bitfield, Payload: []byte{0xff, 0xc0}}, frame(Bitfield, 0xff, 0xc0)},
		{"request", Message{ID: Request, Index: 1, Begin: 16384, Length: 16384}, frame(Request, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0)},
		{"piece", Message{ID: Piece, Index: 2, Begin: 0, Payload: []byte("block")}, frame(Piece, append([]byte{0, 0, 0, 2, 0, 0, 0, 0}, "block"...)...)},
		{"cancel", Message{ID: Cancel, Index: 1, Begin: 2, Length: 3}, frame(Cancel, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3)},
		{"port", Message{ID: Port, Port: 6881}, frame(Port, 0x1a, 0xe1)},
		{"suggest", Message{ID: Suggest, Index: 9}, frame(Suggest, 0, 0, 0, 9)},
		{"have-all", Message{ID: HaveAll}, frame(HaveAll)},
		{"have-none", Message{ID: HaveNone}, frame(HaveNone)},
		{"reject", Message{ID: Reject, Index: 1, Begin: 2, Length: 3}, frame(Reject, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3)},
		{"allowed-fast", Message{ID: AllowedFast, Index: 4}, frame(AllowedFast, 0, 0, 0, 4)},
		{"extended", Message{ID: Extended, ExtendedID: 3, Payload: []byte("d8:msg_typei0e5:piecei0ee")}, frame(Extended, append([]byte{3}, "d8:msg_typei0e5:piecei0ee"...)...)},
		{"hash-request", Message{ID: HashRequest, PiecesRoot: root, BaseLayer: 0, Index: 0, Length: 2, ProofLayers: 1}, frame(HashRequest, append(root[:], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1)...)},
		{"hashes", Message{ID: Hashes, PiecesRoot: root, Length: 1, Payload: root[:]}, frame(Hashes, append(append(root[:], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0), root[:]...)...)},
		{"unknown-type-kept", Message{ID: 99, Payload: []byte{1, 2, 3}}, frame(99, 1, 2, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.AppendTo(nil); !bytes.Equal(got, tt.wire) {
				t.Fatalf("AppendTo = %x, want %x", got, tt.wire)
			}
			d := NewDecoder(bufio.NewReader(bytes.NewReader(tt.wire)), 0)
			var m Message
			if err := d.Decode(&m); err != nil {
				t.Fatal(err)
			}
			if got := m.AppendTo(nil); !bytes.Equal(got, tt.wire) {
				t.Fatalf("decoded %+v re-encodes to %x, want %x", m, got, tt.wire)
			}
			if m.ID != tt.m.ID || m.Index != tt.m.Index || m.Begin != tt.m.Begin || m.Length != tt.m.Length || m.Port != tt.m.Port || !bytes.Equal(m.Payload, tt.m.Payload) {
				t.Fatalf("Decode = %+v, want %+v", m, tt.m)
			}
		})
	}
}

func TestBitfieldHelpers(t *testing.T) {
	tests := []struct {
		name      string
		bf        []byte
		pieces    int
		valid     bool
		count     int
		complete  bool
		has, hasn int // a piece it has and one it has not (-1: none)
	}{
		{"complete-10", []byte{0xff, 0xc0}, 10, true, 10, true, 9, 10},
		{"partial-10", []byte{0x80, 0x40}, 10, true, 2, false, 9, 1},
		{"spare-bit-set", []byte{0xff, 0xe0}, 10, false, 11, false, 0, 11},
		{"too-short", []byte{0xff}, 10, false, 8, false, 7, 8},
		{"too-long", []byte{0xff, 0xc0, 0x00}, 10, false, 10, false, 0, 23},
		{"exact-8", []byte{0xff}, 8, true, 8, true, 7, 8},
		{"none-0", []byte{}, 0, true, 0, true, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBitfield(tt.bf, tt.pieces)
			if tt.valid != (err == nil) {
				t.Fatalf("CheckBitfield = %v, want valid=%v", err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrBadBitfield) {
				t.Fatalf("CheckBitfield error %v does not wrap ErrBadBitfield", err)
			}
			if got := CountPieces(tt.bf); got != tt.count {
				t.Fatalf("CountPieces = %d, want %d", got, tt.count)
			}
			if got := Complete(tt.bf, tt.pieces); got != tt.complete {
				t.Fatalf("Complete = %v, want %v", got, tt.complete)
			}
			if tt.has >= 0 && !HasPiece(tt.bf, tt.has) {
				t.Fatalf("HasPiece(%d) = false", tt.has)
			}
			if HasPiece(tt.bf, tt.hasn) {
				t.Fatalf("HasPiece(%d) = true", tt.hasn)
			}
		})
	}
	bf := make([]byte, BitfieldLen(12))
	SetPiece(bf, 0)
	SetPiece(bf, 11)
	SetPiece(bf, 99) // ignored
	if got, want := bf, []byte{0x80, 0x10}; !bytes.Equal(got, want) {
		t.Fatalf("SetPiece gives %x, want %x", got, want)
	}
}

func TestExtHandshakeRoundTrip(t *testing.T) {
	h := ExtHandshake{
		M:            map[string]uint8{ExtMetadata: 2, ExtPEX: 1, "ut_holepunch": 0},
		Port:         42069,
		Client:       "vigil-test 0.0.0 (anacrolix/torrent v1.59.1)",
		YourIP:       netip.MustParseAddr("::1"),
		IPv4:         netip.MustParseAddr("127.0.0.4"),
		IPv6:         netip.MustParseAddr("::1"),
		ReqQ:         250,
		MetadataSize: 40000,
		UploadOnly:   true,
	}
	b := h.AppendTo(nil)
	back, err := ParseExtHandshake(b)
	if err != nil {
		t.Fatalf("ParseExtHandshake(%q): %v", b, err)
	}
	if diff := extHandshakeDiff(back, h); diff != "" {
		t.Fatal(diff)
	}
	if err := bencodeSorted(b); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
}

func TestParseExtHandshakeRejectsMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"not-a-dict", "li1ee"},
		{"m-not-dict", "d1:mi1ee"},
		{"m-id-not-int", "d1:md6:ut_pex1:1ee"},
		{"m-id-too-big", "d1:md6:ut_pexi256eee"},
		{"port-too-big", "d1:pi70000ee"},
		{"yourip-5-bytes", "d6:yourip5:abcdee"},
		{"ipv4-16-bytes", "d4:ipv416:abcdefghijklmnope"},
		{"duplicate-key", "d1:pi1e1:pi2ee"},
		{"trailing", "d1:pi1eex"},
		{"truncated", "d1:pi1e"},
		{"negative-metadata-size", "d13:metadata_sizei-1ee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseExtHandshake([]byte(tt.in)); !errors.Is(err, ErrBadExtension) {
				t.Fatalf("ParseExtHandshake(%q) = %v, want ErrBadExtension", tt.in, err)
			}
		})
	}
}

func TestPEXRoundTripAndFlags(t *testing.T) {
	x := PEX{
		Added: []PEXPeer{
			{Addr: netip.MustParseAddrPort("127.0.0.5:6881"), Flags: PEXSeed | PEXUTP},
			{Addr: netip.MustParseAddrPort("127.0.0.6:51413"), Flags: PEXReachable | PEXPrefersEncryption},
		},
		Added6:   []PEXPeer{{Addr: netip.MustParseAddrPort("[::1]:6882"), Flags: PEXHolepunch}},
		Dropped:  []netip.AddrPort{netip.MustParseAddrPort("127.0.0.7:6883")},
		Dropped6: []netip.AddrPort{netip.MustParseAddrPort("[::1]:6884")},
	}
	b, err := x.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "d5:added12:\x7f\x00\x00\x05\x1a\xe1\x7f\x00\x00\x06\xc8\xd57:added.f2:\x06\x116:added618:" + string(netip.IPv6Loopback().AsSlice()) + "\x1a\xe28:added6.f1:\x087:dropped6:\x7f\x00\x00\x07\x1a\xe38:dropped618:" + string(netip.IPv6Loopback().AsSlice()) + "\x1a\xe4e"
	if got := string(b); got != want {
		t.Fatalf("AppendTo =\n%q\nwant\n%q", got, want)
	}
	back, err := ParsePEX(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := pexDiff(back, x); diff != "" {
		t.Fatal(diff)
	}
	// Without flags, peers decode with zero flags.
	noFlags, err := ParsePEX([]byte("d5:added6:\x7f\x00\x00\x05\x1a\xe1e"))
	if err != nil || len(noFlags.Added) != 1 || noFlags.Added[0].Flags != 0 {
		t.Fatalf("ParsePEX without flags = %+v, %v", noFlags, err)
	}
}

func TestParsePEXRejectsMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"added-7-bytes", "d5:added7:abcdefge"},
		{"added6-6-bytes", "d6:added66:abcdefe"},
		{"flags-count-mismatch", "d5:added6:abcdef7:added.f2:\x00\x00e"},
		{"flags-without-peers", "d7:added.f1:\x00e"},
		{"dropped-not-string", "d7:droppedi1ee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParsePEX([]byte(tt.in)); !errors.Is(err, ErrBadExtension) {
				t.Fatalf("ParsePEX(%q) = %v, want ErrBadExtension", tt.in, err)
			}
		})
	}
	if _, err := (&PEX{Added: []PEXPeer{{Addr: netip.MustParseAddrPort("[::1]:1")}}}).AppendTo(nil); !errors.Is(err, ErrBadExtension) {
		t.Fatalf("AppendTo(IPv6 in added) = %v, want ErrBadExtension", err)
	}
}

func TestMetadataMessages(t *testing.T) {
	piece := bytes.Repeat([]byte{0xa5}, 100)
	tests := []struct {
		name string
		m    Metadata
		wire string
	}{
		{"request", Metadata{Type: MetadataRequest, Piece: 0}, "d8:msg_typei0e5:piecei0ee"},
		{"reject", Metadata{Type: MetadataReject, Piece: 1}, "d8:msg_typei2e5:piecei1ee"},
		{"data-last-piece", Metadata{Type: MetadataData, Piece: 1, TotalSize: MetadataPieceLen + 100, Data: piece}, "d8:msg_typei1e5:piecei1e10:total_sizei16484ee" + string(piece)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.m.AppendTo(nil)); got != tt.wire {
				t.Fatalf("AppendTo = %q, want %q", got, tt.wire)
			}
			back, err := ParseMetadata([]byte(tt.wire))
			if err != nil {
				t.Fatal(err)
			}
			if back.Type != tt.m.Type || back.Piece != tt.m.Piece || back.TotalSize != tt.m.TotalSize || !bytes.Equal(back.Data, tt.m.Data) {
				t.Fatalf("ParseMetadata = %+v, want %+v", back, tt.m)
			}
		})
	}
}

func TestParseMetadataRejectsMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"unknown-type", "d8:msg_typei3e5:piecei0ee"},
		{"no-piece", "d8:msg_typei0ee"},
		{"data-without-total", "d8:msg_typei1e5:piecei0eexx"},
		{"data-short-middle-piece", "d8:msg_typei1e5:piecei0e10:total_sizei20000eexx"},
		{"data-longer-than-total", "d8:msg_typei1e5:piecei0e10:total_sizei1eexx"},
		{"piece-beyond-total", "d8:msg_typei1e5:piecei2e10:total_sizei100eex"},
		{"request-with-trailing", "d8:msg_typei0e5:piecei0eex"},
		{"negative-piece", "d8:msg_typei0e5:piecei-1ee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseMetadata([]byte(tt.in)); !errors.Is(err, ErrBadExtension) {
				t.Fatalf("ParseMetadata(%q) = %v, want ErrBadExtension", tt.in, err)
			}
		})
	}
}
