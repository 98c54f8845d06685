package dhtnode

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

func randomID() krpc.ID {
	var id krpc.ID
	_, _ = rand.Read(id[:])
	return id
}

// A token is valid for at most tokenLifetime after it was handed out, and
// the answers kept for announces go when their token does.
func TestDHTTokenLifetime(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	n := &Node{secretTime: start}
	_, _ = rand.Read(n.secret[0][:])
	n.secret[1] = n.secret[0]
	ip := netip.MustParseAddr("127.0.0.5")
	from := netip.AddrPortFrom(ip, 6881)
	ih := randomID()
	at := start.Add(4 * time.Minute)
	tok := n.token(from, ih, at, false)
	for _, c := range []struct {
		d    time.Duration
		want bool
	}{{0, true}, {5 * time.Minute, true}, {tokenLifetime - 4*time.Minute - time.Second, true}, {tokenLifetime - 4*time.Minute, false}, {time.Hour, false}} {
		m := &Node{secretTime: n.secretTime, secret: n.secret}
		if got := m.validToken(from, ih, tok, at.Add(c.d)); got != c.want {
			t.Errorf("token handed out at +4m, checked %v later: valid %v, want %v", c.d, got, c.want)
		}
	}
	if n.validToken(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.6"), 6881), ih, tok, at) {
		t.Error("token valid for another address")
	}
	// Behind carrier-grade NAT another port of the address is another
	// subscriber.
	if n.validToken(netip.AddrPortFrom(ip, 7000), ih, tok, at) {
		t.Error("token valid for another port of the address")
	}

	var kept tokenReplies
	kept.keep(tokenReply{to: from, infohash: ih, token: string(tok), query: []byte("q"), reply: []byte("r"), queryAt: at, replyAt: at})
	if _, ok := kept.find(netip.AddrPortFrom(ip, 7000), ih, string(tok), at.Add(time.Minute)); ok {
		t.Error("kept answer found for another port of the same address")
	}
	if _, ok := kept.find(from, ih, string(tok), at.Add(time.Minute)); !ok {
		t.Error("kept answer not found for its own port")
	}
	if _, ok := kept.find(from, ih, "other", at); ok {
		t.Error("kept answer found for another token")
	}
	if _, ok := kept.find(from, ih, string(tok), at.Add(tokenLifetime)); ok {
		t.Error("kept answer outlived its token")
	}
	if live, _ := kept.stats(); live != 0 {
		t.Errorf("%d answers still kept after expiry", live)
	}
}

// A node that asks twice (a retransmission) gets the same token; the
// second answer replaces the first and is still found, and an older
// answer's expiry takes nothing newer with it.
func TestDHTTokenRepliesReplaceAndExpireInOrder(t *testing.T) {
	var kept tokenReplies
	at := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	from := netip.MustParseAddrPort("127.0.0.5:6881")
	other := netip.MustParseAddrPort("127.0.0.6:6881")
	ih := randomID()
	kept.keep(tokenReply{to: from, infohash: ih, token: "a", reply: []byte("1"), replyAt: at})
	kept.keep(tokenReply{to: from, infohash: ih, token: "a", reply: []byte("2"), replyAt: at.Add(time.Second)})
	if r, ok := kept.find(from, ih, "a", at.Add(2*time.Second)); !ok || string(r.reply) != "2" {
		t.Fatalf("after a repeated get_peers: found %v %q, want the second answer", ok, r.reply)
	}
	kept.keep(tokenReply{to: other, infohash: ih, token: "b", replyAt: at.Add(4 * time.Minute)})
	// The first two have expired, the third has not.
	if _, ok := kept.find(other, ih, "b", at.Add(tokenLifetime+2*time.Second)); !ok {
		t.Fatal("a newer answer went with an expired one")
	}
	if _, ok := kept.find(from, ih, "a", at.Add(tokenLifetime+2*time.Second)); ok {
		t.Fatal("an expired answer was found")
	}
	if live, _ := kept.stats(); live != 1 {
		t.Fatalf("%d kept, want 1", live)
	}
}

// The kept answers are bounded whatever a flood of get_peers does.
func TestDHTTokenRepliesBounded(t *testing.T) {
	var kept tokenReplies
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	ih := randomID()
	for i := range 3 * maxTokenReplies {
		ip := netip.AddrFrom4([4]byte{127, byte(i >> 16), byte(i >> 8), byte(i)})
		kept.keep(tokenReply{to: netip.AddrPortFrom(ip, 1), infohash: ih, token: "t", replyAt: now})
	}
	for i := range 10 { // one address, many ports
		kept.keep(tokenReply{to: netip.AddrPortFrom(netip.MustParseAddr("127.9.9.9"), uint16(i+1)), infohash: ih, token: "t", replyAt: now})
	}
	live, evicted := kept.stats()
	if live != maxTokenReplies || evicted != uint64(2*maxTokenReplies+10) {
		t.Fatalf("live %d evicted %d; want %d and %d", live, evicted, maxTokenReplies, 2*maxTokenReplies+10)
	}
	if got := len(kept.byKey[tokenKey{netip.MustParseAddr("127.9.9.9"), ih}]); got != maxTokenRepliesPerKey {
		t.Fatalf("%d answers kept for one address, want %d", got, maxTokenRepliesPerKey)
	}
	if len(kept.queue)-kept.head > 2*maxTokenReplies+1 {
		t.Fatalf("queue of %d for %d live answers", len(kept.queue)-kept.head, live)
	}
}

