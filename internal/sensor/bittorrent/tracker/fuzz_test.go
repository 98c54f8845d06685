package tracker

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the seed corpora under testdata/fuzz")

// The seeds are hand-built responses; TestFuzzSeedCorporaAreCurrent keeps
// testdata/fuzz in step with them.
var (
	httpAnnounceSeeds = [][]byte{
		[]byte("d8:completei2e10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\xc8\xd5e"),
		[]byte("d8:intervali60e5:peers6:\x7f\x00\x00\x01\x00\x016:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x02e"),
		[]byte("d8:intervali30e5:peersld2:ip9:127.0.0.37:peer id20:-SY0001-synthetic0014:porti6881eed2:ip15:tracker.invalid4:porti6881eee10:tracker id13:synthetic-tide"),
		[]byte("d14:failure reason22:synthetic torrent gonee"),
		[]byte("d8:intervali10e5:peers0:15:warning message17:synthetic warninge"),
		[]byte("d8:intervali1800e5:peers12:\x7f\x00\x00\x01"),
		// BEP 7: peers6 with an IPv6 peer, an IPv4-mapped one and a port 0.
		[]byte("d8:intervali60e5:peers0:6:peers654:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1b\x59\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x08\x1a\xe1\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00e"),
		// peers6 of 17 bytes, and a non-compact IPv6 peer.
		[]byte("d8:intervali60e6:peers617:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1be"),
		[]byte("d8:intervali60e5:peersld2:ip3:::14:porti7000eed2:ip12:fe80::1%eth04:porti7001eeee"),
	}
	httpScrapeSeeds = [][]byte{
		[]byte("d5:filesd20:\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01d8:completei3e10:downloadedi7e10:incompletei2eeee"),
		[]byte("d14:failure reason4:nopee"),
		[]byte("d5:filesdee"),
	}
	udpResponseSeeds = [][]byte{
		[]byte("\x00\x00\x00\x00\xca\xfe\xba\xbe\x01\x02\x03\x04\x05\x06\x07\x08"),
		[]byte("\x00\x00\x00\x01\x01\x02\x03\x04\x00\x00\x07\x08\x00\x00\x00\x02\x00\x00\x00\x03\x7f\x00\x00\x01\x1a\xe1\x7f\x00\x00\x02\xc8\xd5"),
		[]byte("\x00\x00\x00\x01\x01\x02\x03\x04\x00\x00\x07\x08\x00\x00\x00\x02\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1"),
		[]byte("\x00\x00\x00\x02\x00\x00\x00\x08\x00\x00\x00\x03\x00\x00\x00\x07\x00\x00\x00\x02"),
		[]byte("\x00\x00\x00\x03\x00\x00\x00\x42synthetic refusal"),
		// BEP 15 over IPv6: an IPv6 peer and an IPv4-mapped one, 18 bytes each.
		[]byte("\x00\x00\x00\x01\x01\x02\x03\x04\x00\x00\x07\x08\x00\x00\x00\x02\x00\x00\x00\x03\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x1a\xe1\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x7f\x00\x00\x08\x1a\xe2"),
	}
	udpRequestSeeds = [][]byte{
		[]byte("\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\xca\xfe\xba\xbe"),
		append([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x01\x0a\x0b\x0c\x0d"), append(bytes.Repeat([]byte{0x11}, 40), "\x00\x00\x00\x00\x00\x00\x00\x07\x00\x00\x00\x00\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x00\x00\x05\x00\x00\x00\x02\x00\x00\x00\x00\xde\xad\xbe\xef\xff\xff\xff\xff\x1a\xe1"...)...),
		append([]byte("\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x02\x00\x00\x00\x01"), bytes.Repeat([]byte{0x22}, 40)...),
	}
)

// FuzzParseHTTPAnnounce checks that no body panics the parser and that what
// it returns respects the peer cap.
func FuzzParseHTTPAnnounce(f *testing.F) {
	for _, s := range httpAnnounceSeeds {
		f.Add(s, 50)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxPeers int) {
		if maxPeers < 0 || maxPeers > 1<<16 {
			return
		}
		r, err := ParseHTTPAnnounce(body, maxPeers)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFailure) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrFailure", err)
			}
			return
		}
		if len(r.Peers) > maxPeers {
			t.Fatalf("%d peers over the cap of %d", len(r.Peers), maxPeers)
		}
		for _, p := range r.Peers {
			if !p.Addr().IsValid() || p.Addr().Is4In6() || p.Port() == 0 {
				t.Fatalf("unusable peer %v returned", p)
			}
		}
	})
}

