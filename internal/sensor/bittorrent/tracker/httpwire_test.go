package tracker

import (
	"bytes"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/bencode"
)

// benc encodes a value built of int, string, []byte, []any and bencode.Dict.
func benc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func d(kv ...any) bencode.Dict {
	var out bencode.Dict
	for i := 0; i < len(kv); i += 2 {
		out = append(out, bencode.Pair{Key: []byte(kv[i].(string)), Value: kv[i+1]})
	}
	return out
}

func aps(ss ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range ss {
		out = append(out, netip.MustParseAddrPort(s))
	}
	return out
}

// compact4 and compact6 build compact peer strings by hand (not with the
// code under test).
func compact4(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As4()
		b = append(b, a[:]...)
		b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	}
	return b
}

func compact6(ss ...string) []byte {
	var b []byte
	for _, s := range ss {
		ap := netip.MustParseAddrPort(s)
		a := ap.Addr().As16()
		b = append(b, a[:]...)
		b = append(b, byte(ap.Port()>>8), byte(ap.Port()))
	}
	return b
}

func TestParseHTTPAnnounceReadsEveryPeerForm(t *testing.T) {
	peerA := bytes.Repeat([]byte{'A'}, 20)
	tests := []struct {
		name        string
		body        []byte
		maxPeers    int
		peers       []netip.AddrPort
		skipped     int
		interval    time.Duration
		minInterval time.Duration
		complete    int
		incomplete  int
		warning     string
		trackerID   string
		peerIDs     int
	}{
		{
			name:     "compact-ipv4",
			body:     []byte("d8:completei2e10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:" + string(compact4("127.0.0.1:6881", "127.0.0.2:51413")) + "e"),
			maxPeers: 100, peers: aps("127.0.0.1:6881", "127.0.0.2:51413"),
			interval: 1800 * time.Second, minInterval: 900 * time.Second, complete: 2, incomplete: 1,
		},
		{
			name: "compact-ipv4-and-peers6",
			body: benc(t, d("interval", 60, "peers", compact4("127.0.0.1:1"),
				"peers6", compact6("[::1]:2", "[2001:db8::7]:65535", "[::ffff:127.0.0.9]:3"))),
			maxPeers: 100, peers: aps("127.0.0.1:1", "[::1]:2", "[2001:db8::7]:65535", "127.0.0.9:3"),
			interval: time.Minute,
		},
		{
			name: "dictionary-peers-with-ids-and-a-host-name",
			body: benc(t, d("interval", 30, "peers", []any{
				d("ip", "127.0.0.3", "peer id", peerA, "port", 6881),
				d("ip", "tracker.invalid", "port", 6881), // never resolved: skipped
				d("ip", "::1", "port", 7000),
				d("ip", "127.0.0.4", "port", 0), // unusable: skipped
			}, "tracker id", "synthetic-tid")),
			maxPeers: 100, peers: aps("127.0.0.3:6881", "[::1]:7000"), skipped: 2,
			interval: 30 * time.Second, trackerID: "synthetic-tid", peerIDs: 1,
		},
		{
			name:     "warning-message",
			body:     benc(t, d("interval", 10, "peers", []byte{}, "warning message", "synthetic warning")),
			maxPeers: 100, interval: 10 * time.Second, warning: "synthetic warning",
		},
		{
			name:     "peer-cap",
			body:     benc(t, d("peers", compact4("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"), "peers6", compact6("[::1]:4"))),
			maxPeers: 2, peers: aps("127.0.0.1:1", "127.0.0.1:2"), skipped: 2,
		},
		{
			name:     "stopped-answer-without-peers",
			body:     []byte("d8:intervali5ee"),
			maxPeers: 100, interval: 5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseHTTPAnnounce(tt.body, tt.maxPeers)
			if err != nil {
				t.Fatalf("ParseHTTPAnnounce(%q): %v", tt.body, err)
			}
			if !slices.Equal(r.Peers, tt.peers) {
				t.Fatalf("Peers = %v, want %v", r.Peers, tt.peers)
			}
			if got, want := r.PeersSkipped, tt.skipped; got != want {
				t.Fatalf("PeersSkipped = %d, want %d", got, want)
			}
			if got, want := r.Interval, tt.interval; got != want {
				t.Fatalf("Interval = %v, want %v", got, want)
			}
			if got, want := r.MinInterval, tt.minInterval; got != want {
				t.Fatalf("MinInterval = %v, want %v", got, want)
			}
			if r.Complete != tt.complete || r.Incomplete != tt.incomplete {
				t.Fatalf("Complete, Incomplete = %d, %d, want %d, %d", r.Complete, r.Incomplete, tt.complete, tt.incomplete)
			}
			if got, want := r.Warning, tt.warning; got != want {
				t.Fatalf("Warning = %q, want %q", got, want)
			}
			if got, want := r.TrackerID, tt.trackerID; got != want {
				t.Fatalf("TrackerID = %q, want %q", got, want)
			}
			if got, want := len(r.PeerIDs), tt.peerIDs; got != want {
				t.Fatalf("len(PeerIDs) = %d, want %d", got, want)
			}
		})
	}
}

