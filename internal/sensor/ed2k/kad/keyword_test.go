package kad

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
)

func TestSearchKeywordFindsTheFilesIndexedUnderAWord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 6, KadNodes: 40, Files: 4, Clients: 8, SharesPerClient: 1,
		Names: []string{"lab-keyword-alpha 01.bin", "Lab Keyword ALPHA (02).bin", "lab-keyword-beta.bin"},
		Base:  netip.MustParseAddr("127.110.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	n := testNode(t, "127.113.255.1")
	if err := n.Bootstrap(ctx, lab.Bootstrap(2)); err != nil {
		t.Fatal(err)
	}
	got := map[[16]byte]kadwire.File{}
	found, over := n.SearchKeyword(ctx, "alpha")
	for _, f := range found {
		if f.Node.Addr.Addr().IsUnspecified() || f.At.IsZero() {
			t.Fatalf("found %+v: no node or time", f)
		}
		got[f.File.Hash] = f.File
	}
	if over != 0 || len(got) != 2 {
		t.Fatalf("found %d distinct files (over %d), want 2: %+v", len(got), over, got)
	}
	for _, f := range lab.Files[:2] {
		g, ok := got[f.Hash]
		if !ok || g.Name != f.Name || g.Size != f.Size || g.Sources != 2 {
			t.Errorf("file %q: got %+v (want size %d, 2 sources)", f.Name, g, f.Size)
		}
	}
	if st := n.Stats(); st.Unsolicited != 0 || st.Malformed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestKeywordAnswersAreBoundedAndTakenOnlyFromTheNodeAsked: a hostile
// node's answers from another address, naming another sender, with a
// count past the datagram's bytes, with a malformed tag, or with more
// files than the bound, are dropped, refused or cut, and counted.
func TestKeywordAnswersAreBoundedAndTakenOnlyFromTheNodeAsked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := testNode(t, "127.114.0.1")
	n.cfg.MaxKeywordResults = 60
	fake, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.114.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	spoofer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.114.0.3:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	var fakeID, otherID kadwire.ID
	fakeID[0], otherID[0] = 0xF0, 0x0F
	file := func(i int, name string) kadwire.Result {
		var id kadwire.ID
		id[0], id[1] = 0xAB, byte(i)
		return kadwire.Result{ID: id, Tags: []kadwire.Tag{kadwire.StrTag(kadwire.TagFileName, name), kadwire.IntTag(kadwire.TagFileSize, 1000)}}
	}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, from, err := fake.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			p, err := kadwire.Decode(buf[:k], 1<<16)
			if err != nil {
				continue
			}
			switch p.Opcode {
			case kadwire.OpBootstrapReq:
				fake.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpBootstrapRes, kadwire.BootstrapRes{ID: fakeID, Version: 8}.AppendTo(nil)), from)
			case kadwire.OpReq:
				r, _ := kadwire.DecodeReq(p.Payload)
				fake.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpRes, kadwire.Res{Target: r.Target}.AppendTo(nil)), from)
			case kadwire.OpSearchKeyReq:
				r, _ := kadwire.DecodeSearchKeyReq(p.Payload)
				res := func(sender kadwire.ID, rs ...kadwire.Result) []byte {
					return kadwire.Encode(kadwire.OpSearchRes, kadwire.SearchRes{Sender: sender, Target: r.Target, Results: rs}.AppendTo(nil))
				}
				// From another address: dropped.
				spoofer.WriteToUDPAddrPort(res(fakeID, file(200, "spoofed alpha")), from)
				// Naming another node as sender: dropped.
				fake.WriteToUDPAddrPort(res(otherID, file(201, "other alpha")), from)
				// A count of 65535 results in a few bytes: refused.
				huge := res(fakeID)
				huge[2+32], huge[2+33] = 0xFF, 0xFF
				extra := file(202, "huge alpha").ID
				fake.WriteToUDPAddrPort(append(huge, extra[:]...), from)
				// A tag of an unknown type: refused whole.
				bad := res(fakeID, file(203, "bad alpha"))
				bad[2+32+2+16+1] = 0x7E
				fake.WriteToUDPAddrPort(bad, from)
				// 100 files in two answers: 60 kept, 40 counted.
				for a := 0; a < 2; a++ {
					var rs []kadwire.Result
					for i := 0; i < 50; i++ {
						rs = append(rs, file(a*50+i, "lab-keyword-alpha"))
					}
					fake.WriteToUDPAddrPort(res(fakeID, rs...), from)
				}
			}
		}
	}()
	if err := n.Bootstrap(ctx, []netip.AddrPort{fake.LocalAddr().(*net.UDPAddr).AddrPort()}); err != nil {
		t.Fatal(err)
	}
	found, over := n.SearchKeyword(ctx, "alpha")
	if len(found) != 60 || over != 40 {
		t.Fatalf("kept %d, over %d; want 60 and 40", len(found), over)
	}
	for _, f := range found {
		if f.File.Hash[1] >= 200 || f.Node.ID != fakeID {
			t.Fatalf("kept %+v", f)
		}
	}
	st := n.Stats()
	if st.Unsolicited < 2 || st.Malformed < 2 {
		t.Fatalf("unsolicited %d (want 2), malformed %d (want 2)", st.Unsolicited, st.Malformed)
	}
}
