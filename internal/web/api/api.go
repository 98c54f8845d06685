// Package api serves all of Vigil's /api/v1: targets, a target's detail
// (timeline, endpoints, devices, files with levels), its ISP request, raw
// observations for national analysts, the caller, the live feed
// (server-sent events), the progress of a watch-list import the pages
// started, and the platforms' narrow check of addresses they hold
// (check.go). docs/openapi.yaml documents every route. No other package
// registers a route under /api/v1 (routes_test.go fails if one does).
//
// Every handler runs behind access.Service's authentication (session
// cookie or bearer token) and asks the store with the caller's scope: an
// investigator's lists, details, exports and counts cover only their
// agency's targets and those shared with it, in the query itself; the
// live feed decides at delivery. A target outside scope answers 404
// exactly as a missing one, and the attempt is audited. Every view, list,
// export and delivery is recorded through the trail before its data is
// written, and is not served when the record cannot be written; an export
// needs a stated purpose (the case number).
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/analysis"
	"github.com/vigil-oss/vigil/internal/audit"
	"github.com/vigil-oss/vigil/internal/isp"
	"github.com/vigil-oss/vigil/internal/observe"
	"github.com/vigil-oss/vigil/internal/own"
	"github.com/vigil-oss/vigil/internal/retention"
	"github.com/vigil-oss/vigil/internal/scope"
	"github.com/vigil-oss/vigil/internal/store"
	"github.com/vigil-oss/vigil/internal/web/trail"
	"github.com/vigil-oss/vigil/internal/webviews"
)

// Targets is what the API reads targets from (analysis.Views holds it).
type Targets interface {
	Targets(ctx context.Context, q analysis.TargetQuery) ([]analysis.TargetSummary, int, error)
	Target(ctx context.Context, id string, scope analysis.Scope) (*analysis.TargetDetail, error)
	TargetWithTimeline(ctx context.Context, id string, scope analysis.Scope, limit int) (*analysis.TargetDetail, error)
}

// Config is what the API serves from. The handler runs behind the access
// layer (access.Service.Wrap), which puts the request's principal in its
// context; the API decides nothing about who is asking.
type Config struct {
	Targets      Targets
	Observations store.Store // raw observations (national scope only)
	Retention    isp.Retention
	// EndpointWindow is the analysis's endpoint window (0: its default):
	// an ISP request counts a second instant of an address within it.
	EndpointWindow time.Duration
	Now            func() time.Time
	Log            *slog.Logger
	// RequireViewPurpose makes GET /api/v1/targets/{id} need a purpose
	// (parameter "purpose", a case number), written into the audit record
	// of the view.
	RequireViewPurpose bool
	// Trail writes the audit record of every read before its data, and
	// of every refusal (nil: every read answers 503).
	Trail *trail.Trail
	// Live serves GET /api/v1/events (nil: it answers 503).
	Live *Live
	// Imports answers GET /api/v1/imports/{job} (nil: every job is
	// unknown).
	Imports Imports
	// Check bounds the platforms' POST /api/v1/check (zero fields: the
	// defaults). It reads Observations (store.Store's
	// ObservationsOfAddress).
	Check CheckConfig
	// Own are the deployment's own addresses (--own-addresses, package
	// own): a sighting of one (a fellow sensor) never answers the
	// platforms' check "seen", as it makes no target (nil: none).
	Own *own.Set
	// Recheck returns who holds the request's credential now
	// (access.Service.Recheck): the bulk export of observations asks it
	// every RecheckEvery while it streams, and stops when the credential
	// no longer holds or no longer has a national scope (nil: never
	// asked).
	Recheck func(r *http.Request) (*access.Principal, error)
	// RecheckEvery is how often a long export re-checks its credential
	// (0: DefaultRecheckEvery).
	RecheckEvery time.Duration
}

// Imports is the progress of the watch-list imports the pages start.
type Imports interface {
	// ImportState returns the state of import id as JSON will show it,
	// if user started it: nobody follows another's import.
	ImportState(id, user string) (state any, ok bool)
}

// Routes are the routes Handler serves (docs/openapi.yaml documents each).
var Routes = []string{
	"GET /api/v1/targets",
	"GET /api/v1/targets/{id}",
	"GET /api/v1/targets/{id}/isp-request",
	"GET /api/v1/observations",
	"GET /api/v1/whoami",
	"GET /api/v1/events",
	"GET /api/v1/imports/{job}",
	"POST /api/v1/check",
}

