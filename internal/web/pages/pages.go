package pages

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-oss/vigil/internal/access"
	"github.com/vigil-oss/vigil/internal/web/i18n"
)

// ---- sign-in, sign-out, language ----

// LoginForm is what the login page shows. Its fields are those of
// access.LoginPage, in the same order, so that one converts to the other.
type LoginForm struct {
	CSRFToken string // the token for the form's CSRF field
	Next      string // where to go after signing in (a local path)
	Error     string // why the last attempt failed; shown as is
	OIDC      bool   // offer single sign-on (GET /login/oidc)
	Status    int    // HTTP status; 0 is 200
}

// RenderLogin writes the login page for f.
type RenderLogin func(w http.ResponseWriter, r *http.Request, f LoginForm)

func (s *server) renderLogin(w http.ResponseWriter, r *http.Request, f LoginForm) {
	v := s.newView(r, nil, "login", "login.title", map[string]any{
		"Error": f.Error, "Next": localPath(f.Next), "NoAuth": false, "OIDC": f.OIDC,
	})
	v.CSRF = f.CSRFToken
	code := f.Status
	if code == 0 {
		code = http.StatusOK
	}
	s.render(w, code, "login", v)
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	f := LoginForm{Next: r.URL.Query().Get("next")}
	if s.cfg.CSRFToken != nil {
		f.CSRFToken = s.cfg.CSRFToken(r)
	}
	if r.URL.Query().Get("failed") != "" {
		f.Error = i18n.T(s.langOf(r, nil), "login.failed")
	}
	v := s.newView(r, nil, "login", "login.title", map[string]any{
		"Error": f.Error, "Next": localPath(f.Next), "NoAuth": s.cfg.Login == nil, "OIDC": false,
	})
	s.render(w, http.StatusOK, "login", v)
}

func (s *server) loginPost(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Login == nil {
		http.Error(w, "no account store is configured", http.StatusServiceUnavailable)
		return
	}
	s.cfg.Login.ServeHTTP(w, r)
}

func (s *server) logoutPost(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Logout == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.cfg.Logout.ServeHTTP(w, r)
}

// localPath returns p if it is a path on this site, else "/".
func localPath(p string) string { return access.LocalPath(p) }

