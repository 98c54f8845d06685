// Package web is Vigil's HTTP interface, one tree. This package holds the
// mux every request meets, the edge (body bounds, the client's address,
// HSTS), the access layer's wrapping around the pages and the API,
// single sign-on's routes, /healthz and /metrics, and New, which assembles the whole over a store
// it knows only as an interface (Store): the composition 'vigil serve'
// and 'vigil demo' share. The pages are internal/web/pages; all of
// /api/v1 is internal/web/api; both record every read through one trail
// (internal/web/trail), and a read whose record cannot be written is not
// served.
//
// Need to know stays in the store's queries: every read passes the
// viewer's scope, taken from the authenticated principal and nothing
// else. A target outside the scope answers exactly as a missing one, and
// the refusal is audited. What is not read for the viewer at the moment
// it is shown (live events, and the overview's rows when its answer is
// reused) is decided again at delivery by asking the store who may see
// each target now (api.StoreAccess, the pages' overviewnow.go), never by
// the agency a row was routed to when it was stored.
//
// This package must never serve a page or an API route around the access
// layer's wrapping, never decide access from a kept answer alone, and
// never answer /healthz with more than "ok" or "not ok", nor /metrics to
// a caller off this machine without a token.
package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/internal/web/pages"
)

// HealthFunc says whether a part is working and, if not, why.
type HealthFunc = pages.HealthFunc

// rootConfig is what the root handler serves.
type rootConfig struct {
	// pages serve everything but /api/v1, /healthz, /metrics and
	// /static/.
	pages http.Handler
	// api serves all of /api/v1.
	api http.Handler
	// login are the routes of single sign-on (GET /login/oidc and its
	// callback), served beside the pages behind the access layer.
	login map[string]http.Handler
	// wrap is the access layer's middleware around the pages and the
	// API (access.Service.Wrap): it authenticates sessions and bearer
	// tokens and refuses POSTs without a valid CSRF token. nil: every
	// POST is refused with 403.
	wrap func(http.Handler) http.Handler
	// health reports the parts of the process by name: /healthz says
	// "not ok" when one is not.
	health map[string]HealthFunc
	// registry is served at /metrics; nil: a fresh one.
	registry *prometheus.Registry
	// maxUpload bounds the watch-list import's body (0: 1 GiB).
	maxUpload int64
}

// newRoot returns the root handler: the edge, security headers,
// /healthz, /metrics, the pages' assets, and the pages and the API behind
// the access layer and Go's cross-origin protection.
func newRoot(cfg rootConfig) http.Handler {
	if cfg.registry == nil {
		cfg.registry = prometheus.NewRegistry()
	}
	app := http.NewServeMux()
	app.Handle("/api/v1/", cfg.api)
	for p, h := range cfg.login {
		app.Handle(p, h)
	}
	app.Handle("/", cfg.pages)
	var inner http.Handler = app
	if cfg.wrap != nil {
		inner = cfg.wrap(app)
	} else {
		inner = refusePosts(app)
	}
	inner = http.NewCrossOriginProtection().Handler(inner)

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", healthz(cfg.health))
	root.Handle("GET /metrics", metricsGuard(promhttp.HandlerFor(cfg.registry, promhttp.HandlerOpts{}), cfg.wrap))
	root.Handle("GET /static/", http.StripPrefix("/static/", pages.Static()))
	root.Handle("/", inner)
	return Edge(securityHeaders(root), EdgeConfig{Limit: BodyLimits(cfg.maxUpload), Registry: cfg.registry})
}

// refusePosts stands in for a missing access layer: no state change
// without CSRF protection.
func refusePosts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "refused: no CSRF protection is configured (no access layer)", http.StatusForbidden)
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
