package server

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/pconn"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

func TestSearchReturnsTheFilesWhoseNamesHoldTheWords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 4, Server: true, Files: 4, Clients: 8,
		Names: []string{"lab-keyword-alpha 01.bin", "LAB keyword alpha (02).bin", "lab-keyword-beta.bin", "alphabet lab-keyword.bin"},
		Base:  netip.MustParseAddr("127.91.64.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	s, err := Login(ctx, testConfig(t), n.Server.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Search(ctx, wire.Words("lab-keyword-alpha"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 2 || got.Over != 0 {
		t.Fatalf("found %+v, want the two alpha files", got)
	}
	for _, f := range got.Files {
		if f.Hash != n.Files[0].Hash && f.Hash != n.Files[1].Hash || f.Sources != 2 || f.Size != n.Files[0].Size && f.Size != n.Files[1].Size {
			t.Fatalf("file %+v", f)
		}
	}
	// The session still answers source requests after a search.
	if again, err := s.Sources(ctx, n.Files[2].Hash, n.Files[2].Size); err != nil || len(again.Sources) != 2 {
		t.Fatalf("sources after a search: %v %v", again.Sources, err)
	}
}

// hostileServer logs the client in, then answers its first search with
// answer.
func hostileServer(t *testing.T, addr string, answer []byte) netip.AddrPort {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		pc := pconn.New(nc, nil, wire.DefaultLimits())
		ctx := context.Background()
		for {
			p, _, err := pc.Next(ctx, 5*time.Second)
			if err != nil {
				return
			}
			switch p.Opcode {
			case wire.OpLoginRequest:
				pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: 0x0100007F, Fields: 1}.AppendTo(nil))
			case wire.OpSearchRequest:
				pc.SendRaw(ctx, time.Second, answer)
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// TestSearchAnswersAreBounded: a server's answer with more files than
// the bound is cut (the rest counted), one whose count runs past its
// bytes or with a malformed tag is refused, and a compressed bomb is
// refused at the inflate bound: dropped and counted, the wait going on
// (TestZlibBombDuringASearchIsDroppedAndTheWaitGoesOn).
func TestSearchAnswersAreBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	many := wire.SearchResult{}
	for i := 0; i < 1000; i++ {
		var h [16]byte
		h[0], h[1] = byte(i), byte(i>>8)
		many.Files = append(many.Files, wire.OfferedFile{Hash: h, Tags: []wire.Tag{wire.StrTag(wire.FTFileName, "lab-keyword-alpha.bin")}})
	}
	badTag := wire.SearchResult{Files: []wire.OfferedFile{{Tags: []wire.Tag{wire.StrTag(wire.FTFileName, "x")}}}}.AppendTo(nil)
	badTag[4+16+6+4] = 0x7E // the tag's type
	for i, c := range []struct {
		name   string
		answer []byte
		files  int
		over   int
		err    error
		bombs  int
	}{
		{"a thousand files", wire.AppendPacked(nil, wire.OpSearchResult, many.AppendTo(nil)), 300, 700, nil, 0},
		{"huge count", wire.Append(nil, wire.ProtoEDonkey, wire.OpSearchResult, []byte{0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3}), 0, 0, wire.ErrMalformed, 0},
		{"malformed tag", wire.Append(nil, wire.ProtoEDonkey, wire.OpSearchResult, badTag), 0, 0, wire.ErrMalformed, 0},
		{"compressed bomb", wire.AppendPacked(nil, wire.OpSearchResult, make([]byte, 8<<20)), 0, 0, nil, 1},
	} {
		addr := hostileServer(t, netip.AddrFrom4([4]byte{127, 91, 128, byte(1 + i)}).String()+":0", c.answer)
		s, err := Login(ctx, testConfig(t), addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Search(ctx, []string{"alpha"})
		s.Close()
		if !errors.Is(err, c.err) || len(got.Files) != c.files || got.Over != c.over || got.NotUnpacked != c.bombs {
			t.Errorf("%s: %d files, %d over, err %v, %d not unpacked; want %d, %d, %v, %d",
				c.name, len(got.Files), got.Over, err, got.NotUnpacked, c.files, c.over, c.err, c.bombs)
		}
	}
}

// TestLateSearchResultStaysOutOfTheSourcesTranscript: a server that
// answers a keyword search late (after AnswerWait, or unasked) sends its
// OP_SEARCHRESULT while the sensor waits for the sources of a watched
// file. That transcript goes into the observations of the sources; the
// search result names unwatched files and must not be in it: its bytes
// are counted in a gap record, never kept.
func TestLateSearchResultStaysOutOfTheSourcesTranscript(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	unwatched := "lab-keyword-alpha unwatched-name-0042.bin"
	late := wire.Append(nil, wire.ProtoEDonkey, wire.OpSearchResult, wire.SearchResult{Files: []wire.OfferedFile{{
		Hash: [16]byte{0xEE, 1, 2, 3}, ClientID: 0x0A0B0C0D, Port: 4662,
		Tags: []wire.Tag{wire.StrTag(wire.FTFileName, unwatched)}}}}.AppendTo(nil))
	watched := [16]byte{0xAA, 7}
	ln, err := net.Listen("tcp", "127.91.129.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		pc := pconn.New(nc, nil, wire.DefaultLimits())
		for {
			p, _, err := pc.Next(ctx, 5*time.Second)
			if err != nil {
				return
			}
			switch p.Opcode {
			case wire.OpLoginRequest:
				pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpIDChange, wire.IDChange{ID: 0x0100007F, Fields: 1}.AppendTo(nil))
			case wire.OpSearchRequest:
				// No answer in time.
			case wire.OpGetSources:
				pc.SendRaw(ctx, time.Second, late)
				pc.Send(ctx, time.Second, wire.ProtoEDonkey, wire.OpFoundSources, wire.FoundSources{Hash: watched,
					Sources: []wire.Source{{ID: 0x0100000A, Port: 4662}}}.AppendTo(nil))
			}
		}
	}()
	s, err := Login(ctx, testConfig(t), ln.Addr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Search(ctx, []string{"alpha"}); err != nil || len(got.Files) != 0 {
		t.Fatalf("search: %+v, %v; want no answer in time", got, err)
	}
	f, err := s.Sources(ctx, watched, 1000)
	if err != nil || len(f.Sources) != 1 || !f.Kept {
		t.Fatalf("sources %+v kept %v, %v", f.Sources, f.Kept, err)
	}
	if bytes.Contains(f.Transcript.Bytes, []byte("unwatched-name-0042")) || bytes.Contains(f.Transcript.Bytes, []byte{0xEE, 1, 2, 3}) {
		t.Fatal("the late search result's file name or hash is in the sources' transcript")
	}
	if s, err := tscript.Summarize(f.Transcript.Bytes); err != nil || !s.Cut {
		t.Fatalf("transcript summary %+v, %v: want a gap record for the bytes left out", s, err)
	}
}