// PlatformRoutes are the routes a platform principal (access.RolePlatform)
// may reach: mount Handler under access.Service.Wrap(h, PlatformRoutes...).
var PlatformRoutes = []string{"POST /api/v1/check"}

// Handler returns the /api/v1 routes. Mount it behind the access layer
// (access.Service.Wrap), as internal/web does for all of /api/v1.
func Handler(cfg Config) http.Handler { return New(cfg) }

// API is the /api/v1 routes (Handler), and what the server must do when
// it stops (FlushRefusals).
type API struct {
	http.Handler
	h *handler
}

// FlushRefusals records now the summaries of the platforms' refusals
// counted and not recorded one by one (CheckConfig.RefusalRecords), the
// minutes not yet ended included (their record ends now): call it when
// the server stops serving, or those refusals go unrecorded. A summary
// that cannot be written is kept, and the error returned.
func (a *API) FlushRefusals(ctx context.Context) error {
	return a.h.flushRefusals(ctx, a.h.cfg.Now())
}

// New returns the /api/v1 routes (see Handler).
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Check = cfg.Check.withDefaults()
	h := &handler{cfg: cfg, limits: &checkLimiter{}}
	mux := http.NewServeMux()
	view := h.permit(access.PermViewTargets)
	export := h.permit(access.PermExport)
	handlers := map[string]http.Handler{
		Routes[0]: view(http.HandlerFunc(h.list)),
		Routes[1]: view(http.HandlerFunc(h.detail)),
		Routes[2]: export(http.HandlerFunc(h.ispRequest)),
		Routes[3]: view(http.HandlerFunc(h.observations)),
		Routes[4]: http.HandlerFunc(h.whoami),
		Routes[5]: http.HandlerFunc(h.events),
		Routes[6]: http.HandlerFunc(h.imports),
		Routes[7]: h.permit(access.PermCheckAddresses)(http.HandlerFunc(h.check)),
	}
	for _, r := range Routes {
		mux.Handle(r, handlers[r])
	}
	return &API{Handler: mux, h: h}
}

type handler struct {
	cfg    Config
	limits *checkLimiter // the platforms' check, per user
}

// permit lets through only a principal whose role has perm: without one,
// 401 (the access layer's RequireLogin answer); with a role that may not,
// 403, its refusal recorded through the trail (as
// access.Service.RequirePermission records it).
func (h *handler) permit(perm access.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p := access.PrincipalFrom(r.Context())
			switch {
			case p == nil:
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
				http.Error(w, "log in first", http.StatusUnauthorized)
			case !p.Can(perm):
				_ = h.cfg.Trail.Record(r.Context(), r, audit.ActionDenied, r.Method+" "+auditText(r.URL.Path), "",
					map[string]any{"reason": "role " + string(p.Role) + " may not"})
				http.Error(w, "your role does not allow this", http.StatusForbidden)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func badRequest(w http.ResponseWriter, format string, a ...any) {
	writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf(format, a...)})
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.cfg.Log.Error("api", "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, apiError{"the store did not answer"})
}

// TargetList is the answer of GET /api/v1/targets.
type TargetList struct {
	Total   int                      `json:"total"`
	Limit   int                      `json:"limit"`
	Offset  int                      `json:"offset"`
	Targets []analysis.TargetSummary `json:"targets"`
}

// ParseQuery reads a target query from URL parameters; it names the
// parameter that is wrong.
func ParseQuery(r *http.Request) (analysis.TargetQuery, error) {
	v := r.URL.Query()
	q := analysis.TargetQuery{Jurisdiction: v.Get("jurisdiction"), Network: v.Get("network"), Category: v.Get("category"),
		Sort: v.Get("sort"), Limit: 50}
	var err error
	num := func(name string, dst *int, lo, hi int) {
		if s := v.Get(name); s != "" && err == nil {
			n, e := strconv.Atoi(s)
			if e != nil || n < lo || n > hi {
				err = fmt.Errorf("%s %q: want a whole number from %d to %d", name, s, lo, hi)
				return
			}
			*dst = n
		}
	}
	num("limit", &q.Limit, 1, 1000)
	num("offset", &q.Offset, 0, 1<<30)
	num("min_severity", &q.MinSeverity, 0, 1000)
	if s := v.Get("min_score"); s != "" && err == nil {
		if q.MinScore, err = strconv.ParseFloat(s, 64); err != nil {
			err = fmt.Errorf("min_score %q: want a number", s)
		}
	}
	if s := v.Get("level"); s != "" && err == nil {
		if q.MinLevel, err = observe.ParseLevel(s); err != nil {
			err = fmt.Errorf("level: %v", err)
		}
	}
	if s := v.Get("vpn"); s != "" && err == nil {
		b, e := strconv.ParseBool(s)
		if e != nil {
			err = fmt.Errorf("vpn %q: want true or false", s)
		}
		q.VPN = &b
	}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if s := v.Get(name); s != "" && err == nil {
			if *dst, err = time.Parse(time.RFC3339Nano, s); err != nil {
				err = fmt.Errorf("%s %q: want an RFC 3339 time", name, s)
			}
		}
	}
	switch q.Sort {
	case "", "score", "last_seen", "first_seen", "files", "endpoints":
	default:
		if err == nil {
			err = fmt.Errorf("sort %q: want score, last_seen, first_seen, files or endpoints", q.Sort)
		}
	}
	return q, err
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	q, err := ParseQuery(r)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	q.Scope = p.Scope()
	list, total, err := h.cfg.Targets.Targets(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []analysis.TargetSummary{}
	}
	// The record names every target listed and the address each row
	// shows (its label: the most recent endpoint).
	ids := make([]string, 0, len(list))
	var eps []string
	for _, t := range list {
		ids = append(ids, t.ID)
		if t.Label != "" {
			eps = append(eps, t.Label)
		}
	}
	if !h.audited(w, r, audit.ActionListTargets, "targets", "", map[string]any{"query": auditText(r.URL.RawQuery), "total": total, "targets": ids, "endpoints": eps}) {
		return
	}
	writeJSON(w, http.StatusOK, TargetList{Total: total, Limit: q.Limit, Offset: q.Offset, Targets: list})
}

