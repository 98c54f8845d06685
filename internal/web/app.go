package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/alerts"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/web/api"
	"github.com/vigil-oss/vigil/internal/web/pages"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

// Deps is what the interface is built from.
type Deps struct {
	// Store holds targets, lists, accounts and the audit trail.
	Store Store
	// EndpointWindow is the analysis's endpoint window
	// (analysis.Config.EndpointWindow; 0: its default). Live events and
	// overview rows are shown under the target of their IP:port's
	// generation at their time, and after a longer silence under none.
	EndpointWindow time.Duration
	// Access authenticates requests (its Config.SecureCookies should come
	// from access.CookieSecureFor(addr, tls)) and writes logins to the
	// trail. Its store and audit log must be over Store.
	Access *access.Service
	// Health reports the parts of the process by name (sensors).
	Health map[string]HealthFunc
	// Registry is served at /metrics; nil: a fresh one.
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Retention bounds what an ISP request asks for (zero:
	// isp.DefaultRetention()).
	Retention isp.Retention
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OverviewTTL is how long an overview answer is reused for the same
	// scope (0: 10 s; negative: never).
	OverviewTTL time.Duration
	// LiveQueue is how many committed batches may wait for their live
	// events (0: 256); a batch beyond it is dropped from the live view
	// (counted), never from the store.
	LiveQueue int
	// RecheckEvery is how often an idle live stream re-checks its
	// session or token (0: api.DefaultRecheckEvery); a stream also
	// re-checks before every batch it delivers. The bulk export of
	// observations re-checks as often while it streams.
	RecheckEvery time.Duration
	// RequireViewPurpose makes every view of a target (page and API) state
	// a purpose (case number), written into its audit record.
	RequireViewPurpose bool
	// OIDC, if set, turns on OpenID Connect login beside the local
	// accounts (New fetches the provider's discovery document):
	// GET /login/oidc leaves for the provider, GET /login/oidc/callback
	// comes back, both behind the access layer.
	OIDC *access.OIDCConfig
	// Check bounds the platforms' POST /api/v1/check (zero fields: the
	// api package's defaults).
	Check api.CheckConfig
	// Own are the deployment's own addresses (--own-addresses): the
	// platforms' check never answers "seen" for a sighting of one.
	Own *own.Set
}

// App is the assembled interface.
type App struct {
	handler http.Handler
	routes  []string // every pattern served behind the access layer
	pages   *pages.Server
	api     *api.API
	backend *pages.Backend
	hub     *api.Hub
	st      Store
	window  time.Duration // Deps.EndpointWindow
	acc     *access.Service
	log     *slog.Logger

	live        chan []observe.Observation
	liveDropped prometheus.Counter

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New assembles the interface. ctx bounds its background work (live
// events, place refresh); Close stops it too.
func New(ctx context.Context, d Deps) (*App, error) {
	if d.Store == nil || d.Access == nil {
		return nil, errors.New("web: a Store and an Access service are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Retention.Default.IsZero() && len(d.Retention.ByCountry) == 0 {
		d.Retention = isp.DefaultRetention()
	}
	if d.LiveQueue <= 0 {
		d.LiveQueue = 256
	}
	ctx, cancel := context.WithCancel(ctx)
	a := &App{st: d.Store, window: d.EndpointWindow, acc: d.Access, log: d.Log, hub: api.NewHub(0), cancel: cancel,
		live: make(chan []observe.Observation, d.LiveQueue),
		liveDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_webapp_live_dropped_batches_total",
			Help: "Committed batches left out of the live pages because the live queue was full (they are stored)."}),
	}
	if err := d.Registry.Register(a.liveDropped); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			cancel()
			return nil, fmt.Errorf("web metrics: %w", err)
		}
	}
	if d.OIDC != nil {
		if err := d.Access.EnableOIDC(ctx, *d.OIDC); err != nil {
			cancel()
			return nil, fmt.Errorf("single sign-on with %s: %w", d.OIDC.Issuer, err)
		}
	}
	var err error
	a.backend, err = pages.NewBackend(ctx, pages.BackendConfig{Store: d.Store, EndpointWindow: d.EndpointWindow, Now: d.Now,
		OverviewTTL: d.OverviewTTL})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("web: reading place coordinates: %w", err)
	}
	a.handler = a.assemble(d)

	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.runLive(ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.backend.RefreshPlaces(ctx, time.Minute, func(err error) { d.Log.Warn("web: place coordinates", "err", err) })
	}()
	return a, nil
}

