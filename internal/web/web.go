// Package web serves Vigil's HTTP interface: health, metrics, the JSON API
// under /api/v1 and the pages. Templates and assets are embedded; nothing
// is loaded from a CDN.
//
// Handlers only ask the packages that answer their questions (the store);
// they never reach into sensors. Every page shows an observation's
// possession level beside it: a screen must never overstate.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/store"
)

//go:embed templates/*.html
var templates embed.FS

// HealthFunc says whether a part is working and, if not, why.
type HealthFunc func() (ok bool, why string)

// Config holds what the server serves.
type Config struct {
	Store    store.Store
	Health   map[string]HealthFunc // by part name, e.g. "sensor bittorrent-1"
	Registry *prometheus.Registry  // served at /metrics; nil: a fresh one
	Log      *slog.Logger
	// RecentLimit is how many observations the overview lists.
	RecentLimit int
}

// Handler returns the HTTP handler.
func Handler(cfg Config) http.Handler {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.RecentLimit <= 0 {
		cfg.RecentLimit = 100
	}
	page := template.Must(template.New("").Funcs(template.FuncMap{
		"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
	}).ParseFS(templates, "templates/*.html"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]string{}
		status := http.StatusOK
		for name, h := range cfg.Health {
			ok, why := h()
			if !ok {
				status = http.StatusServiceUnavailable
				why = "NOT OK: " + why
			}
			out[name] = why
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(out)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /api/v1/observations", func(w http.ResponseWriter, r *http.Request) {
		var f store.ObservationFilter
		if s := r.URL.Query().Get("since"); s != "" {
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				http.Error(w, "since: want an RFC 3339 time", http.StatusBadRequest)
				return
			}
			f.Since = t
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := observe.NewEncoder(w)
		err := cfg.Store.Observations(r.Context(), f, func(o *observe.Observation) error { return enc.Encode(o) })
		if err == nil {
			err = enc.Flush()
		}
		if err != nil && r.Context().Err() == nil {
			cfg.Log.Error("api observations", "err", err)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		recent, counts, err := overview(r.Context(), cfg.Store, cfg.RecentLimit)
		if err != nil {
			cfg.Log.Error("overview", "err", err)
			http.Error(w, "the store did not answer", http.StatusInternalServerError)
			return
		}
		health := map[string]string{}
		for name, h := range cfg.Health {
			ok, why := h()
			if !ok {
				why = "NOT OK: " + why
			}
			health[name] = why
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.ExecuteTemplate(w, "overview.html", map[string]any{
			"Recent": recent, "Counts": counts, "Health": health, "Now": time.Now().UTC(),
		}); err != nil {
			cfg.Log.Error("render overview", "err", err)
		}
	})
	return securityHeaders(mux)
}

// levelCount is one row of the overview's table.
type levelCount struct {
	Method string
	Levels map[string]int
	Total  int
}

// overview returns the newest observations and counts by method and level.
// It reads every observation: fine for the demo's store, not for millions.
// The investigators' dashboard (issue 5) replaces it with store queries
// that count and page in SQL.
func overview(ctx context.Context, st store.Store, limit int) ([]observe.Observation, []levelCount, error) {
	var ring []observe.Observation
	byMethod := map[string]*levelCount{}
	var order []string
	err := st.Observations(ctx, store.ObservationFilter{}, func(o *observe.Observation) error {
		ring = append(ring, *o)
		if len(ring) > limit {
			ring = ring[1:]
		}
		c := byMethod[o.Method]
		if c == nil {
			c = &levelCount{Method: o.Method, Levels: map[string]int{}}
			byMethod[o.Method] = c
			order = append(order, o.Method)
		}
		c.Levels[o.Possession.Level.String()]++
		c.Total++
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, j := 0, len(ring)-1; i < j; i, j = i+1, j-1 {
		ring[i], ring[j] = ring[j], ring[i]
	}
	counts := make([]levelCount, 0, len(order))
	for _, m := range order {
		counts = append(counts, *byMethod[m])
	}
	return ring, counts, nil
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; object-src 'none'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}
