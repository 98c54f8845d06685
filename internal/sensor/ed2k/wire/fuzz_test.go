package wire

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var writeSeeds = flag.Bool("seeds", false, "rewrite the named fuzz seeds under testdata/fuzz")

// seeds are the named seed inputs of each fuzz target, checked in under
// testdata/fuzz/<target>/<name> (go test -run TestFuzzSeeds -seeds
// rewrites them).
func seeds() map[string]map[string][]byte {
	h := amuleHello()
	ha := h
	ha.Answer = true
	var fh [16]byte
	copy(fh[:], "0123456789abcdef")
	pk := func(proto, op byte, p []byte) []byte { return Append(nil, proto, op, p) }
	msg := func(op byte, p []byte) []byte { return append([]byte{op}, p...) }
	return map[string]map[string][]byte{
		"FuzzDecode": {
			"amule-hello":           pk(ProtoEDonkey, OpHello, h.AppendTo(nil)),
			"file-status-then-name": append(pk(ProtoEDonkey, OpFileStatus, FileStatus{Hash: fh, Count: 3, Bits: []byte{5}}.AppendTo(nil)), pk(ProtoEDonkey, OpReqFileNameAns, FileName{Hash: fh, Name: "synthetic.bin"}.AppendTo(nil))...),
			"packed-queue-ranking":  AppendPacked(nil, OpQueueRanking, []byte{3, 0}),
			"packed-bomb":           pk(ProtoPacked, OpQueueRanking, Deflate(make([]byte, 64<<10))),
			"http-get":              []byte("GET / HTTP/1.1\r\n\r\n"),
		},
		"FuzzClientMessage": {
			"hello-amule-2.3.3":           msg(OpHello, h.AppendTo(nil)),
			"hello-answer-amule-2.3.3":    msg(OpHelloAnswer, ha.AppendTo(nil)),
			"file-status-complete":        msg(OpFileStatus, FileStatus{Hash: fh}.AppendTo(nil)),
			"file-status-spare-bits":      msg(OpFileStatus, FileStatus{Hash: fh, Count: 3, Bits: []byte{0xFF}}.AppendTo(nil)),
			"file-name":                   msg(OpReqFileNameAns, FileName{Hash: fh, Name: "synthetic.bin"}.AppendTo(nil)),
			"hash-set-2":                  msg(OpHashSetAnswer, HashSet{Hash: fh, Hashes: [][16]byte{fh, fh}}.AppendTo(nil)),
			"sending-part":                msg(OpSendingPart, SendingPart{Hash: fh, Start: 10, End: 14, Data: []byte("abcd")}.AppendTo(nil)),
			"request-parts":               msg(OpRequestParts, RequestParts{Hash: fh, Start: [3]uint32{0, 10, 0}, End: [3]uint32{10, 20, 0}}.AppendTo(nil)),
			"no-file":                     msg(OpFileReqAnsNoFile, fh[:]),
			"hello-with-mldonkey-trailer": msg(OpHello, Hello{Tags: []Tag{StrTag(CTName, "ml")}, Trailer: []byte("MLDK")}.AppendTo(nil)),
		},
		"FuzzServerMessage": {
			"login":                    msg(OpLoginRequest, Login{UserHash: fh, Port: 4662, Tags: []Tag{StrTag(CTName, "vigil"), IntTag(CTVersion, EDonkeyVersion), IntTag(CTServerFlags, CapZlib)}}.AppendTo(nil)),
			"id-change-8":              msg(OpIDChange, IDChange{ID: 0x0100007F, Flags: 1, Fields: 2}.AppendTo(nil)),
			"id-change-20":             msg(OpIDChange, IDChange{ID: 0x0100007F, Flags: 1, AuxPort: 4661, ReportedIP: 0x0100007F, Fields: 5}.AppendTo(nil)),
			"server-message":           msg(OpServerMessage, ServerMessage{Text: "server version 17.15 (lab)"}.AppendTo(nil)),
			"server-status":            msg(OpServerStatus, ServerStatus{Users: 3, Files: 9}.AppendTo(nil)),
			"get-sources-size":         msg(OpGetSources, GetSources{Hash: fh, Size: 12345}.AppendTo(nil)),
			"get-sources-large":        msg(OpGetSources, GetSources{Hash: fh, Size: 5 << 30}.AppendTo(nil)),
			"found-sources":            msg(OpFoundSources, FoundSources{Hash: fh, Sources: []Source{{ID: 0x0500007F, Port: 4662}, {ID: 77, Port: 1}}}.AppendTo(nil)),
			"found-sources-obfu":       msg(OpFoundSourcesObf, FoundSources{Obfuscated: true, Hash: fh, Sources: []Source{{ID: 0x0500007F, Port: 4662, Crypt: 0x81, UserHash: fh}}}.AppendTo(nil)),
			"search-one-word":          msg(OpSearchRequest, KeywordSearch([]string{"alpha"}).AppendTo(nil)),
			"search-and-3":             msg(OpSearchRequest, KeywordSearch([]string{"lab", "keyword", "alpha"}).AppendTo(nil)),
			"search-meta-num":          msg(OpSearchRequest, SearchRequest{Expr: &SearchExpr{Type: SearchOperator, Op: SearchNot, Left: &SearchExpr{Type: SearchMeta, Str: "Video", Tag: "\x03"}, Right: &SearchExpr{Type: SearchNum64, Num: 5 << 30, Cmp: 1, Tag: "\x02"}}}.AppendTo(nil)),
			"search-result":            msg(OpSearchResult, SearchResult{Files: []OfferedFile{{Hash: fh, ClientID: 0x0500007F, Port: 4662, Tags: []Tag{StrTag(FTFileName, "lab-keyword-alpha.bin"), IntTag(FTFileSize, 5000), IntTag(FTSources, 3)}}}, HasMore: true}.AppendTo(nil)),
			"search-result-huge-count": msg(OpSearchResult, []byte{0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3}),
			"offer-files":              msg(OpOfferFiles, OfferFiles{Files: []OfferedFile{{Hash: fh, ClientID: 0x0500007F, Port: 4662, Tags: []Tag{StrTag(FTFileName, "a.bin"), IntTag(FTFileSize, 5000)}}}}.AppendTo(nil)),
		},
		"FuzzServerMet": {
			"two-servers": ServerMet{Version: 0x0E, Servers: []ServerEntry{
				{Addr: netip.MustParseAddrPort("127.0.0.1:4661"), Tags: []Tag{StrTag(STServerName, "lab"), {Form: FormName, Name: "users", Type: TagUint32, Int: 3}}},
				{Addr: netip.MustParseAddrPort("100.64.0.1:4242")}}}.AppendTo(nil),
			"old-header-empty": {0xE0, 0, 0, 0, 0},
		},
	}
}

