// Package web is Vigil's HTTP interface, one tree: this package holds the
// mux every request meets, the edge (body bounds, the client's address,
// HSTS), the access layer's wrapping around the pages and the API,
// /healthz and /metrics; the pages are internal/web/pages and all of
// /api/v1 is internal/web/api, both recording every read through
// internal/web/trail.
//
// This package must never serve a page or an API route around the access
// layer's wrapping, and never answer /healthz with more than "ok" or
// "not ok", nor /metrics to a caller off this machine without a token.
package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/internal/web/pages"
)

// HealthFunc says whether a part is working and, if not, why.
type HealthFunc = pages.HealthFunc

// Config is what the root handler serves.
type Config struct {
	// Pages serve everything but /api/v1, /healthz, /metrics and /static/.
	Pages *pages.Server
	// API serves all of /api/v1.
	API http.Handler
	// Wrap is the access layer's middleware around the pages and the API
	// (access.Service.Wrap): it authenticates sessions and bearer tokens
	// and refuses POSTs without a valid CSRF token. nil: every POST is
	// refused with 403.
	Wrap func(http.Handler) http.Handler
	// Health reports the parts of the process by name: /healthz says
	// "not ok" when one is not.
	Health map[string]HealthFunc
	// Registry is served at /metrics; nil: a fresh one.
	Registry *prometheus.Registry
	// MaxUpload bounds the watch-list import's body (0: 1 GiB).
	MaxUpload int64
}

// Handler returns the root handler: the edge, security headers, /healthz,
// /metrics, the pages' assets, and the pages and the API behind the
// access layer and Go's cross-origin protection.
func Handler(cfg Config) http.Handler {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	app := http.NewServeMux()
	app.Handle("/api/v1/", cfg.API)
	app.Handle("/", cfg.Pages)
	var inner http.Handler = app
	if cfg.Wrap != nil {
		inner = cfg.Wrap(app)
	} else {
		inner = refusePosts(app)
	}
	inner = http.NewCrossOriginProtection().Handler(inner)

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", healthz(cfg.Health))
	root.Handle("GET /metrics", metricsGuard(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}), cfg.Wrap))
	root.Handle("GET /static/", http.StripPrefix("/static/", pages.Static()))
	root.Handle("/", inner)
	return Edge(securityHeaders(root), EdgeConfig{Limit: BodyLimits(cfg.MaxUpload), Registry: cfg.Registry})
}

// refusePosts stands in for a missing access layer: no state change
// without CSRF protection.
func refusePosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "refused: no CSRF protection is configured (web.Config.Wrap)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// healthz answers anyone, so it says only "ok" or "not ok": which part
// failed and why is on the sensors page, behind a login.
func healthz(health map[string]HealthFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body := http.StatusOK, "ok\n"
		for _, h := range health {
			if ok, _ := h(); !ok {
				status, body = http.StatusServiceUnavailable, "not ok\n"
				break
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
