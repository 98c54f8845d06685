package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/pipeline"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/web"
	"github.com/vigil-oss/vigil/internal/web/api"
)

func serveCommand() *command {
	return &command{
		name:    "serve",
		summary: "Serve the web interface and the JSON API over the store.",
		usage:   "vigil serve [--addr 127.0.0.1:8080] [--tls-cert FILE --tls-key FILE] [--insecure-http] [--trusted-proxy CIDR,...] [--audit-witness PATH] [--analysis-poll 5s] [--handoff-every 10m] [--alert-every 10s] [--retention FILE] [--retention-interval 1h] [--keep-observations 2y] ...",
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

Hand-offs: every --handoff-every (default 10m; 0: never) it does what
'vigil claim handoffs' does: for every live claim whose target's newest
first-hand observation (the peer itself talked to a sensor) was routed to
another agency than the one holding the claim, it proposes a hand-off to
that agency. A target has at most one pending proposal, however many
checks run; what a third party reports (a DHT node, a tracker, a peer's
PEX, an eD2K server or Kad node) never moves a target. Each proposal is
written to the audit trail; the target's page shows it to both agencies;
'vigil claim handoff' accepts or declines it.

TLS: --tls-cert and --tls-key (PEM files) serve HTTPS (TLS 1.2 or later)
with Strict-Transport-Security. Cookies are always Secure (browsers treat
http://127.0.0.1 and http://localhost as secure). A non-loopback --addr
without TLS is refused, unless --insecure-http is given for a
TLS-terminating reverse proxy in front, which --trusted-proxy must name.

--trusted-proxy CIDR,... names the reverse proxies whose X-Forwarded-For
header is believed: the client is the rightmost address in it that is not
a trusted proxy (the audit trail records it, with port 0). From any other
peer the header is ignored. HSTS is also sent when a trusted proxy says
X-Forwarded-Proto: https.

Request bodies are bounded before anything parses them: 1 MiB, and the
watch-list import's own limit on its route.

Audit checkpoints: serve signs the head of the audit chain every
--audit-checkpoint-every records, at least every --audit-checkpoint-interval
while records are added, and when it stops, with the ed25519 key in
--audit-key (made, mode 0600, when missing; default: the database path +
".audit-key", or with a postgres:// store a file named for its host, port,
database and schema in $XDG_CONFIG_HOME/vigil or ~/.config/vigil; its
public key is logged). --audit-witness PATH appends each
signed checkpoint to a file outside the store, --audit-witness-url POSTs
it; 'vigil audit verify --witness PATH' then finds a cut tail even when
the store's own checkpoints were deleted with it. Keep the witness where
the database's host cannot rewrite it.

/metrics answers this machine, or a caller with an API token; /healthz
says only "ok" or "not ok".

Platforms: an account of role platform ('vigil user add --role platform')
may only call POST /api/v1/check, asking whether addresses of its own users
were seen sharing watched material, first-hand, within --check-tolerance
(default 1h) either side of a time; every other page and route refuses it
(403, audited). Each user may make --check-per-minute requests a minute and
ask --check-per-day addresses in 24 hours, all the accounts of one
platform (agency) together --check-per-day-platform (default: as many as
one account), at most --check-max a request, and one address at most at
--check-instants-per-address distinct times in 24 hours by one platform,
the same time with another port counting as another (429 beyond,
audited); the day's counts and instants start, at the first
check of each account and platform after a start, from the checks the
audit trail holds of the last 24 hours. At most --check-refusal-records
refusals of one account a minute are recorded one by one; the others are
counted, and one record says how many once the minute ends (or the server
stops). docs/platforms.md says what a
platform learns and never learns.

Single sign-on: --oidc-issuer and --oidc-client-id turn on an OpenID Connect
login (authorization code with PKCE) beside the local accounts; the ID
token's --oidc-claim must name an existing user ('vigil user link' ties a
provider identity to one). Unknown identities are refused and audited.

Retention: every --retention-interval (1h; 0: never) the server runs the
purge of 'vigil retention run' with the --keep-* periods (transcripts 1y,
observations 2y, leads 1y; the audit trail is never purged), sparing the
targets under a legal hold ('vigil hold'); each purge is audited.

Examples:
  vigil --db /var/lib/vigil/vigil.db serve --addr 127.0.0.1:8080
  vigil serve --addr 0.0.0.0:8443 --tls-cert /etc/vigil/tls.crt --tls-key /etc/vigil/tls.key \
      --audit-witness /mnt/worm/vigil.witness
  vigil serve --addr 10.0.0.5:8080 --insecure-http --trusted-proxy 10.0.0.2/32
  vigil serve --oidc-issuer https://sso.example.gouv.fr/realms/police \
      --oidc-client-id vigil --oidc-client-secret-file /etc/vigil/oidc-secret
  printf '%s\n' "$PASSWORD" | vigil user add --agency fr-ofmin --role analyst --name a.martin
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var sf serveFlags
			fs.StringVar(&sf.addr, "addr", "127.0.0.1:8080", "`address` to listen on")
			fs.DurationVar(&sf.poll, "analysis-poll", 5*time.Second, "score newly stored observations this often (0: never)")
			fs.DurationVar(&sf.handOffEvery, "handoff-every", DefaultHandOffEvery, "propose hand-offs of claimed targets last seen first-hand in another agency's jurisdiction this often (0: never)")
			fs.DurationVar(&sf.alertEvery, "alert-every", 10*time.Second, "evaluate the alert rules and send due alert deliveries this often (0: never; docs/alerts.md)")
			fs.IntVar(&sf.alertAttempts, "alert-attempts", alerts.DefaultConfig().MaxAttempts, "give an alert delivery up after this many failed `attempts`")
			fs.StringVar(&sf.alertSMTP, "alert-smtp", "", "send alert e-mails through this mail server: `smtp://HOST:PORT?from=ADDR[&starttls=required|off]` (STARTTLS required but to loopback; docs/alerts.md)")
			fs.StringVar(&sf.alertWebhooks, "alert-webhooks", "", "the alert rules' webhooks: a JSON `FILE` of {id, agency or national, url, secret_file} (secret files mode 600; docs/alerts.md)")
			fs.StringVar(&sf.retention, "retention", "", "retention periods `YAML` for ISP requests (default: one year everywhere)")
			oidc := &sf.oidc
			fs.StringVar(&oidc.issuer, "oidc-issuer", "", "OpenID Connect provider `URL` for single sign-on (off when empty)")
			fs.StringVar(&oidc.clientID, "oidc-client-id", "", "client `ID` registered at the provider")
			fs.StringVar(&oidc.secretFile, "oidc-client-secret-file", "", "`file` holding the client secret (never on the command line)")
			fs.StringVar(&oidc.redirect, "oidc-redirect-url", "", "this server's callback `URL` as registered (default http(s)://ADDR/login/oidc/callback; set it behind a proxy)")
			fs.StringVar(&oidc.claim, "oidc-claim", "email", "ID token `claim` that names the local user (linked with 'vigil user link', or the user name)")
			fs.StringVar(&sf.tlsCert, "tls-cert", "", "TLS certificate chain `file` (PEM); serves HTTPS with --tls-key")
			fs.StringVar(&sf.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
			fs.BoolVar(&sf.insecureHTTP, "insecure-http", false, "serve plain HTTP on a non-loopback address, for a TLS proxy named by --trusted-proxy")
			fs.StringVar(&sf.proxies, "trusted-proxy", "", "`CIDR,...` of reverse proxies whose X-Forwarded-For is believed")
			fs.StringVar(&sf.witness, "audit-witness", "", "append signed audit checkpoints to this `file` outside the store")
			fs.StringVar(&sf.witnessURL, "audit-witness-url", "", "POST signed audit checkpoints to this `URL`")
			fs.StringVar(&sf.auditKey, "audit-key", "", "`file` of the audit checkpoint key (hex ed25519 seed; made when missing; default DB.audit-key, or for a postgres:// store ~/.config/vigil/HOST_PORT_DB_SCHEMA.audit-key)")
			fs.Int64Var(&sf.cpEvery, "audit-checkpoint-every", audit.DefaultCheckpointEvery, "sign the audit chain after this many `records`")
			fs.BoolVar(&sf.requirePurpose, "require-purpose", false, "every view of a target (page and API) must state a purpose (case number), kept in its audit record")
			fs.DurationVar(&sf.cpInterval, "audit-checkpoint-interval", audit.DefaultCheckpointInterval, "sign the audit chain at least this often while it grows")
			fs.DurationVar(&sf.platformCheck.Tolerance, "check-tolerance", api.DefaultCheckTolerance, "the platforms' check: a first-hand sighting this close to the time asked, either side, answers seen")
			fs.IntVar(&sf.platformCheck.MaxChecks, "check-max", api.DefaultCheckMax, "the platforms' check: at most this many `addresses` a request")
			fs.IntVar(&sf.platformCheck.PerMinute, "check-per-minute", api.DefaultCheckPerMinute, "the platforms' check: at most this many `requests` a minute per user (429 beyond, audited)")
			fs.IntVar(&sf.platformCheck.PerDay, "check-per-day", api.DefaultCheckPerDay, "the platforms' check: at most this many `addresses` in 24 hours per user (429 beyond, audited)")
			fs.IntVar(&sf.platformCheck.PlatformPerDay, "check-per-day-platform", 0, "the platforms' check: at most this many `addresses` in 24 hours by all the accounts of one platform (agency) together (0: --check-per-day)")
			fs.IntVar(&sf.platformCheck.InstantsPerAddress, "check-instants-per-address", api.DefaultCheckInstantsPerAddress, "the platforms' check: one address may be asked at most at this many distinct `times` in 24 hours by all the accounts of one platform together, the same time with another port counting as another (429 beyond, audited)")
			fs.IntVar(&sf.platformCheck.RefusalRecords, "check-refusal-records", api.DefaultCheckRefusalRecords, "the platforms' check: at most this many refused `requests` of one account a minute are recorded one by one; the others are counted in one record for the minute")
			sf.purge = defineRetentionFlags(fs)
			fs.DurationVar(&sf.purge.Interval, "retention-interval", sf.purge.Interval, "run the retention purge ('vigil retention run') this often (0: never)")
			return func(ctx context.Context, a *app, args []string) error { return sf.run(ctx, a) }
		},
	}
}

