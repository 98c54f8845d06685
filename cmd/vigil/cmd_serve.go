package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
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

Single sign-on: --oidc-issuer and --oidc-client-id turn on an OpenID Connect
login (authorization code with PKCE) beside the local accounts; the ID
token's --oidc-claim must name an existing user ('vigil user link' ties a
provider identity to one). Unknown identities are refused and audited.

Examples:
  vigil --db /var/lib/vigil/vigil.db serve --addr 127.0.0.1:8080
  vigil serve --oidc-issuer https://sso.example.gouv.fr/realms/police \
      --oidc-client-id vigil --oidc-client-secret-file /etc/vigil/oidc-secret
  printf '%s\n' "$PASSWORD" | vigil user add --agency fr-ofmin --role analyst --name a.martin
`,
		setup: func(fs *flag.FlagSet) runFunc {
			addr := fs.String("addr", "127.0.0.1:8080", "`address` to listen on")
			poll := fs.Duration("analysis-poll", 5*time.Second, "score newly stored observations this often (0: never)")
			retention := fs.String("retention", "", "retention periods `YAML` for ISP requests (default: one year everywhere)")
			var oidc oidcFlags
			fs.StringVar(&oidc.issuer, "oidc-issuer", "", "OpenID Connect provider `URL` for single sign-on (off when empty)")
			fs.StringVar(&oidc.clientID, "oidc-client-id", "", "client `ID` registered at the provider")
			fs.StringVar(&oidc.secretFile, "oidc-client-secret-file", "", "`file` holding the client secret (never on the command line)")
			fs.StringVar(&oidc.redirect, "oidc-redirect-url", "", "this server's callback `URL` as registered (default http://ADDR/login/oidc/callback)")
			fs.StringVar(&oidc.claim, "oidc-claim", "email", "ID token `claim` that names the local user (linked with 'vigil user link', or the user name)")
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
				wa, svc, err := newWebAppWith(ctx, a, sq, ln.Addr().String(), nil, reg, ret)
				if err != nil {
					return err
				}
				defer wa.Close()
				var handler http.Handler = wa
				if oidc.issuer != "" {
					if handler, err = oidc.enable(ctx, svc, ln.Addr().String(), wa); err != nil {
						return err
					}
					a.log.Info("single sign-on", "issuer", oidc.issuer, "claim", oidc.claim)
				}
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
				return serveHandler(ctx, a, ln, handler)
			}
		},
	}
}

// newWebApp builds the access layer over sq (cookies Secure as addr
// allows) and the web interface over both.
func newWebApp(ctx context.Context, a *app, sq *sqlite.Store, addr string, health map[string]web.HealthFunc, reg *prometheus.Registry, ret isp.Retention) (*webapp.App, error) {
	wa, _, err := newWebAppWith(ctx, a, sq, addr, health, reg, ret)
	return wa, err
}

// oidcFlags are serve's single sign-on settings.
type oidcFlags struct {
	issuer, clientID, secretFile, redirect, claim string
}

// enable turns on OpenID Connect login on svc and returns the handler that
// serves its two routes beside the web interface.
func (f *oidcFlags) enable(ctx context.Context, svc *access.Service, addr string, next http.Handler) (http.Handler, error) {
	if f.clientID == "" {
		return nil, usagef("--oidc-issuer needs --oidc-client-id")
	}
	var secret string
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	redirect := f.redirect
	if redirect == "" {
		redirect = "http://" + addr + "/login/oidc/callback"
	}
	if err := svc.EnableOIDC(ctx, access.OIDCConfig{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: secret,
		RedirectURL: redirect, Claim: f.claim}); err != nil {
		return nil, fmt.Errorf("single sign-on with %s: %w", f.issuer, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /login/oidc", svc.Wrap(svc.OIDCStartHandler()))
	mux.Handle("GET /login/oidc/callback", svc.Wrap(svc.OIDCCallbackHandler(nil)))
	mux.Handle("/", next)
	return mux, nil
}

func newWebAppWith(ctx context.Context, a *app, sq *sqlite.Store, addr string, health map[string]web.HealthFunc, reg *prometheus.Registry, ret isp.Retention) (*webapp.App, *access.Service, error) {
	acfg := access.DefaultConfig()
	acfg.SecureCookies = access.CookieSecureFor(addr, false)
	if !acfg.SecureCookies {
		a.log.Warn("serving plain HTTP on a non-loopback address: cookies are not Secure; put a TLS proxy in front", "addr", addr)
	}
	svc, err := access.New(sq, &audit.Log{Store: sq}, acfg)
	if err != nil {
		return nil, nil, err
	}
	wa, err := webapp.New(ctx, webapp.Deps{Store: sq, Access: svc, Health: health, Registry: reg, Log: a.log, Retention: ret})
	return wa, svc, err
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
