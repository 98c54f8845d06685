package kadwire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// TestIDWireOrderIsFourLittleEndianWords: aMule writes a CUInt128 as four
// little-endian 32-bit words, most significant first, and a file's Kad id
// is its ed2k hash read big-endian (NOTES.md).
func TestIDWireOrderIsFourLittleEndianWords(t *testing.T) {
	var h [16]byte
	for i := range h {
		h[i] = byte(i)
	}
	got := appendID(nil, FileID(h))
	want := []byte{3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12}
	if !bytes.Equal(got, want) {
		t.Fatalf("wire %x, want %x", got, want)
	}
	r := newReader(got)
	if back := r.id("id"); back != FileID(h) {
		t.Fatalf("read back %x", back)
	}
}

// TestKadIPIsHostOrderLittleEndian: 127.0.0.1 is the number 0x7F000001,
// written 01 00 00 7F.
func TestKadIPIsHostOrderLittleEndian(t *testing.T) {
	c := Contact{Addr: netip.MustParseAddrPort("127.0.0.1:4672"), TCPPort: 4662, Version: 8}
	b := appendContact(nil, c)
	if !bytes.Equal(b[16:20], []byte{1, 0, 0, 0x7F}) {
		t.Fatalf("ip bytes %x", b[16:20])
	}
	r := newReader(b)
	if got := readContact(r); got != c {
		t.Fatalf("got %+v", got)
	}
}

func TestDistanceAndTolerance(t *testing.T) {
	var a, b ID
	a[0], b[0] = 0x80, 0x81
	d := a.Xor(b)
	if d.Top32() != 0x01000000 || d.LeadingZeros() != 7 || d.Top32() > SearchTolerance {
		t.Fatalf("d %x top %x lz %d", d, d.Top32(), d.LeadingZeros())
	}
	if a.Cmp(b) >= 0 || a.Bit(0) != 1 || a.Bit(1) != 0 {
		t.Fatal("compare or bit")
	}
}

func TestResLengthMustBeExact(t *testing.T) {
	m := Res{Contacts: []Contact{{Addr: netip.MustParseAddrPort("127.0.0.2:1"), Version: 8}}}
	b := m.AppendTo(nil)
	if _, err := DecodeRes(b); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRes(append(b, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("long: %v", err)
	}
	b[16] = 200 // count beyond the bytes
	if _, err := DecodeRes(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("count: %v", err)
	}
}

func TestSourceResultDecodes(t *testing.T) {
	res := Result{Tags: []Tag{
		IntTag(TagSourceIP, uint64(IPToUint32(netip.MustParseAddr("127.0.0.9")))),
		IntTag(TagSourceType, 1), IntTag(TagSourcePort, 4662), IntTag(TagSourceUPort, 4672),
		IntTag(TagFileSize, 12345),
	}}
	s, ok := res.Source()
	if !ok || !s.Reachable() || s.Addr != netip.MustParseAddrPort("127.0.0.9:4662") || s.UDPPort != 4672 || s.Size != 12345 {
		t.Fatalf("source %+v %v", s, ok)
	}
	fw := Result{Tags: []Tag{IntTag(TagSourceType, 3), IntTag(TagSourceIP, 1), IntTag(TagSourcePort, 1)}}
	if s, _ := fw.Source(); s.Reachable() {
		t.Fatal("a firewalled source is reachable")
	}
}

func TestObfuscatedDatagramIsRefused(t *testing.T) {
	if _, err := Decode([]byte{0x17, 0x99, 1, 2, 3}, DefaultMaxUnpacked); !errors.Is(err, ErrObfuscated) {
		t.Fatalf("err %v", err)
	}
}

func TestPackedDatagramBombIsRefused(t *testing.T) {
	b := EncodePacked(OpSearchRes, make([]byte, 8<<20))
	if _, err := Decode(b, DefaultMaxUnpacked); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
	p, err := Decode(EncodePacked(OpPong, []byte{1, 2}), DefaultMaxUnpacked)
	if err != nil || !p.Packed || !bytes.Equal(p.Payload, []byte{1, 2}) {
		t.Fatalf("p %+v err %v", p, err)
	}
}

func TestHelloOptions(t *testing.T) {
	h := Hello{Version: 8, Tags: []Tag{IntTag(TagSourceUPort, 4672), IntTag(TagKadMisc, 0x05)}}
	got, err := DecodeHello(h.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !got.AckRequested() || !got.UDPFirewalled() || got.UDPPort() != 4672 {
		t.Fatalf("hello %+v", got)
	}
}
