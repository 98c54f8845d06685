package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/vigil-oss/vigil/internal/web/pages"
)

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	proxies, err := ParseTrustedProxies("10.0.0.0/24, 127.0.0.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, remote string
		xff          []string
		want         string
		ok           bool
	}{
		{"no proxy: the header is ignored", "192.0.2.7:5555", []string{"198.51.100.1"}, "192.0.2.7:5555", true},
		{"trusted proxy", "10.0.0.2:443", []string{"198.51.100.1"}, "198.51.100.1:0", true},
		{"client's own entries on the left are ignored", "10.0.0.2:443", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1:0", true},
		{"rightmost untrusted after a chain of proxies", "127.0.0.1:1", []string{"6.6.6.6, 198.51.100.1, 10.0.0.9"}, "198.51.100.1:0", true},
		{"several headers in order", "10.0.0.2:443", []string{"6.6.6.6", "198.51.100.1, 10.0.0.3"}, "198.51.100.1:0", true},
		{"spoofed trusted address on the left", "10.0.0.2:443", []string{"10.0.0.5, 198.51.100.1"}, "198.51.100.1:0", true},
		{"garbage right of the client stops the walk", "10.0.0.2:443", []string{"198.51.100.1, nonsense"}, "10.0.0.2:443", false},
		{"no header from a proxy", "10.0.0.2:443", nil, "10.0.0.2:443", false},
		{"IPv6 and ports in the header", "[::1]:8080", []string{"[2001:db8::1]:1234"}, "[2001:db8::1]:0", true},
		{"IPv4-mapped client", "10.0.0.2:443", []string{"::ffff:198.51.100.1"}, "198.51.100.1:0", true},
		{"all trusted: the first is the client", "10.0.0.2:443", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7:0", true},
	}
	for _, c := range cases {
		got, ok := ClientAddr(proxies, c.remote, c.xff)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %q %v, want %q %v", c.name, got, ok, c.want, c.ok)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.org", "::ffff:10.0.0.0/120"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted", bad)
		}
	}
}

func TestEdgeBoundsBodiesBeforeHandlers(t *testing.T) {
	reached := false
	h := Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		}
	}), EdgeConfig{Limit: BodyLimits(2 << 20)})
	for _, c := range []struct {
		method, path string
		n            int
		chunked      bool
		want         int
		reach        bool
	}{
		{"POST", "/login", DefaultMaxBody + 1, false, 413, false},
		{"POST", "/login", DefaultMaxBody + 1, true, 413, true}, // cut while read
		{"POST", "/login", 100, false, 200, true},
		{"POST", "/lists/import", 2<<20 - 10, false, 200, true},
		{"POST", "/lists/import", 2<<20 + 1, false, 413, false},
		{"GET", "/", 1, false, 413, false},
	} {
		reached = false
		var body io.Reader = strings.NewReader(strings.Repeat("x", c.n))
		if c.chunked {
			body = io.MultiReader(body) // no length: chunked
		}
		req := httptest.NewRequest(c.method, c.path, body)
		if c.chunked {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || reached != c.reach {
			t.Errorf("%s %s %d bytes (chunked %v): %d reached %v, want %d %v", c.method, c.path, c.n, c.chunked, rec.Code, reached, c.want, c.reach)
		}
	}
}

func TestEdgeSetsTheClientAddressAndHSTS(t *testing.T) {
	var got string
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	h := Edge(Edge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.RemoteAddr }),
		EdgeConfig{TrustedProxies: proxies}), EdgeConfig{TrustedProxies: proxies})
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:9"
	req.Header.Set("X-Forwarded-For", "127.0.0.5, 198.51.100.1")
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got != "198.51.100.1:0" {
		t.Fatalf("client address %q (an inner Edge must not work it out again)", got)
	}
	if rec.Header().Get("Strict-Transport-Security") == "" {
		t.Fatal("no HSTS behind a trusted TLS proxy")
	}
	req = httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:9"
	req.Header.Set("X-Forwarded-Proto", "https")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got != "192.0.2.1:9" || rec.Header().Get("Strict-Transport-Security") != "" {
		t.Fatalf("untrusted peer: %q, HSTS %q", got, rec.Header().Get("Strict-Transport-Security"))
	}
}

// At 8846f19 /metrics answered anyone.
func TestMetricsNeedLoopbackOrAToken(t *testing.T) {
	srv := newRoot(rootConfig{pages: pages.New(pages.Config{}), api: http.NotFoundHandler()})
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	h := Edge(srv, EdgeConfig{TrustedProxies: proxies})
	for _, c := range []struct {
		xff  string
		want int
	}{{"", 200}, {"198.51.100.1", 401}} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.RemoteAddr = "127.0.0.1:9"
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want || (c.want == 401 && strings.Contains(rec.Body.String(), "vigil_")) {
			t.Errorf("metrics from %q: %d, want %d", c.xff, rec.Code, c.want)
		}
	}
}

func FuzzClientAddr(f *testing.F) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Add("10.0.0.1:443", "198.51.100.1, 10.0.0.2")
	f.Add("[::1]:80", "[2001:db8::1]:5, ::ffff:10.1.1.1")
	f.Add("192.0.2.1:1", "10.0.0.1")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		got, _ := ClientAddr(proxies, remote, []string{xff})
		peer, err := netip.ParseAddrPort(remote)
		if err != nil || !trusted(proxies, peer.Addr()) {
			if got != remote {
				t.Fatalf("untrusted peer %q: header believed (%q)", remote, got)
			}
			return
		}
		ap, err := netip.ParseAddrPort(got)
		if err != nil {
			t.Fatalf("ClientAddr(%q, %q) = %q: not IP:port", remote, xff, got)
		}
		if got == remote {
			return
		}
		// A believed address comes from the header, never from nowhere.
		for _, h := range strings.Split(xff, ",") {
			if a, err := parseHop(h); err == nil && a == ap.Addr() {
				return
			}
		}
		t.Fatalf("ClientAddr(%q, %q) = %q: not in the header", remote, xff, got)
	})
}
