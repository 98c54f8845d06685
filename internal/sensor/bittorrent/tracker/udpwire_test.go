package tracker

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// unhex builds a packet from hex written by hand from BEP 15's tables,
// spaces ignored.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConnectPacketsMatchBEP15Layout(t *testing.T) {
	req := unhex(t, "0000041727101980 00000000 cafebabe")
	if got := AppendConnectRequest(nil, ConnectRequest{TransactionID: 0xcafebabe}); !bytes.Equal(got, req) {
		t.Fatalf("connect request = %x, want %x", got, req)
	}
	p, err := ParseConnectRequest(req)
	if err != nil || p.TransactionID != 0xcafebabe {
		t.Fatalf("ParseConnectRequest = %+v, %v", p, err)
	}
	resp := unhex(t, "00000000 cafebabe 0102030405060708")
	cr, err := ParseConnectResponse(append(resp, 0xff)) // longer is accepted
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cr, (ConnectResponse{TransactionID: 0xcafebabe, ConnectionID: 0x0102030405060708}); got != want {
		t.Fatalf("ParseConnectResponse = %+v, want %+v", got, want)
	}
	if got := AppendConnectResponse(nil, cr); !bytes.Equal(got, resp) {
		t.Fatalf("connect response = %x, want %x", got, resp)
	}
}

func TestAnnounceRequestMatchesBEP15Layout(t *testing.T) {
	ih := bytes.Repeat([]byte{0x11}, 20)
	pid := bytes.Repeat([]byte{0x22}, 20)
	want := unhex(t, "0102030405060708 00000001 0a0b0c0d"+
		hex.EncodeToString(ih)+hex.EncodeToString(pid)+
		"0000000000000007"+ // downloaded
		"00000000000003e8"+ // left
		"0000000000000005"+ // uploaded
		"00000002"+ // event started
		"00000000"+ // ip
		"deadbeef"+ // key
		"ffffffff"+ // num_want -1
		"1ae1") // port 6881
	p := AnnounceRequest{
		ConnectionID: 0x0102030405060708, TransactionID: 0x0a0b0c0d,
		InfoHash: [20]byte(ih), PeerID: [20]byte(pid),
		Downloaded: 7, Left: 1000, Uploaded: 5, Event: EventStarted,
		Key: 0xdeadbeef, NumWant: -1, Port: 6881,
	}
	got := AppendAnnounceRequest(nil, p)
	if !bytes.Equal(got, want) {
		t.Fatalf("announce request =\n%x\nwant\n%x", got, want)
	}
	back, err := ParseAnnounceRequest(want)
	if err != nil {
		t.Fatal(err)
	}
	if back != p {
		t.Fatalf("ParseAnnounceRequest = %+v, want %+v", back, p)
	}
}

func TestParseAnnounceResponseReadsPeersOfTheRequestFamily(t *testing.T) {
	hdr := "00000001 01020304 00000708 00000002 00000003" // interval 1800, 2 leechers, 3 seeders
	tests := []struct {
		name     string
		pkt      string
		ipv6     bool
		maxPeers int
		peers    []netip.AddrPort
		skipped  int
	}{
		{"ipv4", hdr + "7f000001 1ae1 7f000002 c8d5", false, 10, aps("127.0.0.1:6881", "127.0.0.2:51413"), 0},
		{"ipv6", hdr + "00000000000000000000000000000001 1ae1 00000000000000000000ffff7f000003 0001", true, 10, aps("[::1]:6881", "127.0.0.3:1"), 0},
		{"no-peers", hdr, false, 10, nil, 0},
		{"cap-and-port-zero", hdr + "7f000001 0000 7f000002 0002 7f000003 0003", false, 1, aps("127.0.0.2:2"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseAnnounceResponse(unhex(t, tt.pkt), tt.ipv6, tt.maxPeers)
			if err != nil {
				t.Fatal(err)
			}
			if r.TransactionID != 0x01020304 || r.Interval != 1800 || r.Leechers != 2 || r.Seeders != 3 {
				t.Fatalf("header = %+v", r)
			}
			if !slices.Equal(r.Peers, tt.peers) {
				t.Fatalf("Peers = %v, want %v", r.Peers, tt.peers)
			}
			if got, want := r.PeersSkipped, tt.skipped; got != want {
				t.Fatalf("PeersSkipped = %d, want %d", got, want)
			}
		})
	}
}