// audited appends the record of a read before its data is written
// (trail.Trail.Before); when the trail does not answer it writes 503 and
// returns false: no data without its trace.
func (h *handler) audited(w http.ResponseWriter, r *http.Request, action, object, purpose string, detail any) bool {
	return h.cfg.Trail.Before(w, r, refuse, action, object, purpose, detail)
}

// maxAudited is the most bytes of the caller's own text (an id, a
// purpose, a query, a path) that an audit record keeps.
const maxAudited = 512

// auditText is the caller's text s as an audit record keeps it: the trail
// is append-only and hash-chained, so a hostile id, purpose or query must
// not write tens of KiB into it at each request, nor a NUL or invalid
// UTF-8 that a PostgreSQL text column refuses (the refusal would then go
// unrecorded). Invalid bytes and NUL become U+FFFD; text longer than
// maxAudited bytes is cut on a character boundary and says its length.
func auditText(s string) string {
	n := len(s)
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= maxAudited {
		return s
	}
	cut := maxAudited
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(cut: %d bytes)", s[:cut], n)
}

// refuse is the API's answer to a read whose record could not be written.
func refuse(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusServiceUnavailable, apiError{"the audit trail did not answer; nothing is served without its record"})
}

// notFound answers a target outside the caller's scope exactly as a
// missing one (404), and records the refusal.
func (h *handler) notFound(w http.ResponseWriter, r *http.Request, object string) {
	_ = h.cfg.Trail.Record(r.Context(), r, audit.ActionDenied, auditText(object), "", map[string]any{"reason": "outside the need-to-know scope", "path": auditText(r.URL.Path)})
	http.NotFound(w, r)
}

// TargetEndpoints lists the addresses a target's detail shows: its
// endpoints, those of its timeline and those its links name.
func TargetEndpoints(d *analysis.TargetDetail) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, e := range d.Endpoints {
		add(netip.AddrPortFrom(e.IP, e.Port).String())
	}
	for _, t := range d.Timeline {
		add(t.Endpoint)
	}
	for i := range d.Links {
		for _, ap := range webviews.LinkAddresses(&d.Links[i]) {
			add(ap.String())
		}
	}
	return out
}

