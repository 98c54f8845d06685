package ed2k

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/hashkind"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/scope"
	tscript "github.com/vigil-oss/vigil/internal/sensor/bittorrent/transcript"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kad"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/kadwire"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/server"
	"github.com/vigil-oss/vigil/internal/sensor/ed2k/wire"
)

// A server names, as sources of a watched file, high ids with port 0:
// the sensor's own listen address (port 0 is the port the sensor gives
// itself in its server login and its hello, so a server that lists its
// logged-in clients names the sensor so) and another address. A port of
// 0 names no endpoint anyone can have used: no client listens there and
// no probe can reach it; a Kad entry with port 0 is already dropped
// (kad_source_without_address). The code before this recorded both as
// ed2k_server_sources (in lab scope, the default of 'vigil sensor
// ed2k', the first an observation of the sensor's own address) and
// queued a probe of each.
func TestServerSourceWithPortZeroIsNotRecorded(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = netip.MustParseAddr("127.61.255.1")
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	var found server.Found
	found.Sources = []wire.Source{
		{ID: ed2kID(cfg.Listen), Port: 0},
		{ID: ed2kID(netip.MustParseAddr("127.61.0.1")), Port: 0},
		{ID: ed2kID(netip.MustParseAddr("127.61.0.2")), Port: 4662},
	}
	found.Kept, found.At = true, time.Now()
	s.recordServer(t.Context(), nil, w, found)
	for _, o := range pub.all() {
		if o.Endpoint.Port == 0 {
			t.Errorf("a source with port 0 recorded: %v", o.Endpoint.IP)
		}
	}
	st := s.Stats()
	if st.Emitted[observe.MethodED2KServerSources] != 1 || len(s.queue) != 1 {
		t.Fatalf("%d recorded, %d probes queued; want the one source with a port", st.Emitted[observe.MethodED2KServerSources], len(s.queue))
	}
	if st.Dropped["server_source_without_port"] != 2 {
		t.Fatalf("dropped %v, want 2 server_source_without_port", st.Dropped)
	}
}

// eD2K and Kad run over IPv4 alone (a client id, a server's source and a
// Kad contact are 32-bit addresses): a sensor told to listen on an IPv6
// address could reach no server and no node, and would run its whole
// duration failing every login and bootstrap, recording nothing, with no
// error but warnings. The code before this accepted it; now it is refused
// at start. An IPv4 address written in its IPv6-mapped form is IPv4.
func TestListenAddressMustBeIPv4(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4661")}
	for _, a := range []string{"::1", "fd00::1", "2001:db8::7"} {
		cfg.Listen = netip.MustParseAddr(a)
		if err := cfg.Validate(); err == nil {
			t.Errorf("listen address %s accepted", a)
		}
	}
	for _, a := range []string{"127.0.0.1", "::ffff:100.64.9.1"} {
		cfg.Listen = netip.MustParseAddr(a)
		if err := cfg.Validate(); err != nil {
			t.Errorf("listen address %s refused: %v", a, err)
		}
	}
}

// A Kad node answers a source search with one datagram of 65,376 bytes
// (1,815 sources; UDP allows 65,507 bytes) and a short one. The long one
// does not fit whole in the 64 KiB transcript (the default): its start is
// kept and the rest counted in a cut record. The code before this
// recorded sources taken from it (the per-node cap's 300), each
// observation's transcript lacking the bytes that named it; a server's
// answer not kept whole is dropped (answer_not_kept), and no value is
// taken from bytes left out of a transcript. Now the sources of a Kad
// answer not kept whole are not recorded nor probed
// (kad_answer_not_kept); the short answer's are.
func TestKadAnswerNotKeptWholeIsNotRecorded(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Listen = netip.MustParseAddr("127.62.255.1")
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")} // never dialled here
	pub := &collector{}
	s, err := New(cfg, g, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := Watched{Hash: hashkind.MustNew(hashkind.ED2K, make([]byte, 16)), Size: 1 << 20, Matched: []observe.Match{{List: "lab"}}}
	answer := func(node kadwire.Contact, n int, first byte) []kad.Found {
		sr := kadwire.SearchRes{Sender: node.ID, Target: kadwire.FileID([16]byte(w.Hash.Bytes()))}
		for i := range n {
			ip := netip.AddrFrom4([4]byte{127, 62, first + byte(i>>8), byte(i)})
			sr.Results = append(sr.Results, kadwire.Result{ID: kadwire.ID{byte(i), byte(i >> 8), first}, Tags: []kadwire.Tag{
				kadwire.IntTag(kadwire.TagSourceType, 1), kadwire.IntTag(kadwire.TagSourceIP, uint64(kadwire.IPToUint32(ip))),
				kadwire.IntTag(kadwire.TagSourcePort, 4662)}})
		}
		raw := kadwire.Encode(kadwire.OpSearchRes, sr.AppendTo(nil))
		req := kadwire.Encode(kadwire.OpSearchSourceReq, kadwire.SearchSourceReq{Target: sr.Target, Size: 1 << 20}.AppendTo(nil))
		now := time.Now()
		reply := kad.Reply{From: node.Addr, Raw: raw, At: now, Sent: req, SentAt: now.Add(-time.Millisecond)}
		var out []kad.Found
		for _, res := range sr.Results {
			src, _ := res.Source()
			out = append(out, kad.Found{Node: node, Result: res, Source: src, Reply: reply})
		}
		return out
	}
	long := kadwire.Contact{ID: kadwire.ID{1}, Addr: netip.MustParseAddrPort("127.62.200.1:4672")}
	short := kadwire.Contact{ID: kadwire.ID{2}, Addr: netip.MustParseAddrPort("127.62.200.2:4672")}
	found := answer(long, 1815, 0)
	if n := len(found[0].Reply.Raw); n < cfg.TranscriptLimit-512 || n > 65507 {
		t.Fatalf("the long answer has %d bytes; want a datagram near the transcript bound", n)
	}
	found = append(found, answer(short, 3, 100)...)
	s.recordKadSources(t.Context(), w, found)
	for _, o := range pub.all() {
		sum, err := tscript.Summarize(o.Transcript.Bytes)
		if err != nil || sum.Cut {
			t.Fatalf("a kad_sources observation of %v rests on an answer cut from its transcript (%+v, %v)", o.Endpoint.IP, sum, err)
		}
	}
	st := s.Stats()
	if st.Emitted[observe.MethodKadSources] != 3 || len(s.queue) != 3 || st.Dropped["kad_answer_not_kept"] == 0 {
		t.Fatalf("%d recorded, %d probes queued, dropped %v; want the short answer's 3 and the long one's kad_answer_not_kept",
			st.Emitted[observe.MethodKadSources], len(s.queue), st.Dropped)
	}
}

// A sensor told to listen on 0.0.0.0 (any address) names "0.0.0.0" as
// its vantage in every observation, and cannot know itself: its Kad node
// is at 0.0.0.0:port, so in lab scope (the default) a Kad node or server
// that names the host's real address with the Kad node's port is not
// dropped as self, and outside lab scope no address is its listen
// address. The code before this accepted it; now it is refused at start.
func TestListenAddressMustBeOneAddress(t *testing.T) {
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Servers = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:4661")}
	for _, a := range []string{"0.0.0.0", "::ffff:0.0.0.0"} {
		cfg.Listen = netip.MustParseAddr(a)
		if _, err := New(cfg, g, &collector{}, nil); err == nil {
			t.Errorf("listen address %s accepted", a)
		}
	}
}
