package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/vigil-oss/vigil/internal/digest"
)

// amuleHello is an OP_HELLO as aMule 2.3.3 sends it (BaseClient.cpp
// SendHelloTypePacket): nick, version 0x3C, UDP ports, CT_EMULE_VERSION
// 0x03040d80 (compatible client 3 = aMule, 2.3.3), misc options 1 and 2,
// compat options, then the server address.
func amuleHello() Hello {
	var uh [16]byte
	for i := range uh {
		uh[i] = byte(0xA0 + i)
	}
	uh[5], uh[14] = 14, 111
	return Hello{
		UserHash: uh, ClientID: AddrToID(netip.MustParseAddr("100.64.1.2")), Port: 4662,
		Tags: []Tag{
			StrTag(CTName, "http://www.aMule.org"),
			IntTag(CTVersion, EDonkeyVersion),
			IntTag(CTEmuleUDP, 4672<<16|4672),
			IntTag(CTEmuleVersion, 0x03040d80),
			IntTag(CTEmuleMisc1, 0x34131200),
			IntTag(CTEmuleMisc2, 0x00000438),
			IntTag(CTEmuleCompat, 1),
		},
		ServerIP: AddrToID(netip.MustParseAddr("100.64.0.1")), ServerPort: 4661,
	}
}

func TestHelloDecodesAMuleAndItsVersion(t *testing.T) {
	h := amuleHello()
	got, err := DecodeHello(h.AppendTo(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	c := got.Client()
	if c.Name != "aMule" || c.Version != "2.3.3" || c.Compat != 3 {
		t.Fatalf("client = %q %q compat %d, want aMule 2.3.3 compat 3", c.Name, c.Version, c.Compat)
	}
	if c.ListenPort != 4662 || c.UDPPort != 4672 || c.KadPort != 4672 || c.KadVersion != 8 {
		t.Fatalf("ports = %+v", c)
	}
	if got.UserHash != h.UserHash {
		t.Fatalf("user hash %x, want %x", got.UserHash, h.UserHash)
	}
	a, ok := IDToAddr(got.ClientID)
	if !ok || a != netip.MustParseAddr("100.64.1.2") {
		t.Fatalf("client id %08x = %v %v", got.ClientID, a, ok)
	}
}

func TestHelloEMuleVersionHasALetter(t *testing.T) {
	h := Hello{Tags: []Tag{IntTag(CTEmuleVersion, 0<<24|0<<17|50<<10|0<<7)}}
	if c := h.Client(); c.Name != "eMule" || c.Version != "0.50a" {
		t.Fatalf("got %q %q, want eMule 0.50a", c.Name, c.Version)
	}
}

func TestHelloAnswerHasNoHashLengthByte(t *testing.T) {
	h := amuleHello()
	h.Answer = true
	b := h.AppendTo(nil)
	if _, err := DecodeHello(b, false); err == nil {
		t.Fatal("a hello answer decoded as a hello")
	}
	if _, err := DecodeHello(b, true); err != nil {
		t.Fatal(err)
	}
}

func TestCompactAndNamedTagsDecode(t *testing.T) {
	tags := []Tag{
		{Form: FormCompact, ID: CTName, Type: TagStr1 + 4, Str: "hello"},
		{Form: FormCompact, ID: CTVersion, Type: TagUint8, Int: 0x3C},
		{Form: FormName, Name: "users", Type: TagUint32, Int: 7},
		{Form: FormID, ID: 0x55, Type: TagBlob, Raw: []byte{1, 2, 3}},
	}
	b := appendTags(nil, tags)
	r := newReader(b)
	got := readTags(r)
	if err := r.end("tags"); err != nil {
		t.Fatal(err)
	}
	if out := appendTags(nil, got); !bytes.Equal(out, b) {
		t.Fatalf("re-encoded %x, want %x", out, b)
	}
	if got[0].Str != "hello" || !got[0].IsStr() || got[2].Name != "users" || got[2].Int != 7 {
		t.Fatalf("tags = %v", got)
	}
}

func TestTagCountBeyondBytesIsRefusedBeforeAllocating(t *testing.T) {
	b := appendU32(nil, 0xFFFFFFFF)
	r := newReader(b)
	if tags := readTags(r); tags != nil || !errors.Is(r.Err, ErrMalformed) {
		t.Fatalf("tags %v err %v", tags, r.Err)
	}
}

func TestBlobLongerThanPacketIsMalformed(t *testing.T) {
	b := append([]byte{TagBlob, 1, 0, 0x99}, appendU32(nil, 1<<30)...)
	r := newReader(b)
	readTag(r)
	if !errors.Is(r.Err, ErrMalformed) {
		t.Fatalf("err %v", r.Err)
	}
}

func TestPacketRoundTripAndPartialInput(t *testing.T) {
	pkt := Append(nil, ProtoEDonkey, OpSetReqFileID, bytes.Repeat([]byte{7}, 16))
	for n := 0; n < len(pkt); n++ {
		if _, used, err := Decode(pkt[:n], DefaultLimits()); used != 0 || err != nil {
			t.Fatalf("prefix %d: used %d err %v", n, used, err)
		}
	}
	p, used, err := Decode(pkt, DefaultLimits())
	if err != nil || used != len(pkt) || p.Opcode != OpSetReqFileID || len(p.Payload) != 16 {
		t.Fatalf("p %+v used %d err %v", p, used, err)
	}
}

func TestPacketLongerThanLimitIsRefusedFromItsHeader(t *testing.T) {
	h := []byte{ProtoEDonkey, 0, 0, 0, 0x10, OpHello} // 256 MiB announced
	if _, err := ParseHeader(h, DefaultLimits()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	if _, err := ParseHeader([]byte{0x47, 'E', 'T', ' ', '/', ' '}, DefaultLimits()); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err %v, want ErrProtocol", err)
	}
}

// TestPackedBombIsRefusedAtItsBound: 16 MiB of zeros packed into a packet
// of about 16 KiB must stop at the bound, not inflate.
func TestPackedBombIsRefusedAtItsBound(t *testing.T) {
	bomb := Deflate(make([]byte, 16<<20))
	if len(bomb) > 32<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	pkt := Append(nil, ProtoPacked, OpQueueRanking, bomb)
	_, _, err := Decode(pkt, DefaultLimits())
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v, want ErrTooLarge", err)
	}
	small := AppendPacked(nil, OpQueueRanking, []byte{5, 0})
	p, _, err := Decode(small, DefaultLimits())
	if err != nil || !p.Packed || p.Proto != ProtoEMule || !bytes.Equal(p.Payload, []byte{5, 0}) {
		t.Fatalf("p %+v err %v", p, err)
	}
}

func TestPackedStreamWithTrailingGarbageOrBadChecksumIsMalformed(t *testing.T) {
	z := Deflate([]byte("queue"))
	bad := append([]byte(nil), z...)
	bad[len(bad)-1] ^= 0xFF
	if _, err := Inflate(bad, 1000); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad checksum: err %v", err)
	}
}

