package simdht

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// client is a test's DHT client: one loopback socket, one query at a time.
type client struct {
	t    *testing.T
	conn *net.UDPConn
	id   ID
	n    uint16
	// ro marks queries read-only (BEP 43): the nodes do not learn the client.
	ro bool
}

func newClient(t *testing.T, ip string) *client {
	t.Helper()
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ip+":0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c}
	rand.Read(cl.id[:])
	return cl
}

func (c *client) query(to netip.AddrPort, q string, a krpc.MsgArgs) krpc.Msg {
	c.t.Helper()
	var m krpc.Msg
	if err := bencode.Unmarshal(c.queryRaw(to, q, a), &m); err != nil {
		c.t.Fatalf("%s reply from %v does not decode: %v", q, to, err)
	}
	return m
}

// queryRaw sends a query and returns the reply's bytes.
func (c *client) queryRaw(to netip.AddrPort, q string, a krpc.MsgArgs) []byte {
	c.t.Helper()
	c.n++
	var tb [2]byte
	binary.BigEndian.PutUint16(tb[:], c.n)
	a.ID = c.id
	b, err := bencode.Marshal(krpc.Msg{T: string(tb[:]), Y: "q", Q: q, A: &a, ReadOnly: c.ro})
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	for {
		c.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			c.t.Fatalf("%s to %v: %v", q, to, err)
		}
		var m struct {
			T string `bencode:"t"`
		}
		_ = bencode.Unmarshal(buf[:n], &m)
		if m.T == string(tb[:]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
}

func startNet(t *testing.T, cfg Config) *Network {
	t.Helper()
	nw, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })
	return nw
}

func randomID() (id ID) {
	rand.Read(id[:])
	return id
}

// bruteClosest is the ground truth: every node sorted by distance.
func bruteClosest(nw *Network, target ID, k int) []ID {
	var ids []ID
	for _, n := range nw.Nodes() {
		ids = append(ids, n.ID)
	}
	slices.SortFunc(ids, func(a, b ID) int { return cmpDist(target, a, b) })
	return ids[:min(k, len(ids))]
}

func TestClosestIsExact(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 300
	nw := startNet(t, cfg)
	for range 200 {
		target := randomID()
		for _, k := range []int{1, 8, 20} {
			var got []ID
			for _, n := range nw.Closest(target, k) {
				got = append(got, n.ID)
			}
			if want := bruteClosest(nw, target, k); !slices.Equal(got, want) {
				t.Fatalf("Closest(%x, %d) = %x, want %x", target, k, got, want)
			}
		}
	}
}

// TestFindNodeLookupConverges runs Kademlia lookups (α = 3) against the
// nodes over UDP, starting from one node: each must end on the network's
// true K closest nodes, but for at most one lookup one node off.
func TestFindNodeLookupConverges(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 500
	nw := startNet(t, cfg)
	c := newClient(t, "127.0.0.1")
	c.ro = true // a lookup that joined the tables would take their slots
	start := nw.Nodes()[0]
	misses := 0
	for range 20 {
		target := randomID()
		known := map[ID]netip.AddrPort{start.ID: start.Addr}
		asked := map[ID]bool{}
		for {
			var cands []ID
			for id := range known {
				cands = append(cands, id)
			}
			slices.SortFunc(cands, func(a, b ID) int { return cmpDist(target, a, b) })
			cands = cands[:min(cfg.K, len(cands))]
			var next []ID
			for _, id := range cands {
				if !asked[id] {
					next = append(next, id)
				}
			}
			if len(next) == 0 {
				if want := bruteClosest(nw, target, cfg.K); !slices.Equal(cands, want) {
					// Kademlia promises no exact answer: a node's bucket
					// holds K of the nodes it covers, so the K-th closest
					// may be in none of the tables asked (none in 6,000
					// lookups here once nodes named K others and the client
					// stayed out of the tables). One lookup of the 20 may end
					// one node off.
					misses++
					shared := 0
					for _, id := range cands {
						if slices.Contains(want, id) {
							shared++
						}
					}
					if misses > 1 || shared < cfg.K-1 {
						t.Fatalf("lookup for %x ended on %x, want %x (%d lookups off)", target, cands, want, misses)
					}
					t.Logf("lookup for %x ended one node off the true %d closest", target, cfg.K)
				}
				break
			}
			for _, id := range next[:min(3, len(next))] {
				asked[id] = true
				r := c.query(known[id], "find_node", krpc.MsgArgs{Target: target})
				if r.R == nil || r.R.ID != id {
					t.Fatalf("find_node reply from %x: %+v", id, r)
				}
				if len(r.R.Nodes) > cfg.K {
					t.Fatalf("find_node named %d nodes, want at most %d", len(r.R.Nodes), cfg.K)
				}
				for _, ni := range r.R.Nodes {
					if ni.ID == c.id {
						continue // the nodes learned the client itself
					}
					ap, _ := netip.AddrFromSlice(ni.Addr.IP)
					known[ni.ID] = netip.AddrPortFrom(ap.Unmap(), uint16(ni.Addr.Port))
				}
			}
			if len(asked) > 200 {
				t.Fatalf("lookup for %x did not converge in 200 queries", target)
			}
		}
	}
}