// FuzzDHTDeliver: whatever datagram arrives from whatever address, an
// answer reaches a pending query only if it carries that query's
// transaction id and comes from the exact address:port queried; every
// other answer is counted as dropped.
func FuzzDHTDeliver(f *testing.F) {
	tid := []byte("\x01\x02\x03\x04\x05\x06\x07\x08")
	answer := func(t []byte) []byte {
		r := krpc.Msg{T: t, Kind: krpc.KindResponse}
		r.R.Values = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.77:6881")}
		b, _ := r.AppendTo(nil)
		return b
	}
	f.Add(answer(tid), byte(1), uint16(6881))
	f.Add(answer(tid), byte(2), uint16(6881))
	f.Add(answer(tid), byte(1), uint16(6882))
	f.Add(answer(tid[:4]), byte(1), uint16(6881))
	f.Add([]byte("d1:eli201e5:errore1:t8:\x01\x02\x03\x04\x05\x06\x07\x081:y1:ee"), byte(1), uint16(6881))
	f.Fuzz(func(t *testing.T, b []byte, last byte, port uint16) {
		to := netip.MustParseAddrPort("127.0.0.1:6881")
		n := &Node{pending: map[txID]pendingQuery{}}
		ch := make(chan Reply, 1)
		n.pending[txID(tid)] = pendingQuery{to: to, ch: ch}
		var m krpc.Msg
		if m.Decode(b) != nil || m.Kind == krpc.KindQuery {
			return
		}
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, last}), port)
		n.deliver(&m, b, from, time.Unix(0, 0))
		select {
		case rr := <-ch:
			if from != to || string(m.T) != string(tid) || !bytes.Equal(rr.B, b) {
				t.Fatalf("answer from %v with t %x delivered to the query sent to %v with t %x", from, m.T, to, tid)
			}
			if _, still := n.pending[txID(tid)]; still {
				t.Fatal("answered query still pending")
			}
		default:
			if from == to && string(m.T) == string(tid) {
				t.Fatalf("the real answer was not delivered")
			}
			if n.dropUnknownTx.Load()+n.dropWrongSource.Load() != 1 {
				t.Fatal("a dropped answer was not counted")
			}
			if _, still := n.pending[txID(tid)]; !still {
				t.Fatal("a dropped answer used up the pending query")
			}
		}
	})
}

// TestDHTTokenRepliesMatchAModel runs random keeps and finds (a few
// addresses, ports, tokens and info-hashes, time moving on) against a
// plain list that applies the same rules, and compares every answer.
func TestDHTTokenRepliesMatchAModel(t *testing.T) {
	type entry struct {
		key tokenKey
		r   tokenReply
	}
	var kept tokenReplies
	var model []entry
	rng := mrand.New(mrand.NewPCG(1, 2))
	ihs := []krpc.ID{randomID(), randomID()}
	now := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	expire := func() {
		model = slices.DeleteFunc(model, func(e entry) bool { return now.Sub(e.r.replyAt) >= tokenLifetime })
	}
	for op := range 20000 {
		now = now.Add(time.Duration(rng.IntN(20)) * time.Second)
		to := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(1 + rng.IntN(3))}), uint16(1+rng.IntN(3)))
		ih := ihs[rng.IntN(2)]
		tok := string(rune('a' + rng.IntN(3)))
		k := tokenKey{to.Addr(), ih}
		if rng.IntN(2) == 0 {
			r := tokenReply{to: to, infohash: ih, token: tok, reply: []byte(fmt.Sprint(op)), replyAt: now}
			kept.keep(r)
			expire()
			model = slices.DeleteFunc(model, func(e entry) bool { return e.key == k && e.r.to == to && e.r.token == tok })
			n := 0
			for _, e := range model {
				if e.key == k {
					n++
				}
			}
			if n >= maxTokenRepliesPerKey {
				i := slices.IndexFunc(model, func(e entry) bool { return e.key == k })
				model = slices.Delete(model, i, i+1)
			}
			model = append(model, entry{k, r})
			continue
		}
		got, ok := kept.find(to, ih, tok, now)
		expire()
		var want *tokenReply
		for i := range model {
			e := &model[i]
			if e.key == k && e.r.token == tok && e.r.to == to {
				want = &e.r // the token proves its own port only
			}
		}
		if ok != (want != nil) || ok && string(got.reply) != string(want.reply) {
			t.Fatalf("op %d: find(%v, %s) = %v %q, model says %v", op, to, tok, ok, got.reply, want)
		}
		if live, _ := kept.stats(); live != len(model) {
			t.Fatalf("op %d: %d kept, model %d", op, live, len(model))
		}
	}
}
