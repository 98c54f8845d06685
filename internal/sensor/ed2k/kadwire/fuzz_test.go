package kadwire

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

func seeds() map[string]map[string][]byte {
	var id ID
	copy(id[:], "vigil-kad-node-1")
	c := Contact{ID: id, Addr: netip.MustParseAddrPort("127.0.0.3:4672"), TCPPort: 4662, Version: 8}
	src := Result{ID: id, Tags: []Tag{IntTag(TagSourceIP, 0x7F000009), IntTag(TagSourceType, 1), IntTag(TagSourcePort, 4662),
		{Name: "\x02", Type: TagBsob, Raw: []byte{1, 0, 0, 0, 0, 0, 0, 0}}, {Name: "name", Type: TagString, Str: "x"}}}
	msg := func(op byte, p []byte) []byte { return Encode(op, p) }
	return map[string]map[string][]byte{
		"FuzzDatagram": {
			"bootstrap-res":               msg(OpBootstrapRes, BootstrapRes{ID: id, TCPPort: 4662, Version: 8, Contacts: []Contact{c, c}}.AppendTo(nil)),
			"hello-req-amule":             msg(OpHelloReq, Hello{ID: id, TCPPort: 4662, Version: 8, Tags: []Tag{IntTag(TagSourceUPort, 4672), IntTag(TagKadMisc, 4)}}.AppendTo(nil)),
			"hello-ack":                   msg(OpHelloResAck, HelloAck{ID: id}.AppendTo(nil)),
			"req-find-node":               msg(OpReq, Req{Type: FindNode, Target: id, Receiver: id}.AppendTo(nil)),
			"res-two-contacts":            msg(OpRes, Res{Target: id, Contacts: []Contact{c, c}}.AppendTo(nil)),
			"search-source-req":           msg(OpSearchSourceReq, SearchSourceReq{Target: id, Size: 12345}.AppendTo(nil)),
			"search-res-source":           msg(OpSearchRes, SearchRes{Sender: id, Target: id, Results: []Result{src}}.AppendTo(nil)),
			"search-key-req":              msg(OpSearchKeyReq, SearchKeyReq{Target: KeywordID("alpha")}.AppendTo(nil)),
			"search-key-req-tree":         msg(OpSearchKeyReq, SearchKeyReq{Target: KeywordID("alpha"), Start: 50, Tree: []byte{1, 3, 0, 'l', 'a', 'b'}}.AppendTo(nil)),
			"search-key-req-flag-no-tree": msg(OpSearchKeyReq, append(SearchKeyReq{Target: id}.AppendTo(nil)[:16], 0, 0x80)),
			"search-res-keyword":          msg(OpSearchRes, SearchRes{Sender: id, Target: KeywordID("alpha"), Results: []Result{{ID: id, Tags: []Tag{StrTag(TagFileName, "lab-keyword-alpha.bin"), IntTag(TagFileSize, 300000), IntTag(TagSources, 7)}}}}.AppendTo(nil)),
			"search-res-huge-count":       msg(OpSearchRes, append(SearchRes{Sender: id, Target: id}.AppendTo(nil)[:32], 0xFF, 0xFF, 1, 2, 3)),
			"search-res-packed":           EncodePacked(OpSearchRes, SearchRes{Sender: id, Target: id, Results: []Result{src, src}}.AppendTo(nil)),
			"publish-source":              msg(OpPublishSrcReq, PublishSourceReq{File: id, Source: id, Tags: src.Tags}.AppendTo(nil)),
			"publish-res":                 msg(OpPublishRes, PublishRes{File: id, Load: 3}.AppendTo(nil)),
			"pong":                        msg(OpPong, Pong{Port: 4672}.AppendTo(nil)),
			"firewalled2-req":             msg(OpFirewalled2Req, Firewalled2Req{TCPPort: 4662, UserHash: id, Options: 1}.AppendTo(nil)),
			"firewalled-res":              msg(OpFirewalledRes, FirewalledRes{IP: netip.MustParseAddr("127.0.0.3")}.AppendTo(nil)),
			"obfuscated-garbage":          {0x33, 0x44, 0x55},
			"packed-bomb":                 EncodePacked(OpSearchRes, make([]byte, 1<<20)),
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

type appender interface{ AppendTo([]byte) []byte }

// FuzzDatagram decodes a datagram and its message, and checks that the
// message encodes back to the payload it came from.
func FuzzDatagram(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Decode(in, 1<<16)
		if err != nil {
			return
		}
		var m appender
		switch p.Opcode {
		case OpBootstrapRes:
			m, err = DecodeBootstrapRes(p.Payload)
		case OpHelloReq, OpHelloRes:
			var h Hello
			h, err = DecodeHello(p.Payload)
			h.AckRequested()
			h.UDPPort()
			m = h
		case OpHelloResAck:
			m, err = DecodeHelloAck(p.Payload)
		case OpReq:
			m, err = DecodeReq(p.Payload)
		case OpRes:
			m, err = DecodeRes(p.Payload)
		case OpSearchSourceReq:
			m, err = DecodeSearchSourceReq(p.Payload)
		case OpSearchKeyReq:
			m, err = DecodeSearchKeyReq(p.Payload)
		case OpSearchRes:
			var s SearchRes
			s, err = DecodeSearchRes(p.Payload)
			for _, r := range s.Results {
				r.Source()
				r.File()
			}
			m = s
		case OpPublishSrcReq:
			m, err = DecodePublishSourceReq(p.Payload)
		case OpPublishRes:
			m, err = DecodePublishRes(p.Payload)
		case OpPong:
			m, err = DecodePong(p.Payload)
		case OpFirewalled2Req:
			m, err = DecodeFirewalled2Req(p.Payload)
		case OpFirewalledRes:
			m, err = DecodeFirewalledRes(p.Payload)
		default:
			return
		}
		if err != nil {
			return
		}
		if out := m.AppendTo(nil); !bytes.Equal(out, p.Payload) {
			t.Fatalf("opcode 0x%02x: re-encoding %x gave %x", p.Opcode, p.Payload, out)
		}
	})
}