func TestParseHTTPAnnounceKeepsDictionaryPeerID(t *testing.T) {
	id := []byte("-SY0001-synthetic001")
	body := benc(t, d("peers", []any{d("ip", "127.0.0.5", "peer id", id, "port", 1234)}))
	r, err := ParseHTTPAnnounce(body, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := r.PeerIDs[netip.MustParseAddrPort("127.0.0.5:1234")]
	if !bytes.Equal(got, id) {
		t.Fatalf("PeerIDs[127.0.0.5:1234] = %q, want %q", got, id)
	}
	body[bytes.Index(body, id)] = 'X' // the result must not alias the input
	if got[0] != '-' {
		t.Fatalf("peer id aliases the response body")
	}
}

func TestParseHTTPAnnounceReturnsFailureReason(t *testing.T) {
	_, err := ParseHTTPAnnounce([]byte("d14:failure reason22:synthetic torrent gone8:intervali60ee"), 10)
	var fe *FailureError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want a *FailureError", err)
	}
	if got, want := fe.Reason, "synthetic torrent gone"; got != want {
		t.Fatalf("Reason = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrFailure) {
		t.Fatalf("error %v does not wrap ErrFailure", err)
	}
}

func TestParseHTTPAnnounceRejectsMalformedBodies(t *testing.T) {
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"truncated", []byte("d8:intervali1800e5:peers12:\x7f\x00\x00\x01")},
		{"html-error-page", []byte("<title>Invalid Request</title>\n")},
		{"not-a-dictionary", []byte("li1ee")},
		{"trailing-bytes", []byte("d8:intervali1eeX")},
		{"compact-not-multiple-of-6", benc(t, d("peers", []byte{127, 0, 0, 1, 0}))},
		{"peers6-not-multiple-of-18", benc(t, d("peers6", make([]byte, 17)))},
		{"peers-is-an-integer", benc(t, d("peers", 5))},
		{"negative-interval", benc(t, d("interval", -1))},
		{"interval-is-a-string", benc(t, d("interval", "60"))},
		{"negative-complete", benc(t, d("complete", -3))},
		{"failure-reason-not-a-string", benc(t, d("failure reason", 1))},
		{"dictionary-peer-without-port", benc(t, d("peers", []any{d("ip", "127.0.0.1")}))},
		{"dictionary-peer-port-too-big", benc(t, d("peers", []any{d("ip", "127.0.0.1", "port", 70000)}))},
		{"dictionary-peer-not-a-dictionary", benc(t, d("peers", []any{"127.0.0.1"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseHTTPAnnounce(tt.body, 100)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseHTTPAnnounce(%q) error = %v, want ErrMalformed", tt.body, err)
			}
		})
	}
}

func TestParseHTTPScrapeReadsFiles(t *testing.T) {
	h1 := [20]byte(bytes.Repeat([]byte{1}, 20))
	h2 := [20]byte(bytes.Repeat([]byte{2}, 20))
	body := benc(t, d("files", d(
		string(h1[:]), d("complete", 3, "downloaded", 7, "incomplete", 2),
		string(h2[:]), d("complete", 0, "incomplete", 1, "name", "synthetic-001.bin"),
		"short-key", d("complete", 9),
	)))
	got, err := ParseHTTPScrape(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("len = %d, want 2: %v", len(got), got)
	}
	if s, want := got[h1], (ScrapeStats{Complete: 3, Incomplete: 2, Downloaded: 7}); s != want {
		t.Fatalf("stats of h1 = %+v, want %+v", s, want)
	}
	if s, want := got[h2], (ScrapeStats{Incomplete: 1}); s != want {
		t.Fatalf("stats of h2 = %+v, want %+v", s, want)
	}
}

