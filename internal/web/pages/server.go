// Package pages serves Vigil's pages for investigators, analysts and
// auditors: the overview, targets, a target, its ISP request, the
// watch-lists and their imports, the sensors, the audit trail and the
// office's figures (national scopes only).
// Templates and assets are embedded; nothing is loaded from a CDN, maps and
// charts are SVG drawn on the server, and the only script is a small file
// of our own (live updates from the API's feed, import progress) that the
// pages work without.
//
// Handlers ask their questions through the interfaces in backend.go and
// pass the viewer to every call: need to know is enforced by the backend,
// never by a template. A target outside the viewer's scope answers exactly
// as a nonexistent one (404) and is audited as denied. Every read is
// recorded through the trail (internal/web/trail) before the page is
// written, and a page whose record fails is not shown. Every page shows an
// observation's possession level beside it as a word: a screen must never
// overstate, and never says it with colour alone.
//
// Authentication, sessions, bearer tokens and CSRF checks belong to the
// access layer, injected through Config (Who, CSRFToken, Login, Logout,
// SetLang); the server must be served behind its wrapping, as internal/web
// serves it. This package serves no route under /api/v1 (the API's), nor
// /healthz or /metrics (internal/web's).
package pages

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // user time zones on machines without a zoneinfo database

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-oss/vigil/internal/web/i18n"
	"github.com/vigil-oss/vigil/internal/web/trail"
)

//go:embed templates/*.html
var templateFS embed.FS

// HealthFunc says whether a part is working and, if not, why.
type HealthFunc func() (ok bool, why string)

// Config holds what the server serves and the access layer it relies on.
type Config struct {
	// Targets, ISP, Lists and Audit answer the pages' questions. A nil
	// one makes its pages answer 503.
	Targets Targets
	ISP     ISPRequests
	Lists   Lists
	Audit   Audit
	// Figures answers the figures page and its exports (nil: 503).
	Figures Figures
	// Alerts answers the overview's Alerts block (nil: no alerts shown).
	Alerts AlertFeed
	// Operations answers the operations pages (/operations, national
	// office; /operations/{id}, a board on a need to know); nil: 503.
	Operations Operations
	// Trail writes the audit record of every read before it is served,
	// and of every refusal. nil: every page that shows case data answers
	// 503 (a read that cannot be audited is not served).
	Trail *trail.Trail
	// Sensors reports sensor health and rates; nil: built from Health and
	// Registry (counters named vigil_*).
	Sensors Sensors
	// Health reports the parts by name (e.g. "sensor bittorrent-1"), for
	// the overview and the sensors page.
	Health map[string]HealthFunc
	// Registry is the process's registry (internal/web serves it at
	// /metrics); nil: a fresh one. The server registers its own metrics
	// on it, and the sensors page reads the vigil_* counters from it.
	Registry *prometheus.Registry
	Log      *slog.Logger

	// Who returns the authenticated user of a request (put in its context
	// by the access layer's wrapping), or false.
	Who func(*http.Request) (*User, bool)
	// CSRFToken returns the token a form must carry for this request, in
	// the field named CSRFField.
	CSRFToken func(*http.Request) string
	// CSRFField is the form field name of the token (default "csrf_token").
	CSRFField string
	// LoginHandler, if set, serves GET and POST /login. It is given the
	// function that renders this package's login page (access.Service's
	// LoginHandler has this shape: convert access.LoginPage with
	// pages.LoginForm(p)). The form posts "name", "password", "next" and the
	// CSRF field (the token in LoginForm.CSRFToken).
	LoginHandler func(render RenderLogin) http.Handler
	// Login, used when LoginHandler is nil, handles POST /login (same
	// fields; the CSRF token is CSRFToken(r)) and GET /login is this
	// package's form. On success it starts a session, audits, and
	// redirects to next (a local path) or "/"; on failure it redirects to
	// "/login?failed=1". Both nil: signing in is impossible.
	Login http.Handler
	// Logout handles POST /logout and redirects to /login.
	Logout http.Handler
	// SetLang stores a user's language ("en", "fr"). nil: a cookie
	// (vigil_lang) holds the choice and overrides User.Lang.
	SetLang func(w http.ResponseWriter, r *http.Request, u *User, lang string) error

	// RequireViewPurpose makes a target's page (and its ISP form) ask for
	// a purpose (case number, parameter "purpose") before showing it; the
	// purpose is written into the audit record of the view.
	RequireViewPurpose bool

	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// PageSize is how many targets a page lists (default 50, at most 200).
	PageSize int
	// MaxUpload bounds a watch-list upload in bytes (default 1 GiB).
	MaxUpload int64
	// RecentLimit is kept for compatibility; the backend bounds the
	// overview's recent observations.
	RecentLimit int
}

