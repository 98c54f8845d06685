package kad

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	labed2k "github.com/vigil-oss/vigil/internal/lab/ed2k"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
)

func testNode(t *testing.T, ip string) *Node {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = netip.AddrPortFrom(netip.MustParseAddr(ip), 0)
	cfg.QueryTimeout = time.Second
	cfg.SearchWait = 500 * time.Millisecond
	n, err := Start(context.Background(), cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestSearchFindsEveryPublishedSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lab, err := labed2k.StartNet(ctx, labed2k.NetConfig{Seed: 5, KadNodes: 40, Files: 3, Clients: 6, SharesPerClient: 2, Base: netip.MustParseAddr("127.94.0.0")})
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	n := testNode(t, "127.94.255.1")
	if err := n.Bootstrap(ctx, lab.Bootstrap(2)); err != nil {
		t.Fatal(err)
	}
	if n.Table().Len() < 10 {
		t.Fatalf("table of %d after bootstrap", n.Table().Len())
	}
	for _, f := range lab.Files {
		want := map[netip.AddrPort]bool{}
		for _, tr := range lab.Truth() {
			if tr.File == f.Hash {
				want[tr.Addrs[0]] = true
			}
		}
		got := map[netip.AddrPort]bool{}
		for _, fd := range n.SearchSources(ctx, f.Hash, f.Size) {
			if !fd.Source.Reachable() {
				t.Fatalf("unreachable source %+v", fd.Source)
			}
			if fd.Reply.From != fd.Node.Addr || len(fd.Reply.Sent) == 0 || len(fd.Reply.Raw) == 0 {
				t.Fatalf("found %+v: reply not from the node asked, or without its datagrams", fd)
			}
			got[fd.Source.Addr] = true
		}
		for a := range want {
			if !got[a] {
				t.Errorf("file %x: source %v not found (found %v)", f.Hash, a, got)
			}
		}
		for a := range got {
			if !want[a] {
				t.Errorf("file %x: %v found, not in the truth", f.Hash, a)
			}
		}
	}
	if st := n.Stats(); st.Unsolicited != 0 || st.Malformed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRepliesAreTakenOnlyFromTheNodeAsked: a search answer from another
// address, or from the node asked but naming another node as sender, is
// dropped and counted; only the asked node's own answer counts.
func TestRepliesAreTakenOnlyFromTheNodeAsked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := testNode(t, "127.95.0.1")
	fake, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.95.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	spoofer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.95.0.3:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer spoofer.Close()
	var fakeID, otherID kadwire.ID
	fakeID[0], otherID[0] = 0xF0, 0x0F
	var file [16]byte
	file[0] = 0xF1
	src := func(ip string) kadwire.Result {
		return kadwire.Result{Tags: []kadwire.Tag{kadwire.IntTag(kadwire.TagSourceType, 1),
			kadwire.IntTag(kadwire.TagSourceIP, uint64(kadwire.IPToUint32(netip.MustParseAddr(ip)))), kadwire.IntTag(kadwire.TagSourcePort, 4662)}}
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
			case kadwire.OpSearchSourceReq:
				target := kadwire.FileID(file)
				// From another address, naming the asked node: dropped.
				spoofer.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpSearchRes, kadwire.SearchRes{Sender: fakeID, Target: target, Results: []kadwire.Result{src("127.95.9.1")}}.AppendTo(nil)), from)
				// From the asked node, naming another node: dropped.
				fake.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpSearchRes, kadwire.SearchRes{Sender: otherID, Target: target, Results: []kadwire.Result{src("127.95.9.2")}}.AppendTo(nil)), from)
				// From the asked node about another file: dropped.
				fake.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpSearchRes, kadwire.SearchRes{Sender: fakeID, Target: otherID, Results: []kadwire.Result{src("127.95.9.3")}}.AppendTo(nil)), from)
				// The asked node's own answer: kept.
				fake.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpSearchRes, kadwire.SearchRes{Sender: fakeID, Target: target, Results: []kadwire.Result{src("127.95.9.4")}}.AppendTo(nil)), from)
			}
		}
	}()
	if err := n.Bootstrap(ctx, []netip.AddrPort{fake.LocalAddr().(*net.UDPAddr).AddrPort()}); err != nil {
		t.Fatal(err)
	}
	found := n.SearchSources(ctx, file, 1000)
	if len(found) != 1 || found[0].Source.Addr != netip.MustParseAddrPort("127.95.9.4:4662") {
		t.Fatalf("found %+v", found)
	}
	if st := n.Stats(); st.Unsolicited < 3 {
		t.Fatalf("unsolicited %d, want 3", st.Unsolicited)
	}
}

// TestNodeAnswersAsACorrectNodeAndStoresNothing: ping, hello and
// KADEMLIA2_REQ are answered; a publish is neither stored nor answered.
func TestNodeAnswersAsACorrectNodeAndStoresNothing(t *testing.T) {
	n := testNode(t, "127.96.0.1")
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.96.0.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var id kadwire.ID
	id[0] = 1
	send := func(op byte, p []byte) { c.WriteToUDPAddrPort(kadwire.Encode(op, p), n.Addr()) }
	recv := func() (kadwire.Packet, bool) {
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 4096)
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return kadwire.Packet{}, false
		}
		p, err := kadwire.Decode(buf[:k], 1<<16)
		return p, err == nil
	}
	send(kadwire.OpHelloReq, kadwire.Hello{ID: id, Version: 8}.AppendTo(nil))
	if p, ok := recv(); !ok || p.Opcode != kadwire.OpHelloRes {
		t.Fatalf("hello: %v %v", p, ok)
	}
	send(kadwire.OpReq, kadwire.Req{Type: kadwire.FindNode, Target: id, Receiver: n.ID()}.AppendTo(nil))
	if p, ok := recv(); !ok || p.Opcode != kadwire.OpRes {
		t.Fatalf("req: %v %v", p, ok)
	} else if r, _ := kadwire.DecodeRes(p.Payload); len(r.Contacts) != 1 || r.Contacts[0].ID != id {
		t.Fatalf("res %+v: the hello's sender should be in the table", r)
	}
	send(kadwire.OpPing, nil)
	if p, ok := recv(); !ok || p.Opcode != kadwire.OpPong {
		t.Fatalf("ping: %v %v", p, ok)
	}
	send(kadwire.OpPublishSrcReq, kadwire.PublishSourceReq{File: id, Source: id}.AppendTo(nil))
	if p, ok := recv(); ok {
		t.Fatalf("publish answered with 0x%02x", p.Opcode)
	}
	if st := n.Stats(); st.PublishesIgnored != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAnswersToOneAddressAreBounded: a flood of bootstrap requests from
// one address gets at most the budget's burst of answers; the rest are
// counted.
func TestAnswersToOneAddressAreBounded(t *testing.T) {
	n := testNode(t, "127.96.1.1")
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.96.1.2:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 100; i++ {
		c.WriteToUDPAddrPort(kadwire.Encode(kadwire.OpBootstrapReq, nil), n.Addr())
	}
	got := 0
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
		got++
	}
	burst := DefaultConfig().AnswerBudget.PerAddrBurst
	if got > burst+2 || got == 0 {
		t.Fatalf("%d answers to 100 requests, budget burst %d", got, burst)
	}
	waitStats := time.Now().Add(2 * time.Second)
	for n.Stats().AnswersLimited+uint64(got) < 100 && time.Now().Before(waitStats) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := n.Stats(); st.AnswersLimited+uint64(got) != 100 {
		t.Fatalf("answered %d, limited %d, of 100", got, st.AnswersLimited)
	}
}