// FuzzParseHTTPScrape checks that no body panics the scrape parser.
func FuzzParseHTTPScrape(f *testing.F) {
	for _, s := range httpScrapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseHTTPScrape(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFailure) {
				t.Fatalf("error %v wraps neither ErrMalformed nor ErrFailure", err)
			}
			return
		}
		for h, s := range m {
			if s.Complete < 0 || s.Incomplete < 0 || s.Downloaded < 0 {
				t.Fatalf("negative count for %x: %+v", h, s)
			}
		}
	})
}

// FuzzParseUDPResponse decodes a datagram as every response kind; whatever
// decodes must encode to a packet that decodes to the same value.
func FuzzParseUDPResponse(f *testing.F) {
	for _, s := range udpResponseSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseConnectResponse(b); err == nil {
			c2, err := ParseConnectResponse(AppendConnectResponse(nil, c))
			if err != nil || c2 != c {
				t.Fatalf("connect response round trip: %+v -> %+v, %v", c, c2, err)
			}
		}
		for _, ipv6 := range []bool{false, true} {
			a, err := ParseAnnounceResponse(b, ipv6, len(b))
			if err != nil {
				continue
			}
			enc, err := AppendAnnounceResponse(nil, a, ipv6)
			if err != nil {
				t.Fatalf("AppendAnnounceResponse(%+v, ipv6=%v): %v", a, ipv6, err)
			}
			a2, err := ParseAnnounceResponse(enc, ipv6, len(enc))
			if err != nil {
				t.Fatalf("announce response round trip: %v", err)
			}
			if a2.TransactionID != a.TransactionID || a2.Interval != a.Interval || a2.Leechers != a.Leechers ||
				a2.Seeders != a.Seeders || !slices.Equal(a2.Peers, a.Peers) || a2.PeersSkipped != 0 {
				t.Fatalf("announce response round trip (ipv6=%v): %+v -> %+v", ipv6, a, a2)
			}
		}
		if s, err := ParseScrapeResponse(b); err == nil {
			enc, err := AppendScrapeResponse(nil, s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, b) {
				t.Fatalf("scrape response round trip: %x -> %x", b, enc)
			}
		}
		if e, err := ParseErrorResponse(b); err == nil {
			e2, err := ParseErrorResponse(AppendErrorResponse(nil, e))
			if err != nil || e2 != e {
				t.Fatalf("error response round trip: %+v -> %+v, %v", e, e2, err)
			}
		}
		ResponseHeader(b)
	})
}

// FuzzParseUDPRequest decodes a datagram as every request kind (the lab's
// fake trackers read them) and checks the round trip.
func FuzzParseUDPRequest(f *testing.F) {
	for _, s := range udpRequestSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := ParseConnectRequest(b); err == nil {
			if enc := AppendConnectRequest(nil, c); !bytes.Equal(enc, b[:16]) {
				t.Fatalf("connect request round trip: %x -> %x", b[:16], enc)
			}
		}
		if a, err := ParseAnnounceRequest(b); err == nil {
			if enc := AppendAnnounceRequest(nil, a); !bytes.Equal(enc, b[:98]) {
				t.Fatalf("announce request round trip: %x -> %x", b[:98], enc)
			}
		}
		if s, err := ParseScrapeRequest(b); err == nil {
			if enc := AppendScrapeRequest(nil, s); !bytes.Equal(enc, b) {
				t.Fatalf("scrape request round trip: %x -> %x", b, enc)
			}
		}
	})
}

// TestFuzzSeedCorporaAreCurrent checks that testdata/fuzz holds every seed
// above; go test -run TestFuzzSeedCorporaAreCurrent -update rewrites them.
func TestFuzzSeedCorporaAreCurrent(t *testing.T) {
	corpora := map[string][]string{}
	for i, s := range httpAnnounceSeeds {
		corpora["FuzzParseHTTPAnnounce"] = append(corpora["FuzzParseHTTPAnnounce"], fmt.Sprintf("seed-%02d", i), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint(50)\n", s))
	}
	for i, s := range httpScrapeSeeds {
		corpora["FuzzParseHTTPScrape"] = append(corpora["FuzzParseHTTPScrape"], fmt.Sprintf("seed-%02d", i), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s))
	}
	for i, s := range udpResponseSeeds {
		corpora["FuzzParseUDPResponse"] = append(corpora["FuzzParseUDPResponse"], fmt.Sprintf("seed-%02d", i), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s))
	}
	for i, s := range udpRequestSeeds {
		corpora["FuzzParseUDPRequest"] = append(corpora["FuzzParseUDPRequest"], fmt.Sprintf("seed-%02d", i), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s))
	}
	for target, files := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		for i := 0; i < len(files); i += 2 {
			path := filepath.Join(dir, files[i])
			if *update {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(files[i+1]), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestFuzzSeedCorporaAreCurrent -update)", err)
			}
			if string(got) != files[i+1] {
				t.Fatalf("%s is stale (run go test -run TestFuzzSeedCorporaAreCurrent -update)", path)
			}
		}
	}
}