func TestParseHTTPScrapeRejectsMalformedAndFailure(t *testing.T) {
	if _, err := ParseHTTPScrape([]byte("d5:filesi1ee")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("files is an integer: error = %v, want ErrMalformed", err)
	}
	if _, err := ParseHTTPScrape([]byte("d5:filesd")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: error = %v, want ErrMalformed", err)
	}
	if _, err := ParseHTTPScrape([]byte("d14:failure reason4:nopee")); !errors.Is(err, ErrFailure) {
		t.Fatalf("failure reason: error = %v, want ErrFailure", err)
	}
}

func TestAnnounceQueryEscapesEveryReservedByte(t *testing.T) {
	var req Request
	for i := range req.InfoHash {
		req.InfoHash[i] = byte(i * 13) // includes 0x00, ' '-like and high bytes
	}
	req.InfoHash[3] = ' '
	req.InfoHash[4] = '+'
	copy(req.PeerID[:], "-VG0001-synthetic~._")
	req.Port, req.Left, req.Uploaded, req.Downloaded = 6881, 1000, 5, 7
	req.Event, req.NumWant, req.Key, req.Compact = EventStarted, 50, 0xdeadbeef, true
	q := string(AppendAnnounceQuery(nil, req))
	if bytes.ContainsAny([]byte(q), " +") {
		t.Fatalf("query %q has a space or plus", q)
	}
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"info_hash": string(req.InfoHash[:]), "peer_id": string(req.PeerID[:]), "port": "6881",
		"uploaded": "5", "downloaded": "7", "left": "1000", "compact": "1", "event": "started",
		"numwant": "50", "key": "deadbeef",
	} {
		if got := v.Get(key); got != want {
			t.Fatalf("%s = %q, want %q (query %q)", key, got, want, q)
		}
	}
	if v.Has("trackerid") {
		t.Fatalf("trackerid sent without one: %q", q)
	}
}

func TestAnnounceQueryOmitsEventNoneAndDefaultNumWant(t *testing.T) {
	q, err := url.ParseQuery(string(AppendAnnounceQuery(nil, Request{})))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event", "numwant", "key"} {
		if q.Has(k) {
			t.Fatalf("%s sent for a zero Request: %v", k, q)
		}
	}
	if got, want := q.Get("compact"), "0"; got != want {
		t.Fatalf("compact = %q, want %q", got, want)
	}
}

func TestScrapeURLFollowsBEP48(t *testing.T) {
	tests := []struct {
		announce, scrape string
		err              error
	}{
		{"http://127.0.0.1:6969/announce", "http://127.0.0.1:6969/scrape", nil},
		{"http://127.0.0.1/x/announce", "http://127.0.0.1/x/scrape", nil},
		{"http://127.0.0.1/announce.php", "http://127.0.0.1/scrape.php", nil},
		{"http://127.0.0.1/announce?x2%0644", "http://127.0.0.1/scrape?x2%0644", nil},
		{"http://127.0.0.1/announce?x=2/4", "http://127.0.0.1/scrape?x=2/4", nil},
		{"http://127.0.0.1/a", "", ErrNoScrape},
		{"http://127.0.0.1/x%064announce", "", ErrNoScrape},
		{"http://127.0.0.1/announce/x", "", ErrNoScrape},
		{"http://127.0.0.1", "", ErrNoScrape},
		{"udp://127.0.0.1:6969", "udp://127.0.0.1:6969", nil},
		{"ftp://127.0.0.1/announce", "", ErrBadURL},
	}
	for _, tt := range tests {
		got, err := ScrapeURL(tt.announce)
		if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Fatalf("ScrapeURL(%q) error = %v, want %v", tt.announce, err, tt.err)
		}
		if got != tt.scrape {
			t.Fatalf("ScrapeURL(%q) = %q, want %q", tt.announce, got, tt.scrape)
		}
	}
}