func (h *handler) detail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	purpose := ""
	if h.cfg.RequireViewPurpose {
		p, err := audit.RequirePurpose(r.URL.Query().Get("purpose"))
		if err != nil {
			badRequest(w, "purpose: this service records why each target is viewed: give the case number (%v)", err)
			return
		}
		purpose = p
	}
	scope := access.PrincipalFrom(r.Context()).Scope()
	d, err := h.cfg.Targets.Target(r.Context(), id, scope)
	if errors.Is(err, analysis.ErrNotFound) {
		h.notFound(w, r, "target:"+id)
		return
	}
	if err == nil {
		// A rejected or withdrawn link's far end is another target's
		// endpoint: named only to those who may see that target (a store
		// that cannot tell: to none but a national scope).
		ends, _ := h.cfg.Targets.(webviews.LinkEnds)
		err = webviews.WithholdLinkEnds(r.Context(), ends, d, scope, h.cfg.EndpointWindow)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.audited(w, r, audit.ActionViewTarget, "target:"+d.ID, purpose, map[string]any{"endpoints": TargetEndpoints(d)}) {
		return
	}
	writeJSON(w, http.StatusOK, TargetAnswer{TargetDetail: d, LinksWarning: isp.LinksWarning()})
}

// TargetAnswer is GET /api/v1/targets/{id}: the target, and beside its
// links the sentence that they are inferences, never identifications.
type TargetAnswer struct {
	*analysis.TargetDetail
	LinksWarning isp.Note `json:"links_warning"`
}

