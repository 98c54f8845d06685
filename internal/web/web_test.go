package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/pages"
)

// get asks the handler as a client on this machine.
func get(t *testing.T, h http.Handler, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	req.RemoteAddr = "127.0.0.1:4000"
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

// /healthz answers anyone with ok or not, /metrics this machine, the
// assets are served; every answer carries the security headers; without
// an access layer every POST is refused and the API answers 401.
func TestHealthMetricsAndSecurityHeaders(t *testing.T) {
	healthy := false
	health := map[string]HealthFunc{"sensor x": func() (bool, string) { return healthy, "no DHT nodes answered" }}
	reg := prometheus.NewRegistry()
	h := newRoot(rootConfig{pages: pages.New(pages.Config{Health: health, Registry: reg}),
		api:    api.Handler(api.Config{Live: api.NewLive(api.LiveConfig{Registry: reg})}),
		health: health, registry: reg})
	resp, body := get(t, h, "GET", "/healthz", nil)
	// Never which part or why.
	if resp.StatusCode != http.StatusServiceUnavailable || body != "not ok\n" {
		t.Fatalf("unhealthy sensor: %d %q", resp.StatusCode, body)
	}
	healthy = true
	if resp, _ := get(t, h, "GET", "/healthz", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthy sensor: %d", resp.StatusCode)
	}
	if resp, body := get(t, h, "GET", "/metrics", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, "vigil_web_live_clients") {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	resp, _ = get(t, h, "GET", "/login", nil)
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Fatalf("CSP %q lacks %q", csp, want)
		}
	}
	if resp, _ := get(t, h, "POST", "/login", url.Values{"user": {"x"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("POST without access layer: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, h, "GET", "/api/v1/events", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without user: %d, want 401", resp.StatusCode)
	}
	if resp, body := get(t, h, "GET", "/static/vigil.js", nil); resp.StatusCode != 200 || !strings.Contains(body, "EventSource") {
		t.Fatalf("static js: %d", resp.StatusCode)
	}
	if resp, _ := get(t, h, "GET", "/static/", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the assets' folder is listed: %d", resp.StatusCode)
	}
}

// All of /api/v1 reaches the API, whatever the path, and the pages
// register nothing there: one package answers the API's routes (the
// source of every other package is checked by the API's
// TestNoOtherPackageRegistersAnAPIRoute).
func TestAllOfAPIv1GoesToTheAPI(t *testing.T) {
	pg := pages.New(pages.Config{})
	for _, r := range pg.Routes() {
		if _, p, _ := strings.Cut(r, " "); strings.HasPrefix(p, "/api/v1") || strings.HasPrefix(r, "/api/v1") {
			t.Errorf("the pages register %q: /api/v1 is internal/web/api's", r)
		}
	}
	var reached []string
	h := newRoot(rootConfig{pages: pg, api: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.URL.Path)
	}), wrap: func(h http.Handler) http.Handler { return h }})
	paths := []string{"/api/v1/no/such/route", "/api/v1/"}
	for _, r := range api.Routes {
		_, p, _ := strings.Cut(r, " ")
		paths = append(paths, strings.NewReplacer("{id}", "T-1", "{job}", "0123").Replace(p))
	}
	for _, p := range paths {
		reached = nil
		if get(t, h, "GET", p, nil); len(reached) != 1 || reached[0] != p {
			t.Errorf("GET %s did not reach the API", p)
		}
	}
}
