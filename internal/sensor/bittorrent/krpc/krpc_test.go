package krpc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

func id(s string) ID {
	if len(s) != 20 {
		panic("test id must be 20 bytes: " + s)
	}
	return ID([]byte(s))
}

// compactNode builds the 26- or 38-byte compact form of a node.
func compactNode(nid ID, ap netip.AddrPort) string {
	var b []byte
	b = append(b, nid[:]...)
	if ap.Addr().Is4() {
		a := ap.Addr().As4()
		b = append(b, a[:]...)
	} else {
		a := ap.Addr().As16()
		b = append(b, a[:]...)
	}
	b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	return string(b)
}

var (
	nodeA = NodeInfo{ID: id("node-a-0123456789abc"), Addr: netip.MustParseAddrPort("127.0.0.2:6881")}
	nodeB = NodeInfo{ID: id("node-b-0123456789abc"), Addr: netip.MustParseAddrPort("127.0.0.3:51413")}
	node6 = NodeInfo{ID: id("node-6-0123456789abc"), Addr: netip.MustParseAddrPort("[::1]:6881")}
)

// The packets below are the examples of BEP 5, 32, 42, 43 and 51, with the
// spec's placeholder node strings replaced by real compact nodes.
var specPackets = []struct {
	name string
	pkt  string
	want Msg
	// lossy marks a packet whose decoding drops keys, so that it does not
	// encode back to the same bytes.
	lossy bool
}{
	{
		name: "bep5-ping-query",
		pkt:  "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodPing, MethodName: []byte("ping"), A: Args{ID: id("abcdefghij0123456789")}},
	},
	{
		name: "bep5-ping-response",
		pkt:  "d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{ID: id("mnopqrstuvwxyz123456")}},
	},
	{
		name: "bep5-find-node-query",
		pkt:  "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodFindNode, MethodName: []byte("find_node"), A: Args{ID: id("abcdefghij0123456789"), Target: id("mnopqrstuvwxyz123456")}},
	},
	{
		name: "bep5-find-node-response",
		pkt:  "d1:rd2:id20:0123456789abcdefghij5:nodes52:" + compactNode(nodeA.ID, nodeA.Addr) + compactNode(nodeB.ID, nodeB.Addr) + "e1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{ID: id("0123456789abcdefghij"), Nodes: []NodeInfo{nodeA, nodeB}}},
	},
	{
		name: "bep5-get-peers-query",
		pkt:  "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodGetPeers, MethodName: []byte("get_peers"), A: Args{ID: id("abcdefghij0123456789"), InfoHash: id("mnopqrstuvwxyz123456")}},
	},
	{
		name: "bep5-get-peers-response-values",
		pkt:  "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{
			ID:    id("abcdefghij0123456789"),
			Token: []byte("aoeusnth"),
			Values: []netip.AddrPort{
				netip.AddrPortFrom(netip.AddrFrom4([4]byte{'a', 'x', 'j', 'e'}), uint16('.')<<8|uint16('u')),
				netip.AddrPortFrom(netip.AddrFrom4([4]byte{'i', 'd', 'h', 't'}), uint16('n')<<8|uint16('m')),
			},
		}},
	},
	{
		name: "bep5-get-peers-response-nodes",
		pkt:  "d1:rd2:id20:abcdefghij01234567895:nodes26:" + compactNode(nodeA.ID, nodeA.Addr) + "5:token8:aoeusnthe1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{ID: id("abcdefghij0123456789"), Nodes: []NodeInfo{nodeA}, Token: []byte("aoeusnth")}},
	},
	{
		name: "bep5-announce-peer-query",
		pkt:  "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodAnnouncePeer, MethodName: []byte("announce_peer"), A: Args{
			ID: id("abcdefghij0123456789"), ImpliedPort: true, InfoHash: id("mnopqrstuvwxyz123456"), Port: 6881, Token: []byte("aoeusnth"),
		}},
	},
	{
		name: "libtorrent-announce-peer-with-name-and-seed",
		pkt:  "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234561:n13:synthetic-0014:porti51413e4:seedi1e5:token4:tokne1:q13:announce_peer1:t2:ab1:v4:LT\x01\x021:y1:qe",
		want: Msg{T: []byte("ab"), Kind: KindQuery, Method: MethodAnnouncePeer, MethodName: []byte("announce_peer"), V: []byte("LT\x01\x02"), A: Args{
			ID: id("abcdefghij0123456789"), InfoHash: id("mnopqrstuvwxyz123456"), Name: []byte("synthetic-001"), Port: 51413, Seed: true, Token: []byte("tokn"),
		}},
	},
	{
		name: "bep5-error",
		pkt:  "d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
		want: Msg{T: []byte("aa"), Kind: KindError, E: Error{Code: 201, Msg: []byte("A Generic Error Ocurred")}},
	},
	{
		name: "bep32-get-peers-want-n4-n6",
		pkt:  "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n42:n6ee1:q9:get_peers1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodGetPeers, MethodName: []byte("get_peers"), A: Args{ID: id("abcdefghij0123456789"), InfoHash: id("mnopqrstuvwxyz123456"), Want: WantN4 | WantN6}},
	},
	{
		name: "bep32-find-node-response-nodes6",
		pkt:  "d1:rd2:id20:0123456789abcdefghij6:nodes638:" + compactNode(node6.ID, node6.Addr) + "e1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{ID: id("0123456789abcdefghij"), Nodes6: []NodeInfo{node6}}},
	},
	{
		name: "bep42-response-with-ip",
		pkt:  "d2:ip6:\x7f\x00\x00\x01\x1a\xe11:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, IP: netip.MustParseAddrPort("127.0.0.1:6881"), R: Return{ID: id("mnopqrstuvwxyz123456")}},
	},
	{
		name: "bep43-read-only-ping",
		pkt:  "d1:ad2:id20:abcdefghij0123456789e1:q4:ping2:roi1e1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodPing, MethodName: []byte("ping"), RO: true, A: Args{ID: id("abcdefghij0123456789")}},
	},
	{
		name: "bep51-sample-infohashes-query",
		pkt:  "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q17:sample_infohashes1:t2:aa1:y1:qe",
		want: Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodSampleInfohashes, MethodName: []byte("sample_infohashes"), A: Args{ID: id("abcdefghij0123456789"), Target: id("mnopqrstuvwxyz123456")}},
	},
	{
		name: "bep51-sample-infohashes-response",
		pkt:  "d1:rd2:id20:0123456789abcdefghij8:intervali21600e5:nodes26:" + compactNode(nodeA.ID, nodeA.Addr) + "3:numi2e7:samples40:synthetic-infohash-1synthetic-infohash-2e1:t2:aa1:y1:re",
		want: Msg{T: []byte("aa"), Kind: KindResponse, R: Return{
			ID: id("0123456789abcdefghij"), Interval: 21600, HasInterval: true, Nodes: []NodeInfo{nodeA}, Num: 2, HasNum: true,
			Samples: []ID{id("synthetic-infohash-1"), id("synthetic-infohash-2")},
		}},
	},
	{
		name:  "unknown-method-keeps-name-and-id",
		pkt:   "d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q3:get1:t2:aa1:y1:qe",
		want:  Msg{T: []byte("aa"), Kind: KindQuery, Method: MethodUnknown, MethodName: []byte("get"), A: Args{ID: id("abcdefghij0123456789")}},
		lossy: true,
	},
}

