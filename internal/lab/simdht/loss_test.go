package simdht

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// burst sends one ping to each address, rounds times over, then reads
// replies until none has come for 500 ms. It returns how many replies
// each address sent.
func burst(t *testing.T, to []netip.AddrPort, rounds int) map[netip.AddrPort]int {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(4 << 20)
	id := randomID()
	got := map[netip.AddrPort]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			got[netip.AddrPortFrom(from.Addr().Unmap(), from.Port())]++
		}
	}()
	var n uint32
	for range rounds {
		for _, a := range to {
			n++
			var tb [4]byte
			binary.BigEndian.PutUint32(tb[:], n)
			b, err := bencode.Marshal(krpc.Msg{T: string(tb[:]), Y: "q", Q: "ping", A: &krpc.MsgArgs{ID: id}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WriteToUDPAddrPort(b, a); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(20 * time.Millisecond) // let the nodes keep up
	}
	<-done
	return got
}

func addrs(nw *Network) []netip.AddrPort {
	var out []netip.AddrPort
	for _, n := range nw.Nodes() {
		out = append(out, n.Addr)
	}
	return out
}

func total(m map[netip.AddrPort]int) int {
	s := 0
	for _, v := range m {
		s += v
	}
	return s
}

// TestLossDropsAFractionOfQueriesOrReplies: without loss every ping is
// answered; with half the queries dropped about half are, and the nodes
// do not count the dropped ones as handled; with half the replies
// dropped the nodes handle every query and about half the answers come
// back.
func TestLossDropsAFractionOfQueriesOrReplies(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 20
	nw := startNet(t, cfg)
	to := addrs(nw)
	const rounds = 30 // 600 pings a step
	if got := total(burst(t, to, rounds)); got != 600 {
		t.Fatalf("no loss: %d of 600 pings answered", got)
	}
	if err := nw.SetLoss(1, 0); err == nil {
		t.Fatal("SetLoss(1, 0) accepted: every query dropped is no network")
	}
	if err := nw.SetLoss(0.5, 0); err != nil {
		t.Fatal(err)
	}
	st0 := nw.Stats()
	got := total(burst(t, to, rounds))
	st1 := nw.Stats()
	// Binomial(600, 0.5): sd 12; allow 5 sd.
	if got < 240 || got > 360 {
		t.Errorf("query loss 0.5: %d of 600 answered, want about 300", got)
	}
	if h := st1.Queries["ping"] - st0.Queries["ping"]; h != uint64(got) {
		t.Errorf("query loss: nodes handled %d pings, %d answered: a dropped query must not be handled", h, got)
	}
	if d := st1.Dropped - st0.Dropped; d != uint64(600-got) {
		t.Errorf("query loss: %d counted dropped, want %d", d, 600-got)
	}
	if err := nw.SetLoss(0, 0.5); err != nil {
		t.Fatal(err)
	}
	st0 = nw.Stats()
	got = total(burst(t, to, rounds))
	st1 = nw.Stats()
	if got < 240 || got > 360 {
		t.Errorf("reply loss 0.5: %d of 600 answered, want about 300", got)
	}
	if h := st1.Queries["ping"] - st0.Queries["ping"]; h != 600 {
		t.Errorf("reply loss: nodes handled %d of 600 pings; every query must be handled", h)
	}
	if err := nw.SetLoss(0, 0); err != nil {
		t.Fatal(err)
	}
	if got := total(burst(t, to, 5)); got != 100 {
		t.Errorf("loss off again: %d of 100 answered", got)
	}
}

// TestChurnSilencesLeaversAndWakesJoiners: joiners are silent from the
// start and answer once the schedule is over; leavers answer until their
// time, then never, and forget what they stored; the schedule is the
// seed's.
func TestChurnSilencesLeaversAndWakesJoiners(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 100
	nw := startNet(t, cfg)
	// Every node holds one info-hash, to see leavers forget it.
	ih := randomID()
	nw.Preload([]ID{ih}, func(int) []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("127.10.0.1:6881")} }, cfg.Nodes)
	if h := len(nw.Holders(ih)); h != cfg.Nodes {
		t.Fatalf("%d holders after preload, want %d", h, cfg.Nodes)
	}
	ch := Churn{Leave: 0.2, Join: 0.1, Over: 300 * time.Millisecond, Seed: 3}
	if err := nw.StartChurn(context.Background(), Churn{Leave: 0.8, Join: 0.3}); err == nil {
		t.Fatal("churn of 110% of the nodes accepted")
	}
	ev := ch.plan(cfg.Nodes)
	if again := ch.plan(cfg.Nodes); len(again) != len(ev) || again[0] != ev[0] || again[len(ev)-1] != ev[len(ev)-1] {
		t.Fatal("the same seed drew another schedule")
	}
	if other := (Churn{Leave: 0.2, Join: 0.1, Over: ch.Over, Seed: 4}).plan(cfg.Nodes); other[0] == ev[0] && other[1] == ev[1] {
		t.Error("another seed drew the same schedule")
	}
	joiners, leavers := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
	for _, e := range ev {
		if e.join {
			joiners[nw.nodes[e.node].addr] = true
		} else {
			leavers[nw.nodes[e.node].addr] = true
		}
	}
	if len(joiners) != 10 || len(leavers) != 20 {
		t.Fatalf("schedule has %d joiners and %d leavers, want 10 and 20", len(joiners), len(leavers))
	}
	if err := nw.StartChurn(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if st := nw.Stats(); st.Silent < 10 {
		t.Fatalf("%d silent at the start, want the 10 joiners at least", st.Silent)
	}
	// The schedule runs over 300 ms: wait until its last event is counted.
	st := nw.Stats()
	for deadline := time.Now().Add(10 * time.Second); st.Left+st.Joined < 30 && time.Now().Before(deadline); st = nw.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if st.Silent != 20 || st.Left != 20 || st.Joined != 10 {
		t.Fatalf("after the schedule: %d silent, %d left, %d joined; want 20, 20, 10", st.Silent, st.Left, st.Joined)
	}
	got := burst(t, addrs(nw), 2)
	for _, a := range addrs(nw) {
		switch {
		case leavers[a] && got[a] != 0:
			t.Errorf("leaver %v answered", a)
		case !leavers[a] && got[a] != 2:
			t.Errorf("live node %v (joiner %v) answered %d of 2", a, joiners[a], got[a])
		}
	}
	// Leavers and joiners forgot the info-hash; the others hold it.
	if h := len(nw.Holders(ih)); h != cfg.Nodes-30 {
		t.Errorf("%d holders after churn, want %d", h, cfg.Nodes-30)
	}
}
