package krpc

import (
	"net/netip"
	"testing"

	zbencode "github.com/zeebo/bencode"
)

// The work a sensor's DHT node does for each get_peers it receives: decode
// the query, answer with its eight closest nodes and a token.
var (
	benchQuery = []byte("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:n4ee1:q9:get_peers1:t2:aa1:v4:LT\x01\x021:y1:qe")
	benchNodes = func() []NodeInfo {
		nodes := make([]NodeInfo, 8)
		for i := range nodes {
			nodes[i].ID = id("node-x-0123456789abc")
			nodes[i].ID[5] = byte('0' + i)
			nodes[i].Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}), uint16(6881+i))
		}
		return nodes
	}()
	benchSelf  = id("sensor-node-id-00000")
	benchToken = []byte("tok12345")
)

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkDecodeGetPeersQuery(b *testing.B) {
	b.Run("vigil", func(b *testing.B) {
		var m Msg
		b.ReportAllocs()
		b.SetBytes(int64(len(benchQuery)))
		for b.Loop() {
			if err := m.Decode(benchQuery); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("zeebo-map", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchQuery)))
		for b.Loop() {
			var m map[string]any
			if err := zbencode.DecodeBytes(benchQuery, &m); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

func BenchmarkEncodeNodesResponse(b *testing.B) {
	b.Run("vigil", func(b *testing.B) {
		r := Msg{T: []byte("aa"), Kind: KindResponse, R: Return{ID: benchSelf, Nodes: benchNodes, Token: benchToken}}
		buf := make([]byte, 0, 1500)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = r.AppendTo(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("zeebo-map", func(b *testing.B) {
		nodes := zeeboNodes()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := zbencode.EncodeBytes(zeeboResponse("aa", nodes)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// BenchmarkAnswerGetPeers is the figure that matters: one query in, one
// answer out, per iteration. The target is 50,000 a second on one core.
func BenchmarkAnswerGetPeers(b *testing.B) {
	b.Run("vigil", func(b *testing.B) {
		var q Msg
		r := Msg{Kind: KindResponse, R: Return{ID: benchSelf, Nodes: benchNodes, Token: benchToken}}
		buf := make([]byte, 0, 1500)
		b.ReportAllocs()
		for b.Loop() {
			if err := q.Decode(benchQuery); err != nil {
				b.Fatal(err)
			}
			if q.Kind != KindQuery || q.Method != MethodGetPeers {
				b.Fatal("not a get_peers query")
			}
			r.T = q.T
			var err error
			if buf, err = r.AppendTo(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("zeebo-map", func(b *testing.B) {
		nodes := zeeboNodes()
		b.ReportAllocs()
		for b.Loop() {
			var q map[string]any
			if err := zbencode.DecodeBytes(benchQuery, &q); err != nil {
				b.Fatal(err)
			}
			a, _ := q["a"].(map[string]any)
			ih, _ := a["info_hash"].(string)
			t, _ := q["t"].(string)
			if q["q"] != "get_peers" || len(ih) != 20 {
				b.Fatal("not a get_peers query")
			}
			if _, err := zbencode.EncodeBytes(zeeboResponse(t, nodes)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

func zeeboNodes() string {
	var nodes []byte
	for _, n := range benchNodes {
		a := n.Addr.Addr().As4()
		nodes = append(nodes, n.ID[:]...)
		nodes = append(nodes, a[:]...)
		nodes = append(nodes, byte(n.Addr.Port()>>8), byte(n.Addr.Port()))
	}
	return string(nodes)
}

func zeeboResponse(t, nodes string) map[string]any {
	return map[string]any{
		"t": t,
		"y": "r",
		"r": map[string]any{"id": string(benchSelf[:]), "nodes": nodes, "token": string(benchToken)},
	}
}
