package tracker

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-oss/vigil/internal/scope"
)

func newTestClient(t testing.TB, mutate func(*Config)) (*Client, *scope.Guard) {
	t.Helper()
	g, err := scope.New(scope.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.UserAgent = UserAgent("test")
	cfg.HTTPTimeout = 5 * time.Second
	cfg.UDPRetryBase = 200 * time.Millisecond
	cfg.UDPMaxRetries = 3
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg, g)
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

func syntheticRequest(t testing.TB) Request {
	t.Helper()
	var r Request
	rand.Read(r.InfoHash[:])
	copy(r.PeerID[:], "-VG0001-")
	rand.Read(r.PeerID[8:])
	r.Port, r.Left, r.Event, r.Key, r.Compact = 6881, 1<<20, EventStarted, 0x01020304, true
	return r
}

// fakeHTTPTracker answers every request with body, and keeps
// the requests it got.
type fakeHTTPTracker struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body func(r *http.Request) []byte
}

func newFakeHTTPTracker(t *testing.T, tls bool, body func(r *http.Request) []byte) *fakeHTTPTracker {
	f := &fakeHTTPTracker{body: body}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.reqs = append(f.reqs, r)
		f.mu.Unlock()
		b := f.body(r)
		w.Header().Set("Content-Type", "text/plain")
		w.Write(b)
	})
	f.srv = httptest.NewUnstartedServer(h)
	// The untrusted-certificate case makes the server log a handshake error.
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHTTPTracker) requests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

func TestAnnounceHTTPSendsRequestAndParsesCompactPeers(t *testing.T) {
	peers := compact4("127.0.0.2:6881", "127.0.0.3:51413")
	body := []byte("d8:completei1e10:incompletei2e8:intervali1800e5:peers12:" + string(peers) + "e")
	f := newFakeHTTPTracker(t, false, func(*http.Request) []byte { return body })
	c, _ := newTestClient(t, nil)
	req := syntheticRequest(t)
	req.NumWant = 30
	tracker := f.srv.URL + "/announce?passkey=synthetic"

	r, err := c.Announce(context.Background(), tracker, req)
	if err != nil {
		t.Fatal(err)
	}
	if want := aps("127.0.0.2:6881", "127.0.0.3:51413"); !slices.Equal(r.Peers, want) {
		t.Fatalf("Peers = %v, want %v", r.Peers, want)
	}
	if r.Interval != 1800*time.Second || r.Complete != 1 || r.Incomplete != 2 {
		t.Fatalf("Interval, Complete, Incomplete = %v, %d, %d", r.Interval, r.Complete, r.Incomplete)
	}
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("tracker got %d requests, want 1", len(got))
	}
	q := got[0].URL.Query()
	for key, want := range map[string]string{
		"passkey": "synthetic", "info_hash": string(req.InfoHash[:]), "peer_id": string(req.PeerID[:]),
		"port": "6881", "left": "1048576", "event": "started", "compact": "1", "numwant": "30", "key": "01020304",
	} {
		if g := q.Get(key); g != want {
			t.Fatalf("tracker got %s = %q, want %q", key, g, want)
		}
	}
	if got, want := got[0].Header.Get("User-Agent"), "Vigil/test"; got != want {
		t.Fatalf("User-Agent = %q, want %q", got, want)
	}
	if !bytes.HasPrefix(r.Sent, []byte("GET /announce?passkey=synthetic&info_hash=")) || !bytes.HasSuffix(r.Sent, []byte("\r\n\r\n")) {
		t.Fatalf("Sent = %q, want the request line and headers", r.Sent)
	}
	if !bytes.HasPrefix(r.Raw, []byte("HTTP/1.1 200 OK\r\n")) || !bytes.HasSuffix(r.Raw, body) {
		t.Fatalf("Raw = %q, want the status line, headers and body", r.Raw)
	}
}