func TestUDPParsersRejectMalformedPackets(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]byte) error
		pkt   string
	}{
		{"connect-request-wrong-magic", func(b []byte) error { _, err := ParseConnectRequest(b); return err }, "0000041727101981 00000000 00000001"},
		{"connect-request-short", func(b []byte) error { _, err := ParseConnectRequest(b); return err }, "0000041727101980 00000000"},
		{"connect-response-short", func(b []byte) error { _, err := ParseConnectResponse(b); return err }, "00000000 00000001 01020304"},
		{"connect-response-wrong-action", func(b []byte) error { _, err := ParseConnectResponse(b); return err }, "00000001 00000001 0102030405060708"},
		{"announce-response-truncated-peer", func(b []byte) error { _, err := ParseAnnounceResponse(b, false, 10); return err },
			"00000001 00000001 00000708 00000000 00000000 7f0000011a"},
		{"announce-response-ipv4-peers-read-as-ipv6", func(b []byte) error { _, err := ParseAnnounceResponse(b, true, 10); return err },
			"00000001 00000001 00000708 00000000 00000000 7f0000011ae1"},
		{"announce-response-short-header", func(b []byte) error { _, err := ParseAnnounceResponse(b, false, 10); return err }, "00000001 00000001 00000708"},
		{"announce-request-bad-event", func(b []byte) error { _, err := ParseAnnounceRequest(b); return err },
			"0102030405060708 00000001 0a0b0c0d" + strings.Repeat("00", 40+24) + "00000009" + strings.Repeat("00", 14)},
		{"scrape-request-partial-hash", func(b []byte) error { _, err := ParseScrapeRequest(b); return err }, "0102030405060708 00000002 00000001 0102"},
		{"scrape-request-no-hash", func(b []byte) error { _, err := ParseScrapeRequest(b); return err }, "0102030405060708 00000002 00000001"},
		{"scrape-response-partial-entry", func(b []byte) error { _, err := ParseScrapeResponse(b); return err }, "00000002 00000001 00000001 00000002"},
		{"error-response-short", func(b []byte) error { _, err := ParseErrorResponse(b); return err }, "00000003 0000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.parse(unhex(t, tt.pkt)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestScrapePacketsKeepRequestOrder(t *testing.T) {
	h1, h2 := [20]byte(bytes.Repeat([]byte{1}, 20)), [20]byte(bytes.Repeat([]byte{2}, 20))
	req := AppendScrapeRequest(nil, ScrapeRequest{ConnectionID: 9, TransactionID: 8, InfoHashes: [][20]byte{h1, h2}})
	if got, want := len(req), 16+40; got != want {
		t.Fatalf("scrape request of %d bytes, want %d", got, want)
	}
	p, err := ParseScrapeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.InfoHashes, [][20]byte{h1, h2}) || p.ConnectionID != 9 || p.TransactionID != 8 {
		t.Fatalf("ParseScrapeRequest = %+v", p)
	}
	// seeders, completed, leechers for each torrent, by hand.
	resp := unhex(t, "00000002 00000008 00000003 00000007 00000002 00000000 00000000 00000001")
	sr, err := ParseScrapeResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	want := []ScrapeStats{{Complete: 3, Downloaded: 7, Incomplete: 2}, {Incomplete: 1}}
	if !slices.Equal(sr.Stats, want) || sr.TransactionID != 8 {
		t.Fatalf("ParseScrapeResponse = %+v, want stats %+v", sr, want)
	}
}

func TestErrorResponseCarriesMessage(t *testing.T) {
	pkt := append(unhex(t, "00000003 00000042"), "synthetic refusal"...)
	e, err := ParseErrorResponse(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if e.TransactionID != 0x42 || e.Message != "synthetic refusal" {
		t.Fatalf("ParseErrorResponse = %+v", e)
	}
	a, tx, err := ResponseHeader(pkt)
	if err != nil || a != ActionError || tx != 0x42 {
		t.Fatalf("ResponseHeader = %d, %#x, %v", a, tx, err)
	}
}