func TestSampleInfohashes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes, cfg.Interval = 40, 7*time.Second
	nw := startNet(t, cfg)
	hashes := make([]ID, 2000)
	holder := map[ID]ID{} // info-hash -> the node that must hold it
	for i := range hashes {
		hashes[i] = randomID()
		holder[hashes[i]] = nw.Closest(hashes[i], 1)[0].ID
	}
	peer := netip.MustParseAddrPort("127.250.0.1:6881")
	nw.Preload(hashes, func(int) []netip.AddrPort { return []netip.AddrPort{peer} }, 1)
	c := newClient(t, "127.0.0.1")
	total := 0
	for _, n := range nw.Nodes() {
		held := map[ID]bool{}
		for h, who := range holder {
			if who == n.ID {
				held[h] = true
			}
		}
		var r sampleReply
		if err := bencode.Unmarshal(c.queryRaw(n.Addr, "sample_infohashes", krpc.MsgArgs{Target: randomID()}), &r); err != nil {
			t.Fatalf("node %v: sample reply: %v", n.Addr, err)
		}
		if got, want := r.R.Num, int64(len(held)); got != want {
			t.Fatalf("node %v: num %d, want %d", n.Addr, got, want)
		}
		if got := r.R.Interval; got != 7 {
			t.Fatalf("node %v: interval %d, want 7", n.Addr, got)
		}
		if len(r.R.Samples)%20 != 0 {
			t.Fatalf("node %v: samples of %d bytes", n.Addr, len(r.R.Samples))
		}
		var s []ID
		for i := 0; i < len(r.R.Samples); i += 20 {
			s = append(s, ID([]byte(r.R.Samples[i:i+20])))
		}
		if want := min(len(held), 20); len(s) != want {
			t.Fatalf("node %v: %d samples, want %d", n.Addr, len(s), want)
		}
		dup := map[ID]bool{}
		for _, h := range s {
			if !held[h] {
				t.Fatalf("node %v sampled %x, which it does not hold", n.Addr, h)
			}
			if dup[h] {
				t.Fatalf("node %v sampled %x twice in one reply", n.Addr, h)
			}
			dup[h] = true
		}
		if len(r.R.Nodes) == 0 || len(r.R.Nodes) > cfg.K {
			t.Fatalf("node %v: %d nodes in a sample reply, want 1 to %d", n.Addr, len(r.R.Nodes), cfg.K)
		}
		total += int(r.R.Num)
	}
	if total != len(hashes) {
		t.Fatalf("nodes hold %d info-hashes in all, want %d", total, len(hashes))
	}
	// get_peers on the holder returns the preloaded peer.
	h := hashes[0]
	for _, n := range nw.Nodes() {
		if n.ID == holder[h] {
			r := c.query(n.Addr, "get_peers", krpc.MsgArgs{InfoHash: h})
			if len(r.R.Values) != 1 || r.R.Values[0].Port != 6881 {
				t.Fatalf("get_peers of a preloaded info-hash: values %v", r.R.Values)
			}
		}
	}
}

func TestAnnounceNeedsTheToken(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nodes = 3
	nw := startNet(t, cfg)
	n := nw.Nodes()[1]
	c := newClient(t, "127.0.0.9")
	ih := randomID()
	r := c.query(n.Addr, "get_peers", krpc.MsgArgs{InfoHash: ih})
	if r.R == nil || r.R.Token == nil || len(r.R.Values) != 0 {
		t.Fatalf("first get_peers: want a token and no values, got %+v", r.R)
	}
	tok := *r.R.Token
	port := 7000
	bad := c.query(n.Addr, "announce_peer", krpc.MsgArgs{InfoHash: ih, Token: tok + "x", Port: &port})
	if bad.E == nil || bad.E.Code != krpc.ErrorCodeProtocolError {
		t.Fatalf("announce with a wrong token: want error 203, got %+v", bad)
	}
	// Another address's token is not this one's.
	other := newClient(t, "127.0.0.10")
	if r := other.query(n.Addr, "announce_peer", krpc.MsgArgs{InfoHash: ih, Token: tok, Port: &port}); r.E == nil {
		t.Fatal("a token given to 127.0.0.9 was accepted from 127.0.0.10")
	}
	if ok := c.query(n.Addr, "announce_peer", krpc.MsgArgs{InfoHash: ih, Token: tok, Port: &port}); ok.E != nil {
		t.Fatalf("announce with the right token: %+v", ok.E)
	}
	if ok := c.query(n.Addr, "announce_peer", krpc.MsgArgs{InfoHash: ih, Token: tok, ImpliedPort: true}); ok.E != nil {
		t.Fatalf("announce with implied_port: %+v", ok.E)
	}
	r = c.query(n.Addr, "get_peers", krpc.MsgArgs{InfoHash: ih})
	var got []string
	for _, v := range r.R.Values {
		got = append(got, v.String())
	}
	local := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	want := []string{"127.0.0.9:7000", local.String()}
	if !slices.Equal(got, want) {
		t.Fatalf("values after two announces: %v, want %v", got, want)
	}
	if st := nw.Stats(); st.Announces != 2 || st.BadTokens != 2 {
		t.Fatalf("stats: %d announces, %d bad tokens; want 2 and 2", st.Announces, st.BadTokens)
	}
	if r := c.query(n.Addr, "vote", krpc.MsgArgs{}); r.E == nil || r.E.Code != krpc.ErrorCodeMethodUnknown {
		t.Fatalf("unknown method: want error 204, got %+v", r)
	}
}

func TestConfigRejectsAddressesOffLoopback(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"first-addr-public": func(c *Config) { c.FirstAddr = netip.MustParseAddr("192.0.2.1") },
		"known-public":      func(c *Config) { c.Known = []NodeInfo{{Addr: netip.MustParseAddrPort("192.0.2.1:6881")}} },
		"past-127/8":        func(c *Config) { c.FirstAddr = netip.MustParseAddr("127.255.255.1"); c.Nodes = 600 },
		"no-nodes":          func(c *Config) { c.Nodes = 0 },
	} {
		cfg := DefaultConfig()
		mod(&cfg)
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Errorf("%s: Start accepted the config", name)
		}
	}
}