func TestFileStatusRaggedMapIsMalformed(t *testing.T) {
	var h [16]byte
	ok := FileStatus{Hash: h, Count: 10, Bits: []byte{0xFF, 0x03}}.AppendTo(nil)
	if _, err := DecodeFileStatus(ok); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{ok[:len(ok)-1], append(append([]byte(nil), ok...), 0)} {
		if _, err := DecodeFileStatus(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%d bytes: err %v, want ErrMalformed", len(b), err)
		}
	}
}

func TestJudgePartMaps(t *testing.T) {
	const ps = PartSize
	size3 := int64(2*ps + 5) // 3 parts, status count 3
	sizeX := int64(2 * ps)   // 2 parts, status count 3 (an empty third)
	cases := []struct {
		name      string
		size      int64
		st        FileStatus
		have, tot int
		complete  bool
		malformed bool
	}{
		{"count 0 is the whole file", size3, FileStatus{}, 3, 3, true, false},
		{"count 0 with the size unknown", -1, FileStatus{}, -1, -1, true, false},
		{"all three parts", size3, FileStatus{Count: 3, Bits: []byte{0x07}}, 3, 3, true, false},
		{"two of three", size3, FileStatus{Count: 3, Bits: []byte{0x05}}, 2, 3, false, false},
		{"none", size3, FileStatus{Count: 3, Bits: []byte{0}}, 0, 3, false, false},
		{"spare bits set: a liar is never complete", size3, FileStatus{Count: 3, Bits: []byte{0xFF}}, 3, 3, false, true},
		{"wrong count", size3, FileStatus{Count: 16, Bits: []byte{0xFF, 0xFF}}, 3, 3, false, true},
		{"wrong count, one valid part", size3, FileStatus{Count: 9, Bits: []byte{0x01, 0x01}}, 1, 3, false, true},
		{"exact multiple, empty part bit set", sizeX, FileStatus{Count: 3, Bits: []byte{0x07}}, 2, 2, true, false},
		{"exact multiple, empty part bit clear", sizeX, FileStatus{Count: 3, Bits: []byte{0x03}}, 2, 2, true, false},
		{"size unknown: nothing can be checked", -1, FileStatus{Count: 3, Bits: []byte{0x07}}, -1, -1, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pm := c.st.Judge(c.size)
			if pm.Have != c.have || pm.Total != c.tot || pm.Complete() != c.complete || pm.Malformed != c.malformed {
				t.Fatalf("Judge = %+v complete %v; want have %d total %d complete %v malformed %v",
					pm, pm.Complete(), c.have, c.tot, c.complete, c.malformed)
			}
		})
	}
}