// Server is the HTTP interface. Close waits for background imports.
type Server struct {
	h http.Handler
	s *server
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// Routes returns every pattern the server answers, as registered on its
// mux ("GET /targets/{id}", ...). A test that walks the routes walks
// these: a route added to the mux is in the list by construction.
func (s *Server) Routes() []string { return slices.Clone(s.s.routes) }

// Close cancels running list imports and waits for them.
func (s *Server) Close() error {
	s.s.cancel()
	s.s.jobsWG.Wait()
	return nil
}

type server struct {
	cfg   Config
	log   *slog.Logger
	pages map[string]*template.Template
	now   func() time.Time

	ctx    context.Context // background work (imports)
	cancel context.CancelFunc
	jobs   *jobs
	jobsWG sync.WaitGroup

	rates *rateMemo

	routes []string // every pattern the app mux serves, in order

	requests *prometheus.CounterVec
	denied   prometheus.Counter
}

// New returns the server for cfg.
func New(cfg Config) *Server {
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.CSRFField == "" {
		cfg.CSRFField = "csrf_token"
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	cfg.PageSize = min(cfg.PageSize, 200)
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 1 << 30
	}
	s := &server{cfg: cfg, log: cfg.Log, now: cfg.Now, jobs: newJobs(), rates: newRateMemo()}
	if s.now == nil {
		s.now = time.Now
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pages = parsePages()
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_web_requests_total", Help: "Requests answered, by route and status class."}, []string{"route", "code"})
	s.denied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_web_denied_total", Help: "Reads refused for need to know (answered 404 and audited)."})
	for _, c := range []prometheus.Collector{s.requests, s.denied} {
		if err := cfg.Registry.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				s.log.Warn("web metrics", "err", err)
			}
		}
	}

	app := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		s.routes = append(s.routes, pattern)
		app.Handle(pattern, h)
	}
	if cfg.LoginHandler != nil {
		lh := cfg.LoginHandler(s.renderLogin)
		handle("GET /login", lh)
		handle("POST /login", lh)
	} else {
		handle("GET /login", http.HandlerFunc(s.loginPage))
		handle("POST /login", http.HandlerFunc(s.loginPost))
	}
	handle("POST /logout", http.HandlerFunc(s.logoutPost))
	handle("GET /{$}", s.page("overview", s.overview))
	handle("GET /targets", s.page("targets", s.targets))
	handle("GET /targets/{id}", s.page("target", s.target))
	handle("GET /targets/{id}/isp", s.page("isp", s.ispForm))
	handle("POST /targets/{id}/isp", s.page("isp", s.ispDownload))
	handle("GET /lists", s.page("lists", s.lists))
	handle("GET /lists/{name}", s.page("list", s.list))
	handle("POST /lists/import", s.page("lists", s.listImport))
	handle("GET /lists/import/{job}", s.page("import", s.importPage))
	handle("GET /sensors", s.page("sensors", s.sensors))
	handle("GET /audit", s.page("audit", s.auditPage))
	handle("GET /figures", s.page("figures", s.figuresPage))
	handle("GET /figures/export", s.page("figures", s.figuresExport))
	handle("GET /operations", s.page("operations", s.operations))
	handle("GET /operations/{id}", s.page("operation", s.operation))
	handle("POST /lang", s.page("lang", s.lang))
	handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := s.who(r)
		s.fail(w, r, u, http.StatusNotFound, "error.notfound")
	}))

	return &Server{h: app, s: s}
}

//go:embed static
var staticFS embed.FS

// Static serves the embedded assets (/static/ stripped from the path) with
// a cache lifetime, and no directory listing (ASVS 4.3.2).
func Static() http.Handler {
	static, _ := fs.Sub(staticFS, "static")
	h := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

func (s *server) who(r *http.Request) (*User, bool) {
	if s.cfg.Who == nil {
		return nil, false
	}
	u, ok := s.cfg.Who(r)
	if !ok || u == nil {
		return nil, false
	}
	return u, true
}

// pageFunc handles a page for an authenticated user.
type pageFunc func(w http.ResponseWriter, r *http.Request, u *User)

// page requires a user; without one, it redirects to the login page.
func (s *server) page(route string, f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.who(r)
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			} else {
				http.Error(w, "not signed in", http.StatusUnauthorized)
			}
			s.requests.WithLabelValues(route, "401").Inc()
			return
		}
		rw := &statusWriter{ResponseWriter: w, code: 200}
		f(rw, r, u)
		s.requests.WithLabelValues(route, codeClass(rw.code)).Inc()
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func codeClass(c int) string { return string(rune('0'+c/100)) + "xx" }

// lang returns the language for a request's pages.
func (s *server) langOf(r *http.Request, u *User) string {
	if s.cfg.SetLang == nil || u == nil {
		if c, err := r.Cookie(langCookie); err == nil && i18n.Supported(c.Value) {
			return c.Value
		}
	}
	if u != nil && u.Lang != "" {
		return i18n.Pick(u.Lang)
	}
	if al := r.Header.Get("Accept-Language"); al != "" {
		return i18n.Pick(strings.SplitN(al, ",", 2)[0])
	}
	return i18n.Default
}

const langCookie = "vigil_lang"

// audit writes the record of the request's action (Config.Trail: the
// actor is the request's principal). A failure is logged and returned:
// the caller does not serve a read it could not audit.
func (s *server) audit(r *http.Request, action, object, purpose string, detail any) error {
	return s.cfg.Trail.Record(r.Context(), r, action, object, purpose, detail)
}

// audited records what a page is about to show (trail.Trail.Before): when
// the trail does not answer, the answer is the error page (503) and the
// caller returns without writing anything more.
func (s *server) audited(w http.ResponseWriter, r *http.Request, u *User, action, object, purpose string, detail any) bool {
	return s.cfg.Trail.Before(w, r, func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
	}, action, object, purpose, detail)
}