// ispRequest answers GET /api/v1/targets/{id}/isp-request?format=&purpose=&lang=.
func (h *handler) ispRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v := r.URL.Query()
	format := v.Get("format")
	if format == "" {
		format = "pdf"
	}
	if format != "csv" && format != "json" && format != "pdf" {
		badRequest(w, "format %q: want csv, json or pdf", format)
		return
	}
	lang, err := isp.ParseLang(v.Get("lang"))
	if err != nil {
		badRequest(w, "lang: %v", err)
		return
	}
	purpose, err := audit.RequirePurpose(v.Get("purpose"))
	if err != nil {
		_ = h.cfg.Trail.Record(r.Context(), r, audit.ActionDenied, auditText("target:"+id), auditText(v.Get("purpose")),
			map[string]any{"export": "isp-request", "reason": err.Error()})
		badRequest(w, "purpose: an export needs the case number it is made for (%v)", err)
		return
	}
	p := access.PrincipalFrom(r.Context())
	d, err := h.cfg.Targets.TargetWithTimeline(r.Context(), id, p.Scope(), 1<<20)
	if errors.Is(err, analysis.ErrNotFound) {
		h.notFound(w, r, "target:"+id)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	by, err := h.requester(r.Context(), p, d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req := BuildISPRequestFor(d, purpose, h.cfg.Now(), h.cfg.Retention, by, h.cfg.EndpointWindow)
	if err := CheckISPRows(r.Context(), h.cfg.Observations, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.audited(w, r, audit.ActionExport, "target:"+d.ID, purpose,
		map[string]any{"what": "isp-request", "format": format, "request": req.ID, "rows": req.Kept, "endpoints": ISPEndpoints(&req)}) {
		return // no export without its trace
	}
	ctype := map[string]string{"csv": "text/csv; charset=utf-8", "json": "application/json", "pdf": "application/pdf"}[format]
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.%s"`, req.ID, format))
	switch format {
	case "csv":
		err = isp.WriteCSV(w, &req)
	case "json":
		err = isp.WriteJSON(w, &req)
	default:
		err = isp.WritePDF(w, &req, lang)
	}
	if err != nil {
		h.cfg.Log.Error("isp request", "target", d.ID, "err", err)
	}
}

// agencyStore is a store that keeps the agencies (their names, postal
// addresses and countries).
type agencyStore interface {
	Agency(ctx context.Context, id string) (access.Agency, error)
}

// requester is the service an ISP request made by p is made by, as the
// pages name it: p's agency (the target's routed agency when p has
// none), with its name, address and country when the store keeps it. The
// country tells a provider abroad, whose letter goes through mutual
// legal assistance: a store that does not answer stops the request
// rather than let it leave as a national requisition.
func (h *handler) requester(ctx context.Context, p *access.Principal, d *analysis.TargetDetail) (isp.Requester, error) {
	by := isp.Requester{ID: d.Jurisdiction}
	if p != nil && p.Agency != "" {
		by.ID = p.Agency
	}
	as, ok := any(h.cfg.Observations).(agencyStore)
	if !ok {
		return by, nil
	}
	ag, err := as.Agency(ctx, by.ID)
	switch {
	case errors.Is(err, access.ErrNotFound):
		return by, nil // the letters print a placeholder for its name and address
	case err != nil:
		return by, fmt.Errorf("isp request: agency %s: %w", by.ID, err)
	}
	by.Name, by.Address, by.Country = ag.Name, ag.Address, ag.Country
	return by, nil
}

// BuildISPRequest builds a target's ISP request from its full timeline
// (only first-hand contacts become rows: isp.Build) and its active device
// links (shown in the annex).
func BuildISPRequest(d *analysis.TargetDetail, caseNo string, now time.Time, ret isp.Retention) isp.Request {
	return BuildISPRequestFor(d, caseNo, now, ret, isp.Requester{ID: d.Jurisdiction}, 0)
}

// BuildISPRequestFor is BuildISPRequest made by a named requesting
// service: its name and address head the letters, and a provider outside
// its country gets the mutual-legal-assistance note and an English letter.
// window is the analysis's endpoint window (--endpoint-window; 0: its
// default), within which a second instant of an address counts for a row
// (isp.Target.EndpointWindow): the letter must not join instants the
// analysis itself keeps apart, nor split what it joins.
func BuildISPRequestFor(d *analysis.TargetDetail, caseNo string, now time.Time, ret isp.Retention, by isp.Requester, window time.Duration) isp.Request {
	s := make([]isp.Sighting, 0, len(d.Timeline))
	for _, t := range d.Timeline {
		s = append(s, SightingOf(&t))
	}
	tg := ISPTarget(d, caseNo)
	tg.Requester, tg.EndpointWindow = by, window
	return isp.Build(tg, s, now, ret)
}

// ISPTarget is a target's request header with its active links. The
// requesting service is named by id only (Requester.ID): a letter prints a
// placeholder for its name and address, never the id as a name.
func ISPTarget(d *analysis.TargetDetail, caseNo string) isp.Target {
	tg := isp.Target{ID: d.ID, Case: caseNo, Jurisdiction: d.Jurisdiction, Score: d.Score, Requester: isp.Requester{ID: d.Jurisdiction}}
	for _, l := range d.Links {
		if l.State == "active" {
			tg.Links = append(tg.Links, isp.Link{A: l.A, B: l.B, Rule: l.Rule, Evidence: l.Evidence, Reason: l.Reason,
				Confidence: l.Confidence, State: l.State})
		}
	}
	return tg
}

// SightingOf is a timeline entry as an ISP request sighting, with the
// class of its address when that is not globally routable
// (scope.NonPublicClass): the endpoint's own conversation from such an
// address carries no mark, and its row must say that it names no
// subscriber of a public network (isp.Row.NonPublic).
func SightingOf(t *analysis.TimelineEntry) isp.Sighting {
	o := t.Observation()
	sg := isp.FromObservation(&o)
	sg.Item = t.Kind + ":" + t.Hash
	if sg.IP.IsValid() {
		sg.NonPublic = scope.NonPublicClass(sg.IP)
	}
	return sg
}

// observations streams raw observations as JSON Lines: a bulk export,
// for a national scope only (an observation not yet attributed to a
// target has no other owner to decide by), with a purpose (case number),
// recorded before the first byte. Every refusal is recorded too, and a
// refusal whose record cannot be written answers 503.
func (h *handler) observations(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	if !p.Scope().All {
		if !h.audited(w, r, audit.ActionDenied, "observations", "", map[string]string{"reason": "bulk export for national scope only"}) {
			return
		}
		writeJSON(w, http.StatusForbidden, apiError{"raw observations are for national analysts; use /api/v1/targets"})
		return
	}
	var f store.ObservationFilter
	if s := r.URL.Query().Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			badRequest(w, "since %q: want an RFC 3339 time", s)
			return
		}
		f.Since = t
	}
	purpose, err := audit.RequirePurpose(r.URL.Query().Get("purpose"))
	if err != nil {
		if !h.audited(w, r, audit.ActionDenied, "observations", auditText(r.URL.Query().Get("purpose")),
			map[string]any{"export": "observations", "reason": err.Error()}) {
			return
		}
		badRequest(w, "purpose: a bulk export needs the case number it is made for (%v)", err)
		return
	}
	if !h.audited(w, r, audit.ActionExport, "observations", purpose, map[string]any{"since": r.URL.Query().Get("since")}) {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := observe.NewEncoder(w)
	still := h.stillNational(r)
	sent := 0
	err = h.cfg.Observations.Observations(r.Context(), f, func(o *observe.Observation) error {
		if err := still(); err != nil {
			return err
		}
		sent++
		return enc.Encode(o)
	})
	if err == nil {
		err = enc.Flush()
	}
	var ended *credentialEnded
	if errors.As(err, &ended) {
		// The credential ended on the way: nothing more leaves, the
		// trail says how far it went, and the connection is cut so
		// that the client cannot take what it got for the whole.
		_ = h.cfg.Trail.Record(context.WithoutCancel(r.Context()), r, audit.ActionDenied, "observations", purpose,
			map[string]any{"export": "observations", "reason": ended.Error(), "sent": sent})
		panic(http.ErrAbortHandler)
	}
	if err != nil && r.Context().Err() == nil {
		h.cfg.Log.Error("api observations", "err", err)
	}
}

// credentialEnded stops a long export whose credential no longer holds.
type credentialEnded struct{ why string }

func (e *credentialEnded) Error() string { return "stopped during the export: " + e.why }

// stillNational returns the check a long export makes before each
// observation it sends: every Config.RecheckEvery it asks Config.Recheck
// whether the request's credential still holds with a national scope,
// and answers *credentialEnded once it does not.
func (h *handler) stillNational(r *http.Request) func() error {
	if h.cfg.Recheck == nil {
		return func() error { return nil }
	}
	every := h.cfg.RecheckEvery
	if every <= 0 {
		every = DefaultRecheckEvery
	}
	last := time.Now()
	return func() error {
		if time.Since(last) < every {
			return nil
		}
		last = time.Now()
		p, err := h.cfg.Recheck(r)
		switch {
		case errors.Is(err, access.ErrUnauthenticated):
			return &credentialEnded{"the credential ended (logged out, expired, revoked or disabled)"}
		case err != nil:
			return &credentialEnded{"the account store did not answer: " + err.Error()}
		case !p.Scope().All:
			return &credentialEnded{"the account no longer has a national scope"}
		}
		return nil
	}
}

// notAuthenticated answers the live feed and an import's progress asked
// without a principal.
func notAuthenticated(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"error":"not authenticated"}` + "\n"))
}

// events is GET /api/v1/events: the live feed (Live.ServeHTTP).
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Live == nil {
		writeJSON(w, http.StatusServiceUnavailable, apiError{"no live feed is served here"})
		return
	}
	h.cfg.Live.ServeHTTP(w, r)
}

// imports is GET /api/v1/imports/{job}: the import's progress as JSON
// {id, list, file, state: running|done|failed, done, total, error,
// result: {List, Version, Unchanged, Added, Removed, Changed}}, for the
// caller's own imports only. Used by the pages' script on the progress
// page.
func (h *handler) imports(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	if p == nil {
		notAuthenticated(w)
		return
	}
	var state any
	ok := false
	if h.cfg.Imports != nil {
		state, ok = h.cfg.Imports.ImportState(r.PathValue("job"), p.Name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"no such import"}` + "\n"))
		return
	}
	_ = json.NewEncoder(w).Encode(state)
}

