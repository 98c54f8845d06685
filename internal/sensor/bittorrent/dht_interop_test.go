package bittorrent

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"golang.org/x/time/rate"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/sensor/bittorrent/krpc"
)

// A third-party DHT node (anacrolix/dht) announcing a watched item to the
// sensor: its announce passes the info-hash-bound token, is recorded with
// its UDP source and declared port apart, and its transcript holds the
// get_peers and the sensor's token-carrying answer before the announce.
func TestDHTAnnounceFromAnacrolixIsSelfProving(t *testing.T) {
	pub := newCollector()
	w := Watched{Hash: randomHash(t, hashkind.BTIH), Matched: []observe.Match{{List: "lab"}}}
	s := startSensor(t, pub, w)
	sensorAddr := s.Addrs()[0]

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	sc := adht.NewDefaultServerConfig()
	sc.Conn = conn
	sc.NoSecurity = true
	sc.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	sc.QueryResendDelay = func() time.Duration { return 300 * time.Millisecond }
	sc.StartingNodes = func() ([]adht.Addr, error) {
		return []adht.Addr{adht.NewAddr(net.UDPAddrFromAddrPort(sensorAddr))}, nil // never the public routers
	}
	srv, err := adht.NewServer(sc)
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	defer srv.Close()
	src := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	const listen = 51413
	key := [20]byte(Key(w.Hash))
	deadline := time.Now().Add(20 * time.Second)
	var o observe.Observation
	for {
		a, err := srv.AnnounceTraversal(key, adht.AnnouncePeer(adht.AnnouncePeerOpts{Port: listen}))
		if err != nil {
			t.Fatal(err)
		}
		for range a.Peers {
		}
		a.Close()
		if anns := pub.byMethod(observe.MethodDHTAnnounce); len(anns) > 0 {
			o = anns[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("anacrolix never announced to the sensor; sensor stats %+v, dht counters %+v", s.Stats(), s.dht.Stats())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if netip.AddrPortFrom(o.Endpoint.IP, o.Endpoint.Port) != src || o.Endpoint.Transport != "udp" || o.Client.ListenPort != listen {
		t.Fatalf("endpoint %+v listen port %d; want UDP source %v, listen port %d", o.Endpoint, o.Client.ListenPort, src, listen)
	}
	recs := dhtRecords(t, o.Transcript.Bytes)
	if len(recs) != 3 || recs[0].dir != '<' || recs[1].dir != '>' || recs[2].dir != '<' {
		t.Fatalf("transcript %d records: want get_peers, the answer with the token, the announce", len(recs))
	}
	var gp, ans, ann krpc.Msg
	if gp.Decode(recs[0].b) != nil || ans.Decode(recs[1].b) != nil || ann.Decode(recs[2].b) != nil {
		t.Fatal("transcript records do not decode")
	}
	if gp.Method != krpc.MethodGetPeers || gp.A.InfoHash != krpc.ID(key) || !bytes.Equal(ans.T, gp.T) ||
		ann.Method != krpc.MethodAnnouncePeer || !bytes.Equal(ann.A.Token, ans.R.Token) || ann.A.InfoHash != gp.A.InfoHash {
		t.Fatalf("transcript does not show the token sent and returned: get_peers %v %x, answer t=%x token=%x, announce token=%x",
			gp.Method, gp.A.InfoHash, ans.T, ans.R.Token, ann.A.Token)
	}
}
