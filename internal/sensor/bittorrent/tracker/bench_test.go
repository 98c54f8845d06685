package tracker

import (
	"fmt"
	"testing"

	anabencode "github.com/anacrolix/torrent/bencode"
	httpTracker "github.com/anacrolix/torrent/tracker/http"
)

// benchBodies are announce bodies of the sizes trackers send: the default
// 50 peers, opentracker's cap of 200, and the non-compact form.
func benchBodies(b *testing.B) map[string][]byte {
	out := map[string][]byte{}
	for _, n := range []int{50, 200} {
		var peers []byte
		for i := range n {
			peers = append(peers, 127, 0, byte(i>>8), byte(i), 0x1a, 0xe1)
		}
		out[fmt.Sprintf("compact-%d", n)] = benc(b, d("complete", 10, "incomplete", 40, "interval", 1800, "min interval", 900, "peers", peers))
	}
	var list []any
	for i := range 50 {
		list = append(list, d("ip", fmt.Sprintf("127.0.%d.%d", i>>8, i&255), "peer id", fmt.Sprintf("-SY0001-synthetic%03d", i), "port", 6881))
	}
	out["dictionary-50"] = benc(b, d("complete", 10, "incomplete", 40, "interval", 1800, "peers", list))
	return out
}

// BenchmarkParseHTTPAnnounce compares the parser with the baseline,
// anacrolix/torrent's HttpResponse decoded by its reflective bencode, on
// the same bodies in the same run.
func BenchmarkParseHTTPAnnounce(b *testing.B) {
	bodies := benchBodies(b)
	for _, name := range []string{"compact-50", "compact-200", "dictionary-50"} {
		body := bodies[name]
		b.Run(name+"/vigil", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := ParseHTTPAnnounce(body, 1000)
				if err != nil || len(r.Peers) == 0 {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/anacrolix", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var r httpTracker.HttpResponse
				if err := anabencode.Unmarshal(body, &r); err != nil || len(r.Peers.List) == 0 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseAnnounceResponse measures the UDP announce response parser
// on 200 IPv4 peers (no baseline: anacrolix decodes UDP packets inside its
// client's dispatcher, not through a function of bytes).
func BenchmarkParseAnnounceResponse(b *testing.B) {
	r := AnnounceResponse{TransactionID: 1, Interval: 1800, Leechers: 40, Seeders: 10}
	for _, p := range aps("127.0.0.1:6881") {
		for range 200 {
			r.Peers = append(r.Peers, p)
		}
	}
	pkt, err := AppendAnnounceResponse(nil, r, false)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAnnounceResponse(pkt, false, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