func TestPartCountsFollowEMule(t *testing.T) {
	for _, c := range []struct {
		size              int64
		parts, status, hs int
	}{
		{1, 1, 1, 0}, {PartSize - 1, 1, 1, 0}, {PartSize, 1, 2, 2}, {PartSize + 1, 2, 2, 2},
		{2 * PartSize, 2, 3, 3}, {2*PartSize + 1, 3, 3, 3},
	} {
		if Parts(c.size) != c.parts || StatusPartCount(c.size) != c.status || HashSetCount(c.size) != c.hs {
			t.Errorf("size %d: parts %d status %d hashset %d; want %d %d %d", c.size,
				Parts(c.size), StatusPartCount(c.size), HashSetCount(c.size), c.parts, c.status, c.hs)
		}
	}
}

// TestPartHashesGiveTheDigestPackagesED2K checks the part hashes and
// their combination against internal/digest (itself checked against
// rhash), for one part, several, and an exact multiple of the part size.
func TestPartHashesGiveTheDigestPackagesED2K(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int64{1000, PartSize, 2*PartSize + 77} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := digest.NewED2K()
		want.Write(data)
		var wantHash [16]byte
		copy(wantHash[:], want.Sum(nil))

		var hs HashSet
		hs.Hash = wantHash
		for i := 0; i < Parts(size); i++ {
			s, e := PartRange(size, i)
			hs.Hashes = append(hs.Hashes, PartHash(data[s:e]))
		}
		if size%PartSize == 0 {
			hs.Hashes = append(hs.Hashes, PartHash(nil))
		}
		if got := FileHashOf(hs.Hashes); got != wantHash {
			t.Fatalf("size %d: file hash %x, want %x", size, got, wantHash)
		}
		if size < PartSize {
			hs.Hashes = nil
		}
		if len(hs.Hashes) != HashSetCount(size) || !CheckHashSet(wantHash, hs) {
			t.Fatalf("size %d: hash set of %d not accepted", size, len(hs.Hashes))
		}
		for i := 0; i < Parts(size); i++ {
			s, e := PartRange(size, i)
			if h, ok := ExpectedPartHash(wantHash, size, hs, i); !ok || h != PartHash(data[s:e]) {
				t.Fatalf("size %d part %d: expected hash %x %v", size, i, h, ok)
			}
		}
		if len(hs.Hashes) > 0 {
			bad := HashSet{Hash: wantHash, Hashes: append([][16]byte(nil), hs.Hashes...)}
			bad.Hashes[0][0] ^= 1
			if CheckHashSet(wantHash, bad) {
				t.Fatalf("size %d: a forged hash set was accepted", size)
			}
		}
	}
}

func TestFoundSourcesLengthMustMatchCount(t *testing.T) {
	m := FoundSources{Sources: []Source{{ID: AddrToID(netip.MustParseAddr("127.0.0.5")), Port: 4662}, {ID: 1234, Port: 4662}}}
	b := m.AppendTo(nil)
	got, err := DecodeFoundSources(b, false)
	if err != nil {
		t.Fatal(err)
	}
	if ap, ok := got.Sources[0].Addr(); !ok || ap != netip.MustParseAddrPort("127.0.0.5:4662") {
		t.Fatalf("source 0 = %v %v", ap, ok)
	}
	if _, ok := got.Sources[1].Addr(); ok {
		t.Fatal("a low id gave an address")
	}
	if _, err := DecodeFoundSources(b[:len(b)-1], false); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short: err %v", err)
	}
}

func TestGetSourcesForms(t *testing.T) {
	for _, size := range []int64{-1, 5000, 5 << 30} {
		b := GetSources{Size: size}.AppendTo(nil)
		got, err := DecodeGetSources(b)
		if err != nil || got.Size != size {
			t.Fatalf("size %d: got %d err %v", size, got.Size, err)
		}
	}
}

func TestServerMetParses(t *testing.T) {
	m := ServerMet{Version: 0x0E, Servers: []ServerEntry{
		{Addr: netip.MustParseAddrPort("127.0.0.1:4661"), Tags: []Tag{StrTag(STServerName, "lab server"), {Form: FormName, Name: "users", Type: TagUint32, Int: 3}}},
		{Addr: netip.MustParseAddrPort("100.64.0.1:4242")},
	}}
	b := m.AppendTo(nil)
	got, err := ParseServerMet(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Servers) != 2 || got.Servers[0].Name() != "lab server" || got.Servers[1].Addr != netip.MustParseAddrPort("100.64.0.1:4242") {
		t.Fatalf("got %+v", got)
	}
	if _, err := ParseServerMet(append([]byte{0x0E}, appendU32(nil, 1<<31)...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("huge count: err %v", err)
	}
}