// newWebApp builds the access layer over sq (cookies Secure as addr
// allows) and the web interface over both.
func newWebApp(ctx context.Context, a *app, sq backend, addr string, health map[string]web.HealthFunc, reg *prometheus.Registry, ret isp.Retention) (*web.App, error) {
	return newWebAppWith(ctx, a, sq, addr, web.Deps{Health: health, Registry: reg, Retention: ret}, access.CookieSecureFor(addr, false))
}

// oidcFlags are serve's single sign-on settings.
type oidcFlags struct {
	issuer, clientID, secretFile, redirect, claim string
}

// config returns the OpenID Connect settings of a server at base (its
// scheme and address), or nil when single sign-on is off.
func (f *oidcFlags) config(base string) (*access.OIDCConfig, error) {
	if f.issuer == "" {
		return nil, nil
	}
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
		redirect = base + "/login/oidc/callback"
	}
	return &access.OIDCConfig{Issuer: f.issuer, ClientID: f.clientID, ClientSecret: secret, RedirectURL: redirect, Claim: f.claim}, nil
}

// secure marks cookies Secure: serve always does (loopback, TLS, or a TLS
// proxy in front); the demo as its address allows.
// deps holds the web interface's settings; the store, access layer and
// logger are filled in here.
func newWebAppWith(ctx context.Context, a *app, sq backend, addr string, deps web.Deps, secure bool) (*web.App, error) {
	acfg := access.DefaultConfig()
	acfg.SecureCookies = secure
	if !acfg.SecureCookies {
		a.log.Warn("serving plain HTTP on a non-loopback address: cookies are not Secure; put a TLS proxy in front", "addr", addr)
	}
	svc, err := access.New(sq, &audit.Log{Store: sq}, acfg)
	if err != nil {
		return nil, err
	}
	deps.Store, deps.Access, deps.Log = sq, svc, a.log
	// The live feed and the overview place each observation in its
	// IP:port's generation with the analysis's own window.
	deps.EndpointWindow = a.endpointWindow
	// The platforms' check answers no sighting of a fellow sensor.
	deps.Own = analysisOwn.Load()
	return web.New(ctx, deps)
}

