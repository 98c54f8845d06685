package bittorrent

import (
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

// Behind carrier-grade NAT many subscribers share one address and are
// told apart by port, which is why an ISP row carries the port. The
// attacker is one subscriber of the NAT (port A) with a host elsewhere
// that can forge source addresses. It asks for a token from port A, then
// forges, from the NAT's address and a victim's port B, a get_peers (so
// that Vigil keeps an answer to port B) and an announce_peer carrying the
// token it got at port A. The code before this bound the token to the
// address alone, so the token was valid for port B too: the announce was
// recorded first-hand (an ISP row) from port B, the victim's, with a
// transcript showing an answer to port B. A token must prove the port as
// well as the address.
func TestDHTTokenFromOnePortDoesNotProveAnother(t *testing.T) {
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	key := krpc.ID(Key(w.Hash))
	sensorAddr := s.Addrs()[0]
	attacker := udpSocket(t, "127.0.0.1") // port A
	victim := udpSocket(t, "127.0.0.1")   // port B, same address
	me := randomID()
	ans, _ := getToken(t, attacker, sensorAddr, me, key, "g1")
	// The forged get_peers from port B: its answer goes to the victim,
	// whom the attacker cannot read; here the test reads it and drops it.
	getToken(t, victim, sensorAddr, me, key, "g2")
	ann := &krpc.Msg{T: []byte("a1"), Kind: krpc.KindQuery, Method: krpc.MethodAnnouncePeer}
	ann.A.ID, ann.A.InfoHash, ann.A.Token, ann.A.Port = me, key, ans.R.Token, 6881
	r := dhtClient(t, victim, sensorAddr, ann)
	time.Sleep(100 * time.Millisecond)
	pub.mu.Lock()
	defer pub.mu.Unlock()
	for _, o := range pub.obs {
		if o.Method == observe.MethodDHTAnnounce && o.FirstHand() {
			t.Errorf("announce from %v:%d with the token sent to %v recorded first-hand (marks %v)",
				o.Endpoint.IP, o.Endpoint.Port, udpAddrOf(attacker), o.Marks)
		}
	}
	if r.Kind != krpc.KindError || r.E.Code != krpc.ErrorProtocol {
		t.Errorf("announce with another port's token: kind %v, want error 203", r.Kind)
	}
}

// A genuine client behind a NAT whose mapping changed between its
// get_peers (port A) and its announce (port B) is refused once (error
// 203: the token proves port A, not B), and loses nothing more: its next
// get_peers goes out through the new mapping, and the announce with that
// token is recorded first-hand from port B. With implied_port the listen
// port recorded is B, the port the token proves, never one a third party
// chose.
func TestDHTAnnounceAfterANATRebindingIsRecordedOnTheNextRound(t *testing.T) {
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	key := krpc.ID(Key(w.Hash))
	sensorAddr := s.Addrs()[0]
	before := udpSocket(t, "127.0.0.1") // the mapping at get_peers time
	after := udpSocket(t, "127.0.0.1")  // the mapping at announce time
	me := randomID()
	announce := func(tid string, token []byte) *krpc.Msg {
		ann := &krpc.Msg{T: []byte(tid), Kind: krpc.KindQuery, Method: krpc.MethodAnnouncePeer}
		ann.A.ID, ann.A.InfoHash, ann.A.Token, ann.A.ImpliedPort, ann.A.Port = me, key, token, true, 1
		return dhtClient(t, after, sensorAddr, ann)
	}
	old, _ := getToken(t, before, sensorAddr, me, key, "g1")
	if r := announce("a1", old.R.Token); r.Kind != krpc.KindError || r.E.Code != krpc.ErrorProtocol {
		t.Fatalf("announce from a rebound port with the old token: kind %v, want error 203", r.Kind)
	}
	fresh, _ := getToken(t, after, sensorAddr, me, key, "g2")
	if r := announce("a2", fresh.R.Token); r.Kind != krpc.KindResponse {
		t.Fatalf("announce with the token of its own port: kind %v, want a response", r.Kind)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []observe.Observation
		pub.mu.Lock()
		for _, o := range pub.obs {
			if o.Method == observe.MethodDHTAnnounce {
				got = append(got, o)
			}
		}
		pub.mu.Unlock()
		if len(got) == 1 {
			o, b := got[0], udpAddrOf(after)
			if !o.FirstHand() || o.Endpoint.Port != b.Port() || o.Client.ListenPort != b.Port() {
				t.Fatalf("announce recorded first-hand %v from port %d listen port %d, want first-hand from and listening on %d",
					o.FirstHand(), o.Endpoint.Port, o.Client.ListenPort, b.Port())
			}
			return
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d dht_announce observations, want 1 (the second round's)", len(got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