// assemble builds the pages and the API over one trail, and the root
// around them.
func (a *App) assemble(d Deps) http.Handler {
	// One trail for the pages and the API: every record the interface
	// writes goes through it, and a read whose record fails is refused.
	tr := trail.New(d.Access.AuditLog(), d.Log)
	a.pages = pages.New(pages.Config{
		Targets: a.backend.Targets(), Lists: a.backend.Lists(), Audit: a.backend.Audit(), Figures: a.backend.Figures(), Trail: tr, Alerts: alertFeed{d.Store},
		Operations: operationBoards{st: d.Store},
		ISP:        ispFiles{backend: a.backend, st: d.Store, now: d.Now, retention: d.Retention, window: d.EndpointWindow},
		Health:     d.Health, Registry: d.Registry, Log: d.Log, Now: d.Now,
		RequireViewPurpose: d.RequireViewPurpose,
		Who:                who,
		CSRFToken:          func(r *http.Request) string { return access.CSRFToken(r.Context()) },
		CSRFField:          access.CSRFField,
		LoginHandler: func(render pages.RenderLogin) http.Handler {
			return d.Access.LoginHandler(func(w http.ResponseWriter, r *http.Request, p access.LoginPage) {
				render(w, r, pages.LoginForm(p))
			})
		},
		Logout:  d.Access.LogoutHandler(),
		SetLang: a.setLang,
	})
	live := api.NewLive(api.LiveConfig{Hub: a.hub, Access: api.StoreAccess{Store: d.Store, Window: d.EndpointWindow},
		Recheck: d.Access.Recheck, RecheckEvery: d.RecheckEvery, Trail: tr, Registry: d.Registry, Log: d.Log})
	apiH := api.New(api.Config{Targets: d.Store, Observations: d.Store,
		Retention: d.Retention, EndpointWindow: d.EndpointWindow, Now: d.Now, Log: d.Log, RequireViewPurpose: d.RequireViewPurpose, Trail: tr,
		Live: live, Imports: a.pages, Check: d.Check, Own: d.Own, Recheck: d.Access.Recheck, RecheckEvery: d.RecheckEvery})
	a.api = apiH
	rc := rootConfig{pages: a.pages, api: apiH, wrap: func(h http.Handler) http.Handler { return d.Access.Wrap(h, api.PlatformRoutes...) }, health: d.Health, registry: d.Registry}
	if d.OIDC != nil {
		rc.login = map[string]http.Handler{
			"GET /login/oidc":          d.Access.OIDCStartHandler(),
			"GET /login/oidc/callback": d.Access.OIDCCallbackHandler(nil),
		}
	}
	a.routes = append(slices.Sorted(maps.Keys(rc.login)), a.pages.Routes()...)
	a.routes = append(a.routes, api.Routes...)
	return newRoot(rc)
}

// ServeHTTP implements http.Handler.
func (a *App) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Routes returns every route pattern the interface serves behind the
// access layer: single sign-on's (with Deps.OIDC), the pages' (as
// registered on their mux) and all of /api/v1 (internal/web/api's). The
// route census test walks them all.
func (a *App) Routes() []string { return slices.Clone(a.routes) }

// Hub is the live-event hub the pages subscribe to.
func (a *App) Hub() *api.Hub { return a.hub }

// Publish queues a committed batch for the live pages (an ingest OnCommit
// hook). It never blocks: when the queue is full the batch is left out of
// the live view and counted. The events carry the target of each endpoint
// the analysis has already stored.
func (a *App) Publish(batch []observe.Observation) {
	if len(batch) == 0 {
		return
	}
	select {
	case a.live <- batch:
	default:
		a.liveDropped.Inc()
	}
}

// Alert publishes an analysis alert (quarantine) to the live pages. It is
// routed to no agency: only national viewers receive it.
func (a *App) Alert(al analysis.Alert) {
	msg := al.Message
	if al.Subject != "" {
		msg = al.Subject + ": " + msg
	}
	a.hub.Publish(api.Event{Kind: api.EventAlert, Time: al.Time.UTC(), Message: msg})
}