func TestFuzzSeeds(t *testing.T) {
	for target, named := range seeds() {
		for name, b := range named {
			path := filepath.Join("testdata", "fuzz", target, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if *writeSeeds {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("seed %s is missing or stale (go test -run TestFuzzSeeds -seeds): %v", path, err)
			}
		}
	}
}

// FuzzDecode decodes a stream of packets and re-encodes each one that did
// not come packed: the bytes must be those consumed. Packed packets
// re-encode to a packet that decodes to the same payload.
func FuzzDecode(f *testing.F) {
	// Small bounds: a bomb is refused at 4 KiB, so that inflating it
	// does not slow the fuzzer.
	lim := Limits{MaxPacket: 1 << 16, MaxUnpacked: 4 << 10}
	f.Fuzz(func(t *testing.T, in []byte) {
		off := 0
		for off < len(in) {
			p, n, err := Decode(in[off:], lim)
			if err != nil || n == 0 {
				return
			}
			if len(p.Payload) > lim.MaxUnpacked {
				t.Fatalf("payload of %d bytes past the bound", len(p.Payload))
			}
			out := p.AppendTo(nil)
			if !p.Packed && !bytes.Equal(out, in[off:off+n]) {
				t.Fatalf("re-encoding %x gave %x", in[off:off+n], out)
			}
			if p.Packed {
				back, _, err := Decode(out, lim)
				if err != nil || !bytes.Equal(back.Payload, p.Payload) {
					t.Fatalf("packed round trip: %v", err)
				}
			}
			off += n
		}
	})
}

type appender interface{ AppendTo([]byte) []byte }

// FuzzClientMessage decodes a client message (first byte: opcode) and
// checks that it encodes back to the same bytes; for a file status, that
// judging it never overstates.
func FuzzClientMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		p := in[1:]
		var m appender
		var err error
		switch in[0] {
		case OpHello:
			m, err = DecodeHello(p, false)
		case OpHelloAnswer:
			m, err = DecodeHello(p, true)
		case OpFileStatus:
			var fs FileStatus
			fs, err = DecodeFileStatus(p)
			if err == nil {
				for _, size := range []int64{-1, 1, PartSize, 3*PartSize + 1, int64(fs.Count) * PartSize} {
					pm := fs.Judge(size)
					if pm.Total >= 0 && pm.Have > pm.Total || pm.Complete() && pm.Malformed || pm.Have > int(fs.Count) && fs.Count > 0 {
						t.Fatalf("Judge(%d) = %+v for %x", size, pm, p)
					}
				}
				fs.FirstPart(3 * PartSize)
			}
			m = fs
		case OpReqFileNameAns:
			m, err = DecodeFileName(p)
		case OpHashSetAnswer:
			m, err = DecodeHashSet(p)
		case OpSendingPart:
			m, err = DecodeSendingPart(p)
		case OpRequestParts:
			m, err = DecodeRequestParts(p)
		default:
			m, err = DecodeHashMsg(p)
		}
		if err != nil {
			return
		}
		if out := m.AppendTo(nil); !bytes.Equal(out, p) {
			t.Fatalf("re-encoding %x gave %x", p, out)
		}
		if h, ok := m.(Hello); ok {
			h.Client()
		}
	})
}