func TestAnnounceHTTPReadsDictionaryPeersWhenNotCompact(t *testing.T) {
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		if r.URL.Query().Get("compact") != "0" {
			return []byte("d14:failure reason16:compact expectede")
		}
		return benc(t, d("interval", 60, "peers", []any{
			d("ip", "127.0.0.7", "peer id", "-SY0001-synthetic007", "port", 7007),
		}))
	})
	c, _ := newTestClient(t, nil)
	req := syntheticRequest(t)
	req.Compact = false
	r, err := c.Announce(context.Background(), f.srv.URL+"/announce", req)
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort("127.0.0.7:7007")
	if !slices.Equal(r.Peers, []netip.AddrPort{ap}) || string(r.PeerIDs[ap]) != "-SY0001-synthetic007" {
		t.Fatalf("Peers = %v, PeerIDs = %q", r.Peers, r.PeerIDs)
	}
}

func TestAnnounceHTTPFailureReasonNamesTracker(t *testing.T) {
	f := newFakeHTTPTracker(t, false, func(*http.Request) []byte {
		return []byte("d14:failure reason24:synthetic not authorisede")
	})
	c, _ := newTestClient(t, nil)
	tracker := f.srv.URL + "/announce"
	r, err := c.Announce(context.Background(), tracker, syntheticRequest(t))
	var fe *FailureError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v, want *FailureError", err)
	}
	if fe.Tracker != tracker || fe.Reason != "synthetic not authorised" {
		t.Fatalf("FailureError = %+v", fe)
	}
	if !strings.Contains(err.Error(), tracker) || !strings.Contains(err.Error(), "synthetic not authorised") {
		t.Fatalf("error %q does not name the tracker and the reason", err)
	}
	if len(r.Raw) == 0 || len(r.Sent) == 0 {
		t.Fatalf("a refused announce keeps no transcript: Sent %d bytes, Raw %d bytes", len(r.Sent), len(r.Raw))
	}
}

func TestAnnounceHTTPRejectsOversizedBody(t *testing.T) {
	f := newFakeHTTPTracker(t, false, func(*http.Request) []byte {
		return []byte("d8:intervali60e5:peers600:" + strings.Repeat("\x7f\x00\x00\x01\x1a\xe1", 100) + "e")
	})
	c, _ := newTestClient(t, func(c *Config) { c.MaxHTTPResponse = 100 })
	_, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error = %v, want ErrTooLarge", err)
	}
}

func TestAnnounceHTTPReportsStatusAndFollowsNoRedirect(t *testing.T) {
	target := newFakeHTTPTracker(t, false, func(*http.Request) []byte { return []byte("d8:intervali60ee") })
	notFound := httptest.NewServer(http.NotFoundHandler())
	defer notFound.Close()
	redirect := httptest.NewServer(http.RedirectHandler(target.srv.URL+"/announce", http.StatusFound))
	defer redirect.Close()
	c, _ := newTestClient(t, nil)
	for _, base := range []string{notFound.URL, redirect.URL} {
		_, err := c.Announce(context.Background(), base+"/announce", syntheticRequest(t))
		if !errors.Is(err, ErrHTTPStatus) {
			t.Fatalf("%s: error = %v, want ErrHTTPStatus", base, err)
		}
	}
	if n := len(target.requests()); n != 0 {
		t.Fatalf("redirect followed: target got %d requests", n)
	}
}