// AgencyAlert publishes an agency's alert (internal/alerts) to the live
// pages: offered to its agency alone, and delivered only while its target,
// if it names one, is in that agency's scope (api.StoreAccess). A held
// alert (over its rule's limit) is left to the overview and the summary.
func (a *App) AgencyAlert(al alerts.Alert) {
	if al.Held {
		return
	}
	a.hub.Publish(api.Event{Kind: api.EventAlert, Time: al.Created.UTC(), Agency: al.Agency, Target: al.Target,
		Message: al.Subject, Alert: al.ID, Access: []string{al.Agency}})
}

func (a *App) runLive(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-a.live:
			eps := make([]netip.AddrPort, 0, len(b))
			at := make([]time.Time, 0, len(b))
			for i := range b {
				a.backend.Learn(&b[i])
				if b[i].Endpoint.IP.IsValid() {
					eps = append(eps, netip.AddrPortFrom(b[i].Endpoint.IP.Unmap(), b[i].Endpoint.Port))
					at = append(at, b[i].Time)
				}
			}
			// Each event is offered to the agencies that may see its
			// target now; a batch whose targets cannot be read is left
			// out of the live view (counted) rather than offered by the
			// agency its rows were routed to when stored.
			// Each observation under its own generation's target.
			owners, err := a.st.EndpointTargetsAt(ctx, eps, at, a.window)
			var reach map[string][]string
			if err == nil {
				ids := make([]string, 0, len(owners))
				for _, id := range owners {
					if id != "" {
						ids = append(ids, id)
					}
				}
				reach, err = a.st.TargetAccess(ctx, ids)
			}
			if err != nil {
				if ctx.Err() == nil {
					a.log.Warn("web: a batch is left out of the live view: its targets could not be read", "err", err)
					a.liveDropped.Inc()
				}
				continue
			}
			evs := make([]api.Event, 0, len(b))
			j := 0
			for i := range b {
				o := &b[i]
				target := ""
				if o.Endpoint.IP.IsValid() {
					target = owners[j]
					j++
				}
				ev := api.EventFromObservation(o, target)
				if target != "" {
					ev.Access = append([]string{}, reach[target]...)
				}
				evs = append(evs, ev)
			}
			a.hub.Publish(evs...)
		}
	}
}

// FlushRefusals records the platforms' check refusals counted in a
// minute not yet ended (api.API.FlushRefusals): call it once the server
// serves no more requests. Close does it too.
func (a *App) FlushRefusals(ctx context.Context) error { return a.api.FlushRefusals(ctx) }

// Close stops the background work and the pages' imports, and records
// the platforms' check refusals still counted (FlushRefusals).
func (a *App) Close() error {
	var err error
	a.once.Do(func() {
		a.cancel()
		a.wg.Wait()
		err = errors.Join(a.pages.Close(), a.FlushRefusals(context.Background()))
	})
	return err
}

// who maps the access layer's principal to the pages' user; its scope is the
// principal's, never anything the request says.
func who(r *http.Request) (*pages.User, bool) {
	p := access.PrincipalFrom(r.Context())
	if p == nil {
		return nil, false
	}
	return userOf(p), true
}

// userOf maps a principal to the pages' user.
func userOf(p *access.Principal) *pages.User {
	return &pages.User{Name: p.Name, Agency: p.Agency, Role: p.Role, Lang: string(p.Lang), TimeZone: p.TimeZone,
		Scope: p.Scope()}
}

// setLang stores the language on the account (the next request's
// principal carries it). The pages audit the change.
func (a *App) setLang(w http.ResponseWriter, r *http.Request, u *pages.User, lang string) error {
	p := access.PrincipalFrom(r.Context())
	if p == nil || p.UserID == 0 {
		return errors.New("set language: no account behind this request")
	}
	l := access.Lang(lang)
	if l != access.LangFR && l != access.LangEN {
		return fmt.Errorf("set language %q: want fr or en", lang)
	}
	_, err := a.acc.Store().UpdateUser(r.Context(), p.UserID, func(x *access.User) error {
		x.Lang = l
		return nil
	})
	return err
}