// printLoginHelp says where to log in and, with no account yet, how to
// make one.
func printLoginHelp(ctx context.Context, a *app, sq backend, base string) error {
	users, err := sq.Users(ctx)
	if err != nil {
		return fmt.Errorf("reading accounts: %w", err)
	}
	fmt.Fprintf(a.stdout, "Vigil web interface: %s/login (API: %s/api/v1, token: 'vigil token create')\n", base, base)
	if len(users) == 0 {
		fmt.Fprintf(a.stdout, `No account exists yet. Create the agencies and a first user, e.g.:
  vigil --db %s agency import --rules example:france
  printf '%%s\n' "$PASSWORD" | vigil --db %s user add --agency fr-ofmin --role analyst --name YOUR.NAME
`, redactDSN(a.dbPath), redactDSN(a.dbPath))
	}
	return nil
}

func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serveHandler serves h on ln until ctx ends, then shuts down gracefully
// (in-flight requests get 5 s).
func serveHandler(ctx context.Context, a *app, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	a.log.Info("serving", "addr", ln.Addr().String())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}

// serveFlags are serve's transport and audit-witness settings.
type serveFlags struct {
	addr                string
	poll                time.Duration
	handOffEvery        time.Duration
	alertEvery          time.Duration // --alert-every
	alertAttempts       int           // --alert-attempts
	alertSMTP           string        // --alert-smtp
	alertWebhooks       string        // --alert-webhooks
	retention           string
	oidc                oidcFlags
	tlsCert, tlsKey     string
	insecureHTTP        bool
	proxies             string
	witness, witnessURL string
	auditKey            string
	cpEvery             int64
	cpInterval          time.Duration
	requirePurpose      bool
	purge               *retention.Config
	platformCheck       api.CheckConfig // the platforms' POST /api/v1/check
}