func TestAnnounceHTTPStopsOnCancelAndTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return []byte("d8:intervali60ee")
	})
	defer close(release)

	t.Run("cancel", func(t *testing.T) {
		c, _ := newTestClient(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.Announce(ctx, f.srv.URL+"/announce", syntheticRequest(t))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		c, _ := newTestClient(t, func(c *Config) { c.HTTPTimeout = 50 * time.Millisecond })
		_, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestScrapeHTTPDerivesURLAndReturnsOnlyAskedHashes(t *testing.T) {
	var h1, h2, other [20]byte
	rand.Read(h1[:])
	rand.Read(h2[:])
	rand.Read(other[:])
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		return benc(t, d("files", d(
			string(h1[:]), d("complete", 4, "downloaded", 9, "incomplete", 1),
			string(other[:]), d("complete", 1, "downloaded", 1, "incomplete", 1),
		)))
	})
	c, _ := newTestClient(t, nil)
	got, err := c.Scrape(context.Background(), f.srv.URL+"/x/announce.php?passkey=synthetic", [][20]byte{h1, h2})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[[20]byte]ScrapeStats{h1: {Complete: 4, Incomplete: 1, Downloaded: 9}}; len(got) != 1 || got[h1] != want[h1] {
		t.Fatalf("Scrape = %v, want %v", got, want)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("tracker got %d requests, want 1", len(reqs))
	}
	if got, want := reqs[0].URL.Path, "/x/scrape.php"; got != want {
		t.Fatalf("scrape path = %q, want %q", got, want)
	}
	q := reqs[0].URL.Query()
	if got, want := q["info_hash"], []string{string(h1[:]), string(h2[:])}; !slices.Equal(got, want) || q.Get("passkey") != "synthetic" {
		t.Fatalf("scrape query = %v", q)
	}
}

func TestScrapeHTTPSplitsBatches(t *testing.T) {
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		files := bencodeFiles(r.URL.Query()["info_hash"])
		return benc(t, d("files", files))
	})
	c, _ := newTestClient(t, func(c *Config) { c.MaxScrapeBatch = 2 })
	hashes := make([][20]byte, 5)
	for i := range hashes {
		rand.Read(hashes[i][:])
	}
	got, err := c.Scrape(context.Background(), f.srv.URL+"/announce", hashes)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Fatalf("Scrape returned %d hashes, want 5", len(got))
	}
	if n := len(f.requests()); n != 3 {
		t.Fatalf("tracker got %d scrape requests, want 3 (batches of 2)", n)
	}
}

// bencodeFiles answers every asked hash with one seeder.
func bencodeFiles(hashes []string) any {
	var files = d()
	for _, h := range hashes {
		files = append(files, d(h, d("complete", 1))...)
	}
	return files
}

func TestScrapeHTTPWithoutScrapeURLSendsNothing(t *testing.T) {
	f := newFakeHTTPTracker(t, false, func(*http.Request) []byte { return []byte("de") })
	c, _ := newTestClient(t, nil)
	_, err := c.Scrape(context.Background(), f.srv.URL+"/tracker", [][20]byte{{1}})
	if !errors.Is(err, ErrNoScrape) {
		t.Fatalf("error = %v, want ErrNoScrape", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("tracker got %d requests, want 0", n)
	}
}

func TestAnnounceHTTPSVerifiesTrackerCertificate(t *testing.T) {
	body := []byte("d8:intervali60e5:peers6:" + string(compact4("127.0.0.9:9999")) + "e")
	f := newFakeHTTPTracker(t, true, func(*http.Request) []byte { return body })
	roots := x509.NewCertPool()
	roots.AddCert(f.srv.Certificate())

	c, _ := newTestClient(t, func(c *Config) { c.TLS = &tls.Config{RootCAs: roots} })
	r, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Peers, aps("127.0.0.9:9999")) || !bytes.HasSuffix(r.Raw, body) {
		t.Fatalf("Peers = %v, Raw = %q", r.Peers, r.Raw)
	}

	untrusting, _ := newTestClient(t, func(c *Config) { c.TLS = &tls.Config{RootCAs: x509.NewCertPool()} })
	if _, err := untrusting.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t)); err == nil {
		t.Fatal("announce to a tracker with an untrusted certificate succeeded")
	}
}

// Config.Dialled is told the local end of an HTTP connection, which is
// the address and port the tracker saw (its RemoteAddr): a hostile
// tracker can list it as a peer, and the caller must know it as its own.
func TestAnnounceHTTPTellsTheConnectionsLocalEnd(t *testing.T) {
	seen := make(chan string, 1)
	f := newFakeHTTPTracker(t, false, func(r *http.Request) []byte {
		seen <- r.RemoteAddr
		return []byte("d8:intervali1800e5:peers0:e")
	})
	var got []netip.AddrPort
	c, _ := newTestClient(t, func(cfg *Config) { cfg.Dialled = func(l netip.AddrPort) { got = append(got, l) } })
	if _, err := c.Announce(context.Background(), f.srv.URL+"/announce", syntheticRequest(t)); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort(<-seen)
	if len(got) != 1 || got[0] != want {
		t.Fatalf("Dialled told %v, want [%v] (the address the tracker saw)", got, want)
	}
}