func (h *handler) whoami(w http.ResponseWriter, r *http.Request) {
	p := access.PrincipalFrom(r.Context())
	if p == nil {
		writeJSON(w, http.StatusUnauthorized, apiError{"not logged in"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": p.Name, "agency": p.Agency, "role": p.Role, "lang": p.Lang, "time_zone": p.TimeZone})
}

func parseAddrPort(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }

// CheckISPRows refuses an ISP request one of whose rows is an observation
// whose stored row no longer hashes to its leaf in the evidence log
// (ErrRowChanged: someone edited it in the database after it was logged),
// when st keeps the log (store.LogStore). The rows are what an ISP is
// asked to answer for: they leave as they were logged, or not at all. A
// row stored before the log existed has no leaf and is not checked. (It
// is evidence.WriteBundle's check, written here against the store's
// contract: the web imports nothing of the pipeline.)
//
// It first marks the rows whose raw exchange a retention purge removed
// (isp.Request.MarkTranscriptsPurged, from the purge records), when st
// keeps them: such a row says so, and when, in every format. A purged
// row of evidence form 2 (what the sensors sign) is checked as any
// other, its leaf committing to the transcript's digest, which stays; one
// of form 1, whose leaf commits to the exchange's bytes, cannot be once
// they are gone, and its row says so (the transcript-purged note); a
// purge record beside a transcript still stored is not believed: the row
// is checked.
func CheckISPRows(ctx context.Context, st any, req *isp.Request) error {
	if err := MarkPurgedRows(ctx, st, req); err != nil {
		return err
	}
	ls, ok := st.(store.LogStore)
	if !ok {
		return nil
	}
	var ids []string
	purged := map[string]bool{}
	for _, g := range req.Groups {
		for _, row := range g.Rows {
			ids = append(ids, row.ObservationID)
			purged[row.ObservationID] = !row.TranscriptPurged.IsZero()
		}
	}
	idx, err := ls.LogIndexes(ctx, ids)
	if err != nil {
		return err
	}
	var logged []string
	for _, id := range ids {
		if _, ok := idx[id]; ok {
			logged = append(logged, id)
		}
	}
	return ls.ObservationsByID(ctx, logged, func(o *observe.Observation) error {
		if purged[o.ID] && o.Chain.Form != observe.Form2 && len(o.Transcript.Bytes) == 0 {
			// Its leaf commits to the exchange's bytes, which are gone.
			// (Bytes still stored make its purge record a lie: checked.)
			return nil
		}
		h, err := o.LeafHash()
		if err != nil {
			return err
		}
		i := idx[o.ID]
		var leaf []byte
		if err := ls.LogLeaves(ctx, i, i+1, func(_ uint64, l []byte) error { leaf = l; return nil }); err != nil {
			return err
		}
		if !bytes.Equal(h[:], leaf) {
			return fmt.Errorf("isp request %s: observation %s: %w (leaf %d): the row was changed after it was logged", req.ID, o.ID, ErrRowChanged, i)
		}
		return nil
	})
}

// purgeRecords is a store that keeps the retention's purge records.
type purgeRecords interface {
	PurgedObservations(ctx context.Context, ids []string) (map[string]retention.Purged, error)
}

// MarkPurgedRows marks req's rows whose transcript (or whole row) a
// retention purge removed, with the purge's time, when st keeps the purge
// records.
func MarkPurgedRows(ctx context.Context, st any, req *isp.Request) error {
	pr, ok := st.(purgeRecords)
	if !ok {
		return nil
	}
	var ids []string
	for _, g := range req.Groups {
		for _, row := range g.Rows {
			ids = append(ids, row.ObservationID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	ps, err := pr.PurgedObservations(ctx, ids)
	if err != nil {
		return fmt.Errorf("isp request %s: purge records: %w", req.ID, err)
	}
	at := make(map[string]time.Time, len(ps))
	for id, p := range ps {
		at[id] = p.At
	}
	req.MarkTranscriptsPurged(at)
	return nil
}

// ErrRowChanged is returned for a stored observation that no longer
// hashes to its leaf in the evidence log.
var ErrRowChanged = errors.New("its stored row no longer hashes to its leaf in the evidence log")

// ISPEndpoints lists the distinct addresses (ip:port) an ISP request
// shows, what the audit record of its export names: the rows' first, in
// their order, then the annex's (a third party's claim, an address seen
// at a single instant, ...) and the ends of the device links, which the
// JSON and the PDF carry (the CSV carries the rows only: its record names
// more than it shows, never less). A link's later generation of an
// endpoint ("ip:port#n") is named as its address and port.
func ISPEndpoints(req *isp.Request) []string {
	var out []string
	seen := map[netip.AddrPort]bool{}
	add := func(ap netip.AddrPort) {
		if ap.Addr().IsValid() && !seen[ap] {
			seen[ap] = true
			out = append(out, ap.String())
		}
	}
	for _, g := range req.Groups {
		for _, row := range g.Rows {
			add(netip.AddrPortFrom(row.IP, row.Port))
		}
	}
	for _, a := range req.Annex {
		add(netip.AddrPortFrom(a.IP, a.Port))
	}
	for _, l := range req.Target.Links {
		for _, end := range []string{l.A, l.B} {
			end, _, _ = strings.Cut(end, "#")
			if ap, err := netip.ParseAddrPort(end); err == nil {
				add(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			}
		}
	}
	return out
}