// check validates the flags against the listen address: TLS files
// together and readable, and no plain HTTP off loopback unless a named
// TLS proxy stands in front.
func (f *serveFlags) check(addr string) (*tls.Config, []netip.Prefix, error) {
	proxies, err := web.ParseTrustedProxies(f.proxies)
	if err != nil {
		return nil, nil, usagef("--trusted-proxy: %v", err)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, nil, usagef("--tls-cert and --tls-key go together")
	}
	if f.handOffEvery < 0 {
		return nil, nil, usagef("--handoff-every %s: want a positive interval, or 0 for never", f.handOffEvery)
	}
	if f.cpEvery < 1 || f.cpInterval <= 0 {
		return nil, nil, usagef("--audit-checkpoint-every and --audit-checkpoint-interval must be positive")
	}
	if f.tlsCert != "" {
		if f.insecureHTTP {
			return nil, nil, usagef("--insecure-http and --tls-cert: choose one")
		}
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", f.tlsCert, f.tlsKey, err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"},
			// TLS 1.2: forward secrecy and AEAD only (TLS 1.3's are all so).
			CipherSuites: []uint16{
				tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
				tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
				tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
			}}, proxies, nil
	}
	if access.CookieSecureFor(addr, false) {
		return nil, proxies, nil
	}
	if !f.insecureHTTP {
		return nil, nil, usagef("--addr %s is not a loopback address: serve it with --tls-cert and --tls-key, "+
			"or behind a TLS-terminating proxy with --insecure-http --trusted-proxy PROXY", addr)
	}
	if len(proxies) == 0 {
		return nil, nil, usagef("--insecure-http is for a TLS-terminating proxy in front: name it with --trusted-proxy")
	}
	return nil, proxies, nil
}

// checkpointer returns the service that signs the audit chain on its
// schedule (and once more when it stops).
func (f *serveFlags) checkpointer(a *app, sq backend, reg *prometheus.Registry) (func(context.Context) error, error) {
	keyPath := f.auditKey
	if keyPath == "" {
		var err error
		if keyPath, err = a.defaultAuditKey(); err != nil {
			return nil, err
		}
	}
	key, made, err := loadOrCreateAuditKey(keyPath)
	if err != nil {
		return nil, fmt.Errorf("--audit-key: %w", err)
	}
	pub := key.Public().(ed25519.PublicKey)
	fmt.Fprintf(a.stdout, "Audit checkpoints signed with %s (public key %x, for 'vigil audit verify --pubkey')\n", keyPath, pub)
	a.log.Info("audit checkpoints", "key", keyPath, "made", made, "public_key", hex.EncodeToString(pub),
		"witness", f.witness, "witness_url", f.witnessURL, "every", f.cpEvery, "interval", f.cpInterval.String())
	cp := audit.NewCheckpointer(sq, sq, key, witnesses(f.witness, f.witnessURL),
		audit.CheckpointerConfig{Every: f.cpEvery, Interval: f.cpInterval})
	cp.Log = a.log
	for _, c := range cp.Collectors() {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("audit metrics: %w", err)
		}
	}
	return func(ctx context.Context) error {
		_ = cp.Run(ctx) // errors are logged by Run
		return nil
	}, nil
}

