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