func TestDecodeSpecExamples(t *testing.T) {
	for _, tt := range specPackets {
		t.Run(tt.name, func(t *testing.T) {
			var m Msg
			if err := m.Decode([]byte(tt.pkt)); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := msgDiff(&m, &tt.want); diff != "" {
				t.Fatalf("Decode: %s", diff)
			}
		})
	}
}

// The spec examples are canonical (sorted keys, no unknown keys), so
// encoding what was decoded must give back the very same bytes.
func TestEncodeReproducesSpecExamples(t *testing.T) {
	for _, tt := range specPackets {
		if tt.lossy {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			var m Msg
			if err := m.Decode([]byte(tt.pkt)); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			out, err := m.AppendTo(nil)
			if err != nil {
				t.Fatalf("AppendTo: %v", err)
			}
			if got, want := string(out), tt.pkt; got != want {
				t.Fatalf("AppendTo =\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestDecodeRejectsMalformedMessages(t *testing.T) {
	ping := "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
	tests := []struct {
		name string
		pkt  string
		want error
	}{
		{"empty", "", ErrNotKRPC},
		{"utp-packet", "\x41\x00\x12\x34", ErrNotKRPC},
		{"list-not-dict", "l1:ae", ErrNotKRPC},
		{"no-y", "d1:t2:aae", ErrNotKRPC},
		{"bad-y", "d1:t2:aa1:y1:xe", ErrNotKRPC},
		{"no-t", "d1:rd2:id20:mnopqrstuvwxyz123456e1:y1:re", ErrMissingField},
		{"query-without-a", "d1:q4:ping1:t2:aa1:y1:qe", ErrMissingField},
		{"query-without-q", "d1:ad2:id20:abcdefghij0123456789e1:t2:aa1:y1:qe", ErrMissingField},
		{"query-without-id", "d1:ade1:q4:ping1:t2:aa1:y1:qe", ErrMissingField},
		{"get-peers-without-info-hash", "d1:ad2:id20:abcdefghij0123456789e1:q9:get_peers1:t2:aa1:y1:qe", ErrMissingField},
		{"announce-without-token", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1ee1:q13:announce_peer1:t2:aa1:y1:qe", ErrMissingField},
		{"announce-without-port", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", ErrMissingField},
		{"response-without-id", "d1:rde1:t2:aa1:y1:re", ErrMissingField},
		{"short-id", "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", ErrBadField},
		{"id-is-int", "d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", ErrBadField},
		{"spec-placeholder-nodes", "d1:rd2:id20:abcdefghij01234567895:nodes9:def456...5:token8:aoeusnthe1:t2:aa1:y1:re", ErrBadField},
		{"nodes6-wrong-size", "d1:rd2:id20:abcdefghij01234567896:nodes626:" + compactNode(nodeA.ID, nodeA.Addr) + "e1:t2:aa1:y1:re", ErrBadField},
		{"value-of-7-bytes", "d1:rd2:id20:abcdefghij01234567896:valuesl7:abcdefgee1:t2:aa1:y1:re", ErrBadField},
		{"value-is-int", "d1:rd2:id20:abcdefghij01234567896:valuesli1eee1:t2:aa1:y1:re", ErrBadField},
		{"samples-not-multiple-of-20", "d1:rd2:id20:abcdefghij01234567897:samples3:abce1:t2:aa1:y1:re", ErrBadField},
		{"port-out-of-range", "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti65536e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe", ErrBadField},
		{"negative-num", "d1:rd2:id20:abcdefghij01234567893:numi-1ee1:t2:aa1:y1:re", ErrBadField},
		{"ip-of-5-bytes", "d2:ip5:abcde1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", ErrBadField},
		{"error-with-three-items", "d1:eli201e1:x1:ye1:t2:aa1:y1:ee", ErrBadField},
		{"error-without-code", "d1:el1:xe1:t2:aa1:y1:ee", ErrBadField},
		{"long-transaction-id", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t65:" + strings.Repeat("t", 65) + "1:y1:qe", ErrBadField},
		{"duplicate-t", "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:t2:bb1:y1:qe", ErrDuplicateKey},
		{"duplicate-id", "d1:ad2:id20:abcdefghij01234567892:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", ErrDuplicateKey},
		{"truncated", ping[:len(ping)-1], ErrTruncated},
		{"truncated-in-a", ping[:20], ErrTruncated},
		{"trailing-data", ping + "x", ErrTrailingData},
		{"leading-zero-length", "d1:ad2:id020:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", ErrSyntax},
		{"too-large", "d1:t2:aa1:y1:q5:pad__" + itoa(MaxMessageSize) + ":" + strings.Repeat("x", MaxMessageSize) + "e", ErrTooLarge},
		{"too-deep", "d1:t2:aa1:y1:r1:xllllllllleeeeeeeeee", ErrTooDeep},
		{"too-many-values", "d1:rd2:id20:abcdefghij01234567896:valuesl" + strings.Repeat("6:abcdef", MaxListLen+1) + "ee1:t2:aa1:y1:re", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Msg
			err := m.Decode([]byte(tt.pkt))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func itoa(n int) string {
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestDecodeUnmapsIPv4MappedValues(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:127.0.0.5").As16()
	pkt := "d1:rd2:id20:abcdefghij01234567895:token1:x6:valuesl18:" + string(mapped[:]) + "\x1a\xe1" + "18:" + string(netip.IPv6Loopback().AsSlice()) + "\x1a\xe2" + "ee1:t2:aa1:y1:re"
	var m Msg
	if err := m.Decode([]byte(pkt)); err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.5:6881"), netip.MustParseAddrPort("[::1]:6882")}
	if got := m.R.Values; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Values = %v, want %v", got, want)
	}
	// Re-encoding writes the IPv4 peer in its 6-byte form.
	out, err := m.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("6:\x7f\x00\x00\x05\x1a\xe1")) {
		t.Fatalf("encoded %q lacks the 6-byte IPv4 peer", out)
	}
}

// nodes6 may hold an IPv4-mapped node (as some nodes answering want n6
// do with values): it decodes as the IPv4 node it is, so that the sensor
// files it with the IPv4 DHT.
func TestDecodeUnmapsIPv4MappedNodes6(t *testing.T) {
	b, err := os.ReadFile("testdata/fuzz/FuzzDecode/bep32-nodes-and-nodes6-with-mapped")
	if err != nil {
		t.Fatal(err)
	}
	lit := strings.TrimSuffix(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[1], "[]byte("), ")\n")
	pkt, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatal(err)
	}
	var m Msg
	if err := m.Decode([]byte(pkt)); err != nil {
		t.Fatal(err)
	}
	if len(m.R.Nodes) != 1 || m.R.Nodes[0].Addr != netip.MustParseAddrPort("127.0.0.4:6881") {
		t.Fatalf("nodes %v", m.R.Nodes)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("[::1]:6882"), netip.MustParseAddrPort("127.0.0.5:6883")}
	if len(m.R.Nodes6) != 2 || m.R.Nodes6[0].Addr != want[0] || m.R.Nodes6[1].Addr != want[1] || !m.R.Nodes6[1].Addr.Addr().Is4() {
		t.Fatalf("nodes6 %v, want %v (the second IPv4)", m.R.Nodes6, want)
	}
}

func TestDecodeIgnoresUnknownKeysAndUnsortedOrder(t *testing.T) {
	pkt := "d1:y1:q1:t2:aa5:extrald1:xi1eee1:q9:get_peers1:ad9:info_hash20:mnopqrstuvwxyz1234562:id20:abcdefghij01234567896:scrapei1eee"
	var m Msg
	if err := m.Decode([]byte(pkt)); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Method, MethodGetPeers; got != want {
		t.Fatalf("Method = %v, want %v", got, want)
	}
	if got, want := m.A.InfoHash, id("mnopqrstuvwxyz123456"); got != want {
		t.Fatalf("InfoHash = %x, want %x", got, want)
	}
}

func TestDecodeClearsFieldsTheMethodDoesNotUse(t *testing.T) {
	// A ping carrying announce arguments: they are not part of a ping.
	pkt := "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti1e5:token1:xe1:q4:ping1:t2:aa1:y1:qe"
	var m Msg
	if err := m.Decode([]byte(pkt)); err != nil {
		t.Fatal(err)
	}
	if m.A.InfoHash != (ID{}) || m.A.Port != 0 || m.A.Token != nil {
		t.Fatalf("ping kept announce arguments: %+v", m.A)
	}
}

func TestDecodeReusesMsgWithoutAllocating(t *testing.T) {
	query := []byte("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n4ee1:q9:get_peers1:t2:aa1:y1:qe")
	resp := []byte(specPackets[15].pkt) // sample_infohashes response: nodes and samples
	var m Msg
	_ = m.Decode(resp)
	for _, pkt := range [][]byte{query, resp} {
		allocs := testing.AllocsPerRun(100, func() {
			if err := m.Decode(pkt); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("Decode(%.30q...) allocates %.1f times per message", pkt, allocs)
		}
	}
	buf := make([]byte, 0, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		if buf, err = m.AppendTo(buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendTo allocates %.1f times per message", allocs)
	}
}

func TestEncodeRejectsUnencodableMessages(t *testing.T) {
	tests := []struct {
		name string
		m    Msg
	}{
		{"no-kind", Msg{T: []byte("aa")}},
		{"query-without-method", Msg{T: []byte("aa"), Kind: KindQuery}},
		{"ipv6-node-in-nodes", Msg{T: []byte("aa"), Kind: KindResponse, R: Return{Nodes: []NodeInfo{node6}}}},
		{"invalid-value", Msg{T: []byte("aa"), Kind: KindResponse, R: Return{Values: []netip.AddrPort{{}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.m.AppendTo(nil); !errors.Is(err, ErrEncode) {
				t.Fatalf("AppendTo = %v, want ErrEncode", err)
			}
		})
	}
}

func TestEncodeAnswersGetPeersWithNodesAndToken(t *testing.T) {
	var q Msg
	if err := q.Decode([]byte(specPackets[4].pkt)); err != nil {
		t.Fatal(err)
	}
	r := Msg{T: q.T, Kind: KindResponse, R: Return{ID: id("0123456789abcdefghij"), Nodes: []NodeInfo{nodeA, nodeB}, Token: []byte("tok1")}}
	out, err := r.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back Msg
	if err := back.Decode(out); err != nil {
		t.Fatalf("Decode(%q): %v", out, err)
	}
	if diff := msgDiff(&back, &r); diff != "" {
		t.Fatal(diff)
	}
}

// BEP 42's table of example ids: IP, the random byte, and the id.
var bep42Vectors = []struct {
	ip string
	id string
}{
	{"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
	{"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
	{"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
	{"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
	{"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
}

func TestSecureNodeIDMatchesBep42Vectors(t *testing.T) {
	for _, v := range bep42Vectors {
		t.Run(v.ip, func(t *testing.T) {
			raw, err := hex.DecodeString(v.id)
			if err != nil {
				t.Fatal(err)
			}
			want := ID(raw)
			ip := netip.MustParseAddr(v.ip)
			if !SecureNodeIDMatches(want, ip) {
				t.Fatalf("SecureNodeIDMatches(%x, %v) = false", want, ip)
			}
			// Generating from the example's own random bits gives the example.
			if got := SecureNodeID(ip, want); got != want {
				t.Fatalf("SecureNodeID = %x, want %x", got, want)
			}
			// The id does not fit another address, nor another r.
			if SecureNodeIDMatches(want, netip.MustParseAddr("8.8.4.4")) {
				t.Fatalf("id %x also matches 8.8.4.4", want)
			}
			other := want
			other[19] ^= 0x01
			if SecureNodeIDMatches(other, ip) {
				t.Fatalf("id with a different r still matches")
			}
		})
	}
}

func TestSecureNodeIDForIPv6RoundTrips(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8:1234:5678::1")
	for r := 0; r < 8; r++ {
		seed := id("random-seed-bytes-00")
		seed[19] = byte(r)
		got := SecureNodeID(ip, seed)
		if !SecureNodeIDMatches(got, ip) {
			t.Fatalf("r=%d: generated id %x does not match its address", r, got)
		}
		if SecureNodeIDMatches(got, netip.MustParseAddr("2001:db9:1234:5678::1")) {
			t.Fatalf("r=%d: id %x matches a different /32", r, got)
		}
	}
}

func TestBep42ExemptCoversLocalAddresses(t *testing.T) {
	tests := []struct {
		ip   string
		want bool
	}{
		{"127.0.0.1", true},
		{"10.250.0.2", true},
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"169.254.3.3", true},
		{"::ffff:10.0.0.1", true},
		{"::1", true},
		{"fd00::1", true},
		{"124.31.75.21", false},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := Bep42Exempt(netip.MustParseAddr(tt.ip)); got != tt.want {
			t.Errorf("Bep42Exempt(%s) = %v, want %v", tt.ip, got, tt.want)
		}
	}
}