// run serves the web interface and the API until ctx ends, with the
// analysis loop and the audit checkpointer beside it.
func (f *serveFlags) run(ctx context.Context, a *app) error {
	tlsCfg, proxies, err := f.check(f.addr)
	if err != nil {
		return err
	}
	if err := f.purge.Validate(); err != nil {
		return usagef("%v", err)
	}
	if f.platformCheck.Tolerance <= 0 || f.platformCheck.Tolerance > 24*time.Hour || f.platformCheck.MaxChecks < 1 || f.platformCheck.MaxChecks > 100 || f.platformCheck.PerMinute < 1 || f.platformCheck.PerDay < 1 || f.platformCheck.PlatformPerDay < 0 ||
		f.platformCheck.InstantsPerAddress < 1 || f.platformCheck.RefusalRecords < 1 {
		return usagef("--check-tolerance: want more than 0 and at most 24h; --check-max: 1 to 100; --check-per-minute and --check-per-day: at least 1; --check-per-day-platform: 0 (as --check-per-day) or more; --check-instants-per-address and --check-refusal-records: at least 1")
	}
	f.platformCheck.Retention = f.purge.Observations // the check answers nothing older
	sq, err := a.backendStore(ctx)
	if err != nil {
		return err
	}
	ret := isp.DefaultRetention()
	if f.retention != "" {
		if ret, err = isp.LoadRetention(f.retention); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", f.addr, err)
	}
	defer ln.Close()
	reg := newRegistry()
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	oidc, err := f.oidc.config(scheme + "://" + ln.Addr().String())
	if err != nil {
		return err
	}
	wa, err := newWebAppWith(ctx, a, sq, ln.Addr().String(), web.Deps{Registry: reg, Retention: ret, RequireViewPurpose: f.requirePurpose, OIDC: oidc, Check: f.platformCheck}, true)
	if err != nil {
		return err
	}
	defer wa.Close()
	if oidc != nil {
		a.log.Info("single sign-on", "issuer", oidc.Issuer, "claim", oidc.Claim)
	}
	// Outermost: nothing parses a body the edge has not bounded.
	handler := web.Edge(wa, web.EdgeConfig{TrustedProxies: proxies, Limit: web.BodyLimits(0), Registry: reg})
	checkpoint, err := f.checkpointer(a, sq, reg)
	if err != nil {
		return err
	}
	// The analysis scores what other processes ('vigil ingest', 'vigil
	// sensor') store; the server and the checkpointer run beside it
	// and stop with it.
	pc := pipeline.Config{Store: sq, NoIngest: true, Registry: reg, Log: a.log, Own: analysisOwn.Load()}
	if f.poll > 0 {
		pc.Analysis, pc.AnalysisPoll, pc.OnAlert, pc.EndpointWindow, pc.IPv6 = sq, f.poll, wa.Alert, a.endpointWindow, analysisIPv6.Load()
	}
	p, err := pipeline.New(ctx, pc)
	if err != nil {
		return err
	}
	p.Go("audit checkpointer", checkpoint)
	if f.handOffEvery > 0 {
		hc, err := newHandOffChecker(a, sq, f.handOffEvery, reg)
		if err != nil {
			return err
		}
		p.Go("hand-off check", hc.run)
	}
	if f.alertEvery > 0 {
		job, err := f.alertJob(a, sq, wa)
		if err != nil {
			return err
		}
		p.Go("alerts", job)
	}
	if f.purge.Interval > 0 {
		p.Go("retention purge", retentionService(a.retentionRunner(sq, *f.purge), f.purge.Interval, a.log))
	}
	if err := printLoginHelp(ctx, a, sq, scheme+"://"+ln.Addr().String()); err != nil {
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	p.Go("web", func(ctx context.Context) error {
		err := serveHandler(ctx, a, ln, handler)
		// No request is served any more: the platforms' check refusals
		// counted in a minute not yet ended are recorded now, not lost.
		if ferr := wa.FlushRefusals(context.WithoutCancel(ctx)); ferr != nil {
			a.log.Error("platforms' check: refusals counted and not recorded", "err", ferr)
		}
		return err
	})
	return p.Run(ctx)
}