func (s *server) lang(w http.ResponseWriter, r *http.Request, u *User) {
	lang := r.PostFormValue("lang")
	if !i18n.Supported(lang) {
		s.fail(w, r, u, http.StatusBadRequest, "error.notfound")
		return
	}
	if s.cfg.SetLang != nil {
		if err := s.cfg.SetLang(w, r, u, lang); err != nil {
			s.log.Error("set language", "user", u.Name, "err", err)
			s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
			return
		}
	} else {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
	_ = s.audit(r, ActionChange, "user:"+u.Name, "", map[string]string{"lang": lang})
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// ---- overview ----

type healthRow struct {
	Name string
	OK   bool
	Why  string
}

func (s *server) healthRows() []healthRow {
	out := make([]healthRow, 0, len(s.cfg.Health))
	for name, h := range s.cfg.Health {
		ok, why := h()
		out = append(out, healthRow{name, ok, why})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *server) overview(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Targets == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	since := s.now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -6)
	ov, err := s.cfg.Targets.Overview(r.Context(), u, since)
	if err != nil {
		s.log.Error("overview", "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	// The record names every target and endpoint the page shows: the
	// newest high-score targets and the recent observations' targets and
	// addresses.
	var ids, eps []string
	for _, t := range ov.NewestHigh {
		ids = appendNew(ids, t.ID)
	}
	for _, o := range ov.Recent {
		ids = appendNew(ids, o.Target)
		if o.Endpoint.IsValid() {
			eps = appendNew(eps, o.Endpoint.String())
		}
	}
	// The agency's alerts are shown, and recorded, by id and target.
	var als []AlertRow
	var alertIDs []string
	if s.cfg.Alerts != nil {
		if als, err = s.cfg.Alerts.Recent(r.Context(), u, 10); err != nil {
			s.log.Error("overview alerts", "user", u.Name, "err", err)
			s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
			return
		}
		for _, a := range als {
			alertIDs = append(alertIDs, a.ID)
			ids = appendNew(ids, a.Target)
		}
	}
	detail := map[string]any{"targets": ids, "endpoints": eps, "observations": len(ov.Recent)}
	if len(alertIDs) > 0 {
		detail["alerts"] = alertIDs
	}
	if !s.audited(w, r, u, ActionListTargets, "overview", "", detail) {
		return
	}
	v := s.newView(r, u, "overview", "overview.title", nil)
	v.Data = map[string]any{
		"O":        ov,
		"PlaceMap": v.overviewMaps(ov),
		"Health":   s.healthRows(), // the trend chart is the view's TrendChart
		"Alerts":   als,
	}
	s.render(w, http.StatusOK, "overview", v)
}

// ---- targets ----

type pager struct {
	Page, Pages, Total int
	Prev, Next         int // 0: none
}

func (s *server) targets(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.Targets == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	zone := zoneOf(u.TimeZone)
	q, err := ParseTargetQuery(r.URL.Query(), zone, s.cfg.PageSize)
	if err != nil {
		s.failQuery(w, r, u, err)
		return
	}
	pg, err := s.cfg.Targets.List(r.Context(), u, q)
	if err != nil {
		s.log.Error("list targets", "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	action := ActionListTargets
	if q.Search != "" {
		action = ActionSearch
	}
	shown := make([]string, 0, len(pg.Targets))
	for _, t := range pg.Targets {
		shown = append(shown, t.ID)
	}
	if !s.audited(w, r, u, action, "targets", "", map[string]any{"query": r.URL.RawQuery, "total": pg.Total, "targets": shown}) {
		return
	}
	p := pager{Page: q.Offset/q.Limit + 1, Total: pg.Total}
	p.Pages = max(1, (pg.Total+q.Limit-1)/q.Limit)
	if p.Page > 1 {
		p.Prev = p.Page - 1
	}
	if p.Page < p.Pages {
		p.Next = p.Page + 1
	}
	v := s.newView(r, u, "targets", "targets.title", nil)
	v.Data = map[string]any{"Page": pg, "Pager": p, "Sort": q.Sort, "Asc": q.Asc}
	s.render(w, http.StatusOK, "targets", v)
}

// getTarget reads one target for u, auditing a denial; ok false means the
// response was written (404 for missing and denied alike).
func (s *server) getTarget(w http.ResponseWriter, r *http.Request, u *User, page string) (*TargetDetail, bool) {
	if s.cfg.Targets == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return nil, false
	}
	id := r.PathValue("id")
	t, err := s.cfg.Targets.Get(r.Context(), u, id)
	switch {
	case err == nil:
		return t, true
	case errors.Is(err, ErrDenied), errors.Is(err, ErrNotFound):
		// Both alike, the record included: were the refusal alone
		// written to the trail, its 404 would take an append longer than
		// a missing target's, and the time would tell that it exists.
		s.notFound(w, r, u, id, "", err, map[string]string{"page": page})
	default:
		s.log.Error("get target", "id", id, "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
	}
	return nil, false
}

// notFound answers a target outside u's scope (err wraps ErrDenied) and
// a missing one (ErrNotFound) alike: 404, after the same denied record
// of the id asked, so that neither the page, the time it takes nor the
// trail (which a supervisor reads for the service's staff) tells the two
// apart, as the API's answers do not (api's notFound).
func (s *server) notFound(w http.ResponseWriter, r *http.Request, u *User, id, purpose string, err error, detail map[string]string) {
	if errors.Is(err, ErrDenied) {
		s.denied.Inc()
	}
	if !s.audited(w, r, u, ActionDenied, "target:"+auditedID(id), purpose, detail) {
		return
	}
	s.fail(w, r, u, http.StatusNotFound, "target.notfound")
}

// maxAuditedID is the most bytes of an id asked that a record keeps.
const maxAuditedID = 128

// auditedID is an id from the URL as an audit record keeps it: the trail
// is append-only, so a hostile id must not write kilobytes into it, nor
// a NUL or invalid UTF-8, which a PostgreSQL text column refuses (the
// answer would then be 503, not 404). Those become U+FFFD, and an id
// longer than maxAuditedID bytes is cut on a character boundary ("…").
func auditedID(id string) string {
	id = strings.ReplaceAll(strings.ToValidUTF8(id, "\uFFFD"), "\x00", "\uFFFD")
	if len(id) <= maxAuditedID {
		return id
	}
	cut := maxAuditedID
	for cut > 0 && !utf8.RuneStart(id[cut]) {
		cut--
	}
	return id[:cut] + "…"
}

// viewPurpose returns the purpose a target view states (Config.
// RequireViewPurpose); ok false means the purpose form was written
// instead. Nothing of the target is read before it.
func (s *server) viewPurpose(w http.ResponseWriter, r *http.Request, u *User) (string, bool) {
	if !s.cfg.RequireViewPurpose {
		return "", true
	}
	given := r.URL.Query().Get("purpose")
	p, err := checkPurpose(given)
	if err == nil {
		return p, true
	}
	id := r.PathValue("id")
	v := s.newView(r, u, "targets", "", nil)
	v.Title = v.T("purpose.title", id)
	data := map[string]any{"Action": r.URL.Path, "Purpose": given, "Problem": ""}
	code := http.StatusOK
	if given != "" {
		data["Problem"] = purposeProblem(s.langOf(r, u), err)
		code = http.StatusBadRequest
	}
	v.Data = data
	s.render(w, code, "purpose", v)
	return "", false
}

// shownEndpoints lists the addresses a target's page shows.
func shownEndpoints(t *TargetDetail) []string {
	var eps []string
	for _, a := range t.Addresses {
		eps = appendNew(eps, a.Addr.String())
	}
	for _, o := range t.Observations {
		if o.Endpoint.IsValid() {
			eps = appendNew(eps, o.Endpoint.String())
		}
	}
	for _, d := range t.Devices {
		for _, ap := range d.Endpoints {
			eps = appendNew(eps, ap.String())
		}
	}
	return eps
}

func appendNew(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

func (s *server) target(w http.ResponseWriter, r *http.Request, u *User) {
	purpose, ok := s.viewPurpose(w, r, u)
	if !ok {
		return
	}
	t, ok := s.getTarget(w, r, u, "target")
	if !ok {
		return
	}
	if !s.audited(w, r, u, ActionViewTarget, "target:"+t.ID, purpose, map[string]any{"endpoints": shownEndpoints(t)}) {
		return
	}
	v := s.newView(r, u, "targets", "", nil)
	v.Title = v.T("target.title", t.ID)
	vpn := false
	for _, e := range t.Addresses {
		vpn = vpn || e.VPN || e.Hosting
	}
	v.Data = map[string]any{
		"T":       t,
		"Map":     v.targetMaps(t.Places),
		"VPN":     vpn,
		"Purpose": purpose, // the ISP form's link carries it
	}
	s.render(w, http.StatusOK, "target", v)
}

// ---- ISP request ----

// checkPurpose mirrors audit.RequirePurpose: a case number, trimmed,
// printable, 3 characters to 128 bytes. Its errors wrap ErrNoPurpose and
// are *PurposeError, which the pages say in the viewer's language.
func checkPurpose(p string) (string, error) {
	p = strings.TrimSpace(p)
	switch {
	case p == "":
		return "", &PurposeError{Key: "purpose.empty", Msg: "empty"}
	case len(p) > 128:
		return "", &PurposeError{Key: "purpose.long", Msg: "longer than 128 bytes"}
	case len([]rune(p)) < 3:
		return "", &PurposeError{Key: "purpose.short", Msg: "too short to be a case number"}
	}
	for _, c := range p {
		if !unicode.IsPrint(c) {
			return "", &PurposeError{Key: "purpose.nonprint", Msg: fmt.Sprintf("contains the non-printable character %U", c), Arg: fmt.Sprintf("%U", c)}
		}
	}
	return p, nil
}

// PurposeError says why a purpose was refused.
type PurposeError struct {
	Key string // catalog key of the reason
	Msg string // the reason in English
	Arg string // what the reason names, if anything
}

func (e *PurposeError) Error() string { return ErrNoPurpose.Error() + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrNoPurpose) hold.
func (e *PurposeError) Unwrap() error { return ErrNoPurpose }

// purposeProblem is the page's sentence for a refused purpose.
func purposeProblem(lang string, err error) string {
	var pe *PurposeError
	if errors.As(err, &pe) && i18n.Has(pe.Key) {
		if pe.Arg != "" {
			return i18n.T(lang, "isp.nopurpose", i18n.T(lang, pe.Key, pe.Arg))
		}
		return i18n.T(lang, "isp.nopurpose", i18n.T(lang, pe.Key))
	}
	return i18n.T(lang, "isp.nopurpose", err.Error())
}

// ispForm is the ISP request's form. It reads the target (the rows its
// request would hold, for the purged transcripts it warns of), so it is a
// view of the target: with Config.RequireViewPurpose it asks the case
// number first, as the target's page does, and the form is given it.
func (s *server) ispForm(w http.ResponseWriter, r *http.Request, u *User) {
	purpose, ok := s.viewPurpose(w, r, u)
	if !ok {
		return
	}
	t, ok := s.getTarget(w, r, u, "isp_form")
	if !ok {
		return
	}
	if !s.audited(w, r, u, ActionViewTarget, "target:"+t.ID, purpose, map[string]string{"page": "isp_form"}) {
		return
	}
	s.renderISP(w, r, u, t.ID, http.StatusOK, "")
}

func (s *server) renderISP(w http.ResponseWriter, r *http.Request, u *User, id string, code int, problem string) {
	v := s.newView(r, u, "targets", "", nil)
	v.Title = v.T("isp.title", id)
	purpose := r.PostFormValue("purpose")
	if r.Method == http.MethodGet {
		purpose = r.URL.Query().Get("purpose") // the view's, when it stated one
	}
	data := map[string]any{"ID": id, "Formats": ISPFormats, "Problem": problem,
		"Purpose": purpose, "Format": r.PostFormValue("format")}
	v.Data = data
	if pr, ok := s.cfg.ISP.(ISPPurged); ok {
		n, first, last, err := pr.PurgedRows(r.Context(), u, id)
		switch {
		case err != nil:
			s.log.Error("isp request: purged rows", "id", id, "err", err)
			data["Purged"] = v.T("isp.purged.unknown")
		case n > 0 && first.Format("2006-01-02") == last.Format("2006-01-02"):
			data["Purged"] = v.T("isp.purged", n, first.Format("2006-01-02"))
		case n > 0:
			data["Purged"] = v.T("isp.purged.between", n, first.Format("2006-01-02"), last.Format("2006-01-02"))
		}
	}
	s.render(w, code, "isp", v)
}

func (s *server) ispDownload(w http.ResponseWriter, r *http.Request, u *User) {
	if s.cfg.ISP == nil || s.cfg.Trail == nil {
		s.fail(w, r, u, http.StatusServiceUnavailable, "error.internal")
		return
	}
	id := r.PathValue("id")
	format := r.PostFormValue("format")
	purpose, err := checkPurpose(r.PostFormValue("purpose"))
	if err != nil {
		if !s.audited(w, r, u, ActionDenied, "target:"+id, r.PostFormValue("purpose"), map[string]string{"export": "isp", "reason": err.Error()}) {
			return
		}
		s.renderISP(w, r, u, id, http.StatusBadRequest, purposeProblem(s.langOf(r, u), err))
		return
	}
	known := false
	for _, f := range ISPFormats {
		known = known || f == format
	}
	if !known {
		s.renderISP(w, r, u, id, http.StatusBadRequest, i18n.T(s.langOf(r, u), "isp.badformat", format, strings.Join(ISPFormats, ", ")))
		return
	}
	f, err := s.cfg.ISP.Render(r.Context(), u, id, format, purpose)
	switch {
	case err == nil:
	case errors.Is(err, ErrDenied), errors.Is(err, ErrNotFound):
		s.notFound(w, r, u, id, purpose, err, map[string]string{"export": "isp"})
		return
	case errors.Is(err, ErrNoPurpose):
		s.renderISP(w, r, u, id, http.StatusBadRequest, purposeProblem(s.langOf(r, u), err))
		return
	default:
		s.log.Error("isp request", "id", id, "user", u.Name, "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	if !s.audited(w, r, u, ActionExport, "target:"+id, purpose, map[string]any{"export": "isp", "format": format, "file": f.Filename, "bytes": len(f.Body), "endpoints": f.Endpoints}) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", safeFilename(f.Filename)))
	h.Set("Content-Length", strconv.Itoa(len(f.Body)))
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(f.Body)
}

func safeFilename(n string) string {
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c == '"' || c == '\\' || c == '/' || c > 0x7e {
			return '_'
		}
		return c
	}, n)
}

// ---- sensors ----

func (s *server) sensors(w http.ResponseWriter, r *http.Request, u *User) {
	src := s.cfg.Sensors
	if src == nil {
		src = defaultSensors{s}
	}
	st, err := src.Sensors(r.Context())
	if err != nil {
		s.log.Error("sensors", "err", err)
		s.fail(w, r, u, http.StatusInternalServerError, "error.internal")
		return
	}
	v := s.newView(r, u, "sensors", "sensors.title", st)
	s.render(w, http.StatusOK, "sensors", v)
}
