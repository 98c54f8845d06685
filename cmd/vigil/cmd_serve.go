package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vigil-oss/vigil/internal/web"
)

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "Serve the web interface and the JSON API over the store.",
		usage:   "vigil serve [--addr 127.0.0.1:8080]",
		help: `
Serves the pages at /, the API at /api/v1, Prometheus metrics at /metrics
and health at /healthz. Listens on loopback by default.

Example:
  vigil --db /var/lib/vigil/vigil.db serve --addr 127.0.0.1:8080
`,
		setup: func(fs *flag.FlagSet) runFunc {
			addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on")
			return func(ctx context.Context, a *app, args []string) error {
				st, err := a.store(ctx)
				if err != nil {
					return err
				}
				reg := newRegistry()
				return serveHTTP(ctx, a, *addr, web.Config{Store: st, Registry: reg, Log: a.log})
			}
		},
	}
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveHTTP serves until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, a *app, addr string, cfg web.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serveListener(ctx, a, ln, cfg)
}

func serveListener(ctx context.Context, a *app, ln net.Listener, cfg web.Config) error {
	srv := &http.Server{Handler: web.Handler(cfg), ReadHeaderTimeout: 10 * time.Second}
	a.log.Info("serving", "url", "http://"+ln.Addr().String()+"/")
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && e != nil {
		err = errors.Join(err, e)
	}
	return err
}