// FuzzServerMessage decodes a server message (first byte: opcode) and
// checks that it encodes back to the same bytes.
func FuzzServerMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		p := in[1:]
		var m appender
		var err error
		switch in[0] {
		case OpLoginRequest:
			m, err = DecodeLogin(p)
		case OpIDChange:
			m, err = DecodeIDChange(p)
		case OpServerMessage:
			m, err = DecodeServerMessage(p)
		case OpServerStatus:
			m, err = DecodeServerStatus(p)
		case OpGetSources:
			m, err = DecodeGetSources(p)
		case OpFoundSources:
			m, err = DecodeFoundSources(p, false)
		case OpFoundSourcesObf:
			m, err = DecodeFoundSources(p, true)
		case OpSearchRequest:
			var sr SearchRequest
			sr, err = DecodeSearchRequest(p)
			sr.Expr.Terms()
			m = sr
		case OpSearchResult:
			var sr SearchResult
			sr, err = DecodeSearchResult(p)
			for _, f := range sr.Files {
				f.Size()
				f.Sources()
				HasWords(f.Name(), Words("lab keyword"))
			}
			m = sr
		case OpOfferFiles:
			var of OfferFiles
			of, err = DecodeOfferFiles(p)
			for _, f := range of.Files {
				f.Size()
			}
			m = of
		default:
			return
		}
		if err != nil {
			return
		}
		if out := m.AppendTo(nil); !bytes.Equal(out, p) {
			t.Fatalf("re-encoding %x gave %x", p, out)
		}
	})
}

// FuzzServerMet parses a server.met file and checks the round trip.
func FuzzServerMet(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseServerMet(in)
		if err != nil {
			return
		}
		for _, s := range m.Servers {
			s.Name()
		}
		if out := m.AppendTo(nil); !bytes.Equal(out, in) {
			t.Fatalf("re-encoding %x gave %x", in, out)
		}
	})
}
