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

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/store/sqlite"
	"github.com/vigil-oss/vigil/internal/web"
	"github.com/vigil-oss/vigil/internal/webapp"
)

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "Serve the web interface and the JSON API over the store.",
		usage:   "vigil serve [--addr 127.0.0.1:8080] [--analysis-poll 5s] [--retention FILE]",
		help: `
Serves the investigators' pages at /, the API at /api/v1, Prometheus metrics
at /metrics and health at /healthz. Listens on loopback by default. Users log
in with their account ('vigil user add'); scripts use an API token ('vigil
token create') as "Authorization: Bearer TOKEN". Every read of a target,
search and export is in the audit trail.

It also runs the analysis: every --analysis-poll it scores the observations
other processes ('vigil ingest', 'vigil sensor') stored, so that they become
targets, and rescores every target daily. --analysis-poll 0 leaves that to
another process.

Cookies are Secure on loopback and under TLS; serve a non-loopback address
only behind a TLS-terminating proxy.

Examples:
  vigil --db /var/lib/vigil/vigil.db serve --addr 127.0.0.1:8080
  printf '%s\n' "$PASSWORD" | vigil user add --agency fr-ofmin --role analyst --name a.martin
`,
		setup: func(fs *flag.FlagSet) runFunc {
			addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on")
			poll := fs.Duration("analysis-poll", 5*time.Second, "score newly stored observations this often (0: never)")
			retention := fs.String("retention", "", "retention periods `YAML` for ISP requests (default: one year everywhere)")
			return func(ctx context.Context, a *app, args []string) error {
				sq, err := a.sqliteStore(ctx)
				if err != nil {
					return err
				}
				ret := isp.DefaultRetention()
				if *retention != "" {
					if ret, err = isp.LoadRetention(*retention); err != nil {
						return err
					}
				}
				ln, err := net.Listen("tcp", *addr)
				if err != nil {
					return fmt.Errorf("listen %s: %w", *addr, err)
				}
				defer ln.Close()
				reg := newRegistry()
				wa, err := newWebApp(ctx, a, sq, ln.Addr().String(), nil, reg, ret)
				if err != nil {
					return err
				}
				defer wa.Close()
				// The analysis loop stops with the server and is waited for.
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				if *poll > 0 {
					engine, err := startAnalysis(ctx, a.log, sq, wa.Alert)
					if err != nil {
						return err
					}
					done := make(chan struct{})
					go func() {
						defer close(done)
						if err := engine.Run(ctx, *poll, 24*time.Hour); err != nil && ctx.Err() == nil {
							a.log.Error("analysis stopped; targets no longer follow new observations", "err", err)
						}
					}()
					defer func() {
						cancel()
						<-done
						if err := engine.Flush(context.WithoutCancel(ctx)); err != nil {
							a.log.Error("analysis: last flush", "err", err)
						}
					}()
				}
				if err := printLoginHelp(ctx, a, sq, ln.Addr().String()); err != nil {
					return err
				}
				return serveHandler(ctx, a, ln, wa)
			}
		},
	}
}

// newWebApp builds the access layer over sq (cookies Secure as addr
// allows) and the web interface over both.
func newWebApp(ctx context.Context, a *app, sq *sqlite.Store, addr string, health map[string]web.HealthFunc, reg *prometheus.Registry, ret isp.Retention) (*webapp.App, error) {
	acfg := access.DefaultConfig()
	acfg.SecureCookies = access.CookieSecureFor(addr, false)
	if !acfg.SecureCookies {
		a.log.Warn("serving plain HTTP on a non-loopback address: cookies are not Secure; put a TLS proxy in front", "addr", addr)
	}
	svc, err := access.New(sq, &audit.Log{Store: sq}, acfg)
	if err != nil {
		return nil, err
	}
	return webapp.New(ctx, webapp.Deps{Store: sq, Access: svc, Health: health, Registry: reg, Log: a.log, Retention: ret})
}

// printLoginHelp says where to log in and, with no account yet, how to
// make one.
func printLoginHelp(ctx context.Context, a *app, sq *sqlite.Store, addr string) error {
	users, err := sq.Users(ctx)
	if err != nil {
		return fmt.Errorf("reading accounts: %w", err)
	}
	fmt.Fprintf(a.stdout, "Vigil web interface: http://%s/login (API: http://%s/api/v1, token: 'vigil token create')\n", addr, addr)
	if len(users) == 0 {
		fmt.Fprintf(a.stdout, `No account exists yet. Create the agencies and a first user, e.g.:
  vigil --db %s agency import --rules example:france
  printf '%%s\n' "$PASSWORD" | vigil --db %s user add --agency fr-ofmin --role analyst --name YOUR.NAME
`, a.dbPath, a.dbPath)
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveHandler serves h on ln until ctx ends, then shuts down gracefully.
func serveHandler(ctx context.Context, a *app, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
